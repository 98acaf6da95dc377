"""The bookkeeping of a run: its folder and log, Ctrl-C, the progress bar, distributed setup.

One run lives in one folder, RUN_DIR (see :mod:`wmi.training.loop`). Only rank 0 writes there.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as tdist

from wmi.device import resolve_device
from wmi.errors import WmiError
from wmi.io import atomic_path
from wmi.kinds import DEVICES
from wmi.procs import STOP_SIGNALS, folder_lock
from wmi.training.config import TrainConfig, check_choice, field_names

#: Files and folders of a run; a new run (or --overwrite) removes wmi's files among these.
RUN_FILES = ("config.json", "checkpoints", "metrics.jsonl", "train.log", "previews", "tensorboard")
#: The names wmi writes in each folder of a run (glob patterns): only these are ever removed,
#: and a folder of :data:`RUN_FILES` holding anything else is not wmi's.
OWNED = {
    "checkpoints": ("last.pt", "best.pt", ".last.*.tmp.pt", ".best.*.tmp.pt"),
    "previews": ("step-*.png", ".step-*.tmp.png"),
    "tensorboard": ("events.out.tfevents.*",),
}
#: The checkpoints whose presence makes a folder hold a run (one that cannot just be replaced).
CHECKPOINTS = ("last.pt", "best.pt")
#: The temporary files of an interrupted write (``wmi.io.atomic_path`` names), per folder.
STALE_TEMPS = {
    ".": (".config.*.tmp.json", ".metrics.*.tmp.jsonl"),
    "checkpoints": (".last.*.tmp.pt", ".best.*.tmp.pt"),
    "previews": (".step-*.tmp.png",),
}


# ------------------------------------------------------------------------ devices and ranks


@dataclass(frozen=True)
class Dist:
    """This process's place in a (torchrun) run: rank, number of processes, GPU index."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def main(self) -> bool:
        """Rank 0: the process that logs and saves."""
        return self.rank == 0


def setup_distributed(device_name: str) -> Dist:
    """Join the process group when started by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    owns = False
    if not tdist.is_initialized():
        cuda = device_name == "cuda" or (device_name == "auto" and torch.cuda.is_available())
        if cuda:
            torch.cuda.set_device(local_rank)
        tdist.init_process_group("nccl" if cuda else "gloo")
        owns = True
    return Dist(rank, world, local_rank, owns)


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` → cuda if available else cpu; on CUDA, this rank's GPU (under torchrun)."""
    check_choice("--device", name, DEVICES)
    device = resolve_device(name)
    return torch.device("cuda", local_rank) if device.type == "cuda" else device


def bf16_supported(device: torch.device) -> bool:
    """Whether ``--amp auto`` picks bf16 on ``device``."""
    return device.type == "cuda" and torch.cuda.is_bf16_supported()


def all_ranks_ok(dist: Dist, error: BaseException | None, device: torch.device) -> None:
    """Raise on every rank if any rank failed (so none waits forever in a collective)."""
    if dist.world > 1:
        flag = torch.tensor([0.0 if error is None else 1.0], device=device)
        tdist.all_reduce(flag)
        if error is None and flag.item() > 0:
            raise WmiError("another training process failed; see its error")
    if error is not None:
        raise error


# ------------------------------------------------------------------------------- run folder


def has_checkpoint(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a checkpoint of a run (``last.pt`` or ``best.pt``)."""
    return any((run_dir / "checkpoints" / name).exists() for name in CHECKPOINTS)


def _is_run_config(path: Path) -> bool:
    """Whether ``path`` is a config.json that ``wmi train`` wrote (a dict of its fields)."""
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(values, dict) and bool(values) and set(values) <= set(field_names())


def _not_wmis(run_dir: Path, resume: bool) -> Path | None:
    """The first entry of RUN_DIR's run files that ``wmi train`` did not write, or None.

    A link among them or among the files of wmi's names counts (wmi never writes through
    one). For a new run (which removes an earlier run's files) so does a config.json that is
    not a run configuration, logs without one, and any file in ``checkpoints/``,
    ``previews/`` or ``tensorboard/`` that is not named as wmi names its files
    (:data:`OWNED`); ``--resume`` removes nothing and leaves those alone.
    """
    config = run_dir / "config.json"
    for name in RUN_FILES:
        path = run_dir / name
        if path.is_symlink():
            return path
        if not path.exists():
            continue
        if name in OWNED:
            if not path.is_dir():
                return path
            for child in sorted(path.iterdir()):
                owned = any(child.match(pattern) for pattern in OWNED[name])
                if child.is_symlink() and (owned or not resume):
                    return child
                if not resume and (not child.is_file() or not owned):
                    return child
        elif not path.is_file() or not (resume or _is_run_config(config)):
            return path
    return None


def check_run_dir(out: str | None, resume: bool, overwrite: bool) -> Path:
    """Check (without writing) that RUN_DIR can hold this run.

    A folder with the files of a run that saved no checkpoint (stopped by a bad mask file,
    killed in its first steps) is not "a run": a new run replaces those files without
    ``--overwrite``, as there is nothing to resume or lose. Files wmi did not write (a
    folder of the same names made by someone else, a link) are never replaced: the run is
    refused, with or without ``--overwrite``.

    Raises:
        WmiError: no --out, --out is a file, a run with a checkpoint is already there
            (without --resume or --overwrite), --resume with no checkpoint to continue from,
            or a file of a run's names that wmi did not write.
    """
    if out is None:
        raise WmiError("--out is required: the folder of this run (RUN_DIR)")
    run_dir = Path(out)
    if run_dir.exists() and not run_dir.is_dir():
        raise WmiError(f"--out {run_dir}: is a file, not a folder")
    if resume and overwrite:
        raise WmiError("--resume and --overwrite exclude each other")
    if resume:
        if not (run_dir / "checkpoints" / "last.pt").is_file():
            raise WmiError(f"--resume: {run_dir} holds no checkpoints/last.pt to continue from")
    elif not overwrite and has_checkpoint(run_dir):
        raise WmiError(
            f"--out {run_dir}: already holds a run; pass --resume to continue it or "
            "--overwrite to start over"
        )
    foreign = _not_wmis(run_dir, resume) if run_dir.is_dir() else None
    if foreign is not None:
        what = "is a link" if foreign.is_symlink() else "was not written by wmi train"
        raise WmiError(
            f"--out {run_dir}: {foreign} {what}; wmi does not replace or write through it "
            "(choose another --out, or move it away)"
        )
    return run_dir


def remove_stale_temps(run_dir: Path) -> list[Path]:
    """Remove the temporary files that a killed run left (``.last.*.tmp.pt`` and the like).

    Only wmi's own names (:data:`STALE_TEMPS`) are touched; the caller holds RUN_DIR's lock.

    Returns:
        the files removed.
    """
    removed = []
    for folder, patterns in STALE_TEMPS.items():
        for pattern in patterns:
            for path in (run_dir / folder).glob(pattern):
                if path.is_file():
                    path.unlink()
                    removed.append(path)
    return removed


def _check_writable(run_dir: Path) -> None:
    """Fail now, not at the first save, when a part of RUN_DIR cannot be written."""
    folders = [run_dir / "checkpoints"]  # made here: every run saves
    folders += [run_dir / "previews"] if (run_dir / "previews").is_dir() else []
    logs = [p for p in (run_dir / "train.log", run_dir / "metrics.jsonl") if p.is_file()]
    where = run_dir
    try:
        for where in folders:
            where.mkdir(exist_ok=True)
            with tempfile.TemporaryFile(dir=where):
                pass
        for where in logs:
            with open(where, "a", encoding="utf-8"):
                pass
    except OSError as exc:
        raise WmiError(f"{where}: cannot write there ({exc.strerror or exc})") from None


def prepare_run_dir(
    run_dir: Path, resume: bool, overwrite: bool, hold: contextlib.ExitStack
) -> None:
    """Make and lock RUN_DIR, check it again under the lock, remove what a stopped run left.

    Args:
        run_dir: the run folder.
        resume, overwrite: the run's options; a new run (not ``resume``) removes the files of
            an earlier run (only wmi's, :data:`OWNED`; :func:`check_run_dir` has allowed it).
        hold: keeps the lock on RUN_DIR until it closes (the end of the run), so a second
            ``wmi train`` on the same RUN_DIR is refused instead of mixing its files in.

    Raises:
        WmiError: another wmi train is writing RUN_DIR; RUN_DIR changed since it was checked;
            RUN_DIR, its ``checkpoints/`` or ``previews/`` folder, or its logs cannot be
            written (a read-only folder is found here, before the first step).
    """
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=run_dir):
            pass
    except OSError as exc:
        raise WmiError(f"--out {run_dir}: cannot write there ({exc.strerror or exc})") from None
    hold.enter_context(folder_lock(run_dir, "another wmi train is writing here"))
    check_run_dir(str(run_dir), resume, overwrite)  # a run that ended while this one started
    try:
        if not resume:
            for name in RUN_FILES:
                target = run_dir / name
                if name in OWNED and target.is_dir():
                    for child in target.iterdir():
                        child.unlink()  # all wmi's: check_run_dir said so
                elif target.is_file():
                    target.unlink()
        remove_stale_temps(run_dir)
    except OSError as exc:
        where = exc.filename or run_dir
        raise WmiError(f"{where}: cannot remove ({exc.strerror or exc})") from None
    _check_writable(run_dir)


def claim_run_dir(
    run_dir: Path,
    resume: bool,
    overwrite: bool,
    dist: Dist,
    device: torch.device,
    hold: contextlib.ExitStack,
) -> None:
    """:func:`prepare_run_dir` on rank 0; every rank raises if it failed."""
    error = None
    if dist.main:
        try:
            prepare_run_dir(run_dir, resume, overwrite, hold)
        except WmiError as exc:
            error = exc
    all_ranks_ok(dist, error, device)


def write_config(run_dir: Path, cfg: TrainConfig) -> None:
    """Write RUN_DIR/config.json, the effective configuration (atomically).

    Raises:
        WmiError: the file cannot be written (full disk), naming it.
    """
    path = run_dir / "config.json"
    try:
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(cfg.to_dict(), indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise WmiError(f"{path}: cannot write ({exc.strerror or exc})") from None


def truncate_metrics(path: Path, step: int) -> None:
    """Drop metrics lines written after the checkpoint a run resumes from (they are redone)."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                keep.append(line)
        except ValueError:
            continue  # a line cut short by a crash
    with atomic_path(path) as tmp:
        tmp.write_text("".join(f"{line}\n" for line in keep), encoding="utf-8")


class RunLog:
    """train.log, metrics.jsonl and stderr messages; silent on ranks other than 0."""

    def __init__(self, run_dir: Path, enabled: bool, echo: bool) -> None:
        self.enabled, self.echo = enabled, echo
        self.log_path, self.metrics_path = run_dir / "train.log", run_dir / "metrics.jsonl"
        self.console = None
        if enabled and echo:
            from rich.console import Console

            self.console = Console(stderr=True, highlight=False, soft_wrap=True)

    def info(self, message: str, echo: bool = True) -> None:
        """A line of train.log (and of stderr with the log's ``echo`` and this ``echo``)."""
        if not self.enabled:
            return
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        _append(self.log_path, f"{stamp} {message}\n")
        if self.console is not None and echo:
            self.console.print(message, markup=False)

    def metrics(self, record: dict[str, Any]) -> None:
        """A line of metrics.jsonl."""
        if self.enabled:
            _append(self.metrics_path, json.dumps(record, allow_nan=True) + "\n")


def _append(path: Path, text: str) -> None:
    """Append ``text`` to ``path``; a full disk or a link there is a WmiError naming the file.

    ``O_NOFOLLOW``: a log replaced by a link while the run goes on is not written through.
    """
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    try:
        with open(os.open(path, flags, 0o644), "a", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        if path.is_symlink():
            raise WmiError(f"{path}: is a link; wmi does not write through it") from None
        raise WmiError(f"{path}: cannot write ({exc.strerror or exc})") from None


# ------------------------------------------------------------------------ Ctrl-C, progress


class GracefulStop:
    """First Ctrl-C (SIGINT) or SIGTERM: stop after the current step, which then saves last.pt.

    torchrun passes the signal it got on to its workers (and kills them after a grace
    period); batch schedulers send SIGTERM before preemption. A second signal gets the
    handlers that were in place before (:func:`wmi.procs.stop_signals`' under the command
    line: it raises :class:`wmi.procs.Interrupted` at once), keeping the last saved
    checkpoint. Only installed in the main thread (Python delivers signals there).
    """

    def __init__(self) -> None:
        self.requested = False
        #: the signal that asked to stop (0: none)
        self.signum = 0
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in STOP_SIGNALS}
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested, self.signum = True, signum
        for stop, previous in self._previous.items():
            # SIG_DFL for SIGINT would not raise: Python's own Ctrl-C handler does
            default = signal.default_int_handler if stop == signal.SIGINT else signal.SIG_DFL
            signal.signal(stop, previous if previous is not None else default)

    def __exit__(self, *exc: Any) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)


def ignore_stop_signals(worker_id: int) -> None:
    """DataLoader worker init: Ctrl-C and ``kill`` of the group reach every process, but only
    the main process should act on them (a worker that died of one would abort the run
    unsaved; torch's workers exit by themselves when the main process is gone)."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


class ProgressBar:
    """A rich progress bar on stderr showing step, loss and images/s; a no-op when disabled."""

    def __init__(self, enabled: bool, total: int, start: int) -> None:
        self._bar = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("step"),
            MofNCompleteColumn(),
            BarColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[speed]} img/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._bar.start()
        self._bar.add_task("train", total=total, completed=start, loss="-", speed="-")

    def update(self, step: int, **fields: str) -> None:
        """Show ``step`` (and the ``loss`` and ``speed`` fields when given)."""
        if self._bar is not None:
            self._bar.update(0, completed=step, **fields)

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.stop()
