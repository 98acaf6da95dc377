"""The ``wmi`` command line: one typer app, one module per command group.

This module only assembles the app; what the command modules share is in
:mod:`wmi.cli.common`.
"""

import sys

import typer

from wmi import __version__
from wmi.cli import bench, data, demo, eval, export, inpaint, masks, study, train
from wmi.cli.common import App

app = App(
    name="wmi",
    help="Image inpainting with weighted mask convolution: masks, data, training, "
    "inpainting and Table I evaluation.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"wmi {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Image inpainting with weighted mask convolution (Kang et al.)."""


def main() -> None:
    """Console-script entry point."""
    app(prog_name="wmi")
    sys.exit(0)


app.command("demo")(demo.demo)
app.add_typer(masks.app, name="masks")
app.add_typer(data.app, name="data")
app.command("train")(train.train)
app.add_typer(inpaint.app, name="inpaint")
app.command("eval")(eval.eval_command)
app.command("export")(export.export)
app.command("bench")(bench.bench)
app.command("study")(study.study)
