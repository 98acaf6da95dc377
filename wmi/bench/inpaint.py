"""``wmi bench --suite inpaint``: what wmi adds to a classical method's own time per image."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
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
    ``inpaint_biharmonic`` on floats; "wmi" is :func:`wmi.inpaint.strategies.inpaint_image`
    with a :class:`~wmi.inpaint.classical.ClassicalInpainter` (conversions, planning and
    composite included).

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
    from wmi.inpaint.classical import ClassicalInpainter
    from wmi.inpaint.strategies import inpaint_image
    from wmi.kinds import CLASSICAL_METHODS, Strategy

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


#: The baseline of :func:`benchmark_inpaint_folder`: a bare OpenCV loop over the same files.
BARE_CV2 = """
import sys, cv2
from pathlib import Path
img, mask, out = map(Path, sys.argv[1:4])
out.mkdir(exist_ok=True)
for path in sorted(img.glob("*.png")):
    image = cv2.imread(str(path))
    hole = cv2.imread(str(mask / path.name), cv2.IMREAD_GRAYSCALE)
    filled = cv2.inpaint(image, hole, 3, cv2.INPAINT_TELEA)
    cv2.imwrite(str(out / path.name), filled, [cv2.IMWRITE_PNG_COMPRESSION, 1])
"""


def make_box_folder(root: str | Path, images: int = 100, size: int = 256, seed: int = 0) -> None:
    """``root/img`` and ``root/mask``: ``images`` PNG crops of scikit-image photos, box masks."""
    import cv2
    from PIL import Image
    from skimage import data

    root = Path(root)
    (root / "img").mkdir(parents=True, exist_ok=True)
    (root / "mask").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    photos = [data.astronaut(), data.coffee(), data.chelsea()]
    for i in range(images):
        src = photos[i % len(photos)]
        side = min(src.shape[:2]) * 3 // 4
        y, x = (int(rng.integers(0, n - side + 1)) for n in src.shape[:2])
        image = cv2.resize(src[y : y + side, x : x + side], (size, size), cv2.INTER_AREA)
        hole = np.zeros((size, size), np.uint8)
        top, left = rng.integers(size // 10, size // 2, 2)
        h, w = rng.integers(size // 8, size // 3, 2)
        hole[top : top + h, left : left + w] = 255
        Image.fromarray(image).save(root / "img" / f"{i:03d}.png")
        Image.fromarray(hole).save(root / "mask" / f"{i:03d}.png")


def benchmark_inpaint_folder(
    images: int = 100, size: int = 256, repeats: int = 5, workers: int = 0
) -> dict[str, Any]:
    """Whole-process wall time of ``wmi inpaint folder --method telea`` against bare OpenCV.

    Both run as fresh Python processes (start-up included) over the same folder, interleaved,
    ``repeats`` times each; the best time of each counts (the least disturbed by other load).
    Also checks that wmi's results hold the same pixels as OpenCV's.

    Returns:
        ``{"images", "size", "repeats", "bare_s", "wmi_s", "ratio", "same_pixels"}``.
    """
    import subprocess
    import sys
    import tempfile
    import time

    from PIL import Image

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    best = {"bare": float("inf"), "wmi": float("inf")}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_box_folder(folder, images, size)
        commands = {
            "bare": [sys.executable, "-c", BARE_CV2],
            "wmi": [sys.executable, "-m", "wmi", "inpaint", "folder"],
        }
        for k in range(repeats):
            for name, command in commands.items():
                out = folder / f"{name}{k}"
                args = [str(folder / "img"), str(folder / "mask"), str(out)]
                extra = ["--method", "telea", "--json", "--workers", str(workers)]
                start = time.perf_counter()
                subprocess.run(
                    command + args + (extra if name == "wmi" else []),
                    check=True,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                best[name] = min(best[name], time.perf_counter() - start)
        same = all(
            np.array_equal(
                np.asarray(Image.open(p)),
                np.asarray(Image.open(folder / "bare0" / p.name)),
            )
            for p in sorted((folder / "wmi0").glob("*.png"))
        )
    return {
        "images": images,
        "size": size,
        "repeats": repeats,
        "bare_s": round(best["bare"], 3),
        "wmi_s": round(best["wmi"], 3),
        "ratio": round(best["wmi"] / best["bare"], 3),
        "same_pixels": same,
    }
