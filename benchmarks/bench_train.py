"""Training throughput: images/s per conv kind and precision mode (wmi.bench.train.benchmark_train).

    python benchmarks/bench_train.py                       # 256², batch 25, layers 7 (GPU)
    python benchmarks/bench_train.py --device cpu --size 64 --batch-size 4 --layers 6 \
        --modes fp32 bf16+cl --rounds 3

Prints a table, or JSON with --json. Variants are timed round-robin in the same run, so
compare the ratios (bf16 against fp32, weighted against plain) rather than absolute numbers
across machines.
"""

from __future__ import annotations

import argparse
import json

import torch

from wmi.bench.train import BENCH_MODES, benchmark_train
from wmi.device import resolve_device
from wmi.kinds import CONV_KINDS, DEVICES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=DEVICES.names())
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--batch-size", type=int, default=25, help="images per step")
    parser.add_argument("--layers", type=int, default=7, help="U-Net encoder depth")
    parser.add_argument(
        "--convs", nargs="+", default=["weighted", "plain"], choices=CONV_KINDS.names()
    )
    parser.add_argument("--modes", nargs="+", default=list(BENCH_MODES), choices=list(BENCH_MODES))
    parser.add_argument("--no-perceptual", action="store_true", help="leave out the VGG terms")
    parser.add_argument("--rounds", type=int, default=5, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per variant")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (torch)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    result = benchmark_train(
        device,
        size=args.size,
        batch_size=args.batch_size,
        layers=args.layers,
        convs=args.convs,
        modes=args.modes,
        perceptual=not args.no_perceptual,
        rounds=args.rounds,
        warmup=args.warmup,
    )
    if args.json:
        print(json.dumps(result, indent=2))
        return
    vgg = "on" if result["perceptual"] else "off"
    print(
        f"{result['device_name']}, torch {result['torch']}: {args.size}², batch "
        f"{args.batch_size}, layers {args.layers}, VGG terms {vgg}"
    )
    print(f"{'conv':10} {'mode':17} {'ms/step':>9} {'img/s':>8} {'vs fp32':>8} {'vs plain':>9}")
    for row in result["rows"]:
        fp32 = f"{row['speedup_vs_fp32']:.2f}x" if row["speedup_vs_fp32"] else "-"
        plain = f"{row['ratio_vs_plain']:.2f}x" if row["ratio_vs_plain"] else "-"
        print(
            f"{row['conv']:10} {row['mode']:17} {row['ms_per_step']:9.1f} "
            f"{row['images_per_s']:8.1f} {fp32:>8} {plain:>9}"
        )


if __name__ == "__main__":
    main()
