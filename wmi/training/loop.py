"""Training: the paper's recipe for every network of Table I, on one device or many.

``train(TrainConfig(...))`` is what ``wmi train`` runs. This module is the loop, read top to
bottom: :func:`train` → :func:`_prepare` (check, build, restore) → :func:`_loop` (one step
per batch, logging, validation, checkpoints). The pieces live in :mod:`wmi.training`. One
run lives in one folder, RUN_DIR::

    config.json              the effective configuration (file defaults + flags, autos resolved)
    checkpoints/last.pt      everything needed to continue exactly (see save_state)
    checkpoints/best.pt      the same, at the validation with the lowest hole L1
    metrics.jsonl            one JSON object per log line: loss terms, lr, images/s; validations
    train.log                the human-readable log
    previews/step-NNNNNNNN.png   masked input | output | composite | ground truth, per validation
    tensorboard/             the same scalars and previews for TensorBoard (when installed)

Each ``--arch`` (``wmi.kinds.ARCHS``) brings its network, loss, Adam settings and step; the
loop calls the step once per training step and it draws the batches it needs (DeepFill's
discriminator steps take their own; docs/models.md). The U-Net's recipe
(docs/paper.md#the-network-and-the-training-recipe): Adam β = (0.9, 0.999), ε = 1e-8; the
learning rate follows a cosine
from ``lr`` (5e-4) down to ``lr_final`` (1e-5) over the run (the paper says only "decreased
gradually"; a cosine spends longer near both ends than a linear ramp). ``finetune`` is PConv's
second stage: start from a trained checkpoint at a constant 5e-5 with the encoder's batch-norm
layers frozen (running statistics used, affine parameters fixed).

Multi-GPU: under ``torchrun`` the model is wrapped in DistributedDataParallel; each rank
normalizes with the statistics of its own batch of ``batch_size`` (the paper's batch of 25 per
GPU, so normalization behaves as in the paper whatever the GPU count) and rank 0's running
statistics are broadcast to the others at every forward (DDP's ``broadcast_buffers``).
docs/training.md explains the choice.
"""

from __future__ import annotations

import contextlib
import gc
import math
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as tdist
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from wmi.device import amp_dtype
from wmi.errors import WmiError
from wmi.kinds import ARCHS, PERCEPTUAL
from wmi.models.checkpoint import unwrap
from wmi.registry import load
from wmi.training.config import (
    TrainConfig,
    bn_momentum_warning,
    resolve_bn_momentum,
    resolve_config,
)
from wmi.training.loader import (
    Batches,
    check_train_size,
    open_datasets,
    to_device,
    val_loader,
)
from wmi.training.run import (
    Dist,
    GracefulStop,
    ProgressBar,
    RunLog,
    bf16_supported,
    check_run_dir,
    claim_run_dir,
    pick_device,
    setup_distributed,
    truncate_metrics,
    write_config,
)
from wmi.training.state import (
    Optimization,
    Schedule,
    TrainState,
    freeze_encoder_norms,
    load_finetune_weights,
    load_state,
    make_loss,
    make_model,
    make_optimization,
    restore_schedule,
    restore_state,
    save_state,
    set_train_mode,
)
from wmi.training.step import Draw, StepParts
from wmi.training.tensorboard import MISSING, Board, tensorboard_installed
from wmi.training.validate import PREVIEW_LABELS, save_preview, validate


@dataclass
class TrainResult:
    """What :func:`train` did.

    Attributes:
        run_dir: the run folder.
        step: steps completed (the step of last.pt).
        status: "done" or "interrupted" (Ctrl-C or SIGTERM; last.pt saved).
        best: the best validation (``{"step", "l1", ...}``) or None.
        last_val: the last validation metrics or None.
        config: the effective configuration.
        rank: this process's rank (0 without torchrun); only rank 0 logs and saves.
    """

    run_dir: Path
    step: int
    status: str
    best: dict[str, Any] | None = None
    last_val: dict[str, Any] | None = None
    config: dict[str, Any] = field(default_factory=dict)
    rank: int = 0
    #: the signal that interrupted the run (``signal.SIGINT``, ``SIGTERM``); 0 when done
    stop_signal: int = 0


def train(
    cfg: TrainConfig,
    *,
    resume: bool = False,
    overwrite: bool = False,
    train_set: Dataset | None = None,
    val_set: Dataset | None = None,
    progress: bool = True,
    echo: bool = True,
) -> TrainResult:
    """Train an inpainting network as configured; see the module docstring for RUN_DIR.

    Args:
        cfg: the configuration (``resume_config`` builds it for ``--resume``).
        resume: continue ``cfg.out`` from ``checkpoints/last.pt``, exactly.
        overwrite: replace the run in ``cfg.out`` (its files only).
        train_set, val_set: datasets of ``(image (3, H, W) in [0, 1], mask (1, H, W) validity)``
            to use instead of the shards of ``cfg.data`` (tests, custom data).
        progress: show a progress bar on stderr.
        echo: print log lines to stderr (they always go to train.log).

    Returns:
        :class:`TrainResult`.

    Raises:
        WmiError: a bad option, data, checkpoint or RUN_DIR (nothing of an old run is changed),
            or a non-finite loss (the step is named; the last good checkpoint is kept).
    """
    dist = setup_distributed(cfg.device)
    run = None
    hold = contextlib.ExitStack()  # RUN_DIR's lock, held until the run ends
    try:
        run = _prepare(cfg, dist, resume, overwrite, train_set, val_set, echo, hold)
        _announce(run)
        stopped_by = _loop(run, progress and dist.main)
        status = "interrupted" if stopped_by else "done"
        if status == "done":
            run.log.info(f"finished {run.state.step} steps; checkpoints in {run.checkpoints}")
        state = run.state
        return TrainResult(
            run.run_dir,
            state.step,
            status,
            state.best,
            state.last_val,
            run.cfg.to_dict(),
            dist.rank,
            stopped_by,
        )
    finally:
        if run is not None:
            run.board.close()
            run.batches.close()
        hold.close()
        if dist.owns_group:
            run = None  # the DDP wrapper and its reducer go before their group
            _leave_group(sys.exc_info()[0] is None)


def _leave_group(finished: bool) -> None:
    """Destroy this process's group. After a run every rank finished, wait for all of them
    first: a rank that leaves while another still holds the group's connections is aborted
    by gloo's threads (SIGABRT, "terminate called without an active exception")."""
    if finished:
        tdist.barrier()
    gc.collect()  # DDP wrappers (their reducers use the group) before the group
    tdist.destroy_process_group()


@dataclass
class _Run:
    """Everything the loop works with; :func:`_prepare` builds it."""

    cfg: TrainConfig  # resolved: no "auto" or None left but data, finetune, vgg_weights
    dist: Dist
    device: torch.device
    run_dir: Path
    log: RunLog
    net: nn.Module  # the bare generator: validation and checkpoints
    model: nn.Module  # the same, wrapped for training (DDP, torch.compile)
    loss_fn: nn.Module  # the arch's loss (DeepFill's holds the discriminators)
    opt: Optimization
    step: Any  # the arch's training step: step(parts, draw) -> loss terms
    batches: Batches
    val_loader: DataLoader | None
    schedule: Schedule  # the lr of every step; its total is the run's length
    state: TrainState
    board: Board  # TensorBoard (a no-op when off)

    @property
    def total_steps(self) -> int:
        return self.schedule.total

    @property
    def checkpoints(self) -> Path:
        return self.run_dir / "checkpoints"

    @property
    def amp_dtype(self) -> torch.dtype | None:
        return amp_dtype(self.cfg.amp)

    def parts(self) -> StepParts:
        """What the arch's step works with."""
        return StepParts(
            self.net, self.model, self.loss_fn, self.opt.optimizer, self.opt.scaler,
            self.amp_dtype, self.opt.d_optimizer, ARCHS[self.cfg.arch].critic_steps,
        )  # fmt: skip


def _prepare(
    cfg: TrainConfig,
    dist: Dist,
    resume: bool,
    overwrite: bool,
    train_set: Dataset | None,
    val_set: Dataset | None,
    echo: bool,
    hold: contextlib.ExitStack,
) -> _Run:
    """Check everything that can fail on the user's input before writing anything, then build
    the model, optimizer and loaders and restore the state of a resumed run."""
    device = pick_device(cfg.device, dist.local_rank)
    cfg = resolve_config(cfg, device.type, bf16_supported(device))
    run_dir = check_run_dir(cfg.out, resume, overwrite)
    if train_set is None:
        train_set, val_set = open_datasets(cfg)
    check_train_size(train_set, cfg, dist)
    batches = Batches(train_set, cfg, dist, device)
    arch = ARCHS[cfg.arch]
    per_step = 1 + arch.critic_steps  # batches one step trains on (the critics take their own)
    total_steps = cfg.steps if cfg.steps is not None else cfg.epochs * batches.per_epoch // per_step
    cfg = resolve_bn_momentum(cfg, total_steps)
    loss_fn = make_loss(cfg, dist.world).to(device)
    net = make_model(cfg)
    if cfg.finetune:
        if not resume:  # a resumed fine-tuning run gets its weights from last.pt
            load_finetune_weights(net, cfg.finetune)
        freeze_encoder_norms(net)
    saved = load_state(run_dir / "checkpoints" / "last.pt", cfg) if resume else None
    schedule = Schedule.new(cfg.lr, cfg.lr_final, total_steps)
    if saved is not None:  # re-planned when --resume raised --steps
        schedule = restore_schedule(saved, total_steps)

    claim_run_dir(run_dir, resume, overwrite, dist, device, hold)  # the first write
    log = RunLog(run_dir, dist.main, echo)
    net.to(device)
    if cfg.channels_last:
        net.to(memory_format=torch.channels_last)
        loss_fn.to(memory_format=torch.channels_last)
    opt = make_optimization(net, loss_fn, cfg, device)
    state = TrainState()
    if saved is not None:
        state = restore_state(saved, net, opt, device, loss_fn)
        if dist.main:
            truncate_metrics(log.metrics_path, state.step)
    if dist.main:
        write_config(run_dir, cfg)
    set_train_mode(net, bool(cfg.finetune))
    model = net
    if dist.world > 1:
        # broadcast_buffers: rank 0's BN running statistics reach every rank at each forward.
        ids = [device.index] if device.type == "cuda" else None
        model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if cfg.compile:
        model, loss_fn = torch.compile(model), torch.compile(loss_fn)
    board_on = dist.main and cfg.tensorboard and tensorboard_installed()
    return _Run(
        cfg, dist, device, run_dir, log, net, model, loss_fn, opt, load(arch.step), batches,
        val_loader(val_set, cfg, dist), schedule, state, Board(run_dir, board_on, state.step),
    )  # fmt: skip


def _announce(run: _Run) -> None:
    """The first lines of train.log: what this run is."""
    cfg, log = run.cfg, run.log
    network = run.net.extra_repr().replace(", ", " ")
    log.info(
        f"{'resuming at' if run.state.step else 'training from'} step {run.state.step} of "
        f"{run.total_steps}: arch={cfg.arch} {network} masks={cfg.masks} "
        f"size={cfg.size} batch={cfg.batch_size}×{run.dist.world} device={run.device} "
        f"amp={cfg.amp} params={sum(p.numel() for p in run.net.parameters()):,} "
        f"lr {cfg.lr:g}→{cfg.lr_final:g}"
    )
    if run.opt.d_optimizer is not None:
        critics = sum(p.numel() for p in run.loss_fn.parameters() if p.requires_grad)
        log.info(f"discriminators: {critics:,} parameters, "
                 f"{ARCHS[cfg.arch].critic_steps} step(s) per generator step")  # fmt: skip
    if len(run.schedule.segments) > 1:
        first, lr, _ = run.schedule.segments[-1]
        log.info(f"run extended to {run.total_steps} steps: lr cosine re-planned from {lr:g} "
                 f"at step {first} to {cfg.lr_final:g}")  # fmt: skip
    warning = bn_momentum_warning(cfg, run.total_steps)
    if warning:
        log.info(f"warning: {warning}")
    if ARCHS[cfg.arch].takes_conv and PERCEPTUAL[cfg.perceptual].network is None:
        log.info("perceptual none: training WITHOUT the VGG16 perceptual and style terms")
    if cfg.finetune:
        log.info(f"fine-tuning {cfg.finetune}: encoder batch norm frozen")
    if run.val_loader is None and run.dist.main:
        log.info("no validation split (val-*.h5) or --val-images 0: validation skipped")
    if cfg.tensorboard and not run.board.enabled and run.dist.main:
        log.info(MISSING)


def _loop(run: _Run, progress: bool) -> int:
    """Train until ``total_steps`` or a stop request; returns the stop signal (0: done).

    On a rank that got no signal itself but stops with the others it is ``SIGTERM``.
    """
    cfg, state, total = run.cfg, run.state, run.total_steps
    names = unwrap(run.loss_fn).terms
    window = _Window(len(names))
    draw, parts = _drawer(run, window), run.parts()
    with GracefulStop() as stop, ProgressBar(progress, total, state.step) as bar:
        while state.step < total:
            lr = run.schedule.lr(state.step)
            for optimizer in run.opt.optimizers():
                for group in optimizer.param_groups:
                    group["lr"] = lr

            terms = run.step(parts, draw)  # the arch's step: its batches, losses, updates
            losses, stopping = _synchronize(terms, names, stop.requested, run.dist)
            if not math.isfinite(losses[0]):  # before anything is saved
                _nonfinite(losses[0], state.step + 1, run.checkpoints / "last.pt")
            state.step += 1

            window.add(losses)
            last = state.step == total
            if state.step % cfg.log_every == 0 or last:
                _log_train(run, window.flush(), names, lr, bar)
            else:
                bar.update(state.step)
            with window.paused():  # validation and saving do not count as speed
                if run.dist.main and (state.step % cfg.val_every == 0 or last):
                    _validate(run)
                if state.step % cfg.save_every == 0 or last or stopping:
                    _save(run, "last.pt")
            if stopping:  # Ctrl-C/SIGTERM on some rank: all stop here
                # the caller says it, from TrainResult, in its one line
                msg = f"interrupted at step {state.step}: saved checkpoints/last.pt"
                run.log.info(msg, echo=False)
                return stop.signum or signal.SIGTERM
    return 0


def _drawer(run: _Run, window: _Window) -> Draw:
    """The step's source of batches: the next batch of the loader, on the device.

    The loader position is part of the state (epoch e, batch ``position`` in it), advanced
    per batch drawn, so a resumed run continues with the very next batch.
    """
    state = run.state

    def draw() -> tuple[Tensor, Tensor]:
        if state.position == run.batches.per_epoch:
            state.epoch, state.position = state.epoch + 1, 0
        batch = run.batches.next(state.epoch, state.position)
        state.position += 1
        window.images += run.cfg.batch_size * run.dist.world
        return to_device(*batch, run.device, run.cfg.channels_last)

    return draw


def _synchronize(
    terms: dict[str, Tensor], names: Sequence[str], stop_requested: bool, dist: Dist
) -> tuple[list[float], bool]:
    """The loss terms averaged over ranks, and whether any rank was asked to stop.

    One host sync per step: both all-reduces are queued before either result is read.
    """
    losses = torch.stack([terms[k].detach().float() for k in names])
    if dist.world == 1:
        return losses.tolist(), stop_requested
    stop = losses.new_tensor([float(stop_requested)])
    tdist.all_reduce(losses)
    tdist.all_reduce(stop, op=tdist.ReduceOp.MAX)
    return (losses / dist.world).tolist(), bool(stop.item())


def _nonfinite(loss: float, step: int, last: Path) -> None:
    kept = f"; {last} keeps the last good state" if last.exists() else ""
    raise WmiError(f"loss is {loss} at step {step}: training stopped{kept}")


class _Window:
    """Loss sums, training images drawn (every batch of a step, the critics' included) and
    time since the last training log line (pauses left out of the speed)."""

    def __init__(self, terms: int) -> None:
        self._reset(terms)

    def _reset(self, terms: int) -> None:
        self.start, self.steps, self.sums = time.perf_counter(), 0, np.zeros(terms)
        self.images = 0

    def add(self, losses: list[float]) -> None:
        self.steps += 1
        self.sums += np.asarray(losses)

    def flush(self) -> tuple[list[float], float]:
        """``(mean of each term, images/s)`` over the window, and start a new one."""
        elapsed = time.perf_counter() - self.start
        speed = self.images / max(elapsed, 1e-9)
        means = (self.sums / self.steps).tolist()
        self._reset(len(means))
        return means, speed

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.start += time.perf_counter() - began


def _log_train(
    run: _Run, window: tuple[list[float], float], names: Sequence[str], lr: float, bar: ProgressBar
) -> None:
    means, speed = window
    state = run.state
    record = {"step": state.step, "kind": "train", "epoch": state.epoch, "lr": lr}
    record["images_per_s"] = speed
    record.update(zip(names, means, strict=True))
    run.log.metrics(record)
    scalars = {f"loss/{name}": value for name, value in zip(names, means, strict=True)}
    run.board.scalars(state.step, {**scalars, "train/lr": lr, "train/images_per_s": speed})
    bar.update(state.step, loss=f"{means[0]:.4f}", speed=f"{speed:.1f}")


def _validate(run: _Run) -> None:
    """Validate, log, save the preview, and save best.pt on a new lowest hole L1."""
    if run.val_loader is None:
        return
    state = run.state
    metrics, tiles = validate(
        run.net, run.val_loader, run.device, run.amp_dtype, run.cfg.channels_last
    )
    set_train_mode(run.net, bool(run.cfg.finetune))
    state.last_val = {"step": state.step, **metrics}
    run.log.metrics({"step": state.step, "kind": "val", **metrics})
    run.log.info(f"step {state.step} validation: " + _fmt(metrics))
    save_preview(run.run_dir / "previews" / f"step-{state.step:08d}.png", tiles)
    run.board.scalars(state.step, {f"val/{k}": v for k, v in metrics.items()})
    run.board.preview(state.step, tiles, PREVIEW_LABELS)
    if "l1" in metrics and (state.best is None or metrics["l1"] < state.best["l1"]):
        state.best = {"step": state.step, **metrics}
        _save(run, "best.pt")


def _save(run: _Run, name: str) -> None:
    if run.dist.main:
        save_state(
            run.checkpoints / name, run.model, run.opt, run.cfg, run.schedule, run.state,
            run.loss_fn,
        )  # fmt: skip


def _fmt(metrics: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4g}" for k, v in metrics.items())
