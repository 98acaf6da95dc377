"""Make docs/html-report.png: an HTML report of 3 classical methods on 30 photographs.

    python docs/html_report_screenshot.py [--out docs/html-report.png] [--keep DIR]

The photographs are scikit-image's bundled ones (no download), cropped to 256x256; the holes
are wmi's NVIDIA-style irregular masks, five per bucket 0-10 % .. 50-60 %; the methods are
OpenCV's Telea and Navier-Stokes inpainting and a mean-colour fill, scored with
:func:`wmi.eval.metrics.score_files`. Needs Debian's ``chromium`` (apt-get install chromium).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np
import skimage.data
from PIL import Image

from wmi.eval.html_report import ReportImage, facts_from_registry, write_html_report
from wmi.eval.metrics import score_files, summarize_scores
from wmi.masks import IRREGULAR_BUCKETS, hole_ratio_bucket, irregular

SIZE = 256
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "cat")


def _crops(count: int, rng: np.random.Generator) -> list[np.ndarray]:
    out = []
    for k in range(count):
        photo = getattr(skimage.data, PHOTOS[k % len(PHOTOS)])()[..., :3]
        side = int(rng.integers(SIZE, min(photo.shape[:2]) + 1))
        y = int(rng.integers(0, photo.shape[0] - side + 1))
        x = int(rng.integers(0, photo.shape[1] - side + 1))
        crop = Image.fromarray(photo[y : y + side, x : x + side]).resize((SIZE, SIZE))
        out.append(np.asarray(crop))
    return out


def make(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    methods = {
        "Telea": lambda img, hole: cv2.inpaint(img, hole, 5, cv2.INPAINT_TELEA),
        "Navier-Stokes": lambda img, hole: cv2.inpaint(img, hole, 5, cv2.INPAINT_NS),
        "mean fill": lambda img, hole: np.where(
            hole[..., None] > 0, img[hole == 0].mean(axis=0).astype(np.uint8), img
        ),
    }
    for name in methods:
        (folder / name).mkdir(parents=True, exist_ok=True)
    images, scores = [], []
    for k, gt in enumerate(_crops(30, rng)):
        bucket = IRREGULAR_BUCKETS[k % len(IRREGULAR_BUCKETS)]
        hole = irregular(SIZE, SIZE, rng, bucket=bucket).astype(np.uint8)
        stem = f"{PHOTOS[k % len(PHOTOS)]}_{k:02d}"
        gt_path, mask_path = folder / f"{stem}.png", folder / f"{stem}_mask.png"
        Image.fromarray(gt).save(gt_path)
        Image.fromarray(hole * 255).save(mask_path)
        preds = {}
        for name, fill in methods.items():
            preds[name] = folder / name / f"{stem}.png"
            Image.fromarray(fill(gt, hole)).save(preds[name])
        score = score_files(gt_path, mask_path, list(preds.items()))
        scores.append(score)
        images.append(
            ReportImage(
                name=gt_path.name,
                gt_path=gt_path,
                mask_path=mask_path,
                preds=preds,
                hole_ratio=score.hole_ratio,
                bucket=hole_ratio_bucket(score.hole_ratio),
                metrics=score.metrics,
            )
        )
    results = summarize_scores(scores, list(methods))
    return write_html_report(
        folder / "report.html",
        results,
        images,
        facts_from_registry(),
        ssim_window="gaussian 11x11 σ=1.5",
        title="wmi eval: 30 photographs, 3 classical methods",
        per_section=3,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/html-report.png"))
    parser.add_argument("--keep", type=Path, help="write the data and report.html here")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium not installed: apt-get install chromium")
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp) / "data"
        report = make(folder)
        shot = Path(tmp) / "shot.png"
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                f"--user-data-dir={Path(tmp) / 'profile'}",
                "--force-device-scale-factor=1",
                "--window-size=1280,1900",
                "--virtual-time-budget=5000",
                f"--screenshot={shot}",
                report.resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
        )
        # A 256-colour palette keeps the PNG small (the README shows it scaled down anyway).
        img = Image.open(shot).convert("RGB")
        img = img.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
        img.save(args.out, optimize=True)
        kept = f"; report: {report}" if args.keep else ""
    print(f"{args.out}: {args.out.stat().st_size / 1e3:.0f} kB{kept}")


if __name__ == "__main__":
    main()
