"""``wmi demo``: the paper's whole pipeline on bundled photographs, in minutes on a CPU.

Every step calls the same library function as its command, and the equivalent command is
printed (on stderr) before it runs, so the demo doubles as a walk-through you can copy:

1. random crops of six of scikit-image's sample photographs → ``wmi data prepare`` → HDF5
   shards split train/val; crops of two *other* photographs become the test images, so the
   networks are scored on photographs they never saw;
2. ``wmi masks generate --for`` → a free-form and a centre-box mask per test image;
3. ``wmi train`` → WConv (weighted conv + weighted BN) and PConv (partial conv + BN), same
   seed, data and steps (``with_deepfill``: and DeepFill v2, ``--arch deepfill2``);
4. ``wmi inpaint folder`` → the test images with both networks, Telea and biharmonic;
5. ``wmi eval`` → the Table I report per mask set (on stdout), Markdown and HTML reports
   (``demo-report.html``: images side by side, charts, sortable table) and a preview sheet.

The networks see a few hundred crops for a few hundred steps: the numbers show that the
pipeline works end to end, not what the paper's models reach after days on a GPU.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from wmi.errors import WmiError
from wmi.procs import Interrupted

#: scikit-image sample photographs shipped inside the package (no download needed)
TRAIN_PHOTOS = ("chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "retina",
                "colorwheel")  # fmt: skip
#: whole photographs held out of training: the test images are crops of these only
TEST_PHOTOS = ("astronaut", "coffee")
#: networks compared, in report order: (arch, conv kind or None), and what --with-deepfill adds
NETWORKS = (("unet", "weighted"), ("unet", "partial"))
DEEPFILL = (("deepfill2", None),)
#: classical methods compared
CLASSICAL = ("telea", "biharmonic")
MASK_SETS = ("freeform", "center")
#: training/validation split of the training crops (the test images are separate)
SPLIT = (0.85, 0.15, 0.0)
#: marks a folder as made by ``wmi demo``: only such a folder is replaced by --overwrite
MARKER = ".wmi-demo"


@dataclass
class DemoConfig:
    """Settings of a demo run.

    Attributes:
        out: output folder (must be empty or missing unless ``overwrite``).
        steps: training steps per network.
        size: image side in pixels (a multiple of ``2**layers``).
        layers: U-Net depth.
        base_channels: width of the first U-Net layer.
        batch_size: training batch size.
        crops: random crops taken from each training photograph; half as many (at least 4)
            from each test photograph.
        device: a :data:`wmi.kinds.DEVICES` name.
        seed: seeds crops, splits, masks and training.
        overwrite: replace an earlier demo in ``out``.
        with_deepfill: also train and compare DeepFill v2 (its official width; slower).
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
    with_deepfill: bool = False

    @property
    def networks(self) -> tuple[tuple[str, str | None], ...]:
        """``(arch, conv)`` of every network the demo trains, in report order."""
        return NETWORKS + (DEEPFILL if self.with_deepfill else ())


def _photo(name: str) -> np.ndarray:
    import skimage.data

    image = getattr(skimage.data, name)()
    return image[..., :3] if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)


def _write_crops(
    folder: Path, names: tuple[str, ...], crops: int, cfg: DemoConfig, resize: bool = False
) -> int:
    """Random square crops between 1.5x and 3x the training size (``resize``: then scaled to
    it, as the test images are). Both sets draw from one seeded stream, each from its own
    photographs."""
    from PIL import Image

    from wmi.io import write_image

    rng = np.random.default_rng([cfg.seed, 1, 6])
    for name in names:
        img = _photo(name)
        h, w = img.shape[:2]
        for i in range(crops):
            side = int(rng.integers(int(1.5 * cfg.size), min(3 * cfg.size, h, w) + 1))
            y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            crop = Image.fromarray(img[y : y + side, x : x + side])
            if resize:
                crop = crop.resize((cfg.size, cfg.size), Image.BICUBIC)
            write_image(folder / f"{name}-{i:03d}.png", np.asarray(crop))
    return len(names) * crops


def _test_crops(cfg: DemoConfig) -> int:
    return max(4, cfg.crops // 2)


def _check(cfg: DemoConfig) -> None:
    """Fail before any work if the options cannot give a training batch."""
    from wmi.data import split_counts
    from wmi.models.unet import check_multiple

    check_multiple(cfg.size, cfg.size, cfg.layers, option="--size")
    train_n, _, _ = split_counts(len(TRAIN_PHOTOS) * cfg.crops, SPLIT)
    if train_n < cfg.batch_size:
        need = -(-cfg.batch_size // (SPLIT[0] * len(TRAIN_PHOTOS))) + 1
        raise WmiError(
            f"--crops {cfg.crops}: {len(TRAIN_PHOTOS) * cfg.crops} crops give {train_n} "
            f"training images; at least {cfg.batch_size} are needed (use --crops {need:.0f} "
            "or more)"
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


def _label(arch: str, conv: str | None) -> str:
    """A network's name in the reports: its conv kind's (WConv, PConv) or its arch's (DF2)."""
    from wmi.kinds import ARCHS, CONV_KINDS

    return CONV_KINDS[conv].label if conv else ARCHS[arch].label


def _run_dir(cfg: DemoConfig, arch: str, conv: str | None) -> Path:
    return cfg.out / "runs" / _label(arch, conv).lower()


def _train_options(cfg: DemoConfig, arch: str, conv: str | None) -> dict[str, Any]:
    from wmi.kinds import ARCHS

    unet = {
        "conv": conv,
        "layers": cfg.layers,
        "base_channels": cfg.base_channels,
        # the paper's BN decay 0.999 (momentum 0.001) needs thousands of steps to settle
        "bn_momentum": 0.1,
    }
    return {
        "data": cfg.out / "shards",
        "out": _run_dir(cfg, arch, conv),
        "arch": arch,
        **(unet if ARCHS[arch].takes_conv else {}),
        "size": cfg.size,
        "batch_size": cfg.batch_size,
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


def _methods(cfg: DemoConfig) -> dict[str, tuple[str, str]]:
    """Report name -> (inpaint option, its value) for every compared method."""
    from wmi.kinds import CLASSICAL_METHODS

    methods = {
        _label(*net): ("--checkpoint", str(_run_dir(cfg, *net) / "checkpoints" / "last.pt"))
        for net in cfg.networks
    }
    methods.update({CLASSICAL_METHODS[k].label: ("--method", k) for k in CLASSICAL})
    return methods


#: data, masks, one training per network, then inpaint and eval per mask set


class _Steps:
    """Prints each step's number, title and equivalent commands (notes: stderr)."""

    def __init__(self, notes: Console, total: int) -> None:
        self.notes, self.total = notes, total
        self.done = 0
        self.started = time.monotonic()

    def __call__(self, title: str, *commands: str) -> None:
        self.done += 1
        self.notes.rule(f"[bold]{self.done}/{self.total} {title}")
        for command in commands:
            self.notes.print(f"$ {command}", style="dim", highlight=False, markup=False)


def _prepare_data(cfg: DemoConfig, step: _Steps) -> Path:
    from wmi.data import prepare

    out = cfg.out
    split = ",".join(f"{f:g}" for f in SPLIT)
    step(
        "data",
        f"wmi data prepare {out}/photos {out}/shards --size {cfg.size} --preset plain "
        f"--split {split} --seed {cfg.seed} --workers 0",
    )
    n = _write_crops(out / "photos", TRAIN_PHOTOS, cfg.crops, cfg)
    prepared = prepare(out / "photos", out / "shards", size=cfg.size, preset="plain",
                       split=SPLIT, seed=cfg.seed, workers=0)  # fmt: skip
    test_dir = out / "test" / "images"
    n_test = _write_crops(test_dir, TEST_PHOTOS, _test_crops(cfg), cfg, resize=True)
    step.notes.print(
        f"{n} crops of {', '.join(TRAIN_PHOTOS)} → {prepared.counts}; {n_test} test images "
        f"from {' and '.join(TEST_PHOTOS)} (never seen in training) in {test_dir}",
        highlight=False,
    )
    return test_dir


def _make_masks(cfg: DemoConfig, test_dir: Path, step: _Steps) -> None:
    from wmi.masks import MaskSetSpec, image_targets, write_mask_set

    out = cfg.out
    step(
        "masks",
        *(
            f"wmi masks generate {out}/masks/{kind} --kind {kind} --for {test_dir} "
            f"--seed {cfg.seed}"
            for kind in MASK_SETS
        ),
    )
    for kind in MASK_SETS:
        targets, _ = image_targets(test_dir, out / "masks" / kind)
        write_mask_set(out / "masks" / kind, MaskSetSpec.for_images(kind, targets, cfg.seed))


def _train_networks(cfg: DemoConfig, step: _Steps) -> None:
    """Train each network in turn; after the first, say when the demo should end.

    Raises:
        Interrupted: Ctrl-C or SIGTERM stopped a training (its last.pt is saved); the other
            networks are not trained, so no comparison is made on an unequal footing.
    """
    from wmi.training.config import TrainConfig
    from wmi.training.loop import train

    networks = cfg.networks
    for n, (arch, conv) in enumerate(networks):
        options = _train_options(cfg, arch, conv)
        step(
            f"train {conv or arch}",
            "wmi train " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in options.items()),
        )
        config = TrainConfig(
            **{k: str(v) if isinstance(v, Path) else v for k, v in options.items()}
        )
        started = time.monotonic()
        result = train(config, progress=True, echo=False)
        if result.stop_signal:
            label, run = _label(arch, conv), options["out"]
            raise Interrupted(
                result.stop_signal,
                f"{label} stopped at step {result.step} of {cfg.steps} (saved "
                f"{run}/checkpoints/last.pt; `wmi train --resume --out {run}` continues it); "
                "no other network trained and no table made",
            )
        if n == 0 and len(networks) > 1:
            # the networks train for the same steps at the same size: the rest takes as long,
            # on a machine as busy as it was, plus inpainting and evaluation (seconds)
            took = time.monotonic() - started
            left = took * (len(networks) - 1)
            step.notes.print(
                f"{_label(arch, conv)} trained in {_duration(took)}; the demo should end "
                f"in about {_duration(left)} more (the time depends on the steps, the size, "
                "the device and how busy it is)",
                highlight=False,
            )


def _duration(seconds: float) -> str:
    """``"42 s"``, ``"3 min 39 s"``."""
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def _inpaint(cfg: DemoConfig, test_dir: Path, mask_set: str, step: _Steps) -> dict[str, Path]:
    from wmi.inpaint.folder import inpaint_folder
    from wmi.models.loading import load_model

    masks, preds = cfg.out / "masks" / mask_set, {}
    methods = _methods(cfg)
    step(
        f"inpaint ({mask_set} masks)",
        *(
            f"wmi inpaint folder {test_dir} {masks} {cfg.out}/results/{mask_set}/{name.lower()} "
            f"{option} {value}" + (f" --device {cfg.device}" if option == "--checkpoint" else "")
            for name, (option, value) in methods.items()
        ),
    )
    for name, (option, value) in methods.items():
        preds[name] = cfg.out / "results" / mask_set / name.lower()
        inpainter: Any = value
        if option == "--checkpoint":
            inpainter = load_model(value, device=_device(cfg.device))[0]
        inpaint_folder(test_dir, masks, preds[name], inpainter)
    return preds


def _device(name: str) -> Any:
    from wmi.device import resolve_device

    return resolve_device(name)


def _html_name(mask_set: str) -> str:
    """demo-report.html for the paper's free-form masks, demo-report-center.html, ..."""
    return "demo-report.html" if mask_set == MASK_SETS[0] else f"demo-report-{mask_set}.html"


def _evaluate(cfg: DemoConfig, test_dir: Path, mask_set: str, preds: dict[str, Path],
              step: _Steps) -> Any:  # fmt: skip
    from wmi.eval.html_report import write_eval_report
    from wmi.eval.scoring import score_folders

    masks, html = cfg.out / "masks" / mask_set, cfg.out / _html_name(mask_set)
    step(
        f"eval ({mask_set} masks)",
        f"wmi eval --gt {test_dir} --masks {masks} "
        + " ".join(f"--pred {name}={folder}" for name, folder in preds.items())
        + f" --html {html}",
    )
    scored = score_folders(test_dir, masks, preds)
    write_eval_report(html, scored, title=f"wmi demo: {mask_set} masks", seed=cfg.seed)
    _preview(test_dir, masks, preds, cfg.out / f"preview-{mask_set}.png")
    return scored.results


def _preview(gt: Path, masks: Path, results: dict[str, Path], out: Path, rows: int = 6) -> None:
    """One row per test image (spread over the set): masked input, each method, truth."""
    from wmi.io import list_images, read_image, read_mask
    from wmi.io.preview import save_contact_sheet

    images = list_images(gt)
    tiles, labels = [], []
    for path in images[:: max(1, len(images) // rows)][:rows]:
        image, hole = read_image(path), read_mask(masks / f"{path.stem}.png")
        tiles.append(np.where(hole[..., None], 1.0, image))
        tiles += [read_image(d / path.name) for d in results.values()]
        tiles.append(image)
        labels += ["input", *results, "truth"]
    save_contact_sheet(out, tiles, columns=len(results) + 2, labels=labels, scale=2)


def run_demo(
    cfg: DemoConfig, notes: Console | None = None, results: Console | None = None
) -> dict[str, Any]:
    """Run the demo pipeline; returns ``{mask set: Table I results}``.

    Args:
        cfg: the settings.
        notes: where step titles, commands and progress go (default: stderr).
        results: where the Table I reports and the written files go (default: stdout).

    Raises:
        WmiError: the output folder is not empty (without ``overwrite``) or a step fails.
    """
    from wmi.eval.report import render, to_markdown
    from wmi.io import atomic_path

    notes = notes or Console(stderr=True)
    results = results or Console()
    _check(cfg)
    _claim_out_dir(cfg.out, cfg.overwrite)
    # data, masks, one training per network, inpaint and eval per mask set
    step = _Steps(notes, 2 + len(cfg.networks) + 2 * len(MASK_SETS))
    test_dir = _prepare_data(cfg, step)
    _make_masks(cfg, test_dir, step)
    _train_networks(cfg, step)
    tables: dict[str, Any] = {}
    for mask_set in MASK_SETS:
        preds = _inpaint(cfg, test_dir, mask_set, step)
        tables[mask_set] = _evaluate(cfg, test_dir, mask_set, preds, step)
        results.rule(f"{mask_set} masks")
        render(tables[mask_set], results)
    report = "\n\n".join(f"## {k} masks\n\n{to_markdown(v)}" for k, v in tables.items())
    with atomic_path(cfg.out / "demo-report.md") as tmp:
        tmp.write_text(f"# wmi demo\n\n{report}\n")
    html = ", ".join(str(cfg.out / _html_name(k)) for k in MASK_SETS)
    previews = ", ".join(str(cfg.out / f"preview-{k}.png") for k in MASK_SETS)
    results.print(f"reports: {cfg.out / 'demo-report.md'}, {html}", highlight=False)
    results.print(f"previews: {previews}", highlight=False)
    return tables
