"""Benchmark ``wmi data``: prepare throughput, and loader images/s against raw h5py reads.

Builds a synthetic source folder of JPEGs (random crops of scikit-image's sample pictures,
so compression ratios are those of natural images), prepares it once per compression, and
runs :func:`wmi.data.benchmark_loader` on the train shards.

    python benchmarks/bench_data.py --images 2000 --workers 0,2 --compression none,lzf,gzip
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

# Run from a checkout without installing: this repository's wmi, not an installed one.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wmi import data
from wmi.io import write_mask


def make_sources(folder: Path, count: int, seed: int) -> None:
    """``count`` JPEGs of 320 x 240 to 480 x 360, random crops of scikit-image samples."""
    from skimage import data as samples

    pictures = [
        samples.astronaut(),
        samples.coffee(),
        samples.chelsea(),
        samples.rocket(),
        np.asarray(Image.fromarray(samples.camera()).convert("RGB")),
    ]
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        pic = pictures[i % len(pictures)]
        h, w = pic.shape[:2]
        ch = int(rng.integers(h // 2, h + 1))
        cw = min(w, int(ch * 4 / 3))
        top, left = int(rng.integers(h - ch + 1)), int(rng.integers(w - cw + 1))
        crop = Image.fromarray(pic[top : top + ch, left : left + cw])
        scale = rng.uniform(240, 360) / ch
        crop = crop.resize((round(cw * scale), round(ch * scale)), Image.BICUBIC)
        crop.save(folder / f"{i:06d}.jpg", quality=90)


def make_masks(folder: Path, count: int, size: int, seed: int) -> None:
    """``count`` mask PNGs with one to three random boxes each (white = hole)."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        hole = np.zeros((size, size), bool)
        for _ in range(int(rng.integers(1, 4))):
            bh, bw = rng.integers(size // 8, size // 2, size=2)
            top, left = rng.integers(0, size - bh), rng.integers(0, size - bw)
            hole[top : top + bh, left : left + bw] = True
        write_mask(folder / f"{i:04d}.png", hole)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=2000, help="source images to make")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--workers", default="0,2", help="DataLoader num_workers to try")
    parser.add_argument("--batch-size", type=int, default=32, help="DataLoader batch size")
    parser.add_argument("--compression", default="none,lzf,gzip", help="shard compressions")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data")
    parser.add_argument(
        "--torch-threads", type=int, default=0, help="torch intra-op threads (0: torch default)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    results: dict = {
        "cpus": os.cpu_count(),
        "images": args.images,
        "size": args.size,
        "load_before": os.getloadavg()[0],
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="wmi-bench-data-") as tmp:
        root = Path(tmp)
        make_sources(root / "src", args.images, args.seed)
        make_masks(root / "masks", 64, args.size, args.seed)
        for compression in args.compression.split(","):
            out = root / f"out-{compression}"
            start = time.perf_counter()
            prepared = data.prepare(
                root / "src",
                out,
                size=args.size,
                split=(1.0, 0.0, 0.0),
                shard_size=max(1, args.images // 2),
                compression=compression,
            )
            prepare_s = time.perf_counter() - start
            shards = prepared.shards["train"]
            bench = data.benchmark_loader(
                shards,
                root / "masks",
                size=args.size,
                num_workers=[int(w) for w in args.workers.split(",")],
                batch_size=args.batch_size,
                images=args.images,
                seed=args.seed,
            )
            bench.update(
                compression=compression,
                prepare_images_per_s=args.images / prepare_s,
                bytes_per_image=sum(p.stat().st_size for p in shards) / args.images,
            )
            results["runs"].append(bench)
            if not args.json:
                print(
                    f"{compression:5s} prepare {bench['prepare_images_per_s']:5.0f} img/s, "
                    f"{bench['bytes_per_image'] / 1024:6.1f} KiB/img, "
                    f"raw reads {bench['raw_reads_per_s']:8.0f} img/s",
                    file=sys.stdout,
                )
                for row in bench["loader"]:
                    print(
                        f"      loader num_workers={row['num_workers']}: "
                        f"{row['images_per_s']:7.0f} img/s "
                        f"({100 * row['fraction_of_raw']:.0f} % of raw, "
                        f"start-up {row['startup_s']:.2f} s)"
                    )
    results["load_after"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        threads = results["runs"][0]["torch_threads"] if results["runs"] else "?"
        print(f"torch intra-op threads in the main process: {threads}")
        print(
            f"1-minute load average: {results['load_before']:.1f} before, "
            f"{results['load_after']:.1f} after ({results['cpus']} CPUs)"
        )
    return results


if __name__ == "__main__":
    main()
