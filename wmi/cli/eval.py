"""``wmi eval``: the paper's Table I metrics for one or more folders of predictions."""

from __future__ import annotations

import ctypes
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.text import Text

from wmi.cli import err_console, progress_bar
from wmi.errors import WmiError

if TYPE_CHECKING:
    from wmi.metrics import ImageScore

#: How many file names a warning lists before "and N more".
SHOWN = 5


@dataclass
class Method:
    """One column of the report: a name and the folder with its predictions."""

    name: str
    folder: Path


def _parse_methods(positional: Sequence[Path], options: Sequence[str]) -> list[Method]:
    methods = [Method(p.resolve().name or str(p), p) for p in positional]
    for spec in options:
        name, sep, folder = spec.partition("=")
        if not sep:  # a bare folder, as for the positional form
            methods.append(Method(Path(spec).resolve().name or spec, Path(spec)))
        elif not name or not folder:
            raise WmiError(f"--pred {spec!r}: expected NAME=DIR")
        else:
            methods.append(Method(name, Path(folder)))
    if not methods:
        raise WmiError("no predictions: give PRED_DIR or --pred NAME=DIR")
    seen: set[str] = set()
    for method in methods:
        if method.name in seen:
            raise WmiError(f"method name {method.name!r} is used twice; name them with NAME=DIR")
        seen.add(method.name)
        if not method.folder.is_dir():
            raise WmiError(f"{method.folder}: prediction folder of {method.name!r} is not a folder")
    return methods


def _pred_patterns() -> tuple[str, ...]:
    """A prediction has its ground truth's stem and any image extension (either case)."""
    from wmi.io import IMAGE_EXTENSIONS

    return tuple(f"{{stem}}{ext}" for e in IMAGE_EXTENSIONS for ext in (e, e.upper()))


def _names(paths: Sequence[Path]) -> str:
    shown = ", ".join(p.name for p in paths[:SHOWN])
    return shown + (f" and {len(paths) - SHOWN} more" if len(paths) > SHOWN else "")


def _has(n: int, noun: str) -> str:
    """``1 mask has``, ``2 masks have``."""
    return f"1 {noun} has" if n == 1 else f"{n} {noun}s have"


def _warn(message: str) -> None:
    # Text, not markup: file names such as "x[2].png" must print as they are.
    err_console.print(Text.assemble(("warning: ", "yellow"), message), highlight=False)


@dataclass
class _Job:
    gt: Path
    mask: Path
    preds: list[tuple[str, Path]]


def _pair(gt_dir: Path, mask_dir: Path, methods: Sequence[Method], strict: bool) -> list[_Job]:
    """Ground truths that have a mask and a prediction from every method; others are listed."""
    from wmi.io import DEFAULT_MASK_PATTERNS, list_images, list_masks, pair_by_stem

    gts = list_images(gt_dir)
    masks = list_masks(mask_dir)
    if gt_dir.resolve() == mask_dir.resolve():  # LaMa's layout: cat.png next to cat_mask001.png
        gts = [p for p in gts if "_mask" not in p.stem]
        masks = [p for p in masks if "_mask" in p.stem]
    pairing = pair_by_stem(gts, masks)
    problems: list[str] = []
    if pairing.unmatched_images:
        problems.append(
            f"{_has(len(pairing.unmatched_images), 'ground truth')} no mask in {mask_dir}"
        )
        _warn(f"{problems[-1]}: {_names(pairing.unmatched_images)}")
    if pairing.unmatched_masks:
        problems.append(f"{_has(len(pairing.unmatched_masks), 'mask')} no ground truth in {gt_dir}")
        _warn(f"{problems[-1]}: {_names(pairing.unmatched_masks)}")
    with_mask = [gt for gt, _ in pairing.pairs]
    preds: dict[Path, list[tuple[str, Path]]] = {gt: [] for gt in with_mask}
    for method in methods:
        found = pair_by_stem(with_mask, list_images(method.folder), _pred_patterns())
        for gt, pred in found.pairs:
            preds[gt].append((method.name, pred))
        if found.unmatched_images:
            problems.append(
                f"{_has(len(found.unmatched_images), 'ground truth')} no prediction in "
                f"{method.folder} ({method.name})"
            )
            _warn(f"{problems[-1]}: {_names(found.unmatched_images)}")
        if found.unmatched_masks:
            problems.append(
                f"{_has(len(found.unmatched_masks), 'prediction')} no ground truth with a mask, "
                f"in {method.folder} ({method.name})"
            )
            _warn(f"{problems[-1]}: {_names(found.unmatched_masks)}")
    jobs = [
        _Job(gt, mask, preds[gt]) for gt, mask in pairing.pairs if len(preds[gt]) == len(methods)
    ]
    if not jobs:
        folders = ", ".join(str(m.folder) for m in methods)
        raise WmiError(
            f"nothing to evaluate: no image in {gt_dir} has a mask in {mask_dir} (looked for "
            f"{' or '.join(DEFAULT_MASK_PATTERNS)}) and a prediction named {{stem}}.<image "
            f"extension> in each of {folders}"
        )
    if strict and problems:
        raise WmiError(f"--strict: {'; '.join(problems)}")
    if problems:
        _warn(f"evaluating the {len(jobs)} images that have every counterpart")
    return jobs


def _score_all(jobs: Sequence[_Job], workers: int) -> list[ImageScore]:
    """Score every job, in a thread pool when ``workers`` > 1, with a progress bar on stderr."""

    from wmi.metrics import score_files

    progress = progress_bar(
        transient=True,
        disable=not err_console.is_terminal,
    )
    scores = []
    with progress:
        task = progress.add_task("scoring", total=len(jobs))
        if workers == 1:
            for job in jobs:
                scores.append(score_files(job.gt, job.mask, job.preds))
                progress.advance(task)
            return scores
        with ThreadPoolExecutor(workers) as pool:
            futures = [pool.submit(score_files, j.gt, j.mask, j.preds) for j in jobs]
            try:
                for future in as_completed(futures):
                    scores.append(future.result())
                    progress.advance(task)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    return scores


def _keep_freed_memory() -> None:
    """Stop glibc from giving freed image-sized arrays back to the OS after every image.

    By default it unmaps or trims them and the next image faults the pages in again: for 1,000
    images at 256² that was 3.5 million page faults and a third of the run time
    (docs/benchmarks.md). Not glibc: nothing to do.
    """
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return
    mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: blocks up to 32 MiB come from the heap
    mallopt(-1, 128 << 20)  # M_TRIM_THRESHOLD: keep up to 128 MiB of free heap


def _check_writable(option: str, path: Path) -> None:
    """Refuse a report path that cannot be written, before any scoring is done.

    The path must not be a folder, and its nearest existing ancestor must be a writable
    folder (the missing ones are created when the report is written).
    """
    if path.is_dir():
        raise WmiError(f"{option} {path}: is a folder, expected a file name")
    parent = path.absolute().parent
    while not parent.exists() and not parent.is_symlink():
        parent = parent.parent
    if not parent.is_dir():
        raise WmiError(f"{option} {path}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise WmiError(f"{option} {path}: {parent} is not writable")


def _check_outputs(outputs: dict[str, Path | None], inputs: Sequence[Path]) -> None:
    """Refuse two reports on one path, two on stdout, and a report over an input image.

    Also refuses, through :func:`_check_writable`, a path that cannot be written (a folder,
    a path below a file), so that a long run does not end without its report.
    """
    from wmi.io import IMAGE_EXTENSIONS

    folders = {folder.resolve() for folder in inputs}
    given = {opt: p for opt, p in outputs.items() if p is not None}
    if sum(str(p) == "-" for p in given.values()) > 1:
        raise WmiError("only one of --json/--csv/--markdown/--latex can go to stdout ('-')")
    seen: dict[Path, str] = {}
    for opt, path in given.items():
        if str(path) == "-":
            continue
        resolved = path.resolve()
        if resolved in seen:
            raise WmiError(f"{path}: given to both {seen[resolved]} and {opt}")
        seen[resolved] = opt
        _check_writable(opt, path)
        if resolved.parent in folders and resolved.suffix.lower() in IMAGE_EXTENSIONS:
            raise WmiError(f"{opt} {path}: refusing to write a report over an input image")


def eval_command(
    pred_dirs: list[Path] = typer.Argument(
        None,
        metavar="PRED_DIR",
        help="Folder of predictions, named after the folder in the report.",
        show_default=False,
    ),
    gt: Path = typer.Option(
        ..., "--gt", metavar="DIR", help="Folder of ground-truth images.", show_default=False
    ),
    masks: Path = typer.Option(
        ...,
        "--masks",
        metavar="DIR",
        help="Folder of mask PNGs (white = hole), named {stem}.png or {stem}_mask*.png.",
        show_default=False,
    ),
    pred: list[str] = typer.Option(
        None,
        "--pred",
        metavar="NAME=DIR",
        help="A method's name and its folder of predictions (same stems as the ground truth); "
        "repeat for a side-by-side report.",
        show_default=False,
    ),
    buckets: bool = typer.Option(
        True, "--buckets/--no-buckets", help="Also report per hole-ratio bucket (0-10%, ...)."
    ),
    workers: int = typer.Option(
        0, "--workers", min=0, help="Parallel image workers; 0 = one per CPU core."
    ),
    strict: bool = typer.Option(
        False,
        "--strict",
        help="Fail when a ground truth, mask or prediction has no counterpart "
        "(default: list them and evaluate the complete images).",
    ),
    json_path: Path | None = typer.Option(
        None,
        "--json",
        metavar="FILE",
        help="Write the report as JSON to FILE ('-' = stdout).",
        show_default=False,
    ),
    csv_path: Path | None = typer.Option(
        None,
        "--csv",
        metavar="FILE",
        help="Write the report as CSV to FILE ('-' = stdout).",
        show_default=False,
    ),
    markdown_path: Path | None = typer.Option(
        None,
        "--markdown",
        metavar="FILE",
        help="Write the report as a Markdown table to FILE ('-' = stdout).",
        show_default=False,
    ),
    latex_path: Path | None = typer.Option(
        None,
        "--latex",
        metavar="FILE",
        help="Write the report as a LaTeX booktabs table to FILE ('-' = stdout).",
        show_default=False,
    ),
) -> None:
    """Table I metrics of inpainted images: L1, L2, TV, PSNR over the hole, SSIM.

    Files are paired by stem. Every method is scored on the same images with a hole.

    An unreadable file is named and its image left out for all methods; exit code then 1.
    """
    from wmi import report
    from wmi.io import atomic_path
    from wmi.metrics import summarize

    methods = _parse_methods(pred_dirs or [], pred or [])
    for option, folder in (("--gt", gt), ("--masks", masks)):
        if not folder.is_dir():
            raise WmiError(f"{option} {folder}: not a folder")
    writers = {
        "--json": (json_path, report.to_json),
        "--csv": (csv_path, report.to_csv),
        "--markdown": (markdown_path, report.to_markdown),
        "--latex": (latex_path, report.to_latex),
    }
    _check_outputs(
        {opt: path for opt, (path, _) in writers.items()},
        [gt, masks, *(m.folder for m in methods)],
    )

    jobs = _pair(gt, masks, methods, strict)
    _keep_freed_memory()
    start = time.perf_counter()
    scores = _score_all(jobs, workers or os.cpu_count() or 1)
    seconds = time.perf_counter() - start
    broken = sorted((s for s in scores if s.unreadable), key=lambda s: s.name)
    scored = f"{len(jobs) - len(broken)} of {len(jobs)}" if broken else f"{len(jobs)}"
    err_console.print(
        f"scored {scored} images x {len(methods)} method{'s' * (len(methods) > 1)} in "
        f"{seconds:.1f} s "
        f"({len(jobs) / seconds:.1f} images/s)",
        style="dim",
        highlight=False,
    )
    for score in broken:
        for message in score.unreadable:
            err_console.print(
                Text.assemble(
                    ("error: ", "bold red"),
                    f"{message} ({score.name} left out for every method)",
                )
            )
    empty = sorted(s.name for s in scores if s.skipped and not s.unreadable)
    if empty:
        _warn(
            f"{_has(len(empty), 'mask')} no hole, left out of the hole metrics: "
            f"{_names([Path(n) for n in empty])}"
        )
    if len(empty) + len(broken) == len(scores):
        if not broken:
            raise WmiError(f"{masks}: no mask of the {len(scores)} paired images has a hole")
        raise WmiError(
            f"nothing could be scored: {_has(len(broken), 'paired image')} a file that could "
            "not be read (named above)"
            + (f" and {_has(len(empty), 'mask')} no hole" if empty else "")
        )
    results = summarize(scores, [m.name for m in methods], buckets=buckets)

    to_stdout = any(str(path) == "-" for path, _ in writers.values())
    console = Console(stderr=to_stdout, highlight=False)
    if not console.is_terminal:  # a file or pipe: the full table, however many methods
        console = Console(
            stderr=to_stdout, highlight=False, width=max(80, report.table_width(results))
        )
    report.render(results, console)
    for path, write in writers.values():
        if path is None:
            continue
        text = write(results)
        if str(path) == "-":
            typer.echo(text, nl=False)
        else:
            with atomic_path(path) as tmp:
                tmp.write_text(text, encoding="utf-8")
    if broken:
        _warn(
            f"{_has(len(broken), 'image')} a file that could not be read (named above) and "
            f"{'is' if len(broken) == 1 else 'are'} not in the report"
        )
        raise typer.Exit(1)
