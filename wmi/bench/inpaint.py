"""``wmi bench --suite inpaint``: what wmi adds to a classical method's own time per image."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def _direct(name: str, image: np.ndarray, hole: np.ndarray, radius: int) -> Callable[[], Any]:
    """The library call itself on the uint8 ``image``: ``cv2.inpaint`` on uint8,
    ``inpaint_biharmonic`` on floats.

    A method registered elsewhere is timed through its own ``fill`` function.
    """
    import cv2
    from skimage.restoration import inpaint_biharmonic

    from wmi.kinds import CLASSICAL_METHODS
    from wmi.registry import load

    image_f = image.astype(np.float32) / 255.0
    mask_u8 = hole.astype(np.uint8) * 255
    if name in ("telea", "ns"):
        flag = cv2.INPAINT_TELEA if name == "telea" else cv2.INPAINT_NS
        return lambda: cv2.inpaint(image, mask_u8, radius, flag)
    if name == "biharmonic":
        return lambda: inpaint_biharmonic(image_f, hole, channel_axis=-1)
    fill = load(CLASSICAL_METHODS[name].fill)
    return lambda: fill(image_f, hole, radius)


def benchmark_inpaint(
    size: int = 256,
    methods: Sequence[str] | None = None,
    repeats: int = 10,
    radius: int = 3,
) -> dict[str, Any]:
    """Time the classical methods per image, through wmi and called directly, in one run.

    The image is scikit-image's astronaut resized to ``size``², the hole the paper's centre
    box (half the side, 25 % of the pixels). "direct" is ``cv2.inpaint`` on uint8 arrays or
    ``inpaint_biharmonic`` on floats; "wmi" is :func:`wmi.inference.inpaint_image` with a
    :class:`~wmi.inference.ClassicalInpainter` (conversions, planning and composite included).

    Args:
        methods: names in :data:`wmi.kinds.CLASSICAL_METHODS`; default: all of them.

    Returns:
        ``{"size", "hole_fraction", "repeats", "methods": {name: {"direct_ms", "wmi_ms",
        "overhead_ms", "overhead_pct"}}}``; times are medians over ``repeats`` runs.
    """
    import cv2
    import torch
    from skimage import data

    from wmi.bench import interleaved_medians
    from wmi.inference import ClassicalInpainter, Strategy, inpaint_image
    from wmi.kinds import CLASSICAL_METHODS

    image = cv2.resize(data.astronaut(), (size, size), interpolation=cv2.INTER_AREA)
    image_f = image.astype(np.float32) / 255.0
    hole = np.zeros((size, size), bool)
    hole[size // 4 : size - size // 4, size // 4 : size - size // 4] = True
    results: dict[str, Any] = {
        "size": size,
        "hole_fraction": float(hole.mean()),
        "repeats": repeats,
        "methods": {},
    }
    for name in CLASSICAL_METHODS.names() if methods is None else methods:
        inpainter = ClassicalInpainter(name, radius)
        direct = _direct(name, image, hole, radius)

        def ours(inpainter: ClassicalInpainter = inpainter) -> None:
            inpaint_image(image_f, hole, inpainter, Strategy.original)

        med = interleaved_medians({"direct": direct, "wmi": ours}, torch.device("cpu"), repeats)
        direct_ms, wmi_ms = med["direct"] * 1e3, med["wmi"] * 1e3
        results["methods"][name] = {
            "direct_ms": direct_ms,
            "wmi_ms": wmi_ms,
            "overhead_ms": wmi_ms - direct_ms,
            "overhead_pct": 100.0 * (wmi_ms - direct_ms) / direct_ms,
        }
    return results
