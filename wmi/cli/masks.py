"""``wmi masks``: seeded mask sets (with manifest, preview and summary) and mask-folder stats.

A shell over :mod:`wmi.masks`: each command parses, calls one library function, prints. Only
typer, rich and the torch-free kind registry are imported here; the library (numpy, OpenCV,
Pillow) is imported when a command runs.
"""

import json
from pathlib import Path
from typing import Any

import typer

from wmi.cli.common import (
    App,
    choice,
    err_console,
    make_console,
    make_table,
    notify,
    progress_bar,
    shard_option,
)
from wmi.errors import WmiError
from wmi.kinds import (
    DEFAULT_MAX_PIXELS,
    MASK_KINDS,
    MAX_MASKS,
    MAX_WORKERS,
    MIN_MASK_SIDE,
    SEED_MAX,
)

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


_FOR_HELP = (
    "Make one mask per image of this folder instead: OUT_DIR/{stem}.png at that image's size "
    "(what `wmi inpaint folder` and `wmi eval` pair by), each seeded by --seed and the file "
    "name, so adding images never changes the others' masks. Not with --count or a size."
)
_MAX_PIXELS_HELP = (
    "The most pixels of one mask (a larger --size is refused); with --for, an image of more "
    "pixels is left out and named (a decompression bomb is one); 0 = no limit. The same limit "
    "as wmi inpaint and wmi eval."
)

_SEED_HELP = (
    "Base seed; mask i uses numpy.random.default_rng((seed, i)) (with --for: seed and the "
    "SHA-256 of the image's stem)."
)


@app.command("generate")
def generate_command(
    out_dir: Path = typer.Argument(..., help="Folder for the masks; created if missing."),
    kind: str = choice(MASK_KINDS, ..., "--kind", help="Mask kind:"),
    count: int | None = typer.Option(
        None,
        "--count",
        min=1,
        max=MAX_MASKS,
        show_default="required without --for",
        help="Number of masks.",
    ),
    for_dir: Path | None = typer.Option(None, "--for", metavar="IMAGE_DIR", help=_FOR_HELP),
    max_pixels: int = typer.Option(
        DEFAULT_MAX_PIXELS, "--max-pixels", min=0, help=_MAX_PIXELS_HELP
    ),
    size: int | None = typer.Option(
        None,
        "--size",
        min=MIN_MASK_SIDE,
        show_default="256",
        help="Height and width of square masks, pixels (at most --max-pixels in all).",
    ),
    height: int | None = typer.Option(
        None, "--height", min=MIN_MASK_SIDE, show_default="--size", help="Mask height, pixels."
    ),
    width: int | None = typer.Option(
        None, "--width", min=MIN_MASK_SIDE, show_default="--size", help="Mask width, pixels."
    ),
    seed: int = typer.Option(0, "--seed", min=0, max=SEED_MAX, help=_SEED_HELP),
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
        0,
        "--workers",
        min=0,
        max=MAX_WORKERS,
        help="Worker processes; 0 = one per CPU core. Output does not depend on it.",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help=_OVERWRITE_HELP),
    shard_text: str | None = shard_option("images of --for (not with --overwrite)"),
    as_json: bool = typer.Option(
        False, "--json", help="Print the summary as JSON on stdout instead of a table."
    ),
) -> None:
    """Write COUNT seeded masks as OUT_DIR/000000.png, ... (8-bit PNG, 255 = hole), or with
    --for IMAGE_DIR one OUT_DIR/{stem}.png per image, at its size.

    Kinds: see --kind; docs/masks.md describes each and how to add one.

    manifest.csv (one row per mask) is written last: a set without it is incomplete. The
    new set is written to a hidden folder inside OUT_DIR and moved into place only when
    complete, so a failed run leaves an earlier set as it was.

    preview.png shows the first 64 masks. Same options, same files, for any --workers.

    Exit status 1 when --for left an image out (named on stderr, listed in --json as
    "skipped").
    """
    from wmi.masks import MaskSetSpec, write_mask_set
    from wmi.procs import Shard

    shard = Shard.parse(shard_text)
    if not shard.whole:
        if for_dir is None or overwrite:
            raise WmiError("--shard splits the images of --for, and does not take --overwrite")
        given = (count, size, height, width)
        _generate_shard(out_dir, for_dir, kind, seed, training, buckets, border, given,
                        max_pixels, workers, shard, as_json)  # fmt: skip
        return
    if for_dir is None:
        if count is None:
            raise WmiError("--count is required (or --for IMAGE_DIR: one mask per image)")
        side = 256 if size is None else size
        h, w = side if height is None else height, side if width is None else width
        spec = MaskSetSpec(kind, h, w, count, seed, training, buckets, border)
        skipped: tuple[str, ...] = ()
    else:
        spec, skipped = _spec_for_images(out_dir, for_dir, kind, seed, training, buckets, border,
                                         (count, size, height, width), max_pixels)  # fmt: skip
    with progress_bar(transient=True) as bar:
        task = bar.add_task(f"writing {spec.label} masks", total=spec.count)
        result = write_mask_set(
            out_dir,
            spec,
            overwrite=overwrite,
            workers=workers,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            max_pixels=max_pixels,
        )
    summary = {**result.summary(), "skipped": list(skipped)}
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    else:
        _print_summary(summary, title=f"{spec.count} {spec.label} masks in {out_dir}")
        make_console(highlight=False, soft_wrap=True).print(_timing(result))
    if skipped:
        err_console.print(f"[yellow]{len(skipped)} image(s) left out, named above[/]")
        raise typer.Exit(1)


def _spec_for_images(
    out_dir: Path,
    image_dir: Path,
    kind: str,
    seed: int,
    training: bool,
    buckets: bool,
    border: bool | None,
    given: tuple[int | None, ...],
    max_pixels: int,
    shard: Any = None,
) -> tuple[Any, tuple[str, ...]]:
    """The spec of ``--for IMAGE_DIR`` (of one shard's images) and the images it leaves out
    (each named on stderr)."""
    from wmi.masks import MaskSetSpec, image_targets

    if any(value is not None for value in given):
        raise WmiError("--for makes one mask per image at its size: drop --count and the size")
    targets, skipped = image_targets(image_dir, out_dir, max_pixels, shard)
    spec = MaskSetSpec.for_images(kind, targets, seed, training, buckets, border)
    for problem in skipped:
        notify("warning", f"left out: {problem}")
    if not targets and shard is None:
        raise WmiError(f"{image_dir}: none of its images can be given a mask (named above)")
    if targets:
        spec.validate()
    return spec, skipped


def _generate_shard(
    out_dir: Path,
    image_dir: Path,
    kind: str,
    seed: int,
    training: bool,
    buckets: bool,
    border: bool | None,
    given: tuple[int | None, ...],
    max_pixels: int,
    workers: int,
    shard: Any,
    as_json: bool,
) -> None:
    """``--for IMAGE_DIR --shard K/N``: this shard's masks; the manifest once all are done."""
    from wmi.io import list_images
    from wmi.masks.shards import SetPart, write_mask_set_part

    spec, skipped = _spec_for_images(out_dir, image_dir, kind, seed, training, buckets, border,
                                     given, max_pixels, shard)  # fmt: skip
    part = SetPart(shard, tuple(p.stem for p in list_images(image_dir)))
    with progress_bar(transient=True) as bar:
        task = bar.add_task(f"writing {spec.label} masks (shard {shard})", total=spec.count)
        result, complete = write_mask_set_part(
            out_dir,
            spec,
            part,
            workers=workers,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    summary = {**result.summary(), "shard": str(shard), "set_complete": complete,
               "skipped": list(skipped)}  # fmt: skip
    state = "the set is complete" if complete else "other shards still to come"
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    elif spec.count:
        _print_summary(
            summary, title=f"shard {shard}: {spec.count} {spec.label} masks in {out_dir}"
        )
        make_console(highlight=False, soft_wrap=True).print(f"{_timing(result)}; {state}")
    else:
        notify("info", f"shard {shard} holds none of the images of {image_dir}; {state}")
    if skipped:
        err_console.print(f"[yellow]{len(skipped)} image(s) left out, named above[/]")
        raise typer.Exit(1)


def _timing(result: Any) -> str:
    """ "wrote 12 masks in 25 ms in this process, 480 masks/s" (or "with 4 worker processes")."""
    seconds, count = result.seconds, len(result.records)
    shown = f"{1000 * seconds:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"
    where = "in this process" if result.workers <= 1 else f"with {result.workers} worker processes"
    line = f"wrote {count} masks in {shown} {where}"
    if seconds > 0:
        line += f", {count / seconds:.0f} masks/s"
    if result.stale_masks_removed:
        line += f"; removed {result.stale_masks_removed} masks of the earlier set"
    return line


@app.command("stats")
def stats_command(
    mask_dir: Path = typer.Argument(..., help="Folder of mask PNGs (white > 127 = hole)."),
    as_json: bool = typer.Option(
        False, "--json", help="Print the summary as JSON on stdout instead of a table."
    ),
) -> None:
    """Summarize a folder of masks from any tool: count per hole-ratio bucket, mean/min/max.

    Reads every *.png in MASK_DIR, not sub-folders; preview.png from `masks generate` is left out.

    An unreadable file (damaged, a photograph, a decompression bomb) is named on stderr and
    skipped: exit status 1. A mask that selects nothing is named on stderr and left out of
    the statistics.
    """
    from wmi.masks import mask_folder_stats

    with progress_bar(transient=True) as bar:
        task = bar.add_task("reading masks", total=None)
        stats = mask_folder_stats(
            mask_dir, progress=lambda done, total: bar.update(task, completed=done, total=total)
        )
    for problem in stats.problems:
        notify("warning", f"skipped: {problem}")
    for note in stats.empty:
        notify("warning", note)
    summary = stats.summary
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    else:
        _print_summary(summary, title=f"{summary['count']} masks in {mask_dir}")
    if stats.empty:
        notify("warning", f"{len(stats.empty)} mask(s) select nothing, left out")
    if stats.problems:
        notify("warning", f"{len(stats.problems)} unreadable file(s) skipped")
        raise typer.Exit(1)


# ----------------------------------------------------------------------------------- helpers


def _print_summary(summary: dict[str, Any], title: str) -> None:
    console = make_console(highlight=False, soft_wrap=True)
    # The title on a line of its own: a table title wraps inside the table's width, mid-path.
    console.print(title, markup=False)
    table = make_table()
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
