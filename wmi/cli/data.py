"""``wmi data``: image folders to HDF5 training shards, and a look at what was prepared."""

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from wmi.cli.common import (
    App,
    choice,
    err_console,
    escape,
    interrupted_exit,
    make_console,
    make_table,
    notify,
    progress_bar,
    shard_option,
)
from wmi.errors import WmiError
from wmi.kinds import COMPRESSIONS, MAX_SIDE, MAX_WORKERS, PRESETS, SEED_MAX

if TYPE_CHECKING:
    from wmi.data import PrepareResult

app = App(help="Prepare training data (image folders to HDF5 shards) and inspect it.")


def _human(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover - loop always returns


@app.command("prepare")
def prepare_command(
    src_dir: Path = typer.Argument(..., help="Folder of images, searched recursively."),
    out_dir: Path = typer.Argument(..., help="Folder for the shards and manifest.json."),
    size: int = typer.Option(
        256, "--size", min=16, max=MAX_SIDE, help="Side of the square images, pixels."
    ),
    preset: str = choice(
        PRESETS,
        "plain",
        "--preset",
        help="What the shards store; training crops size x size from it, at random (val: the "
        "centre). See docs/data.md:",
    ),
    split: str = typer.Option(
        "0.7,0.15,0.15", "--split", help="Train,val,test fractions; they must sum to 1."
    ),
    seed: int = typer.Option(
        0, "--seed", min=0, max=SEED_MAX, help="Seed of the random train/val/test assignment."
    ),
    shard_size: int = typer.Option(
        10000, "--shard-size", min=1, max=1_000_000, help="Source images per shard file."
    ),
    workers: int | None = typer.Option(
        None,
        "--workers",
        min=0,
        max=MAX_WORKERS,
        show_default="CPU count",
        help="Decoding processes; 0 decodes in the main process.",
    ),
    compression: str = choice(
        COMPRESSIONS,
        "none",
        "--compression",
        help="HDF5 compression of the images (read speeds in docs/benchmarks.md):",
    ),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        help="Delete the shards, manifest and options of an earlier run in OUT_DIR and start "
        "over (other files are left alone). Without it, a re-run with the same options "
        "resumes.",
    ),
    shard_text: str | None = shard_option(
        "planned shard files (train, then val, then test; the plan does not depend on N), "
        "written into OUT_DIR as one part, which `wmi data merge` joins with the others;"
    ),
) -> None:
    """Convert SRC_DIR's images into OUT_DIR/{train,val,test}-NNNNN.h5 shards.

    Unreadable images are skipped and listed, with the reason, in OUT_DIR/manifest.json.

    A shard appears only when complete: run the same command again to resume (after Ctrl-C,
    a kill or a full disk). One prepare at a time writes an OUT_DIR.
    """
    from wmi.procs import Shard

    shard = Shard.parse(shard_text)
    try:
        result = _prepare(src_dir, out_dir, size, preset, split, seed, shard_size, workers,
                          compression, overwrite, shard)  # fmt: skip
    except KeyboardInterrupt as exc:
        saved = f"the complete shards in {out_dir} are kept: run the same command again to resume"
        raise interrupted_exit(exc, saved) from None
    _report_skipped(result.skipped, result.manifest)
    part = "" if shard.whole else f", part {shard}"
    _print_prepared(result, f"{out_dir}  ({size}x{size}, preset {preset}{part})")


def _prepare(
    src_dir: Path,
    out_dir: Path,
    size: int,
    preset: str,
    split: str,
    seed: int,
    shard_size: int,
    workers: int | None,
    compression: str,
    overwrite: bool,
    shard: Any,
) -> "PrepareResult":
    """:func:`wmi.data.prepare` behind a progress bar."""
    from wmi import data

    fractions = data.parse_split(split)
    with progress_bar(transient=True) as bar:
        task = bar.add_task("decoding", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = data.prepare(
            src_dir,
            out_dir,
            size=size,
            preset=preset,
            split=fractions,
            seed=seed,
            shard_size=shard_size,
            workers=workers,
            overwrite=overwrite,
            compression=compression,
            progress=progress,
            shard=shard,
        )
    return result


@app.command("merge")
def merge_command(
    folders: list[Path] = typer.Argument(
        ...,
        metavar="PART... OUT_DIR",
        help="The N part folders of `wmi data prepare --shard K/N` (any order), then the new "
        "dataset's folder (empty or missing).",
    ),
) -> None:
    """Join the parts of one `wmi data prepare --shard K/N` into one dataset.

    OUT_DIR gets every part's shard files (hard links where possible, else copies) and the
    prepare.json and manifest.json of one unsharded run, so `wmi train --data OUT_DIR` reads
    it as if prepared at once. Parts of different sources or options, a missing or repeated
    part, or an unfinished one are refused.
    """
    from wmi.data.parts import merge_prepared

    if len(folders) < 2:
        raise WmiError("give the part folders and then OUT_DIR")
    *parts, out_dir = folders
    result = merge_prepared(parts, out_dir)
    _print_prepared(result, f"{out_dir}  (merged from {len(parts)} parts)")


def _print_prepared(result: "PrepareResult", title: str) -> None:
    from wmi.data import SPLITS

    console = make_console(highlight=False, soft_wrap=True)
    console.print(title, markup=False)  # not a table title: that wraps mid-path
    table = make_table()
    table.add_column("split")
    table.add_column("images", justify="right")
    table.add_column("shards", justify="right")
    for name in SPLITS:
        table.add_row(name, str(result.counts[name]), str(len(result.shards[name])))
    console.print(table)
    note = f" ({result.kept} kept from an earlier run)" if result.kept else ""
    typer.echo(
        f"{sum(result.counts.values())} of {result.found} images written, "
        f"{len(result.skipped)} skipped; {result.written} shard"
        f"{'' if result.written == 1 else 's'} written{note}; "
        f"manifest: {result.manifest}"
    )


def _report_skipped(skipped: list[tuple[str, str]], manifest: Path | None) -> None:
    shown = 10
    for name, reason in skipped[:shown]:
        err_console.print(f"[yellow]skipped[/] {escape(str(name))}: {escape(str(reason))}")
    if len(skipped) > shown:
        more = f"... and {len(skipped) - shown} more, listed in {manifest}"
        err_console.print(f"[yellow]{escape(more)}[/]")


@app.command("info")
def info_command(
    out_dir: Path = typer.Argument(..., help="A folder made by wmi data prepare."),
    more: list[Path] | None = typer.Argument(
        None,
        metavar="[PART...]",
        help="Further part folders of `wmi data prepare --shard K/N`: all the parts are "
        "checked (one plan, none missing or repeated, every shard file readable) and summed.",
        show_default=False,
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout instead of a table."),
    preview: Path | None = typer.Option(
        None,
        "--preview",
        show_default="none",
        help="Also write a contact sheet of random images to this PNG file (an existing "
        "file is replaced).",
    ),
    count: int = typer.Option(16, "--count", min=1, max=1024, help="Images on the preview sheet."),
    seed: int = typer.Option(
        0, "--seed", min=0, max=SEED_MAX, help="Seed for picking the preview images."
    ),
) -> None:
    """Show images per split, image size and disk use; with --preview, a contact sheet.

    Nothing is written unless --preview is given. If the preview cannot be written (a
    read-only folder, a full disk) the info is still printed, with a note: exit status 1.
    """
    from wmi import data

    if more:
        _parts_info([out_dir, *more], as_json)
        return
    summary = data.dataset_summary(out_dir)
    summary["preview"] = None
    failed = None
    if preview is not None:
        failed = _write_preview(out_dir, preview, count, seed)
        summary["preview"] = None if failed else str(preview)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    else:
        _print_info(out_dir, summary)
    if failed:
        notify("warning", f"preview not written: {failed}")
        raise typer.Exit(1)


def _parts_info(folders: list[Path], as_json: bool) -> None:
    """``wmi data info PART...``: check every part, then their sum per split."""
    from wmi.data import SPLITS
    from wmi.data.parts import check_parts

    manifests = check_parts(folders)
    summary = {
        "parts": [str(f) for f in folders],
        "complete": True,
        "counts": {s: sum(m["counts"][s] for m in manifests) for s in SPLITS},
        "shards": {s: sum(len(m["shards"][s]) for m in manifests) for s in SPLITS},
        "skipped": sum(len(m["skipped"]) for m in manifests),
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    console = make_console(highlight=False, soft_wrap=True)
    console.print(f"{len(folders)} parts, all present and readable: ready for wmi data merge")
    table = make_table()
    table.add_column("split")
    table.add_column("images", justify="right")
    table.add_column("shards", justify="right")
    for name in SPLITS:
        table.add_row(name, str(summary["counts"][name]), str(summary["shards"][name]))
    console.print(table)
    typer.echo(f"skipped source files: {summary['skipped']}")


def _write_preview(out_dir: Path, target: Path, count: int, seed: int) -> str | None:
    """Write the contact sheet; returns why it could not be written, or None."""
    from wmi import data
    from wmi.io.preview import save_contact_sheet

    samples = data.sample_images(out_dir, count=count, seed=seed)
    try:
        save_contact_sheet(
            target, [img for _, img in samples], labels=[label for label, _ in samples]
        )
    except OSError as exc:
        return f"{exc.filename or target}: {exc.strerror or exc}"
    return None


def _print_info(out_dir: Path, summary: dict[str, Any]) -> None:
    size = f"{summary['width']}x{summary['height']}"
    if summary["own_sizes"]:
        size = f"each image its own size, at least {summary['size']}x{summary['size']}"
    state = "complete" if summary["complete"] else "incomplete (no manifest.json: interrupted?)"
    console = make_console(highlight=False, soft_wrap=True)
    console.print(
        f"{out_dir}  ({size}, preset {summary['preset']}, "
        f"compression {summary['compression']}, {state})",
        markup=False,
    )
    table = make_table()
    table.add_column("split")
    table.add_column("images", justify="right")
    table.add_column("shards", justify="right")
    table.add_column("disk", justify="right")
    for name, row in summary["splits"].items():
        table.add_row(name, str(row["images"]), str(row["shards"]), _human(row["bytes"]))
    table.add_row("all", str(summary["images"]), "", _human(summary["bytes"]), style="bold")
    console.print(table)
    typer.echo(f"skipped source files: {summary['skipped']}")
    if summary["preview"]:
        typer.echo(f"preview: {summary['preview']}")
