"""``wmi inpaint folder`` and ``wmi inpaint image``: fill the holes of photos, nothing lost."""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from wmi.cli import App, err_console, progress_bar
from wmi.device import DeviceChoice
from wmi.errors import WmiError
from wmi.inference import Method, Strategy

if TYPE_CHECKING:
    import numpy as np

    from wmi.inference import Inpainter

app = App(
    help="Fill the holes of images with a trained checkpoint or a classical method "
    "(OpenCV Telea / Navier-Stokes, scikit-image biharmonic). Mask files: white (> 127) = hole."
)


class OutputFormat(str, enum.Enum):
    """File format of the results."""

    png = "png"
    jpg = "jpg"
    same = "same"


CHECKPOINT_HELP = "Trained wmi checkpoint (.pt) to inpaint with. Give this or --method."
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
#: zlib level of PNG results: OpenCV's (and IOPaint's) default, ~3x faster than Pillow's 6.
PNG_LEVEL = 1
RADIUS_HELP = "Neighbourhood radius in pixels for --method telea and ns."


def _check_one_of(checkpoint: Path | None, method: Method | None) -> None:
    if (checkpoint is None) == (method is None):
        raise WmiError("give exactly one of --checkpoint CKPT or --method telea|ns|biharmonic")


def _inpainter(
    checkpoint: Path | None,
    method: Method | None,
    device: DeviceChoice,
    batch_size: int,
    radius: int,
) -> tuple[Inpainter, str]:
    """Build the inpainter the options ask for; returns it and a short description."""
    from wmi.inference import ClassicalInpainter

    _check_one_of(checkpoint, method)
    if method is not None:
        return ClassicalInpainter(method, radius), method.value
    assert checkpoint is not None
    from wmi.device import resolve_device

    dev = resolve_device(device)
    if not checkpoint.is_file():
        raise WmiError(f"{checkpoint}: no such checkpoint file")
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


def _load_pair(image_path: Path, mask_path: Path, dilate: int) -> tuple[np.ndarray, np.ndarray]:
    """Image as float32 ``(H, W, 3)`` and hole as bool ``(H, W)`` resized to it, dilated.

    Raises:
        WmiError: a file is unreadable, or the hole covers the whole image.
    """
    from wmi.inference import dilate_hole, resize_hole
    from wmi.io import read_image, read_mask

    image = read_image(image_path)
    hole = read_mask(mask_path)
    hole = dilate_hole(resize_hole(hole, *image.shape[:2]), dilate)
    if hole.all():
        raise WmiError(f"{mask_path}: the hole covers all of {image_path.name}, nothing to keep")
    return image, hole


def _is_within(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


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


def _split_one_folder(files: list[Path], patterns: Sequence[str]) -> tuple[list[Path], list[Path]]:
    """Split one folder (LaMa's layout): a mask is a file matched by another file's stem."""
    from wmi.io import match_pattern

    names = sorted(f.name for f in files)
    mask_names: set[str] = set()
    for f in files:
        for pattern in patterns:
            mask_names.update(n for n in match_pattern(pattern, f.stem, names) if n != f.name)
    return [f for f in files if f.name not in mask_names], [
        f for f in files if f.name in mask_names
    ]


def _names(paths: Sequence[Path], limit: int = 5) -> str:
    shown = ", ".join(p.name for p in paths[:limit])
    return shown + (f", … (+{len(paths) - limit} more)" if len(paths) > limit else "")


def _output_path(out_dir: Path, image: Path, fmt: OutputFormat) -> Path:
    suffix = image.suffix.lower() if fmt is OutputFormat.same else f".{fmt.value}"
    return out_dir / f"{image.stem}{suffix}"


@dataclass
class _Summary:
    processed: int = 0
    skipped_existing: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    unmatched_images: list[str] = field(default_factory=list)
    unmatched_masks: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "processed": self.processed,
            "skipped_existing": self.skipped_existing,
            "failed": self.failed,
            "unmatched_images": self.unmatched_images,
            "unmatched_masks": self.unmatched_masks,
            "seconds": round(self.seconds, 3),
            "images_per_second": round(self.processed / self.seconds, 3) if self.seconds else 0.0,
        }


def _print_summary(summary: _Summary, as_json: bool) -> None:
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
    method: Method | None = typer.Option(None, "--method", help=METHOD_HELP),
    device: DeviceChoice = typer.Option(DeviceChoice.auto, "--device", help=DEVICE_HELP),
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
    from wmi.inference import inpaint_images
    from wmi.io import list_images, list_masks, pair_by_stem, write_image

    _check_one_of(checkpoint, method)
    for name, d in (("IMAGE_DIR", image_dir), ("MASK_DIR", mask_dir)):
        if not d.is_dir():
            raise WmiError(f"{d}: {name} is not a folder")
    for d in (image_dir, mask_dir):
        if _is_within(out_dir, d):
            raise WmiError(f"{out_dir}: OUT_DIR must not be or lie inside input folder {d}")
    if out_dir.exists() and not out_dir.is_dir():
        raise WmiError(f"{out_dir}: OUT_DIR exists and is not a folder")
    patterns = _patterns(mask_pattern)
    if image_dir.resolve() == mask_dir.resolve():
        images, masks = _split_one_folder(list_images(image_dir), patterns)
    else:
        images, masks = list_images(image_dir), list_masks(mask_dir)
    if not images:
        raise WmiError(f"{image_dir}: no image files found")
    pairing = pair_by_stem(images, masks, patterns)
    tried = ", ".join(repr(p) for p in patterns)
    if not pairing.pairs:
        raise WmiError(
            f"no image in {image_dir} ({len(images)} files) matched a mask in {mask_dir} "
            f"({len(masks)} files); mask patterns tried: {tried}"
        )
    summary = _Summary(
        unmatched_images=[str(p) for p in pairing.unmatched_images],
        unmatched_masks=[str(p) for p in pairing.unmatched_masks],
    )
    for what, paths in (
        ("images without a mask", pairing.unmatched_images),
        ("masks without an image", pairing.unmatched_masks),
    ):
        if paths and strict:
            raise WmiError(f"--strict: {what}: {len(paths)} ({_names(paths)}); patterns: {tried}")
        if paths:
            names = escape(_names(paths))
            err_console.print(f"[yellow]warning:[/] {what}: {len(paths)} ({names})")

    outputs: dict[Path, Path] = {}
    for image_path, _ in pairing.pairs:
        target = _output_path(out_dir, image_path, fmt)
        if target in outputs:
            raise WmiError(
                f"{image_path}: its result {target.name} would overwrite the one of "
                f"{outputs[target].name}; use --format same or rename one"
            )
        outputs[target] = image_path
    todo = []
    for image_path, mask_path in pairing.pairs:
        target = _output_path(out_dir, image_path, fmt)
        if target.exists() and not overwrite:
            summary.skipped_existing += 1
        else:
            todo.append((image_path, mask_path, target))

    inpainter, description = _inpainter(checkpoint, method, device, batch_size, radius)
    chunk = batch_size if checkpoint is not None else 1
    start = time.perf_counter()
    with progress_bar() as progress:
        task = progress.add_task(f"inpainting ({description})", total=len(todo))
        for first in range(0, len(todo), chunk):
            loaded = []
            for image_path, mask_path, target in todo[first : first + chunk]:
                try:
                    image, hole = _load_pair(image_path, mask_path, dilate)
                except WmiError as exc:
                    err_console.print(f"[bold red]error:[/] {escape(str(exc))} (skipped)")
                    summary.failed.append({"image": str(image_path), "error": str(exc)})
                    progress.advance(task)
                    continue
                loaded.append((image, hole, target))
            results = inpaint_images(
                [x[0] for x in loaded], [x[1] for x in loaded], inpainter, strategy, max_size
            )
            for (_, _, target), result in zip(loaded, results, strict=True):
                write_image(target, result, png_compress_level=PNG_LEVEL)
                summary.processed += 1
                progress.advance(task)
    summary.seconds = time.perf_counter() - start
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
    method: Method | None = typer.Option(None, "--method", help=METHOD_HELP),
    device: DeviceChoice = typer.Option(DeviceChoice.auto, "--device", help=DEVICE_HELP),
    dilate: int = typer.Option(0, "--dilate", min=0, help=DILATE_HELP),
    max_size: int = typer.Option(1024, "--max-size", min=16, help=MAX_SIZE_HELP),
    strategy: Strategy = typer.Option(Strategy.resize, "--strategy", help=STRATEGY_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUTPUT if it exists."),
    radius: int = typer.Option(3, "--radius", min=1, help=RADIUS_HELP),
) -> None:
    """Inpaint one IMAGE with its MASK and write OUTPUT (never over IMAGE or MASK)."""
    from wmi.inference import inpaint_image
    from wmi.io import IMAGE_EXTENSIONS, write_image

    for given in (image_path, mask_path):
        if output.resolve() == given.resolve():
            raise WmiError(f"{output}: OUTPUT must not be an input file")
    if output.suffix.lower() not in IMAGE_EXTENSIONS:
        raise WmiError(f"{output}: unsupported output format {output.suffix!r}")
    if output.exists() and not overwrite:
        raise WmiError(f"{output}: exists; pass --overwrite to replace it")
    inpainter, _ = _inpainter(checkpoint, method, device, 1, radius)
    image, hole = _load_pair(image_path, mask_path, dilate)
    result = inpaint_image(image, hole, inpainter, strategy, max_size)
    write_image(output, result, png_compress_level=PNG_LEVEL)
    err_console.print(f"wrote {output} ({hole.mean():.1%} of the pixels inpainted)")
