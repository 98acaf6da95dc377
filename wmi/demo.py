"""``wmi demo``: the paper's whole pipeline on bundled photographs, in minutes on a CPU.

Every step uses the same library code as the commands, and the equivalent command is printed
before it runs, so the demo doubles as a walk-through:

1. random crops of scikit-image's sample photographs (and any image in the repository's
   ``data/``) → ``wmi data prepare`` → HDF5 shards split train/val/test;
2. ``wmi masks generate`` → a free-form and a centre-box mask set for the held-out images;
3. ``wmi train`` → WConv (weighted conv + weighted BN) and PConv (partial conv + BN), same
   seed, data and steps;
4. ``wmi inpaint folder`` → the held-out images with both networks, Telea and biharmonic;
5. ``wmi eval`` → the Table I report per mask set, and a preview sheet of all methods.

The networks see a few hundred images for a few hundred steps: the numbers show that the
pipeline works end to end, not what the paper's models reach after days on a GPU.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from wmi.errors import WmiError

#: scikit-image sample photographs shipped inside the package (no download needed)
SAMPLES = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "immunohistochemistry",
    "hubble_deep_field",
    "retina",
    "colorwheel",
)
#: methods compared, in report order: name -> (kind, argument)
METHODS = {
    "WConv": ("model", "weighted"),
    "PConv": ("model", "partial"),
    "Telea": ("classical", "telea"),
    "Biharmonic": ("classical", "biharmonic"),
}
MASK_SETS = ("freeform", "center")


@dataclass
class DemoConfig:
    """Settings of a demo run; the defaults take a few minutes on 2 CPU cores.

    Attributes:
        out: output folder (must be empty or missing unless ``overwrite``).
        steps: training steps per network.
        size: image side in pixels (a multiple of ``2**layers``).
        layers: U-Net depth.
        base_channels: width of the first U-Net layer.
        batch_size: training batch size.
        crops: random crops taken from each sample photograph.
        device: "auto", "cpu" or "cuda".
        seed: seeds crops, splits, masks and training.
    """

    out: Path = Path("wmi-demo")
    steps: int = 1000
    size: int = 64
    layers: int = 6
    base_channels: int = 32
    batch_size: int = 8
    crops: int = 24
    device: str = "auto"
    seed: int = 0
    overwrite: bool = False


def _photos() -> list[tuple[str, np.ndarray]]:
    """The sample photographs (RGB uint8) plus any images in the repository's data/."""
    import skimage.data

    from wmi.io import list_images, open_rgb

    photos = []
    for name in SAMPLES:
        img = getattr(skimage.data, name)()
        photos.append((name, img[..., :3]))
    bundled = Path(__file__).resolve().parent.parent / "data"
    if bundled.is_dir():
        photos += [(p.stem, np.asarray(open_rgb(p))) for p in list_images(bundled)]
    return photos


def _write_crops(folder: Path, cfg: DemoConfig) -> int:
    """Random square crops of every photo, between 1.5× and 3× the training size."""
    from wmi.io import write_image

    rng = np.random.default_rng([cfg.seed, 1])
    count = 0
    for name, img in _photos():
        h, w = img.shape[:2]
        for i in range(cfg.crops):
            side = int(rng.integers(int(1.5 * cfg.size), min(3 * cfg.size, h, w) + 1))
            y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            write_image(folder / f"{name}-{i:03d}.png", img[y : y + side, x : x + side])
            count += 1
    return count


def _export_test_split(shards: Path, folder: Path) -> int:
    """Held-out (test split) images as PNG files named 000000.png, ..., like mask sets."""
    import h5py

    from wmi.data import find_shards
    from wmi.io import write_image

    index = 0
    for shard in find_shards(shards, "test"):
        with h5py.File(shard, "r") as f:
            for image in f["images"]:
                write_image(folder / f"{index:06d}.png", image)
                index += 1
    return index


#: marks a folder as made by ``wmi demo``: only such a folder is replaced by --overwrite
MARKER = ".wmi-demo"


def _check_sizes(cfg: DemoConfig) -> None:
    """Fail before any work if the options cannot give a training batch and a test image."""
    from wmi.data import DEFAULT_SPLIT, split_counts
    from wmi.unet import check_multiple

    check_multiple(cfg.size, cfg.size, cfg.layers, option="--size")
    photos = len(SAMPLES)  # images in data/ only add to this
    train_n, _, test_n = split_counts(photos * cfg.crops, DEFAULT_SPLIT)
    if train_n < cfg.batch_size or test_n < 1:
        raise WmiError(
            f"--crops {cfg.crops}: {photos * cfg.crops} crops give {train_n} training and "
            f"{test_n} test images; at least {cfg.batch_size} and 1 are needed (use --crops "
            f"{-(-cfg.batch_size * 10 // (7 * photos)) + 1} or more)"
        )


def _claim_out_dir(out: Path, overwrite: bool) -> None:
    """Create ``out`` with the demo marker; replace it only if an earlier demo made it."""
    if out.exists() and not out.is_dir():
        raise WmiError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise WmiError(f"{out}: folder is not empty (use --overwrite to replace the demo)")
        if not (out / MARKER).is_file():
            raise WmiError(f"{out}: not made by wmi demo (no {MARKER} file); refusing to delete it")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("made by wmi demo; `wmi demo --overwrite` may replace this folder\n")


def _inpaint_folder(images: list[Path], masks: Path, out: Path, inpainter: Any) -> None:
    from wmi.inference import inpaint_images
    from wmi.io import read_image, read_mask, write_image

    imgs = [read_image(p) for p in images]
    holes = [read_mask(masks / p.name) for p in images]
    for path, result in zip(images, inpaint_images(imgs, holes, inpainter), strict=True):
        write_image(out / path.name, result)


def _evaluate(gt: Path, masks: Path, preds: dict[str, Path]) -> Any:
    from wmi.io import list_images
    from wmi.metrics import score_files, summarize_scores

    scores = [
        score_files(p, masks / p.name, [(name, d / p.name) for name, d in preds.items()])
        for p in list_images(gt)
    ]
    return summarize_scores(scores, list(preds))


def _preview(gt: Path, masks: Path, results: dict[str, Path], out: Path, rows: int = 6) -> None:
    """One row per held-out image: masked input, each method, ground truth."""
    from wmi.io import list_images, read_image, read_mask
    from wmi.preview import save_contact_sheet

    tiles, labels = [], []
    for path in list_images(gt)[:rows]:
        image, hole = read_image(path), read_mask(masks / path.name)
        tiles.append(np.where(hole[..., None], 1.0, image))
        tiles += [read_image(d / path.name) for d in results.values()]
        tiles.append(image)
        labels += ["input", *results, "truth"]
    save_contact_sheet(out, tiles, columns=len(results) + 2, labels=labels, scale=2)


def run_demo(cfg: DemoConfig, console: Console | None = None) -> dict[str, Any]:
    """Run the demo pipeline; returns ``{mask set: Table I results}``.

    Raises:
        WmiError: the output folder is not empty (without ``overwrite``) or a step fails.
    """
    from wmi.checkpoint import load_model
    from wmi.data import prepare
    from wmi.inference import ClassicalInpainter, ModelInpainter
    from wmi.masks import MaskSetSpec, write_mask_files
    from wmi.report import render, to_markdown
    from wmi.train import TrainConfig, train

    console = console or Console(stderr=True)
    out = cfg.out
    _check_sizes(cfg)
    _claim_out_dir(out, cfg.overwrite)

    def step(title: str, *commands: str) -> None:
        console.rule(f"[bold]{title}")
        for command in commands:
            console.print(f"[dim]$ {command}[/]", highlight=False)

    step(
        "1/5 data",
        f"wmi data prepare {out}/photos {out}/shards --size {cfg.size} --preset plain "
        f"--seed {cfg.seed} --workers 0",
    )
    n = _write_crops(out / "photos", cfg)
    prepared = prepare(
        out / "photos", out / "shards", size=cfg.size, preset="plain", seed=cfg.seed, workers=0
    )
    console.print(f"{n} crops of {len(SAMPLES)}+ photographs → {prepared.counts}")
    test_dir = out / "test" / "images"
    n_test = _export_test_split(out / "shards", test_dir)

    step(
        "2/5 masks",
        *(
            f"wmi masks generate {out}/masks/{kind} --kind {kind} --count {n_test} "
            f"--size {cfg.size} --seed {cfg.seed}"
            for kind in MASK_SETS
        ),
    )
    for kind in MASK_SETS:
        spec = MaskSetSpec(kind, cfg.size, cfg.size, n_test, cfg.seed)
        write_mask_files(spec, out / "masks" / kind, range(n_test))

    models = {}
    for name, (kind, arg) in METHODS.items():
        if kind != "model":
            continue
        options = {
            "data": out / "shards",
            "out": out / "runs" / name.lower(),
            "conv": arg,
            "size": cfg.size,
            "layers": cfg.layers,
            "base_channels": cfg.base_channels,
            "batch_size": cfg.batch_size,
            # the paper's BN decay 0.999 (momentum 0.001) needs thousands of steps to settle
            "bn_momentum": 0.1,
            "steps": cfg.steps,
            "device": cfg.device,
            "workers": 0,
            "val_every": cfg.steps,
            "save_every": cfg.steps,
            "val_images": 16,
            "seed": cfg.seed,
            # VGG16 weights cannot be assumed on a fresh machine
            "perceptual": "none",
            "amp": "off",
        }
        step(
            f"3/5 train {name}",
            "wmi train " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in options.items()),
        )
        train(
            TrainConfig(**{k: str(v) if isinstance(v, Path) else v for k, v in options.items()}),
            progress=True,
            echo=False,
        )
        model, _ = load_model(options["out"] / "checkpoints" / "last.pt")
        models[name] = ModelInpainter(model, model.multiple, amp="off")

    images = sorted(test_dir.glob("*.png"))
    results: dict[str, Any] = {}
    for mask_set in MASK_SETS:
        step(
            f"4/5 inpaint ({mask_set} masks)",
            f"wmi inpaint folder {test_dir} {out}/masks/{mask_set} {out}/results/{mask_set}/...",
        )
        preds = {}
        for name, (kind, arg) in METHODS.items():
            inpainter = models[name] if kind == "model" else ClassicalInpainter(arg)
            preds[name] = out / "results" / mask_set / name.lower()
            _inpaint_folder(images, out / "masks" / mask_set, preds[name], inpainter)
        step(
            f"5/5 eval ({mask_set} masks)",
            f"wmi eval --gt {test_dir} --masks {out}/masks/{mask_set} "
            + " ".join(f"--pred {k}={v}" for k, v in preds.items()),
        )
        results[mask_set] = _evaluate(test_dir, out / "masks" / mask_set, preds)
        render(results[mask_set], console)
        _preview(test_dir, out / "masks" / mask_set, preds, out / f"preview-{mask_set}.png")

    report = "\n\n".join(f"## {k} masks\n\n{to_markdown(v)}" for k, v in results.items())
    from wmi.io import atomic_path

    with atomic_path(out / "demo-report.md") as tmp:
        tmp.write_text(f"# wmi demo\n\n{report}\n")
    console.print(
        f"previews: {out}/preview-freeform.png, {out}/preview-center.png; "
        f"report: {out}/demo-report.md"
    )
    return results
