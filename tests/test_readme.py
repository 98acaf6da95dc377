"""README.md's promises: the Python example runs and the setup commands are the ones CI uses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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


def _tour() -> list[list[str]]:
    """The commands of README's tour, continuation lines joined, as argument lists."""
    import shlex

    text = README.read_text().split("## A tour of the commands", 1)[1]
    block = re.search(r"```bash\n(.*?)```", text, flags=re.S).group(1)
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        if line.strip().startswith("wmi "):
            commands.append(shlex.split(line)[1:])
    return commands


def _photographs(folder: Path, count: int = 12) -> None:
    """A user's mixed folder: JPEG and PNG, non-square, greyscale and RGBA."""
    import numpy as np
    from PIL import Image
    from skimage import data

    folder.mkdir()
    sources = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    rng = np.random.default_rng(0)
    for i in range(count):
        photo = sources[i % len(sources)]
        h, w = int(rng.integers(72, 120)), int(rng.integers(72, 120))
        y, x = int(rng.integers(0, photo.shape[0] - h)), int(rng.integers(0, photo.shape[1] - w))
        img = Image.fromarray(photo[y : y + h, x : x + w])
        if i % 4 == 1:
            img.convert("L").save(folder / f"photo{i:02d}.jpg", quality=90)
        elif i % 4 == 2:
            img.convert("RGBA").save(folder / f"photo{i:02d}.png")
        elif i % 4 == 3:
            img.save(folder / f"photo{i:02d}.jpg", quality=90)
        else:
            img.save(folder / f"photo{i:02d}.png")


@pytest.mark.slow
def test_the_tour_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from typer.testing import CliRunner

    from wmi.cli import app

    _photographs(tmp_path / "photos")
    monkeypatch.chdir(tmp_path)
    commands = _tour()
    assert [c[:2] for c in commands][:2] == [["masks", "generate"], ["masks", "stats"]]
    for args in commands:
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, f"wmi {' '.join(args)}\n{result.output}"
    table = json.loads((tmp_path / "table.json").read_text())
    assert [m["name"] for m in table["methods"]] == ["WConv", "Telea", "Biharmonic"]
    assert all(m["images"] == 12 for m in table["methods"])
    assert (tmp_path / "report.html").stat().st_size > 10_000
    assert (tmp_path / "models" / "wconv" / "model.safetensors").is_file()
