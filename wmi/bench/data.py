"""Training data: ``prepare`` throughput, and the loader's images/s against raw h5py reads.

:func:`benchmark_loader` times :class:`wmi.data.InpaintingDataset` behind a ``DataLoader``
against random ``dataset[i]`` reads of the same shards, in the same process and run.
:func:`benchmark_data` makes a synthetic source folder (:func:`make_sources`), prepares it
once per compression and runs :func:`benchmark_loader` on each result: what ``wmi bench
data`` and ``benchmarks/bench_data.py`` report.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from wmi.data import InpaintingDataset, MaskFn, collate, prepare
from wmi.io import write_mask


def benchmark_loader(
    shard_paths: Sequence[str | os.PathLike[str]],
    masks: str | os.PathLike[str] | MaskFn,
    size: int = 256,
    num_workers: Sequence[int] = (0, 2),
    batch_size: int = 32,
    images: int = 2000,
    seed: int = 0,
    rounds: int = 3,
    float_items: bool = True,
) -> dict[str, Any]:
    """Measure loader throughput against raw random h5py reads, in the same process and run.

    Raw reads: ``images`` random indices, ``dataset[i]`` on an open h5py file, nothing else.
    Loader: a ``DataLoader`` over :class:`~wmi.data.InpaintingDataset` (augment on) with
    shuffling, timed from the first batch to the last (worker start-up excluded, reported
    separately), for each of ``num_workers``. Its items are uint8, as ``wmi train`` loads
    them (the device converts them to float); with ``float_items``, the float32 items of the
    dataset's default (the loader before issue 17) are timed too, with the most workers.
    Raw reads and loaders are timed round-robin, ``rounds`` times; the best of each counts.

    Returns:
        ``{"images", "size", "batch_size", "cpus", "torch_threads", "rounds",
        "raw_reads_per_s", "loader": [{"num_workers", "items", "images_per_s", "startup_s",
        "fraction_of_raw"}]}``; ``items`` is "uint8" or "float32".
    """
    import torch

    dataset = InpaintingDataset(shard_paths, masks, size=size, augment=True, seed=seed)
    fast = InpaintingDataset(shard_paths, masks, size=size, augment=True, seed=seed, uint8=True)
    n = min(images, len(dataset))
    order = np.random.default_rng(seed).integers(len(dataset), size=n)
    variants = [("uint8", w) for w in num_workers]
    if float_items and num_workers:
        variants.append(("float32", max(num_workers)))
    raw = 0.0
    best: dict[tuple[str, int], tuple[float, float]] = {}
    for _ in range(rounds):
        raw = max(raw, _raw_reads_per_s(dataset, order))
        for items, workers in variants:
            data = fast if items == "uint8" else dataset
            rate, startup = _loader_rate(data, n, workers, batch_size, seed)
            if (items, workers) not in best or rate > best[items, workers][0]:
                best[items, workers] = (rate, startup)
    results = [
        {
            "num_workers": workers,
            "items": items,
            "images_per_s": best[items, workers][0],
            "startup_s": best[items, workers][1],
            "fraction_of_raw": best[items, workers][0] / raw,
        }
        for items, workers in variants
    ]
    return {
        "images": n,
        "size": size,
        "batch_size": batch_size,
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "rounds": rounds,
        "raw_reads_per_s": raw,
        "loader": results,
    }


def _raw_reads_per_s(dataset: InpaintingDataset, order: np.ndarray) -> float:
    """Images per second of plain ``images[i]`` reads at the indices ``order``."""
    import h5py

    files = [h5py.File(p, "r", locking=False) for p in dataset.shard_paths]
    try:
        sets = [f["images"] for f in files]
        offsets = dataset._offsets
        where = [
            (int(np.searchsorted(offsets, i, side="right")) - 1, int(i)) for i in order.tolist()
        ]
        start = time.perf_counter()
        for shard, i in where:
            sets[shard][i - int(offsets[shard])]
        return len(order) / (time.perf_counter() - start)
    finally:
        for f in files:
            f.close()


def _loader_rate(
    dataset: InpaintingDataset, n: int, workers: int, batch_size: int, seed: int
) -> tuple[float, float]:
    """``(images per second after the first batch, seconds to the first batch)``."""
    import torch
    from torch.utils.data import DataLoader

    sampler = torch.utils.data.RandomSampler(
        dataset, num_samples=n, generator=torch.Generator().manual_seed(seed)
    )
    loader = DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, collate_fn=collate
    )
    start = time.perf_counter()
    it = iter(loader)
    first = next(it)
    t_first = time.perf_counter()
    count = len(first[0])
    for image, _ in it:
        count += len(image)
    elapsed = time.perf_counter() - t_first
    rate = (count - len(first[0])) / elapsed if elapsed > 0 else float("nan")
    del it, loader
    return rate, t_first - start


def make_sources(folder: str | os.PathLike[str], count: int, seed: int = 0) -> None:
    """``count`` JPEGs of 320 x 240 to 480 x 360, random crops of scikit-image samples.

    Natural pictures, so that decode cost and compression ratios are those of real photos.
    """
    from skimage import data as samples

    pictures = [
        samples.astronaut(),
        samples.coffee(),
        samples.chelsea(),
        samples.rocket(),
        np.asarray(Image.fromarray(samples.camera()).convert("RGB")),
    ]
    rng = np.random.default_rng(seed)
    folder = Path(folder)
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


def make_masks(folder: str | os.PathLike[str], count: int, size: int, seed: int = 0) -> None:
    """``count`` mask PNGs with one to three random boxes each (white = hole)."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        hole = np.zeros((size, size), bool)
        for _ in range(int(rng.integers(1, 4))):
            bh, bw = rng.integers(size // 8, size // 2, size=2)
            top, left = rng.integers(0, size - bh), rng.integers(0, size - bw)
            hole[top : top + bh, left : left + bw] = True
        write_mask(Path(folder) / f"{i:04d}.png", hole)


def loader_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """A :func:`benchmark_loader` result as table rows: raw reads, then each loader."""
    return [
        {
            "reader": "raw h5py reads",
            "images_per_s": result["raw_reads_per_s"],
            "fraction_of_raw": 1.0,
        },
        *(
            {
                "reader": f"loader, {r['items']} items, {r['num_workers']} workers",
                "images_per_s": r["images_per_s"],
                "fraction_of_raw": r["fraction_of_raw"],
            }
            for r in result["loader"]
        ),
    ]


def benchmark_data(
    size: int = 256,
    images: int = 2000,
    compressions: Sequence[str] = ("none",),
    num_workers: Sequence[int] = (0, 2),
    batch_size: int = 32,
    masks: str = "boxes",
    prepare_workers: int | None = None,
    seed: int = 0,
    rounds: int = 3,
) -> dict[str, Any]:
    """Prepare ``images`` synthetic JPEGs once per compression, then time the loader on each.

    Args:
        masks: ``"boxes"`` (64 mask PNGs of :func:`make_masks`, read from a folder) or
            ``"freeform"`` (drawn per item).
        prepare_workers: decode processes of ``prepare`` (default: the CPU count).
        rounds: interleaved rounds of :func:`benchmark_loader` (the best of each counts).

    Returns:
        ``{"cpus", "images", "size", "runs": [run]}``; each run is a :func:`benchmark_loader`
        result plus ``compression``, ``prepare_images_per_s``, ``bytes_per_image`` and
        ``rows`` (:func:`loader_rows`).
    """
    runs = []
    with tempfile.TemporaryDirectory(prefix="wmi-bench-data-") as tmp:
        root = Path(tmp)
        make_sources(root / "src", images, seed)
        mask_source: str | Path = masks
        if masks == "boxes":
            mask_source = root / "masks"
            make_masks(mask_source, 64, size, seed)
        for compression in compressions:
            start = time.perf_counter()
            prepared = prepare(
                root / "src",
                root / f"out-{compression}",
                size=size,
                split=(1.0, 0.0, 0.0),
                shard_size=max(1, images // 2),
                workers=prepare_workers,
                compression=compression,
            )
            prepare_s = time.perf_counter() - start
            shards = prepared.shards["train"]
            run = benchmark_loader(
                shards,
                mask_source,
                size,
                num_workers,
                batch_size,
                images=images,
                seed=seed,
                rounds=rounds,
            )
            run.update(
                compression=compression,
                prepare_images_per_s=images / prepare_s,
                bytes_per_image=sum(p.stat().st_size for p in shards) / images,
                rows=loader_rows(run),
            )
            runs.append(run)
    return {"cpus": os.cpu_count(), "images": images, "size": size, "runs": runs}
