"""Benchmark ``wmi inpaint folder --method telea`` against a bare OpenCV script (issue 14).

A thin command line over :func:`wmi.bench.inpaint.benchmark_inpaint_folder`: 100 PNG images of
256² with box masks; the whole process, start-up included, for wmi and for a script that loops
``cv2.imread`` → ``cv2.inpaint(radius 3, Telea)`` → ``cv2.imwrite(PNG level 1)``; interleaved,
best of N. The target is a ratio of at most 1.3.

    python benchmarks/bench_inpaint_folder.py --images 100 --repeats 7
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# Run from a checkout without installing: this repository's wmi, not an installed one.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wmi.bench.inpaint import benchmark_inpaint_folder


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=100, help="images in the folder")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each, best counts")
    parser.add_argument("--workers", type=int, default=0, help="wmi --workers (0: auto)")
    args = parser.parse_args(argv)
    result = benchmark_inpaint_folder(args.images, args.size, args.repeats, args.workers)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
