"""``wmi inpaint folder`` and ``wmi inpaint image``: fill the holes of photos, nothing lost.

The work is :func:`wmi.inference.inpaint_folder` and :func:`wmi.inference.inpaint_image`; this
module parses the options, builds the inpainter and prints. Importing it does not import torch.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from wmi.cli import App, choice, err_console, notify, progress_bar
from wmi.errors import WmiError
from wmi.inference import PNG_LEVEL, OutputFormat, Strategy
from wmi.kinds import CLASSICAL_METHODS, DEVICES

if TYPE_CHECKING:
    from wmi.inference import Inpainter, InpaintFolderResult

app = App(
    help="Fill the holes of images with a trained checkpoint or a classical method "
    "(OpenCV Telea / Navier-Stokes, scikit-image biharmonic). Mask files: white (> 127) = hole."
)


CHECKPOINT_HELP = (
    "Trained wmi checkpoint (.pt) or `wmi export` folder to inpaint with. Give this or --method."
)
METHOD_HELP = "Classical method, no checkpoint needed. Give this or --checkpoint."
DEVICE_HELP = (
    "Device for --checkpoint: auto picks cuda when available. The checkpoint's AMP setting is "
    "used on cuda; the CPU runs float32."
)
DILATE_HELP = "Grow every hole by this many pixels (elliptical kernel) before inpainting."
MAX_SIZE_HELP = "Longest side inpainted in one piece by --strategy resize and crop."
STRATEGY_HELP = (
    "Images larger than --max-size: 'resize' inpaints a shrunk copy and pastes the upscaled "
    "hole back, 'crop' inpaints boxes around the holes, 'original' runs at full size."
)
RADIUS_HELP = "Neighbourhood radius in pixels for --method telea and ns."


def _check_one_of(checkpoint: Path | None, method: str | None) -> None:
    if (checkpoint is None) == (method is None):
        methods = "|".join(CLASSICAL_METHODS)
        raise WmiError(f"give exactly one of --checkpoint CKPT or --method {methods}")


def _inpainter(
    checkpoint: Path | None,
    method: str | None,
    device: str,
    batch_size: int,
    radius: int,
) -> tuple[Inpainter, str]:
    """Build the inpainter the options ask for; returns it and a short description."""
    from wmi.inference import ClassicalInpainter

    _check_one_of(checkpoint, method)
    if method is not None:
        return ClassicalInpainter(method, radius), method
    assert checkpoint is not None
    from wmi.device import resolve_device

    dev = resolve_device(device)
    if not checkpoint.exists():
        raise WmiError(f"{checkpoint}: no such checkpoint file or export folder")
    try:
        from wmi.checkpoint import load_model
    except ModuleNotFoundError as exc:
        if exc.name != "wmi.checkpoint":
            raise
        raise WmiError("--checkpoint: this wmi installation has no wmi.checkpoint") from None
    from wmi.inference import ModelInpainter

    model, info = load_model(checkpoint, device=dev)
    amp = info.amp if dev.type == "cuda" else "off"
    inpainter = ModelInpainter(
        model, multiple=2 ** int(model.layers), amp=amp, device=dev, batch_size=batch_size
    )
    return inpainter, f"{checkpoint.name} on {dev.type} (amp {amp})"


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


def _print_summary(summary: InpaintFolderResult, as_json: bool) -> None:
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
    table.add_row("processed", str(summary.processed))
    table.add_row("skipped (output exists)", str(summary.skipped_existing))
    table.add_row("failed", str(len(summary.failed)))
    table.add_row("unmatched images", str(len(summary.unmatched_images)))
    table.add_row("unmatched masks", str(len(summary.unmatched_masks)))
    stdout.print(table)
    stdout.print(
        f"{summary.processed} images in {data['seconds']:.2f} s "
        f"({data['images_per_second']:.2f} images/s)"
    )


FOLDER_HELP = (
    "Inpaint every image of IMAGE_DIR that has a mask in MASK_DIR, results into OUT_DIR.\n\n"
    "Images and masks pair by file stem ('photo.jpg' with 'photo.png' or 'photo_mask001.png'); "
    "a mask of another size is resized (nearest neighbour) to its image. Known pixels of a PNG "
    "result equal the input exactly. Existing results are skipped unless --overwrite; a corrupt "
    "file is reported and skipped, and the exit code is then 1."
)


@app.command("folder", help=FOLDER_HELP)
def folder(
    image_dir: Path = typer.Argument(..., metavar="IMAGE_DIR", help="Folder of images to inpaint."),
    mask_dir: Path = typer.Argument(
        ...,
        metavar="MASK_DIR",
        help="Folder of mask PNGs (white = hole); may be IMAGE_DIR itself (LaMa layout).",
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
        8, "--batch-size", min=1, help="Images per forward pass of --checkpoint."
    ),
    mask_pattern: list[str] | None = typer.Option(
        None,
        "--mask-pattern",
        help="Mask file name for an image's {stem}; shell wildcards allowed; repeat the option or "
        "separate by commas; tried in order. Default: '{stem}.png' then '{stem}_mask*.png'.",
    ),
    dilate: int = typer.Option(0, "--dilate", min=0, help=DILATE_HELP),
    max_size: int = typer.Option(1024, "--max-size", min=16, help=MAX_SIZE_HELP),
    strategy: Strategy = typer.Option(Strategy.resize, "--strategy", help=STRATEGY_HELP),
    fmt: OutputFormat = typer.Option(
        OutputFormat.png,
        "--format",
        help="Output format: png is lossless (known pixels kept exactly), jpg is lossy, "
        "same keeps each input's extension.",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    strict: bool = typer.Option(
        False, "--strict", help="Fail before inpainting if any image or mask is unmatched."
    ),
    radius: int = typer.Option(3, "--radius", min=1, help=RADIUS_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Inpaint every image of IMAGE_DIR that has a mask in MASK_DIR, results into OUT_DIR."""
    from wmi.inference import inpaint_folder

    _check_one_of(checkpoint, method)
    patterns = _patterns(mask_pattern)
    description: list[str] = []

    def build() -> Inpainter:  # called by inpaint_folder once the folders are paired
        inpainter, text = _inpainter(checkpoint, method, device, batch_size, radius)
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

        summary = inpaint_folder(
            image_dir,
            mask_dir,
            out_dir,
            build,
            mask_patterns=patterns,
            dilate=dilate,
            max_size=max_size,
            strategy=strategy,
            fmt=fmt,
            overwrite=overwrite,
            strict=strict,
            progress=progress,
            notify=notify,
        )
    _print_summary(summary, as_json)
    if summary.failed:
        raise typer.Exit(1)


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
    dilate: int = typer.Option(0, "--dilate", min=0, help=DILATE_HELP),
    max_size: int = typer.Option(1024, "--max-size", min=16, help=MAX_SIZE_HELP),
    strategy: Strategy = typer.Option(Strategy.resize, "--strategy", help=STRATEGY_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUTPUT if it exists."),
    radius: int = typer.Option(3, "--radius", min=1, help=RADIUS_HELP),
) -> None:
    """Inpaint one IMAGE with its MASK and write OUTPUT (never over IMAGE or MASK)."""
    from wmi.inference import inpaint_image, load_pair
    from wmi.io import IMAGE_EXTENSIONS, write_image

    for given in (image_path, mask_path):
        if output.resolve() == given.resolve():
            raise WmiError(f"{output}: OUTPUT must not be an input file")
    if output.suffix.lower() not in IMAGE_EXTENSIONS:
        raise WmiError(f"{output}: unsupported output format {output.suffix!r}")
    if output.exists() and not overwrite:
        raise WmiError(f"{output}: exists; pass --overwrite to replace it")
    inpainter, _ = _inpainter(checkpoint, method, device, 1, radius)
    image, hole = load_pair(image_path, mask_path, dilate)
    result = inpaint_image(image, hole, inpainter, strategy, max_size)
    write_image(output, result, png_compress_level=PNG_LEVEL)
    err_console.print(f"wrote {output} ({hole.mean():.1%} of the pixels inpainted)")
