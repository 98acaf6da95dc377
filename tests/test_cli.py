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
