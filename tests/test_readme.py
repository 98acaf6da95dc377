"""README.md's promises: the Python example runs and the setup commands are the ones CI uses."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_python_example_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    assert tuple(namespace["output"].shape) == (2, 3, 256, 256)
    assert namespace["mask"].shape == (2, 1, 128, 128)
    assert 0 < namespace["mask"].min() <= namespace["mask"].max() <= 1


def test_setup_commands() -> None:
    text = README.read_text()
    assert "\npip install -e '.[test]'\nwmi demo\n" in text
    assert "\npytest\n" in text
