"""Benchmark the perceptual metrics: LPIPS and FID per image; Table I with either SSIM window.

Networks get random weights (speed does not depend on the values), saved under the standard
file names in a temporary folder and loaded through :mod:`wmi.eval.perceptual` as in an evaluation.
Times are medians over ``--rounds`` batched passes, per image.

    taskset -c 0,1 python benchmarks/bench_perceptual.py --images 64 --size 256 --threads 2
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

# Run from a checkout without installing: this repository's wmi, not an installed one.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wmi.eval import perceptual
from wmi.weights import ALEXNET_FILE, FID_INCEPTION_FILE, VGG16_FILE


def save_random_weights(folder: Path, nets: list[str]) -> None:
    import torchvision
    from pytorch_fid import inception as fi

    if "alex" in nets:
        torch.save(torchvision.models.alexnet(weights=None).state_dict(), folder / ALEXNET_FILE)
    if "vgg" in nets:
        torch.save(torchvision.models.vgg16(weights=None).state_dict(), folder / VGG16_FILE)
    if "fid" in nets:
        net = fi._inception_v3(num_classes=1008, aux_logits=False, weights=None)
        net.Mixed_5b = fi.FIDInceptionA(192, pool_features=32)
        net.Mixed_5c = fi.FIDInceptionA(256, pool_features=64)
        net.Mixed_5d = fi.FIDInceptionA(288, pool_features=64)
        net.Mixed_6b = fi.FIDInceptionC(768, channels_7x7=128)
        net.Mixed_6c = fi.FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6d = fi.FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6e = fi.FIDInceptionC(768, channels_7x7=192)
        net.Mixed_7b = fi.FIDInceptionE_1(1280)
        net.Mixed_7c = fi.FIDInceptionE_2(2048)
        torch.save(net.state_dict(), folder / FID_INCEPTION_FILE)


#: CPU seconds of this process over the timed passes (all threads); on a busy machine, CPU
#: seconds / threads estimates the wall time an idle machine would give.
CPU_SECONDS: dict[str, float] = {}


def median_seconds(run, rounds: int, name: str = "") -> float:
    run()  # warm-up
    times = []
    cpu = []
    for _ in range(rounds):
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    if name:
        CPU_SECONDS[name] = float(np.median(cpu))
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--nets", default="alex,fid", help="comma list of alex, vgg, fid")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    nets = args.nets.split(",")
    rng = np.random.default_rng(0)
    shape = (args.images, args.size, args.size, 3)
    a = rng.random(shape, dtype=np.float32)
    b = np.clip(a + 0.1 * rng.random(shape, dtype=np.float32), 0, 1)
    result: dict[str, object] = {
        "images": args.images,
        "size": args.size,
        "threads": args.threads,
        "batch_size": args.batch_size,
        "torch": torch.__version__,
    }
    with tempfile.TemporaryDirectory() as tmp:
        save_random_weights(Path(tmp), nets)
        for net in ("alex", "vgg"):
            if net in nets:
                start = time.perf_counter()
                model = perceptual.load_lpips(
                    net, Path(tmp) / perceptual.METRIC_WEIGHTS[f"lpips-{net}"]
                )
                result[f"lpips_{net}_load_s"] = time.perf_counter() - start
                seconds = median_seconds(
                    lambda m=model: perceptual.lpips_distances(m, a, b, args.batch_size),
                    args.rounds,
                )
                result[f"lpips_{net}_ms_per_image"] = 1e3 * seconds / args.images
        if "fid" in nets:
            start = time.perf_counter()
            model = perceptual.load_fid_inception(Path(tmp) / FID_INCEPTION_FILE)
            result["fid_load_s"] = time.perf_counter() - start
            seconds = median_seconds(
                lambda: perceptual.fid_features(model, a, args.batch_size), args.rounds, "fid"
            )
            result["fid_features_ms_per_image"] = 1e3 * seconds / args.images
            feats_a = perceptual.fid_features(model, a, args.batch_size)
            feats_b = perceptual.fid_features(model, b, args.batch_size)
            result["frechet_distance_ms"] = 1e3 * median_seconds(
                lambda: perceptual.frechet_distance(feats_a, feats_b), args.rounds
            )
    from wmi.eval.metrics import hole_metrics

    hole = np.zeros(a.shape[1:3], bool)
    hole[a.shape[1] // 4 : a.shape[1] // 2, a.shape[2] // 4 : a.shape[2] // 2] = True

    def table_one(window: str) -> None:
        for x, y in zip(a[:16], b[:16], strict=True):
            hole_metrics(x, y, hole, ssim_window=window)

    for window in ("gaussian", "uniform"):
        result[f"table_one_{window}_ms_per_image"] = (
            1e3 * median_seconds(lambda w=window: table_one(w), 3) / 16
        )
    for name, seconds in CPU_SECONDS.items():
        result[f"{name}_cpu_ms_per_image"] = 1e3 * seconds / args.images
    with open("/proc/loadavg") as loadavg:
        result["loadavg"] = loadavg.read().split()[:3]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
