"""What the ground-truth feature cache saves: LPIPS and FID of several runs on one ground truth.

Random-weight networks (speed does not depend on the values) saved under the standard file
names; ``--images`` ground truths at ``--size``², a centre-box hole, ``--runs`` folders of
predictions. Three ways to score them (``wmi.eval.scoring.score_folders``):

* ``separate``: one evaluation per run, nothing shared (each sees the ground truths again);
* ``shared``: one evaluation of all runs: each ground truth through each network once;
* ``disk``: the same again with a warm ``cache_dir``: no ground truth through the Inception.

    taskset -c 0,1 python benchmarks/bench_gt_cache.py --images 16 --runs 3 --size 256
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_perceptual import save_random_weights
from wmi.eval.perceptual import GroundTruthFeatures, PerceptualNets
from wmi.eval.scoring import score_folders
from wmi.weights import FID_INCEPTION_FILE


def _folders(root: Path, images: int, runs: int, size: int) -> dict[str, list[Path]]:
    rng = np.random.default_rng(0)
    hole = np.zeros((size, size), np.uint8)
    hole[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 255
    for folder in ("gt", "masks", *(f"run{r}" for r in range(runs))):
        (root / folder).mkdir()
    for i in range(images):
        gt = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(gt).save(root / "gt" / f"{i}.png")
        Image.fromarray(hole).save(root / "masks" / f"{i}.png")
        for r in range(runs):
            pred = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pred).save(root / f"run{r}" / f"{i}.png")
    return {"A": [root / f"run{r}" for r in range(runs)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result: dict[str, object] = {**vars(args), "torch": torch.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "w").mkdir()
        save_random_weights(root / "w", ["alex", "fid"])
        runs = _folders(root, args.images, args.runs, args.size)
        nets, _ = PerceptualNets.load("alex", True, root / "w", cache_dir=root / "cache")

        def timed(name: str, work) -> None:
            start, cpu = time.perf_counter(), time.process_time()
            work()
            result[f"{name}_s"] = round(time.perf_counter() - start, 2)
            result[f"{name}_cpu_s"] = round(time.process_time() - cpu, 2)

        def separate() -> None:
            for r, folder in enumerate(runs["A"]):
                nets.gt_cache = GroundTruthFeatures(None, None)  # nothing carried over
                score_folders(
                    root / "gt", root / "masks", {f"A{r}": folder}, perceptual=nets, workers=1
                )

        def shared() -> None:
            score_folders(root / "gt", root / "masks", runs, perceptual=nets, workers=1)

        weights = root / "w" / FID_INCEPTION_FILE
        timed("separate", separate)
        nets.gt_cache = GroundTruthFeatures(None, None)
        timed("shared", shared)
        nets.gt_cache = GroundTruthFeatures(weights, root / "cache")
        shared()  # fills the disk cache
        nets.gt_cache = GroundTruthFeatures(weights, root / "cache")  # a later evaluation
        timed("disk", shared)
        result["disk_hits"] = nets.gt_cache.hits
    with open("/proc/loadavg") as loadavg:
        result["loadavg"] = loadavg.read().split()[:3]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
