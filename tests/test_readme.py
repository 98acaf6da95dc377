"""README.md's promises: the Python example runs and the setup commands are the ones CI uses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def test_python_example_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    layers = [b for b in blocks if "wmi.WeightedConv2d" in b]
    assert layers
    namespace: dict = {}
    exec(compile(layers[0], "README.md", "exec"), namespace)
    assert tuple(namespace["output"].shape) == (2, 3, 256, 256)
    assert namespace["mask"].shape == (2, 1, 128, 128)
    assert 0 < namespace["mask"].min() <= namespace["mask"].max() <= 1


def test_setup_commands() -> None:
    text = README.read_text()
    assert "\npip install -e '.[test]'\nwmi demo\n" in text
    assert "\npytest\n" in text


def _commands(section: str) -> list[list[str]]:
    """The ``wmi`` commands of the first bash block after ``section`` in README.md,
    continuation lines joined, as argument lists (without "wmi")."""
    import shlex

    text = README.read_text().split(section, 1)[1]
    block = re.search(r"```bash\n(.*?)```", text, flags=re.S).group(1)
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        if line.strip().startswith("wmi "):
            commands.append(shlex.split(line)[1:])
    return commands


def _shown_commands() -> list[str]:
    """Every ``wmi ...`` line of README's bash blocks but the set-up's ``wmi demo``
    (tests/test_demo.py runs it, smaller), continuation lines joined."""
    lines = [ln.strip() for b in re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)
             for ln in b.replace("\\\n", " ").splitlines()]  # fmt: skip
    return [" ".join(ln.split()) for ln in lines if ln.startswith("wmi ") and ln != "wmi demo"]


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


def _fresh_clone(where: Path) -> Path:
    """A ``git clone`` of this repository with the working tree's changes on top (so the
    code under test is what runs), or a skip where the tests do not run in a git checkout."""
    import shutil
    import subprocess

    root = README.parent
    if not (root / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout: no fresh clone to make")
    subprocess.run(["git", "clone", "-q", str(root), str(where)], check=True)
    changed = subprocess.run(
        ["git", "ls-files", "-z", "-m", "-o", "--exclude-standard"],
        cwd=root, check=True, capture_output=True, text=True,
    ).stdout.split("\0")  # fmt: skip
    for name in filter(None, changed):
        if (root / name).is_file():
            (where / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / name, where / name)
    return where


def _untracked(clone: Path) -> set[str]:
    import subprocess

    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=clone, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return set(status.splitlines())


@pytest.mark.slow
def test_every_readme_command_runs_as_written_in_a_fresh_clone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    import numpy as np
    from PIL import Image
    from typer.testing import CliRunner

    from wmi.cli import app

    clone = _fresh_clone(tmp_path / "clone")
    before = _untracked(clone)
    _photographs(clone / "photos")
    (clone / "photos" / "photo03.jpg").rename(clone / "photos" / "cat.jpg")
    watermark = np.zeros((60, 60), np.uint8)
    watermark[40:50, 10:50] = 255
    Image.fromarray(watermark).save(clone / "watermark.png")
    monkeypatch.chdir(clone)
    tour = _commands("## A tour of the commands")
    others = _commands("Other things to try")
    assert [c[:2] for c in tour][:2] == [["masks", "generate"], ["masks", "stats"]]
    ran = {" ".join(c) for c in tour + others}  # README's commands have no quoting
    shown = {c.removeprefix("wmi ") for c in _shown_commands()}
    assert shown <= ran, f"README shows commands no test runs: {shown - ran}"
    for args in tour + others:
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, f"wmi {' '.join(args)}\n{result.output}"
    table = json.loads((clone / "table.json").read_text())
    assert [m["name"] for m in table["methods"]] == ["WConv", "Telea", "Biharmonic"]
    assert all(m["images"] == 12 for m in table["methods"])
    assert (clone / "report.html").stat().st_size > 10_000
    assert (clone / "models" / "wconv" / "model.safetensors").is_file()
    assert len([p for p in (clone / "out" / "watermark").iterdir() if p.name[0] != "."]) == 12
    # the one-photo Python example, in the same folder: the same pixels as `wmi inpaint image`
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    example = next(b for b in blocks if "wmi.load_inpainter" in b)
    exec(compile(example, "README.md", "exec"), {})
    cli, python = (np.asarray(Image.open(clone / "out" / n)) for n in ("cat.png", "cat-python.png"))
    np.testing.assert_array_equal(cli, python)
    # what the tour wrote is covered by .gitignore: `git status` is as it was
    assert _untracked(clone) == before
