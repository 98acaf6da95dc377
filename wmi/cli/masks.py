"""``wmi masks``: seeded mask sets (with manifest, preview and summary) and mask-folder stats.

A shell over :mod:`wmi.masks`: each command parses, calls one library function, prints. Only
typer, rich and the torch-free kind registry are imported here; the library (numpy, OpenCV,
Pillow) is imported when a command runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from wmi.cli import App, choice, err_console, progress_bar
from wmi.kinds import MASK_KINDS

app = App(help="Generate seeded hole masks (centre, box, free-form, irregular, LaMa presets).")

_BUCKETS_HELP = (
    "irregular only: NVIDIA's test set layout, equal counts in the hole-ratio buckets "
    "0-10 %, ..., 50-60 % (in that order), the first half of each bucket touching the "
    "border and the second half not. --count must be a multiple of 12 (6 with "
    "--border/--no-border)."
)
_BORDER_HELP = (
    "Only masks whose hole touches (--border) or keeps off (--no-border) the image "
    "border, by redrawing; for irregular masks it is built in."
)
_OVERWRITE_HELP = (
    "Replace the mask set in OUT_DIR made by an earlier run: removes the files its "
    "manifest.csv lists, its preview.png and manifest.csv, leaves other files alone. A "
    "non-empty folder without such a manifest is refused."
)


@app.command("generate")
def generate_command(
    out_dir: Path = typer.Argument(..., help="Folder for the masks; created if missing."),
    kind: str = choice(MASK_KINDS, ..., "--kind", help="Mask kind:"),
    count: int = typer.Option(..., "--count", help="Number of masks (at least 1)."),
    size: int = typer.Option(256, "--size", help="Height and width of square masks, pixels."),
    height: int | None = typer.Option(
        None, "--height", show_default="--size", help="Mask height, pixels (at least 16)."
    ),
    width: int | None = typer.Option(
        None, "--width", show_default="--size", help="Mask width, pixels (at least 16)."
    ),
    seed: int = typer.Option(
        0, "--seed", help="Base seed; mask i uses numpy.random.default_rng((seed, i))."
    ),
    buckets: bool = typer.Option(False, "--buckets", help=_BUCKETS_HELP),
    border: bool | None = typer.Option(
        None, "--border/--no-border", show_default="either", help=_BORDER_HELP
    ),
    training: bool = typer.Option(
        False,
        "--training",
        help="freeform only: DeepFill v2's training masks, the strokes OR a random box.",
    ),
    workers: int = typer.Option(
        0, "--workers", help="Worker processes; 0 = one per CPU core. Output does not depend on it."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help=_OVERWRITE_HELP),
    as_json: bool = typer.Option(
        False, "--json", help="Print the summary as JSON on stdout instead of a table."
    ),
) -> None:
    """Write COUNT seeded masks as OUT_DIR/000000.png, ... (8-bit PNG, 255 = hole).

    Kinds: see --kind; docs/masks.md describes each and how to add one.

    manifest.csv (one row per mask) is written last: a set without it is incomplete. The
    new set is written to a hidden folder inside OUT_DIR and moved into place only when
    complete, so a failed run leaves an earlier set as it was.

    preview.png shows the first 64 masks. Same options, same files, for any --workers.
    """
    from wmi.masks import MaskSetSpec, write_mask_set

    spec = MaskSetSpec(
        kind=kind,
        height=size if height is None else height,
        width=size if width is None else width,
        count=count,
        seed=seed,
        training=training,
        buckets=buckets,
        touches_border=border,
    )
    with progress_bar(transient=True) as bar:
        task = bar.add_task(f"writing {spec.label} masks", total=count)
        result = write_mask_set(
            out_dir,
            spec,
            overwrite=overwrite,
            workers=workers,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    summary = result.summary()
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    _print_summary(summary, title=f"{count} {spec.label} masks in {out_dir}")
    seconds, removed = result.seconds, result.stale_masks_removed
    line = (
        f"{seconds:.1f} s with {result.workers} worker(s), {count / max(seconds, 1e-9):.0f} masks/s"
    )
    if removed:
        line += f"; removed {removed} numbered masks of the earlier set beyond --count"
    Console(highlight=False).print(line)


@app.command("stats")
def stats_command(
    mask_dir: Path = typer.Argument(..., help="Folder of mask PNGs (white > 127 = hole)."),
    as_json: bool = typer.Option(
        False, "--json", help="Print the summary as JSON on stdout instead of a table."
    ),
) -> None:
    """Summarize a folder of masks from any tool: count per hole-ratio bucket, mean/min/max.

    Reads every *.png in MASK_DIR, not sub-folders; preview.png from `masks generate` is left out.

    An unreadable file is named on stderr and skipped.
    """
    from wmi.masks import mask_folder_stats

    with progress_bar(transient=True) as bar:
        task = bar.add_task("reading masks", total=None)
        stats = mask_folder_stats(
            mask_dir, progress=lambda done, total: bar.update(task, completed=done, total=total)
        )
    for problem in stats.problems:
        err_console.print(f"[yellow]skipped:[/] {escape(problem)}")
    summary = stats.summary
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    else:
        _print_summary(summary, title=f"{summary['count']} masks in {mask_dir}")
        if stats.problems:
            err_console.print(f"[yellow]{len(stats.problems)} unreadable file(s) skipped[/]")


# ----------------------------------------------------------------------------------- helpers


def _print_summary(summary: dict[str, Any], title: str) -> None:
    console = Console(highlight=False)
    table = Table(title=escape(title), title_justify="left")
    table.add_column("hole ratio")
    table.add_column("masks", justify="right")
    table.add_column("share", justify="right")
    n = summary["count"]
    for label, k in summary["buckets"].items():
        table.add_row(label, str(k), f"{100 * k / n:.1f} %")
    table.add_section()
    table.add_row("all", str(n), "100.0 %")
    console.print(table)
    ratio = summary["hole_ratio"]
    sizes = ", ".join(f"{size} ({k})" for size, k in summary["sizes"].items())
    console.print(
        f"hole ratio mean {100 * ratio['mean']:.1f} %, min {100 * ratio['min']:.1f} %, "
        f"max {100 * ratio['max']:.1f} %; {summary['touches_border']} of {n} touch the "
        f"border; size {sizes}"
    )
