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
