"""``wmi eval``: the paper's Table I metrics for one or more folders of predictions.

The work is :func:`wmi.eval.metrics.score_folders`; this module parses the options, prints its
messages and the table, and writes the reports.
"""

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from wmi.cli.common import (
    choice,
    err_console,
    make_console,
    notify,
    progress_bar,
    shard_option,
)
from wmi.errors import WmiError, printable
from wmi.kinds import (
    DEFAULT_RESAMPLES,
    DEFAULT_SSIM_WINDOW,
    DEVICES,
    LPIPS_NETS,
    MAX_WORKERS,
    SSIM_WINDOWS,
)

if TYPE_CHECKING:
    from wmi.eval.metrics import Results
    from wmi.eval.perceptual import PerceptualNets
    from wmi.eval.scoring import FolderScores

#: The options of ``wmi eval``, defined once here so that the command stays short.
PRED_DIRS = typer.Argument(
    None,
    metavar="PRED_DIR",
    help="Folder of predictions, named after the folder in the report (with --merge: the "
    "part files).",
    show_default=False,
)
GT_OPTION = typer.Option(
    None,
    "--gt",
    metavar="DIR",
    help="Folder of ground-truth images.",
    show_default="required unless --merge",
)
MASKS_OPTION = typer.Option(
    None,
    "--masks",
    metavar="DIR",
    help="Folder of mask PNGs (white = hole), named {stem}.png or {stem}_mask*.png.",
    show_default="required unless --merge",
)
SCORES_OUT_OPTION = typer.Option(
    None,
    "--scores-out",
    metavar="PART.json",
    help="Also write this run's per-image scores (and FID features, PART.fid.npz beside it) "
    "as a part for --merge; with --shard, the shard's part.",
    show_default=False,
)
MERGE_OPTION = typer.Option(
    False,
    "--merge",
    help="The arguments are the parts (PART.json) of the N shards of one evaluation, "
    "written by --scores-out: print and write the Table I of the whole evaluation, as one "
    "unsharded run does. Parts of other ground truths, masks, SSIM windows, networks or "
    "predictions are refused.",
)
PRED_OPTION = typer.Option(
    None,
    "--pred",
    metavar="NAME=DIR",
    help="A method's name and its folder of predictions (same stems as the ground truth), or "
    "several folders separated by commas, one per run (training seed): the report shows the "
    "mean over runs ± its 95% interval; repeat for a side-by-side report.",
    show_default=False,
)
BASELINE_OPTION = typer.Option(
    None,
    "--baseline",
    metavar="NAME",
    help="The method every other is compared with, image by image (paired bootstrap); "
    "significantly better and worse cells are marked.  [default: the first method]",
    show_default=False,
)
BOOTSTRAP_OPTION = typer.Option(
    DEFAULT_RESAMPLES,
    "--bootstrap",
    min=0,
    metavar="N",
    help="Bootstrap resamples of each paired comparison; 0 = no comparisons.",
)
SEED_OPTION = typer.Option(0, "--seed", min=0, help="Seed of the bootstrap.")
BUCKETS_OPTION = typer.Option(
    True, "--buckets/--no-buckets", help="Also report per hole-ratio bucket (0-10%, ...)."
)
WORKERS_OPTION = typer.Option(
    0,
    "--workers",
    min=0,
    max=MAX_WORKERS,
    help="Parallel image workers; 0 = one per CPU core.",
)
STRICT_OPTION = typer.Option(
    False,
    "--strict",
    help="Fail when a ground truth, mask or prediction has no counterpart "
    "(default: list them and evaluate the complete images).",
)
SSIM_WINDOW_OPTION = choice(
    SSIM_WINDOWS, DEFAULT_SSIM_WINDOW, "--ssim-window", help="SSIM's window."
)
PERCEPTUAL_OPTION = typer.Option(
    True,
    "--perceptual/--no-perceptual",
    help="Also LPIPS and FID (pretrained networks; left out with one line when their weight "
    "files are missing).",
)
LPIPS_NET_OPTION = choice(LPIPS_NETS, "alex", "--lpips-net", help="LPIPS backbone.")
WEIGHTS_DIR_OPTION = typer.Option(
    None,
    "--weights-dir",
    metavar="DIR",
    help="Folder of the weight files (alexnet-owt-7be5be79.pth, vgg16-397923af.pth, "
    "pt_inception-2015-12-05-6726825d.pth).  [default: torch.hub.get_dir()/checkpoints]",
    show_default=False,
)
FEATURE_CACHE_OPTION = typer.Option(
    None,
    "--feature-cache",
    metavar="DIR",
    help="Keep the ground truths' FID features in DIR (keyed by each file's SHA-256 and the "
    "network's weights), so later evaluations against the same ground truth skip them.  "
    "[default: in memory for this run only]",
    show_default=False,
)
DOWNLOAD_OPTION = typer.Option(
    False, "--download-weights", help="Download missing weight files (needs a network)."
)
DEVICE_OPTION = choice(DEVICES, "auto", "--device", help="Where LPIPS and FID run.")
HTML_OPTION = typer.Option(
    None,
    "--html",
    metavar="FILE",
    help="Write a self-contained HTML report (Table I, charts, image strips, per-image "
    "table) to FILE.",
    show_default=False,
)


def _networks(
    lpips_net: str, weights_dir: Path | None, download: bool, device: str, cache: Path | None
) -> "PerceptualNets | None":
    """The LPIPS and FID networks whose weights are there; one line for those left out.

    torch is imported only when some network can run.
    """
    from wmi.eval.perceptual import PerceptualNets, perceptual_availability

    available, notices = perceptual_availability(
        [f"lpips-{lpips_net}", "fid"], weights_dir, download
    )
    if notices:
        notify("info", "; ".join(notices))
    if not available:
        return None
    from wmi.device import resolve_device

    nets, _ = PerceptualNets.load(
        lpips_net if f"lpips-{lpips_net}" in available else None,
        "fid" in available,
        weights_dir,
        device=str(resolve_device(device)),
        cache_dir=cache,
    )
    return nets


def _parse_predictions(positional: Sequence[Path], options: Sequence[str]) -> dict[str, list[Path]]:
    """``PRED_DIR`` (named after the folder) and ``--pred NAME=DIR[,DIR...]``: name -> runs."""
    pairs = [(p.resolve().name or str(p), [p]) for p in positional]
    for spec in options:
        name, sep, folders = spec.partition("=")
        if not sep:  # a bare folder, as for the positional form
            pairs.append((Path(spec).resolve().name or spec, [Path(spec)]))
        elif not name or not folders:
            raise WmiError(f"--pred {spec!r}: expected NAME=DIR or NAME=DIR,DIR,...")
        elif Path(folders).is_dir():  # a folder whose name holds a comma
            pairs.append((name, [Path(folders)]))
        else:
            runs = folders.split(",")
            if not all(runs):
                raise WmiError(f"--pred {spec!r}: an empty folder name between commas")
            pairs.append((name, [Path(f) for f in runs]))
    if not pairs:
        raise WmiError("no predictions: give PRED_DIR or --pred NAME=DIR")
    preds: dict[str, list[Path]] = {}
    for name, runs in pairs:
        if name in preds:
            raise WmiError(f"method name {name!r} is used twice; name them with NAME=DIR")
        preds[name] = runs
        for folder in runs:
            if not folder.is_dir():
                raise WmiError(f"{folder}: prediction folder of {name!r} is not a folder")
        if len({f.resolve() for f in runs}) < len(runs):
            raise WmiError(f"--pred {name}: the same folder is given twice as a run")
    return preds


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
    if given.get("--html") is not None and str(given["--html"]) == "-":
        raise WmiError("--html -: the HTML report is a file; give it a name")
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


def _report_option(flag: str, what: str) -> Path | None:
    return typer.Option(
        None,
        flag,
        metavar="FILE",
        help=f"Write the report {what} to FILE ('-' = stdout).",
        show_default=False,
    )


def _print_and_write(results: "Results", writers: dict[str, tuple[Path | None, Any]]) -> None:
    """The table on the terminal (stderr when a report goes to stdout), then each report."""
    from wmi.eval import report
    from wmi.io import atomic_path

    to_stdout = any(str(path) == "-" for path, _ in writers.values())
    console = make_console(stderr=to_stdout, highlight=False)
    if not console.is_terminal:  # a file or pipe: the full table, however many methods
        console = make_console(
            stderr=to_stdout, highlight=False, width=max(80, report.table_width(results))
        )
    report.render(results, console)
    for path, write in writers.values():
        if path is None:
            continue
        text = write(results)
        if str(path) == "-":
            typer.echo(printable(text, controls=False), nl=False)
        else:
            with atomic_path(path) as tmp:
                tmp.write_text(printable(text, controls=False), encoding="utf-8")


def _writers(*paths: Path | None) -> dict[str, tuple[Path | None, Any]]:
    """``option -> (path or None, writer)`` for --json, --csv, --markdown, --latex."""
    from wmi.eval import report

    writers = (report.to_json, report.to_csv, report.to_markdown, report.to_latex)
    options = ("--json", "--csv", "--markdown", "--latex")
    return {opt: (path, w) for opt, path, w in zip(options, paths, writers, strict=True)}


def eval_command(
    pred_dirs: list[Path] = PRED_DIRS,
    gt: Path = GT_OPTION,
    masks: Path = MASKS_OPTION,
    pred: list[str] = PRED_OPTION,
    buckets: bool = BUCKETS_OPTION,
    workers: int = WORKERS_OPTION,
    strict: bool = STRICT_OPTION,
    ssim_window: str = SSIM_WINDOW_OPTION,
    perceptual: bool = PERCEPTUAL_OPTION,
    lpips_net: str = LPIPS_NET_OPTION,
    weights_dir: Path | None = WEIGHTS_DIR_OPTION,
    download_weights: bool = DOWNLOAD_OPTION,
    feature_cache: Path | None = FEATURE_CACHE_OPTION,
    device: str = DEVICE_OPTION,
    json_path: Path | None = _report_option("--json", "as JSON"),
    csv_path: Path | None = _report_option("--csv", "as CSV"),
    markdown_path: Path | None = _report_option("--markdown", "as a Markdown table"),
    latex_path: Path | None = _report_option("--latex", "as a LaTeX booktabs table"),
    html_path: Path | None = HTML_OPTION,
    shard_text: str | None = shard_option("ground-truth images (with all their masks)"),
    scores_out: Path | None = SCORES_OUT_OPTION,
    merge: bool = MERGE_OPTION,
    baseline: str | None = BASELINE_OPTION,
    bootstrap: int = BOOTSTRAP_OPTION,
    seed: int = SEED_OPTION,
) -> None:
    """Table I metrics of inpainted images: L1, L2, TV, hole PSNR, SSIM; LPIPS and FID.

    Files are paired by stem; LaMa's layout (x.png beside x_mask000.png, x_mask001.png, and a
    prediction per mask named after it) gives one row per mask. Every method is scored on the
    same images with a hole. A mask of another size is resized (nearest neighbour). An
    unreadable file or a prediction of the wrong size is named and its image left out for all
    methods; exit code then 1. Several runs per method (--pred NAME=DIR,DIR,...) give the
    mean over runs ± the half-width of its 95% Student-t interval; every method is compared
    with --baseline image by image (95% paired bootstrap interval of the mean difference).

    On a cluster: --shard K/N --scores-out PART.json on each machine, then --merge PART...
    (docs/scale.md).
    """
    from wmi.eval.compare import check_baseline
    from wmi.eval.scoring import score_folders
    from wmi.procs import Shard

    writers = _writers(json_path, csv_path, markdown_path, latex_path)
    outputs = {opt: path for opt, (path, _) in writers.items()}
    if merge:
        _merge(
            pred_dirs or [],
            (gt, masks, pred, shard_text, scores_out),
            writers,
            html_path,
            (baseline, bootstrap, seed),
        )
        return
    shard = Shard.parse(shard_text)
    if gt is None or masks is None:
        raise WmiError("--gt and --masks are required (unless --merge)")
    if not shard.whole and scores_out is None:
        raise WmiError("--shard: give --scores-out PART.json, the part that --merge reads")
    if scores_out is not None and str(scores_out) == "-":
        raise WmiError("--scores-out -: a part is a file (with its FID features beside it)")
    preds = _parse_predictions(pred_dirs or [], pred or [])
    for option, folder in (("--gt", gt), ("--masks", masks)):
        if not folder.is_dir():
            raise WmiError(f"{option} {folder}: not a folder")
    folders = [f for runs in preds.values() for f in runs]
    _check_outputs(
        {**outputs, "--html": html_path, "--scores-out": scores_out}, [gt, masks, *folders]
    )
    check_baseline(preds, baseline)  # before the networks load
    if weights_dir is not None and not weights_dir.is_dir():
        raise WmiError(f"--weights-dir {weights_dir}: not a folder")
    if feature_cache is not None and feature_cache.exists() and not feature_cache.is_dir():
        raise WmiError(f"--feature-cache {feature_cache}: not a folder")
    nets = (
        _networks(lpips_net, weights_dir, download_weights, device, feature_cache)
        if perceptual
        else None
    )

    with progress_bar(transient=True, disable=not err_console.is_terminal) as bar:
        task = bar.add_task("scoring" if shard.whole else f"scoring shard {shard}", total=None)
        scored = score_folders(
            gt,
            masks,
            preds,
            buckets=buckets,
            workers=workers,
            strict=strict,
            ssim_window=ssim_window,
            perceptual=nets,
            baseline=baseline,
            resamples=bootstrap,
            seed=seed,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            notify=notify,
            shard=shard,
        )
    if scores_out is not None:
        from wmi.eval.parts import identity, write_part

        networks = _network_names(nets)
        ident = identity(gt, masks, preds, ssim_window, networks, buckets)
        write_part(scores_out, scored, shard, ident)
        notify("info", f"wrote the scores of shard {shard} to {scores_out}")
    if not scored.results["methods"]:
        notify("info", f"shard {shard} has no image with a hole to score; its part is written")
        return
    _finish(scored, writers, html_path)


def _network_names(nets: "PerceptualNets | None") -> list[str]:
    """The perceptual metrics a run computed, with their networks: ``["lpips-alex", "fid"]``."""
    if nets is None:
        return []
    return [f"lpips-{nets.lpips_net}" if m == "lpips" else m for m in nets.metrics]


def _merge(
    parts: Sequence[Path],
    given: tuple[Any, ...],
    writers: dict[str, tuple[Path | None, Any]],
    html_path: Path | None,
    comparison: tuple[str | None, int, int],
) -> None:
    """``wmi eval --merge PART...``: the Table I of the whole evaluation from its parts.

    ``comparison``: ``--baseline``, ``--bootstrap`` and ``--seed``, applied to the merged
    scores as an unsharded run applies them."""
    from wmi.eval.parts import merge_parts

    if any(value for value in given):
        raise WmiError("--merge takes the part files only: the parts name their folders")
    outputs = {opt: path for opt, (path, _) in writers.items()}
    _check_outputs({**outputs, "--html": html_path}, [])
    inputs = {part.resolve() for part in parts}
    for option, path in {**outputs, "--html": html_path}.items():
        if path is not None and str(path) != "-" and path.resolve() in inputs:
            raise WmiError(f"{option} {path}: refusing to write a report over a part file")
    baseline, resamples, seed = comparison
    scored = merge_parts(parts, baseline=baseline, resamples=resamples, seed=seed)
    notify("info", f"merged {len(parts)} parts: {len(scored.scores)} images")
    _finish(scored, writers, html_path)


def _finish(
    scored: "FolderScores", writers: dict[str, tuple[Path | None, Any]], html_path: Path | None
) -> None:
    """The table and the reports; exit code 1 when an image was left out."""
    _print_and_write(scored.results, writers)
    if html_path is not None:
        from wmi.eval.html_report import write_eval_report

        write_eval_report(html_path, scored)
    if scored.unreadable:
        n = len(scored.unreadable)
        has, verb = ("1 image has", "is") if n == 1 else (f"{n} images have", "are")
        notify(
            "warning",
            f"{has} a file that could not be used (named above) and {verb} not in the report",
        )
        raise typer.Exit(1)
