"""Validation during training: Table I hole metrics (``wmi.eval.metrics``) and preview sheets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from wmi.errors import WmiError
from wmi.models.unet import InpaintingUNet
from wmi.training.loader import to_device

#: The columns of a preview sheet, one row per image.
PREVIEW_LABELS = ("input", "output", "composite", "truth")


@torch.no_grad()
def validate(
    model: InpaintingUNet,
    loader: DataLoader,
    device: torch.device,
    amp_dtype: torch.dtype | None,
    channels_last: bool,
    preview_count: int = 4,
) -> tuple[dict[str, float], list[np.ndarray]]:
    """Table I metrics averaged over the validation images, and preview tiles.

    Images with an empty hole have no hole metrics and are skipped. Leaves ``model`` in eval
    mode.

    Returns:
        ``(metrics, tiles)``: metric -> mean over images (plus ``images``, the count), and for
        the first ``preview_count`` images four tiles each: masked input (holes white),
        output, composite, ground truth; float ``(H, W, 3)`` in [0, 1].
    """
    from wmi.eval.metrics import hole_metrics  # the Table I definitions of wmi eval

    model.eval()
    sums: dict[str, float] = {}
    count = 0
    tiles: list[np.ndarray] = []
    for image, mask in loader:
        image, mask = to_device(image, mask, device, channels_last)
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=bool(amp_dtype)):
            output = model(image, mask)
        output = output.float().clamp(0, 1)
        comp = mask * image + (1 - mask) * output
        for i in range(image.shape[0]):
            gt = image[i].permute(1, 2, 0).cpu().numpy()
            pred = output[i].permute(1, 2, 0).cpu().numpy()
            hole = mask[i, 0].cpu().numpy() < 0.5
            if len(tiles) < len(PREVIEW_LABELS) * preview_count:
                shown = np.where(hole[..., None], 1.0, gt)
                tiles += [shown, pred, comp[i].permute(1, 2, 0).cpu().numpy(), gt]
            if not hole.any():
                continue
            for key, value in hole_metrics(pred, gt, hole).items():
                sums[key] = sums.get(key, 0.0) + value
            count += 1
    metrics = {k: v / count for k, v in sums.items()} if count else {}
    return {**metrics, "images": count}, tiles


def save_preview(path: Path, tiles: list[np.ndarray]) -> None:
    """A contact sheet of :func:`validate`'s tiles, one image per row.

    Raises:
        WmiError: the file cannot be written (full disk), naming it.
    """
    if not tiles:
        return
    from wmi.io.preview import save_contact_sheet

    columns = len(PREVIEW_LABELS)
    labels = list(PREVIEW_LABELS) * (len(tiles) // columns)
    try:
        save_contact_sheet(path, tiles, columns=columns, labels=labels)
    except OSError as exc:
        raise WmiError(f"{path}: cannot write ({exc.strerror or exc})") from None
