from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

import wmi
from wmi.cli import app
from wmi.cli.common import App
from wmi.errors import WmiError

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"wmi {wmi.__version__}"


def test_help_lists_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_python_dash_m() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "wmi", "--version"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"wmi {wmi.__version__}"


def test_user_error_is_one_line_without_traceback() -> None:
    demo = App()

    @demo.command()
    def boom() -> None:
        raise WmiError("photos/cat.png: not an image")

    @demo.command()
    def other() -> None:
        pass

    result = runner.invoke(demo, ["boom"])
    assert result.exit_code == 2
    assert "error: photos/cat.png: not an image" in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_error_line_prints_brackets_literally() -> None:
    demo = App()

    @demo.command()
    def brackets() -> None:
        raise WmiError("photos/[bold]/cat[2].png: not an image")

    @demo.command()
    def other() -> None:
        pass

    result = runner.invoke(demo, ["brackets"])
    assert "error: photos/[bold]/cat[2].png: not an image" in result.output


def test_help_texts_say_each_thing_once() -> None:
    # issue 25: `--device` said "auto picks cuda, then mps" and then the same list again;
    # `data prepare --help` described places and plain with the same words
    from wmi.kinds import PRESETS

    assert len({PRESETS[name].help for name in PRESETS}) == len(PRESETS)
    runner = CliRunner()
    for command in (["inpaint", "image"], ["inpaint", "folder"]):
        text = " ".join(runner.invoke(app, [*command, "--help"]).stdout.split())
        assert text.count("cuda when available") == 1 and "auto picks" not in text
    train = " ".join(runner.invoke(app, ["train", "--help"]).stdout.split())
    assert "the shards must have been prepared with `wmi data prepare --size` of the same" in train


def test_names_that_are_not_utf8_or_hold_escape_sequences(tmp_path) -> None:
    """Issue 21, items 10 and 18: ``printf 'a\\xff'`` names crashed data prepare, masks
    generate --for and eval --html with UnicodeEncodeError; escape sequences in names were
    printed raw. Every command finishes, writes every file, and shows such bytes as \\xNN."""
    import os

    import numpy as np
    from PIL import Image

    img, msk = tmp_path / "img", tmp_path / "msk"
    img.mkdir(), msk.mkdir()
    rng = np.random.default_rng(0)
    hole = np.zeros((64, 64), np.uint8)
    hole[20:30, 20:40] = 255
    for name in (b"a\xff", b"b", b"c", b"d"):
        stem = os.fsdecode(name)
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), np.uint8)).save(img / f"{stem}.png")
        Image.fromarray(hole).save(msk / f"{stem}.png")
    (img / "e\x1b[2J.png").write_bytes(b"not an image")  # clears the screen if printed raw

    def ok(*args) -> str:
        result = runner.invoke(app, [str(a) for a in args])
        assert result.exit_code in (0, 1), result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert "Traceback" not in result.output and "\x1b[2J" not in result.output
        return result.output

    ok("data", "prepare", img, tmp_path / "data", "--size", "32", "--workers", "1")
    manifest = (tmp_path / "data" / "manifest.json").read_text()
    assert "e\\u001b[2J.png" in manifest  # JSON escapes it; the 4 images are in the shards
    import h5py

    names = []
    for shard in sorted((tmp_path / "data").glob("*.h5")):
        with h5py.File(shard) as f:
            names += [n.decode() if isinstance(n, bytes) else n for n in f["names"][:]]
    assert sorted(names) == ["a\\xff.png", "b.png", "c.png", "d.png"]

    out = ok("masks", "generate", tmp_path / "m", "--kind", "box", "--for", img)
    assert "e\\x1b[2J.png" in out
    assert (tmp_path / "m" / f"{os.fsdecode(b'a')}\udcff.png").is_file()
    assert os.fsencode("a\udcff.png") in os.fsencode((tmp_path / "m" / "manifest.csv").read_text(
        encoding="utf-8", errors="surrogateescape"))  # fmt: skip
    ok("inpaint", "folder", img, msk, tmp_path / "out", "--method", "telea", "--workers", "1")
    ok("eval", "--gt", img, "--masks", msk, "--pred", f"T={tmp_path / 'out'}",
       "--html", tmp_path / "r.html", "--markdown", tmp_path / "r.md")  # fmt: skip
    assert "a\\xff" in (tmp_path / "r.html").read_text(encoding="utf-8")
    assert (tmp_path / "r.md").read_text(encoding="utf-8")


def test_every_numeric_option_has_a_range_and_out_of_range_is_refused(tmp_path) -> None:
    """Issue 21, item 13: every int or float option of every command shows its range in
    --help and refuses a value outside it before anything is written."""
    import typer.main

    def walk(cmd, path):
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                yield from walk(sub, [*path, name])
        else:
            yield path, cmd

    unbounded, checked = [], 0
    for path, cmd in walk(typer.main.get_command(app), []):
        for param in cmd.params:
            numeric = param.type_descriptor.annotation in (int, float, int | None, float | None)
            checked += numeric
            if numeric and param.min is None and param.max is None:
                unbounded.append(f"wmi {' '.join(path)} {param.opts[0]}")
    assert unbounded == [] and checked > 40
    out = tmp_path / "o"
    for args in (["data", "prepare", tmp_path, out, "--seed", "-1"],
                 ["data", "prepare", tmp_path, out, "--seed", "99999999999999999999"],
                 ["train", "--data", tmp_path, "--out", out, "--layers", "20000"],
                 ["train", "--data", tmp_path, "--out", out, "--base-channels", "100000"],
                 ["train", "--data", tmp_path, "--out", out, "--size", "0"],
                 ["bench", "train", "--size", "-64"]):  # fmt: skip
        result = runner.invoke(app, [str(a) for a in args])
        assert result.exit_code == 2, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and "Invalid value for '--" in lines[0], result.output
        assert not (tmp_path / "o").exists()


def test_the_library_refuses_the_numbers_too(tmp_path) -> None:
    """--seed -1 failed after prepare.json was written; a --config file bypasses typer."""
    import pytest

    from wmi.data import prepare
    from wmi.training.config import TrainConfig, check_config

    (tmp_path / "src").mkdir()
    with pytest.raises(WmiError, match="--seed -1: must be from 0"):
        prepare(tmp_path / "src", tmp_path / "o", size=16, seed=-1)
    assert not (tmp_path / "o").exists()
    for field, value in (("layers", 20000), ("base_channels", 100000), ("seed", 2**64)):
        with pytest.raises(WmiError, match=f"--{field.replace('_', '-')} must be from"):
            check_config(TrainConfig(data="d", out="o", steps=1, **{field: value}))
