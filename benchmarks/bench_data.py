"""Benchmark ``wmi data``: prepare throughput, and loader images/s against raw h5py reads.

A thin command line over :func:`wmi.bench.data.benchmark_data`: synthetic JPEGs (random crops
of scikit-image's sample pictures, so compression ratios are those of natural images),
prepared once per compression, then :func:`wmi.bench.data.benchmark_loader` on the shards.

    python benchmarks/bench_data.py --images 2000 --workers 0,2 --compression none,lzf,gzip
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

# Run from a checkout without installing: this repository's wmi, not an installed one.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wmi.bench.data import benchmark_data


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
    load_before = os.getloadavg()[0]
    results = benchmark_data(
        size=args.size,
        images=args.images,
        compressions=args.compression.split(","),
        num_workers=[int(w) for w in args.workers.split(",")],
        batch_size=args.batch_size,
        seed=args.seed,
    )
    results.update(load_before=load_before, load_after=os.getloadavg()[0])
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        _print(results)
    return results


def _print(results: dict) -> None:
    for run in results["runs"]:
        print(
            f"{run['compression']:5s} prepare {run['prepare_images_per_s']:5.0f} img/s, "
            f"{run['bytes_per_image'] / 1024:6.1f} KiB/img, "
            f"raw reads {run['raw_reads_per_s']:8.0f} img/s"
        )
        for row in run["loader"]:
            print(
                f"      loader num_workers={row['num_workers']}: "
                f"{row['images_per_s']:7.0f} img/s "
                f"({100 * row['fraction_of_raw']:.0f} % of raw, "
                f"start-up {row['startup_s']:.2f} s)"
            )
    threads = results["runs"][0]["torch_threads"] if results["runs"] else "?"
    print(f"torch intra-op threads in the main process: {threads}")
    print(
        f"1-minute load average: {results['load_before']:.1f} before, "
        f"{results['load_after']:.1f} after ({results['cpus']} CPUs)"
    )


if __name__ == "__main__":
    main()
