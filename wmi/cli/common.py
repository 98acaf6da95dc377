"""What every command module shares: consoles, progress bars, choices from a registry, the App
that turns a WmiError into one line. Imports no command module and no torch."""

import functools
from collections.abc import Callable
from typing import Any

import typer
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
from typer.core import TyperCommand

from wmi.errors import WmiError, printable
from wmi.registry import Registry


class _StderrConsole:
    """A rich ``Console`` on stderr, made when first used.

    Errors, notes and progress go to stderr so that ``--json`` output on stdout stays
    parseable. Importing rich's console costs more than the rest of ``wmi --help``, so it is
    imported only when something is printed.
    """

    _console: Any = None

    @property
    def console(self) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=True, highlight=False, soft_wrap=True)
        return self._console

    def print(self, *objects: Any, **kwargs: Any) -> None:
        """``Console.print``, with file names' escape sequences and non-UTF-8 bytes shown as
        ``\\xNN`` (each line of a text printed as it is otherwise)."""
        shown = [_printable_lines(o) if isinstance(o, str) else o for o in objects]
        self.console.print(*shown, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.console, name)


def _printable_lines(text: str) -> str:
    return "\n".join(printable(line) for line in text.split("\n"))


err_console: Any = _StderrConsole()


def make_console(**kwargs: Any) -> Any:
    """A ``rich.console.Console`` (stdout unless ``stderr=True``), rich imported on first use."""
    from rich.console import Console

    return Console(**kwargs)


def make_table(*args: Any, **kwargs: Any) -> Any:
    """A ``rich.table.Table``, rich imported on first use."""
    from rich.table import Table

    return Table(*args, **kwargs)


def escape(text: str) -> str:
    """``rich.markup.escape``: ``text`` printed as it is inside rich markup."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def progress_bar(*columns: Any, **kwargs: Any) -> Any:
    """A rich progress bar on stderr (so stdout stays clean for ``--json``).

    Without ``columns``: description, bar, done/total, time remaining. Keyword arguments go to
    ``rich.progress.Progress`` (``transient``, ``disable``, ...).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    columns = columns or (
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    kwargs.setdefault("console", err_console.console)
    return Progress(*columns, **kwargs)


def choice(
    registry: Registry[Any], default: Any, *param_decls: str, help: str = "", **kwargs: Any
) -> Any:
    """A typer option whose choices are the names in ``registry``, read when it is parsed.

    A kind registered after import (a plugin, a test) is accepted; ``--help`` lists each name
    with its help. ``help`` goes before that list.

    Example::

        conv: str = choice(CONV_KINDS, "weighted", "--conv", help="Convolution.")
    """

    def parse(value: str) -> str:
        if value not in registry:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(registry)}")
        return value

    text = f"{help} {registry.describe()}." if help else f"{registry.describe()}."
    return typer.Option(
        default,
        *param_decls,
        parser=parse,
        metavar="[" + "|".join(registry) + "]",
        help=text,
        **kwargs,
    )


#: How each ``notify`` level of the library is shown on stderr.
STYLES = {"error": "bold red", "warning": "yellow"}


def notify(level: str, message: str) -> None:
    """Print a library message on stderr: "warning: ..." / "error: ...", or dim info."""
    from rich.text import Text

    # Text, not markup: file names such as "x[2].png" must print as they are; printable: a
    # name's escape sequences must not drive the terminal, its non-UTF-8 bytes not crash it.
    message = printable(message)
    if level in STYLES:
        err_console.print(Text.assemble((f"{level}: ", STYLES[level]), message), highlight=False)
    else:
        err_console.print(message, style="dim", highlight=False, markup=False)


def _error_line(message: str) -> None:
    from rich.text import Text

    # Text, not markup: file names such as "x[2].png" must print as they are.
    err_console.print(Text.assemble(("error: ", "bold red"), printable(message)))


def interrupted_exit(exc: KeyboardInterrupt, saved: str = "") -> typer.Exit:
    """Print the one line of a command stopped by Ctrl-C or SIGTERM; the Exit to raise.

    ``saved`` (what was kept, how to go on) is used when the library's
    :class:`~wmi.procs.Interrupted` does not say it itself. Exit status 128 + the signal.
    """
    from rich.text import Text

    from wmi.procs import interrupted  # signal and threading: only once a command runs

    stop = interrupted(exc)
    line = stop.saved or saved
    err_console.print(Text.assemble(("interrupted", "yellow"), f": {line}" if line else ""))
    return typer.Exit(stop.exit_code)


def _report_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a user mistake into one red line and exit code 2, never a traceback; SIGTERM and
    Ctrl-C into one line and exit 143 or 130."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from wmi.procs import stop_signals  # not for --help

        with stop_signals():
            return _run_reporting(func, *args, **kwargs)

    return wrapper


def _run_reporting(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return func(*args, **kwargs)
    except WmiError as exc:
        _error_line(str(exc))
        raise typer.Exit(2) from None
    except OSError as exc:  # disk full, permission denied: the user's environment
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        _error_line(f"{where}{exc.strerror or exc}")
        raise typer.Exit(2) from None
    except KeyboardInterrupt as exc:
        raise interrupted_exit(exc) from None


class _OneLineCommand(TyperCommand):
    """A command whose option errors ("--count 0: not in 1..1,000,000") are one line, as a
    WmiError is, instead of click's usage block."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except UsageError as exc:
            if isinstance(exc, NoArgsIsHelpError):
                raise
            raise _UsageLine(exc.format_message()) from None


class _UsageLine(ClickException):
    exit_code = 2

    def show(self, file: Any = None) -> None:
        typer.echo(f"error: {printable(self.message)}", err=True)


class App(typer.Typer):
    """A typer app whose commands report :class:`~wmi.errors.WmiError` as one line."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("no_args_is_help", True)
        # Plain help: typer's rich help imports rich's console and markdown, which would make
        # `wmi --help` three times slower than importing typer (docs/architecture.md).
        kwargs.setdefault("rich_markup_mode", None)
        kwargs.setdefault("pretty_exceptions_show_locals", False)
        kwargs.setdefault("context_settings", {"help_option_names": ["-h", "--help"]})
        super().__init__(**kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
        kwargs.setdefault("cls", _OneLineCommand)
        register = super().command(*args, **kwargs)

        def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
            register(_report_errors(func))
            return func

        return decorator


def shard_option(unit: str) -> Any:
    """The ``--shard K/N`` option of a folder job whose ``unit`` ("images") splits."""
    return typer.Option(
        None,
        "--shard",
        metavar="K/N|auto",
        show_default="the whole job",
        help=f"Do part K of N (K in 0..N-1) of the job: the {unit} whose stem's SHA-256 is K "
        "modulo N, the same on every machine and in masks, inpaint and eval. N such runs, at "
        "once or one after another, make together the files of one unsharded run. "
        "'auto': K and N from a SLURM array "
        "(SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_COUNT) or a Kubernetes "
        "Indexed Job (JOB_COMPLETION_INDEX, and WMI_SHARD_COUNT set to its completions); see "
        "docs/scale.md.",
    )
