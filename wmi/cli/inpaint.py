"""``wmi inpaint folder`` and ``wmi inpaint image``: fill the holes of photos, nothing lost.

The work is :func:`wmi.inpaint.folder.inpaint_folder` and
:func:`wmi.inpaint.strategies.inpaint_image`, with the inpainter of
:func:`wmi.inpaint.load.load_batch_inpainter`; this module parses the options and prints.
Importing it does not import torch, and neither does a run with a classical ``--method``.
"""

import contextlib
import functools
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from wmi.cli.common import (
    App,
    choice,
    err_console,
    interrupted_exit,
    notify,
    progress_bar,
    shard_option,
)
from wmi.errors import WmiError
from wmi.kinds import (
    CLASSICAL_METHODS,
    DEFAULT_MAX_PIXELS,
    DEVICES,
    MASK_THRESHOLD,
    MAX_SIDE,
    MAX_WORKERS,
    PNG_LEVEL,
    Blend,
    OutputFormat,
    Strategy,
)

if TYPE_CHECKING:
    from wmi.inpaint.folder import FolderOptions, InpaintFolderResult
    from wmi.inpaint.strategies import Inpainter

app = App(
    help="Fill the holes of images with a trained checkpoint or a classical method "
    "(OpenCV Telea / Navier-Stokes, scikit-image biharmonic). Mask files: white (> 127) = hole."
)


#: What inpaints when neither --checkpoint nor --method is given: like IOPaint's and LaMa's
#: tools, a command with only images and masks works, and wmi ships no trained weights, so a
#: classical method (the fast, robust one of OpenCV) is the default rather than a network.
DEFAULT_METHOD = "telea"
CHECKPOINT_HELP = (
    "Trained wmi checkpoint (.pt), run folder (its best.pt) or `wmi export` folder to inpaint "
    "with, instead of --method."
)
METHOD_HELP = (
    f"Classical method, no checkpoint needed; without --checkpoint and --method: {DEFAULT_METHOD}."
)
DEVICE_HELP = (
    "Device for --checkpoint (the checkpoint's AMP setting is used on cuda; cpu and mps run "
    "float32):"
)
DILATE_HELP = "Grow every hole by this many pixels (elliptical kernel) before inpainting."
MAX_SIZE_HELP = "Longest side inpainted in one piece by --strategy resize and crop."
STRATEGY_HELP = (
    "Images larger than --max-size: 'resize' inpaints a shrunk copy and pastes the upscaled "
    "hole back, 'crop' inpaints boxes around the holes, 'original' runs at full size."
)
RADIUS_HELP = "Neighbourhood radius in pixels for --method telea and ns."
THRESHOLD_HELP = "A mask pixel whose grey level is above this (0-254) is hole."
BLEND_HELP = (
    "'hard': the fill replaces every hole pixel. 'soft': a hole pixel keeps 1 - grey/255 of the "
    "input (a feathered mask gives a feathered edge); a weighted-conv checkpoint also gets the "
    "grey level as real-valued validity. See docs/inpainting.md."
)
MAX_PIXELS_HELP = (
    "Refuse (per file) an image or mask with more pixels than this (decompression bombs, "
    "images that would swap); 0: no limit."
)
QUALITY_HELP = "JPEG/WebP quality of the results, 1-100 (PNG is always lossless)."


def _method(checkpoint: Path | None, method: str | None) -> str | None:
    """The classical method to use: ``method``, :data:`DEFAULT_METHOD` when neither it nor a
    checkpoint is given, None for a checkpoint."""
    if checkpoint is not None and method is not None:
        raise WmiError("give --checkpoint CKPT or --method, not both")
    return DEFAULT_METHOD if checkpoint is None and method is None else method


def _inpainter(
    checkpoint: Path | None,
    method: str | None,
    device: str,
    batch_size: int,
    radius: int,
) -> "tuple[Inpainter, str]":
    """Build the inpainter the options ask for (``method`` from :func:`_method`); returns it
    and a short description."""
    from wmi.inpaint.load import load_batch_inpainter

    if method is not None:
        return load_batch_inpainter(method, radius=radius), method
    assert checkpoint is not None
    inpainter = load_batch_inpainter(checkpoint, device, batch_size=batch_size)
    where = inpainter.device.type  # type: ignore[attr-defined]
    return inpainter, f"{checkpoint.name} on {where} (amp {inpainter.amp})"  # type: ignore[attr-defined]


def _record(
    checkpoint: Path | None, method: str | None, device: str, **settings: object
) -> dict[str, object]:
    """What makes the results of OUT_DIR: the method, or the checkpoint's name and digest.

    For a checkpoint, ``device`` is resolved first: an unavailable one fails before anything.
    """
    from wmi.inpaint.load import source_record

    if checkpoint is not None:
        from wmi.device import resolve_device

        resolve_device(device)
    return {**source_record(method if checkpoint is None else checkpoint), **settings}


def _patterns(values: Sequence[str] | None) -> tuple[str, ...]:
    from wmi.io import DEFAULT_MASK_PATTERNS

    patterns = tuple(p.strip() for v in values or () for p in v.split(",") if p.strip())
    if not patterns:
        return DEFAULT_MASK_PATTERNS
    for pattern in patterns:
        try:
            valid = "{stem}" in pattern and bool(pattern.format(stem=""))
        except (KeyError, IndexError, ValueError):
            valid = False
        if not valid:
            raise WmiError(
                f"--mask-pattern {pattern!r}: must contain {{stem}} and no other braces, "
                "e.g. '{stem}_mask*.png'"
            )
    return patterns


def _print_summary(summary: "InpaintFolderResult", as_json: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    stdout = Console(highlight=False, soft_wrap=True)
    data = summary.as_dict()
    if as_json:
        stdout.print_json(json.dumps(data))
        return
    table = Table(title="wmi inpaint folder", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    for label, count in (
        ("processed", summary.processed),
        ("no hole (written unchanged)", len(summary.no_hole)),
        ("skipped (output exists)", summary.skipped_existing),
        ("redone (earlier result damaged)", len(summary.redone)),
        ("failed", len(summary.failed)),
        ("unmatched images", len(summary.unmatched_images)),
        ("unmatched masks", len(summary.unmatched_masks)),
        ("masks resized (nearest neighbour)", summary.masks_resized),
    ):
        table.add_row(label, str(count))
    stdout.print(table)
    stdout.print(
        f"{summary.processed} images in {data['seconds']:.2f} s "
        f"({data['images_per_second']:.2f} images/s)"
    )


FOLDER_HELP = (
    "Inpaint every image of IMAGE_DIR that has a mask in MASK, results into OUT_DIR.\n\n"
    "MASK is a folder (images and masks pair by file stem: 'photo.jpg' with 'photo.png' or "
    "'photo_mask001.png'; an image with several masks gets one result per mask, named after "
    "the mask) or one mask file for every image. A mask of another size is resized (nearest "
    "neighbour) to its image. Pixels outside the hole of a PNG result equal the input exactly; "
    "EXIF, ICC profile and DPI are kept. OUT_DIR records the method: a run with another one is "
    "refused unless --overwrite. Existing results that decode are skipped unless --overwrite; a "
    "corrupt or too large file is reported and skipped, and the exit code is then 1."
)


@app.command("folder", help=FOLDER_HELP)
def folder(
    image_dir: Path = typer.Argument(..., metavar="IMAGE_DIR", help="Folder of images to inpaint."),
    mask: Path = typer.Argument(
        ...,
        metavar="MASK",
        help="Folder of mask PNGs (white = hole; may be IMAGE_DIR itself, LaMa's layout), or one "
        "mask file for every image.",
    ),
    out_dir: Path = typer.Argument(
        ...,
        metavar="OUT_DIR",
        help="Folder for the results (created); must not be or lie inside the inputs.",
    ),
    checkpoint: Path | None = typer.Option(None, "--checkpoint", help=CHECKPOINT_HELP),
    method: str | None = choice(CLASSICAL_METHODS, None, "--method", help=METHOD_HELP),
    device: str = choice(DEVICES, "auto", "--device", help=DEVICE_HELP),
    batch_size: int = typer.Option(
        8, "--batch-size", min=1, max=1024, help="Images per forward pass of --checkpoint."
    ),
    mask_pattern: list[str] | None = typer.Option(
        None,
        "--mask-pattern",
        help="Mask file name for an image's {stem}; shell wildcards allowed; repeat the option or "
        "separate by commas; tried in order. Default: '{stem}.png' then '{stem}_mask*.png'.",
    ),
    threshold: int = typer.Option(
        MASK_THRESHOLD, "--threshold", min=0, max=254, help=THRESHOLD_HELP
    ),
    blend: Blend = typer.Option(Blend.hard, "--blend", help=BLEND_HELP),
    dilate: int = typer.Option(0, "--dilate", min=0, help=DILATE_HELP),
    max_size: int = typer.Option(1024, "--max-size", min=16, max=MAX_SIDE, help=MAX_SIZE_HELP),
    strategy: Strategy = typer.Option(Strategy.resize, "--strategy", help=STRATEGY_HELP),
    fmt: OutputFormat = typer.Option(
        OutputFormat.png,
        "--format",
        help="Output format: png is lossless (known pixels kept exactly), jpg and webp are "
        "lossy (--quality), same keeps each input's extension.",
    ),
    quality: int = typer.Option(95, "--quality", min=1, max=100, help=QUALITY_HELP),
    max_pixels: int = typer.Option(DEFAULT_MAX_PIXELS, "--max-pixels", min=0, help=MAX_PIXELS_HELP),
    workers: int = typer.Option(
        0,
        "--workers",
        min=0,
        max=MAX_WORKERS,
        help="Threads that read, inpaint and write; 0: up to 4 (cores).",
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace existing outputs (and another method's OUT_DIR)."
    ),
    strict: bool = typer.Option(
        False, "--strict", help="Fail before inpainting if any image or mask is unmatched."
    ),
    radius: int = typer.Option(3, "--radius", min=1, max=1000, help=RADIUS_HELP),
    shard_text: str | None = shard_option("images (with all their masks)"),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Inpaint every image of IMAGE_DIR that has a mask in MASK, results into OUT_DIR."""
    from wmi.inpaint.folder import FolderOptions, output_settings
    from wmi.procs import Shard

    shard = Shard.parse(shard_text)
    method = _method(checkpoint, method)
    options = FolderOptions(
        threshold, blend, False, dilate, strategy, max_size, fmt, quality, max_pixels, workers
    )
    options.check()
    patterns = _patterns(mask_pattern)
    settings = dict(radius=radius, threshold=threshold, blend=blend.value, dilate=dilate)
    settings.update(strategy=strategy.value, max_size=max_size, **output_settings(options))
    record = _record(checkpoint, method, device, **settings)

    inpainter = functools.partial(_inpainter, checkpoint, method, device, batch_size, radius)
    try:
        summary = _run_folder(
            (image_dir, mask, out_dir),
            inpainter,
            blend,
            patterns=patterns,
            options=options,
            overwrite=overwrite,
            strict=strict,
            radius=radius,
            record=record,
            shard=shard,
        )
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM (wmi.procs.stop_signals)
        kept = f"the finished results in {out_dir} are kept: run the same command to finish"
        raise interrupted_exit(exc, kept) from None
    _print_summary(summary, as_json)
    if summary.failed:
        raise typer.Exit(1)


def _run_folder(
    folders: tuple[Path, Path, Path],
    build: "Callable[[], tuple[Inpainter, str]]",
    blend: Blend,
    **kwargs: Any,
) -> "InpaintFolderResult":
    """:func:`wmi.inpaint.folder.inpaint_folder` behind a progress bar that starts with the work.

    ``build`` makes the inpainter once the folders are paired; with ``--blend soft`` a
    weighted-conv network then gets the grey levels as validity.
    """
    from wmi.inpaint.folder import inpaint_folder

    description: list[str] = []
    options = kwargs["options"]

    def make() -> "Inpainter":
        inpainter, text = build()
        options.real_validity = blend is Blend.soft and inpainter.takes_real_validity
        if options.real_validity:
            notify("info", "soft masks: grey levels go to the weighted-conv network as validity")
        if getattr(inpainter, "train_size", None):
            _warn_scale(inpainter, _longest_side(folders[0], options.max_pixels), options)
        description.append(text)
        return inpainter

    with contextlib.ExitStack() as stack:
        bar = progress_bar()
        task = []

        def progress(done: int, total: int) -> None:
            if not task:  # the first call: the folders are paired, the inpainter built
                stack.enter_context(bar)
                task.append(bar.add_task(f"inpainting ({description[0]})", total=total))
            bar.update(task[0], completed=done, total=total)

        return inpaint_folder(
            *folders,
            make,
            mask_patterns=kwargs.pop("patterns"),
            progress=progress,
            notify=notify,
            **kwargs,
        )


def _longest_side(image_dir: Path, max_pixels: int) -> int:
    """The longest side among IMAGE_DIR's images, from their headers (unreadable ones: 0)."""
    from wmi.io import list_images, oriented_size

    longest = 0
    for path in list_images(image_dir):
        try:
            longest = max(longest, *oriented_size(path, max_pixels))
        except WmiError:
            continue  # the run names it when it gets there
    return longest


def _warn_scale(inpainter: "Inpainter", longest: int, options: "FolderOptions") -> None:
    """Warn when a network will see images far larger or smaller than it was trained on."""
    from wmi.inpaint.load import scale_warning

    strategy = Strategy(options.strategy)
    if strategy is Strategy.original:
        side, how = longest, "--strategy original"
    else:
        side = min(longest, options.max_size)
        how = f"--strategy {strategy.value} --max-size {options.max_size}"
    warning = scale_warning(inpainter, side, how)
    if warning:
        notify("warning", warning)


@app.command("image")
def image(
    image_path: Path = typer.Argument(..., metavar="IMAGE", help="Image to inpaint."),
    mask_path: Path = typer.Argument(
        ..., metavar="MASK", help="Mask PNG (white = hole); resized to the image if needed."
    ),
    output: Path = typer.Argument(
        ..., metavar="OUTPUT", help="Result file; its extension picks the format (.png lossless)."
    ),
    checkpoint: Path | None = typer.Option(None, "--checkpoint", help=CHECKPOINT_HELP),
    method: str | None = choice(CLASSICAL_METHODS, None, "--method", help=METHOD_HELP),
    device: str = choice(DEVICES, "auto", "--device", help=DEVICE_HELP),
    threshold: int = typer.Option(
        MASK_THRESHOLD, "--threshold", min=0, max=254, help=THRESHOLD_HELP
    ),
    blend: Blend = typer.Option(Blend.hard, "--blend", help=BLEND_HELP),
    dilate: int = typer.Option(0, "--dilate", min=0, help=DILATE_HELP),
    max_size: int = typer.Option(1024, "--max-size", min=16, max=MAX_SIDE, help=MAX_SIZE_HELP),
    strategy: Strategy = typer.Option(Strategy.resize, "--strategy", help=STRATEGY_HELP),
    quality: int = typer.Option(95, "--quality", min=1, max=100, help=QUALITY_HELP),
    max_pixels: int = typer.Option(DEFAULT_MAX_PIXELS, "--max-pixels", min=0, help=MAX_PIXELS_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUTPUT if it exists."),
    radius: int = typer.Option(3, "--radius", min=1, max=1000, help=RADIUS_HELP),
) -> None:
    """Inpaint one IMAGE with its MASK and write OUTPUT (never over IMAGE or MASK)."""
    from rich.progress import SpinnerColumn, TimeElapsedColumn

    from wmi.inpaint.folder import FolderOptions, read_pair
    from wmi.inpaint.strategies import inpaint_image
    from wmi.io import IMAGE_EXTENSIONS, write_image

    method = _method(checkpoint, method)
    options = FolderOptions(
        threshold, blend, False, dilate, strategy, max_size, "png", quality, max_pixels
    )
    options.check()
    for given in (image_path, mask_path):
        if output.resolve() == given.resolve():
            raise WmiError(f"{output}: OUTPUT must not be an input file")
    if output.suffix.lower() not in IMAGE_EXTENSIONS:
        raise WmiError(f"{output}: unsupported output format {output.suffix!r}")
    if output.exists() and not overwrite:
        raise WmiError(f"{output}: exists; pass --overwrite to replace it")
    inpainter, _ = _inpainter(checkpoint, method, device, 1, radius)
    loaded = read_pair(image_path, mask_path, options)
    _warn_scale(inpainter, max(loaded.image.shape[:2]), options)
    if not loaded.hole.any():
        notify("warning", f"{mask_path}: no hole (no pixel above {threshold}); written unchanged")
    for note, seen in (
        (f"{mask_path} resized to the image (nearest neighbour)", loaded.resized),
        (f"dropped the alpha channel of {image_path}", loaded.info.had_alpha),
    ):
        if seen:
            notify("info", note)
    soft = blend is Blend.soft
    h, w = loaded.image.shape[:2]
    # a big photo with a network takes minutes on a CPU: say what runs, and for how long
    with progress_bar(SpinnerColumn(), "{task.description}", TimeElapsedColumn(),
                      transient=True, disable=not err_console.is_terminal) as bar:  # fmt: skip
        bar.add_task(f"inpainting {image_path.name} ({w}x{h})", total=None)
        result = inpaint_image(
            loaded.image,
            loaded.hole,
            inpainter,
            strategy,
            max_size,
            loaded.levels,
            blend,
            soft and inpainter.takes_real_validity,
        )
    for note in write_image(output, result, quality, PNG_LEVEL, loaded.info):
        notify("warning", note)
    err_console.print(f"wrote {output} ({loaded.hole.mean():.1%} of the pixels inpainted)")
