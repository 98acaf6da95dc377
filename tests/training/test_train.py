"""wmi train: the loop, exact resume, checkpoints, Ctrl-C, NaN, bad input, DDP on gloo."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import Dataset

from wmi.errors import WmiError
from wmi.models.loading import load_model
from wmi.training.config import TrainConfig, resume_config
from wmi.training.loop import train
from wmi.training.losses import VGG16Features
from wmi.training.state import make_model
from wmi.training.step import lr_at


class Pairs(Dataset):
    """Fixed random images with a box hole each: (image (3, S, S) in [0, 1], validity (1, S, S)).

    ``interrupt_at``: send this process SIGINT (Ctrl-C) when item number ``interrupt_at`` is
    fetched; ``nan_from``: items fetched from then on are NaN; ``delay``: seconds per item.
    """

    def __init__(
        self, n: int, size: int, seed: int = 0, interrupt_at=None, nan_from=None, delay=0.0
    ):
        g = torch.Generator().manual_seed(seed)
        self.images = torch.rand(n, 3, size, size, generator=g)
        self.masks = torch.ones(n, 1, size, size)
        for i in range(n):
            top, left = (i * 3) % (size // 2), (i * 5) % (size // 2)
            self.masks[i, :, top : top + size // 3, left : left + size // 3] = 0
        self.fetched = 0
        self.interrupt_at, self.nan_from, self.delay = interrupt_at, nan_from, delay

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        self.fetched += 1
        time.sleep(self.delay)
        if self.fetched == self.interrupt_at:
            os.kill(os.getpid(), 2)  # SIGINT, as Ctrl-C sends it
        image = self.images[i]
        if self.nan_from is not None and self.fetched >= self.nan_from:
            image = torch.full_like(image, float("nan"))
        return image, self.masks[i]


def _cfg(out: Path, **kw) -> TrainConfig:
    base = dict(
        out=str(out),
        size=32,
        layers=4,
        base_channels=4,
        batch_size=2,
        steps=4,
        workers=0,
        val_every=100,
        save_every=100,
        log_every=1,
        perceptual="none",
    )
    return TrainConfig(**{**base, **kw})


def _run(cfg: TrainConfig, data: Dataset | None = None, val: Dataset | None = None, **kw):
    data = data if data is not None else Pairs(6, cfg.size)
    return train(cfg, train_set=data, val_set=val, progress=False, echo=False, **kw)


def _metrics(run: Path, kind: str = "train") -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def _state(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def _assert_same_tensors(a, b) -> None:
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_same_tensors(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same_tensors(x, y)
    else:
        assert a == b


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory) -> Path:
    """A randomly initialized VGG16 (to pool3) saved with torchvision's key names."""
    path = tmp_path_factory.mktemp("vgg") / "vgg16-random.pth"
    with torch.random.fork_rng():
        torch.manual_seed(0)
        state = VGG16Features().features.state_dict()
    torch.save({f"features.{k}": v for k, v in state.items()}, path)
    return path


# ---------------------------------------------------------------------------------------------
# Training


def test_overfitting_one_batch_lowers_the_hole_loss(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path / "run", size=64, layers=4, base_channels=4, steps=50, lr=2e-3)
    cfg.lr_final = 2e-3
    result = _run(cfg, Pairs(2, 64))  # one batch: every step sees the same two images
    assert result.status == "done" and result.step == 50
    hole = [r["hole"] for r in _metrics(tmp_path / "run")]
    assert len(hole) == 50
    assert hole[-1] < hole[0] / 4, (hole[0], hole[-1])


def test_run_dir_layout_validation_previews_and_checkpoint_round_trip(
    tmp_path: Path, vgg_file: Path
) -> None:
    run = tmp_path / "run"
    cfg = _cfg(run, steps=4, val_every=2, save_every=2, log_every=2, vgg_weights=str(vgg_file))
    cfg.perceptual = "vgg16"
    result = _run(cfg, Pairs(6, 32), Pairs(3, 32, seed=9))
    saved = json.loads((run / "config.json").read_text())
    assert saved["norm"] == "weighted" and saved["amp"] == "off" and saved["lr"] == 5e-4
    assert saved["device"] == "cpu" and saved["steps"] == 4

    train_lines = _metrics(run)
    assert [r["step"] for r in train_lines] == [2, 4]
    for key in ("total", "valid", "hole", "perceptual", "style_out", "style_comp", "tv"):
        assert all(np.isfinite(r[key]) for r in train_lines), key
    assert all(r["images_per_s"] > 0 and r["lr"] > 0 for r in train_lines)
    assert train_lines[-1]["lr"] == pytest.approx(lr_at(3, 4, 5e-4, 1e-5))
    val = _metrics(run, "val")
    assert [r["step"] for r in val] == [2, 4] and all(r["images"] == 3 for r in val)
    assert all(r["l1"] > 0 and r["l2"] > 0 and np.isfinite(r["psnr"]) for r in val)
    assert all(0 < r["ssim"] <= 1 and r["tv"] > 0 for r in val)  # wmi.eval.metrics.hole_metrics
    assert result.best["l1"] == min(r["l1"] for r in val)

    sheet = Image.open(run / "previews" / "step-00000004.png")
    assert sheet.size == (4 * 32 + 5 * 2, 3 * 32 + 4 * 2)  # 3 images × (input, out, comp, gt)

    payload = _state(run / "checkpoints" / "last.pt")  # weights_only: no code runs
    assert payload["step"] == 4 and payload["config"] == saved
    assert payload["loader"] == {"epoch": 1, "position": 1}  # 3 steps per epoch
    assert {"optimizer", "scheduler", "scaler", "rng", "best", "model"} <= payload.keys()
    model, info = load_model(run / "checkpoints" / "last.pt")
    assert model.conv_kind == "weighted" and model.layers == 4 and not model.training
    assert info.amp == "off" and info.step == 4 and info.config == saved
    best = _state(run / "checkpoints" / "best.pt")
    assert best["step"] == result.best["step"]
    assert not list(run.rglob(".*.tmp*"))  # atomic writes leave nothing behind


def test_ctrl_c_saves_and_resume_is_exact(tmp_path: Path, vgg_file: Path) -> None:
    # 6 images, batch 2: 3 steps per epoch, so 7 steps cross two epoch boundaries.
    kw = dict(steps=7, save_every=3, vgg_weights=str(vgg_file), perceptual="vgg16")
    straight = _run(_cfg(tmp_path / "a", **kw))
    assert straight.status == "done"

    # Ctrl-C while step 4 fetches its batch: step 4 completes, last.pt is saved, status says so.
    cfg = _cfg(tmp_path / "b", **kw)
    stopped = _run(cfg, Pairs(6, 32, interrupt_at=7))
    assert stopped.status == "interrupted" and stopped.step == 4
    assert _state(tmp_path / "b" / "checkpoints" / "last.pt")["loader"] == {
        "epoch": 1,
        "position": 1,
    }
    resumed = _run(cfg, resume=True)
    assert resumed.status == "done" and resumed.step == 7

    a = _state(tmp_path / "a" / "checkpoints" / "last.pt")
    b = _state(tmp_path / "b" / "checkpoints" / "last.pt")
    _assert_same_tensors(a["model"], b["model"])  # weights and BN running statistics
    _assert_same_tensors(a["optimizer"], b["optimizer"])
    assert a["loader"] == b["loader"] and a["step"] == b["step"] == 7
    # The metrics log reads as one run: each step once, with the same losses.
    la, lb = _metrics(tmp_path / "a"), _metrics(tmp_path / "b")
    assert [r["step"] for r in lb] == list(range(1, 8))
    for x, y in zip(la, lb, strict=True):
        assert x["total"] == y["total"] and x["lr"] == y["lr"]


def test_loader_workers_do_not_change_the_run(tmp_path: Path) -> None:
    # Persistent worker processes across two epoch boundaries give the same batches, in the
    # same order, as loading in the main process.
    _run(_cfg(tmp_path / "w0", steps=7, workers=0))
    _run(_cfg(tmp_path / "w2", steps=7, workers=2))
    a = _state(tmp_path / "w0" / "checkpoints" / "last.pt")
    b = _state(tmp_path / "w2" / "checkpoints" / "last.pt")
    _assert_same_tensors(a["model"], b["model"])


class EpochPairs(Pairs):
    """Pairs that records the epochs it is told about, like wmi.data.InpaintingDataset."""

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.epochs: list[int] = []

    def set_epoch(self, epoch: int) -> None:
        self.epochs.append(epoch)


def test_epochs_drop_the_last_partial_batch_and_set_the_dataset_epoch(tmp_path: Path) -> None:
    data = EpochPairs(7, 32)  # batch 2: 3 full steps per epoch, one image left out each time
    result = _run(_cfg(tmp_path / "run", steps=None, epochs=2), data)
    assert result.step == 6 and data.epochs == [0, 1]
    assert data.fetched == 12


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path / "run", steps=10, save_every=2)
    with pytest.raises(WmiError, match=r"loss is nan at step 4: training stopped; .*last.pt keeps"):
        _run(cfg, Pairs(6, 32, nan_from=7))  # step 4 fetches items 7 and 8
    payload = _state(tmp_path / "run" / "checkpoints" / "last.pt")
    assert payload["step"] == 2
    assert all(torch.isfinite(v).all() for v in payload["model"].values() if v.is_floating_point())


def test_finetune_freezes_encoder_norms_at_pconv_lr(tmp_path: Path) -> None:
    _run(_cfg(tmp_path / "base", steps=2, conv="partial"))
    source = _state(tmp_path / "base" / "checkpoints" / "last.pt")["model"]
    ckpt = str(tmp_path / "base" / "checkpoints" / "last.pt")
    _run(_cfg(tmp_path / "ft", steps=3, conv="partial", finetune=ckpt))
    tuned = _state(tmp_path / "ft" / "checkpoints" / "last.pt")
    assert tuned["config"]["lr"] == tuned["config"]["lr_final"] == 5e-5
    assert all(r["lr"] == 5e-5 for r in _metrics(tmp_path / "ft"))
    enc_norm = [k for k in source if k.startswith("encoder.") and ".norm." in k]
    assert any(k.endswith("running_mean") for k in enc_norm)
    for key in enc_norm:  # statistics and affine parameters untouched
        assert torch.equal(tuned["model"][key], source[key]), key
    dec_norm = [k for k in source if k.startswith("decoder.") and k.endswith("running_mean")]
    assert any(not torch.equal(tuned["model"][k], source[k]) for k in dec_norm)
    conv = [k for k in source if k.startswith("encoder.") and ".conv." in k]
    assert any(not torch.equal(tuned["model"][k], source[k]) for k in conv)

    with pytest.raises(WmiError, match="the checkpoint's network differs: conv=partial"):
        _run(_cfg(tmp_path / "ft2", steps=1, conv="weighted", finetune=ckpt))
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(WmiError, match="foreign.pt: not a wmi checkpoint"):
        _run(_cfg(tmp_path / "ft3", steps=1, finetune=str(tmp_path / "foreign.pt")))
    assert not (tmp_path / "ft2").exists() and not (tmp_path / "ft3").exists()


# ---------------------------------------------------------------------------------------------
# Bad input: one line, nothing of an old run changed


def _snapshot(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


def test_bad_input_leaves_old_runs_alone(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _run(_cfg(run, steps=1))
    before = _snapshot(run)

    with pytest.raises(WmiError, match="already holds a run; pass --resume .* or --overwrite"):
        _run(_cfg(run, steps=1))
    with pytest.raises(WmiError, match=r"--size 40 is not a multiple of 2\*\*layers = 16"):
        _run(_cfg(run, size=40), overwrite=True)
    with pytest.raises(WmiError, match="exactly one of --steps N and --epochs N"):
        _run(_cfg(run, epochs=2), overwrite=True)
    with pytest.raises(WmiError, match="--resume continues the run as it was configured: --lr"):
        resume_config(run, {"lr": 0.1, "workers": 3})
    assert resume_config(run, {"workers": 3}).workers == 3
    with pytest.raises(WmiError, match="--conv 'dilated': expected one of"):
        _run(_cfg(run, conv="dilated"), overwrite=True)
    assert _snapshot(run) == before

    (run / "checkpoints" / "last.pt").write_bytes(b"garbage")
    with pytest.raises(WmiError, match="last.pt: not a readable wmi checkpoint"):
        _run(_cfg(run, steps=1), resume=True)
    assert (run / "checkpoints" / "last.pt").read_bytes() == b"garbage"

    with pytest.raises(WmiError, match="holds no checkpoints/last.pt"):
        _run(_cfg(tmp_path / "empty", steps=1), resume=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(WmiError, match="file: is a file, not a folder"):
        _run(_cfg(tmp_path / "file", steps=1))
    with pytest.raises(WmiError, match="cannot write there"):
        _run(_cfg(tmp_path / "file" / "run", steps=1))
    with pytest.raises(WmiError, match="fewer than one step needs"):
        _run(_cfg(tmp_path / "small", batch_size=4), Pairs(3, 32))
    assert not (tmp_path / "small").exists() and not (tmp_path / "empty").exists()


def test_overwrite_replaces_only_the_run_files(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _run(_cfg(run, steps=2))
    (run / "notes.txt").write_text("mine")
    _run(_cfg(run, steps=1), overwrite=True)
    assert (run / "notes.txt").read_text() == "mine"
    assert [r["step"] for r in _metrics(run)] == [1]


def test_model_init_is_seeded_without_touching_global_rng(tmp_path: Path) -> None:
    state = torch.get_rng_state()
    a, b = make_model(_cfg(tmp_path)), make_model(_cfg(tmp_path))
    c = make_model(_cfg(tmp_path, seed=1))
    assert torch.equal(torch.get_rng_state(), state)
    pa, pb, pc = (next(m.parameters()) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


# ---------------------------------------------------------------------------------------------
# Multi-process (DDP on gloo)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, cfg: TrainConfig) -> None:
    # What torchrun sets; train() then joins the process group itself.
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    train(cfg, train_set=Pairs(8, 32), progress=False, echo=False)


@pytest.mark.slow
def test_ddp_gloo_two_processes_match_one_process_with_twice_the_batch(tmp_path: Path) -> None:
    # No batch statistics (norm none), so 2 ranks × batch 2 must equal 1 process × batch 4:
    # the sampler gives the union of the ranks' batches to the single process, and DDP
    # averages the gradients of the two per-rank means.
    kw = dict(steps=3, conv="plain", norm="none", lr=1e-4, lr_final=1e-4)
    ddp = _cfg(tmp_path / "ddp", batch_size=2, **kw)
    torch.multiprocessing.spawn(_ddp_worker, args=(2, _free_port(), ddp), nprocs=2, join=True)
    single = _cfg(tmp_path / "one", batch_size=4, **kw)
    _run(single, Pairs(8, 32))

    a = _state(tmp_path / "ddp" / "checkpoints" / "last.pt")
    b = _state(tmp_path / "one" / "checkpoints" / "last.pt")
    for key in b["model"]:
        torch.testing.assert_close(a["model"][key], b["model"][key], rtol=1e-4, atol=2e-6)
    la, lb = _metrics(tmp_path / "ddp"), _metrics(tmp_path / "one")
    assert [r["step"] for r in la] == [1, 2, 3]  # rank 0 alone writes the log
    for x, y in zip(la, lb, strict=True):
        assert x["total"] == pytest.approx(y["total"], rel=1e-5)


# ---------------------------------------------------------------------------------------------
# Command line


def _cli(*args: str):
    from typer.testing import CliRunner

    from wmi.cli import app

    return CliRunner().invoke(app, ["train", *args])


def _one_line_error(result, text: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and text in lines[0], result.output
    assert "Traceback" not in result.output


def test_cli_help_and_bad_input(tmp_path: Path) -> None:
    result = _cli("--help")
    assert result.exit_code == 0
    for flag in ("--data", "--out", "--conv", "--masks", "--steps", "--epochs", "--lr-final",
                 "--finetune", "--amp", "--compile", "--channels-last", "--device", "--workers",
                 "--val-every", "--save-every", "--resume", "--overwrite", "--seed",
                 "--vgg-weights", "--perceptual", "--config"):  # fmt: skip
        assert flag in result.output, flag
    out, nowhere = str(tmp_path / "run"), str(tmp_path / "nowhere")
    _one_line_error(
        _cli("--data", nowhere, "--out", out, "--steps", "1", "--size", "100", "--layers", "6"),
        "--size 100 is not a multiple of 2**layers = 64 (--layers 6); use --size 128",
    )
    _one_line_error(
        _cli("--data", str(tmp_path / "nowhere"), "--out", out, "--steps", "1"),
        "nowhere: no such directory",
    )
    _one_line_error(_cli("--out", out, "--resume"), "holds no checkpoints/last.pt")
    _one_line_error(
        _cli("--data", nowhere, "--out", out, "--steps", "2", "--epochs", "1"), "exactly one of"
    )
    (tmp_path / "c.toml").write_text("batch = 3\n")
    _one_line_error(_cli("--config", str(tmp_path / "c.toml")), "unknown option 'batch'")
    assert not (tmp_path / "run").exists()


_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from test_train import Pairs, _cfg
from wmi.training.loop import train
cfg = _cfg({out!r}, steps=100000, workers=2, save_every=100000)
# Slow items: the main process mostly waits for the workers when Ctrl-C comes.
result = train(cfg, train_set=Pairs(64, 32, delay=0.05), progress=False, echo=False)
print(result.status, result.step)
"""


@pytest.mark.slow
def test_ctrl_c_to_the_process_group_with_loader_workers_saves(tmp_path: Path) -> None:
    # What a terminal does on Ctrl-C: SIGINT to every process of the foreground group, the
    # loader's worker processes included. The run must stop after a step and save last.pt.
    import signal
    import subprocess
    import sys

    out = tmp_path / "run"
    code = _SCRIPT.format(tests=str(Path(__file__).parent), out=str(out))
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            metrics = out / "metrics.jsonl"
            if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:
                break
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, stderr
    status, step = stdout.split()
    assert status == "interrupted" and int(step) >= 3
    assert _state(out / "checkpoints" / "last.pt")["step"] == int(step)


# ---------------------------------------------------------------------------------------------
# With shards from wmi data prepare


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    """32×32 shards (train 8, val 4, test 4) of random-noise images, via wmi.data.prepare."""
    from wmi.data import prepare

    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    for i in range(16):
        pixels = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"img{i:02d}.png")
    prepare(root, root / "shards", size=32, preset="plain", split=(0.5, 0.25, 0.25), workers=0)
    return root / "shards"


_SMALL = ("--size", "32", "--layers", "4", "--base-channels", "4", "--batch-size", "2",
          "--workers", "0", "--no-progress")  # fmt: skip


def test_cli_trains_on_shards_with_freeform_masks(tmp_path: Path, shards: Path) -> None:
    out = tmp_path / "run"
    args = ("--data", str(shards), "--out", str(out), *_SMALL, "--perceptual", "none")
    result = _cli(*args, "--steps", "3", "--val-every", "3")
    assert result.exit_code == 0, result.output
    assert "trained 3 steps" in result.output and "best hole L1" in result.output
    val = _metrics(out, "val")
    assert len(val) == 1 and val[0]["images"] == 4  # the whole val split, fixed masks
    assert (out / "previews" / "step-00000003.png").is_file()
    assert "WITHOUT the VGG16 perceptual and style terms" in (out / "train.log").read_text()
    # Resume with more workers continues (and --steps may be raised, not lowered).
    result = _cli("--out", str(out), "--resume", "--workers", "1")
    assert result.exit_code == 0, result.output
    _one_line_error(
        _cli("--out", str(out), "--resume", "--steps", "2"), "not lower it: it was 3, now 2"
    )


def test_cli_data_errors_are_one_line(tmp_path: Path, shards: Path, monkeypatch) -> None:
    out = str(tmp_path / "run")
    (tmp_path / "empty").mkdir()
    _one_line_error(
        _cli("--data", str(tmp_path / "empty"), "--out", out, "--steps", "1", *_SMALL),
        "no training shards (train-*.h5)",
    )
    _one_line_error(
        _cli("--data", str(shards), "--out", out, "--steps", "1", *_SMALL[2:], "--size", "64"),
        "prepared with --size 32, not 64",
    )
    _one_line_error(
        _cli("--data", str(shards), "--out", out, "--steps", "1", *_SMALL, "--masks", "nomasks"),
        "nomasks: no such mask folder",
    )
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    result = _cli("--data", str(shards), "--out", out, "--steps", "1", *_SMALL)
    _one_line_error(result, "VGG16 weights not found: no ")
    assert "--perceptual none" in result.output
    assert not (tmp_path / "run").exists()


class _FreeformThenCtrlC:
    """wmi.masks free-form training masks; sends SIGINT at call number ``at`` (0 = never)."""

    def __init__(self, at: int = 0) -> None:
        self.at, self.calls = at, 0

    def __call__(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        from wmi.masks import freeform

        self.calls += 1
        if self.calls == self.at:
            os.kill(os.getpid(), 2)
        return freeform(height, width, rng, training=True)


@pytest.mark.slow
def test_resume_is_exact_with_the_shard_loader(tmp_path: Path, shards: Path) -> None:
    from wmi.data import InpaintingDataset, find_shards

    def data(at: int = 0) -> InpaintingDataset:
        paths = find_shards(shards, "train")
        return InpaintingDataset(paths, _FreeformThenCtrlC(at), size=32, augment=True, seed=3)

    kw = dict(steps=10, seed=3, data=str(shards))  # 8 images: 4 steps per epoch
    _run(_cfg(tmp_path / "a", **kw), data())
    cfg = _cfg(tmp_path / "b", **kw)
    assert _run(cfg, data(at=11)).status == "interrupted"  # during step 6, in epoch 1
    assert _run(cfg, data(), resume=True).step == 10
    a = _state(tmp_path / "a" / "checkpoints" / "last.pt")
    b = _state(tmp_path / "b" / "checkpoints" / "last.pt")
    _assert_same_tensors(a["model"], b["model"])
    assert [r["total"] for r in _metrics(tmp_path / "a")] == [
        r["total"] for r in _metrics(tmp_path / "b")
    ]
