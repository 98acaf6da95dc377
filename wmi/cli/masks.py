"""``wmi masks``: seeded mask sets (with manifest, preview and summary) and mask-folder stats."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from wmi.cli import App, err_console, progress_bar
from wmi.io import MASK_SET_PREVIEW

if TYPE_CHECKING:
    from wmi.masks import MaskRecord, MaskSetSpec

app = App(help="Generate seeded hole masks (centre, box, free-form, irregular, LaMa presets).")

#: Masks per task handed to a worker process.
CHUNK = 64
#: Masks shown in preview.png.
PREVIEW_COUNT = 64
#: Largest tile side in preview.png, pixels.
PREVIEW_TILE = 128
MANIFEST = "manifest.csv"
PREVIEW = MASK_SET_PREVIEW
MANIFEST_COLUMNS = ("file", "kind", "seed", "hole_ratio", "bucket", "touches_border")
_NUMBERED = re.compile(r"^\d{6,}\.png$")


class Kind(str, Enum):
    """Mask kinds (see ``wmi.masks``)."""

    center = "center"
    box = "box"
    freeform = "freeform"
    irregular = "irregular"
    thin = "thin"
    medium = "medium"
    thick = "thick"


@app.command("generate")
def generate_command(
    out_dir: Path = typer.Argument(..., help="Folder for the masks; created if missing."),
    kind: Kind = typer.Option(..., "--kind", help="Mask kind, see above."),
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
    buckets: bool = typer.Option(
        False,
        "--buckets",
        help="irregular only: NVIDIA's test set layout, equal counts in the hole-ratio buckets "
        "0-10 %, ..., 50-60 % (in that order), the first half of each bucket touching the "
        "border and the second half not. --count must be a multiple of 12 (6 with "
        "--border/--no-border).",
    ),
    border: bool | None = typer.Option(
        None,
        "--border/--no-border",
        show_default="either",
        help="Only masks whose hole touches (--border) or keeps off (--no-border) the image "
        "border, by redrawing; for irregular masks it is built in.",
    ),
    training: bool = typer.Option(
        False,
        "--training",
        help="freeform only: DeepFill v2's training masks, the strokes OR a random box.",
    ),
    workers: int = typer.Option(
        0, "--workers", help="Worker processes; 0 = one per CPU core. Output does not depend on it."
    ),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        help="Replace the mask set in OUT_DIR made by an earlier run: removes the files its "
        "manifest.csv lists, its preview.png and manifest.csv, leaves other files alone. A "
        "non-empty folder without such a manifest is refused.",
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the summary as JSON on stdout instead of a table."
    ),
) -> None:
    """Write COUNT seeded masks as OUT_DIR/000000.png, ... (8-bit PNG, 255 = hole).

    center: the paper's centre box, half the height and width (128x128 at 256).

    box: a random box of at most half the size, shrunk by up to 1/16 per side (DeepFill).

    freeform: DeepFill v2 brush strokes, the paper's free-form masks (--training adds a box).

    irregular: NVIDIA-style test masks with hole ratios up to 60 % (see --buckets).

    thin, medium, thick: LaMa's random mask presets (strokes, or boxes for medium/thick).

    manifest.csv (one row per mask) is written last: a set without it is incomplete. The
    new set is written to a hidden folder inside OUT_DIR and moved into place only when
    complete, so a failed run leaves an earlier set as it was.

    preview.png shows the first 64 masks. Same options, same files, for any --workers.
    """
    from wmi.errors import WmiError
    from wmi.masks import MaskSetSpec, summarize

    spec = MaskSetSpec(
        kind=kind.value,
        height=size if height is None else height,
        width=size if width is None else width,
        count=count,
        seed=seed,
        training=training,
        buckets=buckets,
        touches_border=border,
    )
    spec.validate()
    if workers < 0:
        raise WmiError(f"--workers must be >= 0, got {workers}")
    if out_dir.exists() and not out_dir.is_dir():
        raise WmiError(f"{out_dir}: exists and is not a folder")
    existing = {p.name for p in out_dir.iterdir()} if out_dir.exists() else set()
    if existing and not overwrite:
        raise WmiError(
            f"{out_dir}: folder is not empty ({len(existing)} entries); "
            "pass --overwrite or choose another folder"
        )
    old_files = _previous_set(out_dir, spec.count, existing) if existing else []
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)

    # Everything is written to a hidden folder first and moved into place once complete.
    staging = Path(tempfile.mkdtemp(prefix=".wmi-masks-", dir=out_dir))
    n_workers = min(workers or os.cpu_count() or 1, math.ceil(count / CHUNK))
    start = time.perf_counter()
    try:
        records = _run(spec, staging, n_workers)
        seconds = time.perf_counter() - start
        _write_preview(staging, records)
        _write_manifest(staging, spec, records)
    except BaseException:
        _discard(staging, out_dir if created else None)
        raise
    removed = _commit(staging, out_dir, count, old_files)

    summary = summarize(
        [r.hole_ratio for r in records],
        [r.touches_border for r in records],
        [(spec.height, spec.width)] * count,
    )
    summary.update(
        out_dir=str(out_dir),
        kind=spec.label,
        seed=seed,
        workers=n_workers,
        seconds=round(seconds, 3),
        masks_per_second=round(count / seconds, 1) if seconds > 0 else None,
        stale_masks_removed=removed,
    )
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    else:
        _print_summary(summary, title=f"{count} {spec.label} masks in {out_dir}")
        console = Console(highlight=False)
        console.print(
            f"{seconds:.1f} s with {n_workers} worker(s), {count / max(seconds, 1e-9):.0f} masks/s"
            + (
                f"; removed {removed} numbered masks of the earlier set beyond --count"
                if removed
                else ""
            )
        )


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
    from wmi.errors import WmiError
    from wmi.io import read_mask
    from wmi.masks import hole_ratio, summarize, touches_border

    if not mask_dir.is_dir():
        raise WmiError(f"{mask_dir}: no such folder")
    files = sorted(
        p
        for p in mask_dir.iterdir()
        if p.suffix.lower() == ".png"
        and p.is_file()
        and not p.name.startswith(".")
        and p.name != PREVIEW
    )
    if not files:
        raise WmiError(f"{mask_dir}: no PNG files to read")
    ratios: list[float] = []
    borders: list[bool] = []
    sizes: list[tuple[int, int]] = []
    skipped: list[str] = []
    with _progress(len(files), "reading masks") as advance:
        for path in files:
            try:
                hole = read_mask(path)
            except WmiError as exc:
                err_console.print(f"[yellow]skipped:[/] {escape(str(exc))}")
                skipped.append(str(path))
            else:
                ratios.append(hole_ratio(hole))
                borders.append(touches_border(hole))
                sizes.append(hole.shape)
            advance(1)
    if not ratios:
        raise WmiError(f"{mask_dir}: none of the {len(files)} PNG files could be read as a mask")
    summary = summarize(ratios, borders, sizes)
    summary.update(mask_dir=str(mask_dir), skipped=skipped)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    else:
        _print_summary(summary, title=f"{len(ratios)} masks in {mask_dir}")
        if skipped:
            err_console.print(f"[yellow]{len(skipped)} unreadable file(s) skipped[/]")


# ----------------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def _progress(total: int, description: str) -> Iterator[Any]:
    """A rich progress bar on stderr; yields ``advance(n)``."""
    with progress_bar(transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)


def _run(spec: MaskSetSpec, out_dir: Path, n_workers: int) -> list[MaskRecord]:
    """Write all masks of ``spec``; returns their records in index order."""
    from wmi.masks import write_mask_files

    chunks = [range(i, min(i + CHUNK, spec.count)) for i in range(0, spec.count, CHUNK)]
    records: list[MaskRecord] = []
    with _progress(spec.count, f"writing {spec.label} masks") as advance:
        if n_workers <= 1:
            for chunk in chunks:
                records += write_mask_files(spec, out_dir, chunk)
                advance(len(chunk))
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor, as_completed

            # spawn: a clean interpreter per worker, safe whatever threads the parent runs
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(n_workers, mp_context=context) as pool:
                futures = [pool.submit(write_mask_files, spec, out_dir, c) for c in chunks]
                try:
                    for future in as_completed(futures):
                        part = future.result()
                        records += part
                        advance(len(part))
                except BaseException:
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
    return sorted(records, key=lambda r: r.index)


def _previous_set(out_dir: Path, count: int, existing: set[str]) -> list[str]:
    """The mask files that ``--overwrite`` may replace or remove in ``out_dir``.

    Args:
        out_dir: a non-empty folder.
        count: size of the new set; its masks are ``000000.png`` ... ``count - 1``.
        existing: names of the entries in ``out_dir``.

    Returns:
        The file names listed in the earlier run's ``manifest.csv``.

    Raises:
        WmiError: ``out_dir`` holds no mask set written by ``wmi masks generate`` (no
            readable ``manifest.csv`` with its columns and numbered file names), or a file
            of the new set would replace a file that set does not list.
    """
    from wmi.errors import WmiError
    from wmi.masks import mask_filename

    manifest = out_dir / MANIFEST
    try:
        with open(manifest, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error):
        rows = []
    files = [row[0] if row else "" for row in rows[1:]]
    if not rows or tuple(rows[0]) != MANIFEST_COLUMNS or not all(map(_NUMBERED.match, files)):
        raise WmiError(
            f"{out_dir}: not a mask set written by wmi (no valid {MANIFEST}); --overwrite "
            "only replaces such a set, choose an empty folder"
        )
    owned = set(files) | {MANIFEST, PREVIEW}
    for index in range(count):
        name = mask_filename(index)
        if name in existing and name not in owned:
            raise WmiError(
                f"{out_dir / name}: not listed in {manifest}; --overwrite will not replace it"
            )
    return files


def _discard(staging: Path, created: Path | None) -> None:
    """After a failed run: remove its staging folder (and ``created``, the folder it made)."""
    shutil.rmtree(staging, ignore_errors=True)
    if created is not None:
        with contextlib.suppress(OSError):
            created.rmdir()


def _commit(staging: Path, out_dir: Path, count: int, old_files: Sequence[str]) -> int:
    """Move a complete set from ``staging`` into ``out_dir``, replacing the earlier set.

    The earlier manifest goes first and the new one comes last, so the folder never looks
    complete while it mixes the two sets. Returns how many of the earlier set's masks
    (those beyond the new ``count``) were removed.
    """
    from wmi.masks import mask_filename

    with contextlib.suppress(FileNotFoundError):
        (out_dir / MANIFEST).unlink()
    new_files = {mask_filename(index) for index in range(count)}
    removed = 0
    for name in old_files:
        if name not in new_files:
            with contextlib.suppress(FileNotFoundError):
                (out_dir / name).unlink()
                removed += 1
    for index in range(count):
        os.replace(staging / mask_filename(index), out_dir / mask_filename(index))
    os.replace(staging / PREVIEW, out_dir / PREVIEW)
    os.replace(staging / MANIFEST, out_dir / MANIFEST)
    staging.rmdir()
    return removed


def _write_preview(out_dir: Path, records: Sequence[MaskRecord]) -> None:
    from wmi.io import read_mask
    from wmi.masks import mask_filename
    from wmi.preview import save_contact_sheet

    tiles, labels = [], []
    for record in records[:PREVIEW_COUNT]:
        hole = read_mask(out_dir / mask_filename(record.index))
        step = math.ceil(max(hole.shape) / PREVIEW_TILE)
        tiles.append(hole[::step, ::step])
        labels.append(f"{record.index} {100 * record.hole_ratio:.0f}%")
    save_contact_sheet(out_dir / PREVIEW, tiles, labels=labels, columns=8)


def _write_manifest(out_dir: Path, spec: MaskSetSpec, records: Sequence[MaskRecord]) -> None:
    from wmi.io import atomic_path
    from wmi.masks import hole_ratio_bucket, mask_filename

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    for r in records:
        writer.writerow(
            (
                mask_filename(r.index),
                spec.label,
                spec.seed,
                f"{r.hole_ratio:.6f}",
                hole_ratio_bucket(r.hole_ratio),
                "true" if r.touches_border else "false",
            )
        )
    with atomic_path(out_dir / MANIFEST) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")


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
