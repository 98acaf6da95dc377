"""Worker processes that never outlive the command that started them, and folder locks.

``ProcessPoolExecutor`` workers of a process killed with ``kill -9`` (or a default
``SIGTERM``) keep waiting for work forever, each holding its memory. wmi's pools are started
inside :func:`starting_workers` and with :func:`worker_init` as their initializer:

- each worker watches the parent's pid (a ``pidfd`` on Linux, else a 1-second poll) and exits
  as soon as the parent is gone;
- Ctrl-C and SIGTERM belong to the parent: they are blocked while the workers start (so a
  worker that is still importing does not print a ``KeyboardInterrupt`` traceback) and ignored
  in them.

:func:`stop_signals` makes SIGTERM take the path of Ctrl-C: inside it both raise
:class:`Interrupted` (a ``KeyboardInterrupt``), so every ``except KeyboardInterrupt`` that
saves what it can also runs on ``kill``, ``timeout`` or a batch scheduler's preemption, and
the command exits ``128 + signal`` (130, 143). Library code that stops early on a signal and
has saved something raises :class:`Interrupted` with a line saying what, so callers check
one exception and nothing downstream runs on an interrupted result.

:func:`folder_lock` keeps two runs from writing one folder at once (an advisory ``flock`` on
the folder itself, released by the kernel when the holder dies, so nothing stale is left).
:class:`Shard` is one part of a folder job split over machines (``--shard K/N``), and
:func:`shard_lock` lets the shards of one job write one folder at once.

Only the standard library is imported here.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import select
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from wmi.errors import WmiError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory folder locks
    fcntl = None  # type: ignore[assignment]

T = TypeVar("T")
#: The signals that stop a command: Ctrl-C and what ``kill``, ``timeout`` and schedulers send.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

#: Seconds between checks of the parent where no pidfd is available.
POLL_SECONDS = 1.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def watch_parent(pid: int) -> None:
    """End this process (exit status 1) as soon as process ``pid`` has exited.

    Starts a daemon thread that waits on a pidfd of ``pid`` (Linux 5.3+), or polls it every
    :data:`POLL_SECONDS` elsewhere. Exits at once if ``pid`` is already gone.
    """
    try:
        fd: int | None = os.pidfd_open(pid)
    except ProcessLookupError:
        os._exit(1)
    except (AttributeError, OSError):
        fd = None

    def wait() -> None:
        if fd is not None:
            select.select([fd], [], [])
        else:
            while _alive(pid):
                time.sleep(POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=wait, name="wmi-parent-watch", daemon=True).start()


def worker_init(parent: int) -> None:
    """Initializer of wmi's worker processes: ignore Ctrl-C and SIGTERM, exit when ``parent``
    exits (the parent decides what a stop signal means; a worker killed by one would break
    the pool before the parent could save anything).

    Pass it as ``initializer=worker_init, initargs=(os.getpid(),)``.
    """
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, set(STOP_SIGNALS))
    watch_parent(parent)


@contextlib.contextmanager
def starting_workers() -> Iterator[None]:
    """Block Ctrl-C and SIGTERM in this thread while worker processes start inside the block.

    The workers inherit the blocked signals, so a Ctrl-C while they import cannot print their
    tracebacks; :func:`worker_init` then ignores them there. In the parent nothing is lost: a
    signal during the block is delivered when it ends.
    """
    old = signal.pthread_sigmask(signal.SIG_BLOCK, set(STOP_SIGNALS))
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class Interrupted(KeyboardInterrupt):
    """A stop signal ended the work: raised where Ctrl-C raises ``KeyboardInterrupt``.

    Attributes:
        signum: the signal (``signal.SIGINT`` or ``signal.SIGTERM``).
        saved: one line for the user: what was kept and how to go on ("" when nothing was).
    """

    def __init__(self, signum: int = signal.SIGINT, saved: str = "") -> None:
        super().__init__(saved)
        self.signum = int(signum)
        self.saved = saved

    @property
    def exit_code(self) -> int:
        """The shell's status for a command ended by the signal: 130 (SIGINT), 143 (SIGTERM)."""
        return 128 + self.signum


def interrupted(exc: KeyboardInterrupt) -> Interrupted:
    """``exc`` as an :class:`Interrupted` (a plain ``KeyboardInterrupt`` is Ctrl-C)."""
    return exc if isinstance(exc, Interrupted) else Interrupted(signal.SIGINT)


def _raise_interrupted(signum: int, frame: object) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """Inside the block, SIGINT and SIGTERM raise :class:`Interrupted` in the main thread.

    A no-op outside the main thread (Python delivers signals there only). The handlers in
    place before are restored at the end; code inside may install its own (training stops
    after the current step) as long as it restores these.

    Example::

        with stop_signals():
            try:
                long_work()
            except KeyboardInterrupt as exc:
                sys.exit(interrupted(exc).exit_code)
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _raise_interrupted) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike[str], busy: str) -> Iterator[None]:
    """Hold an exclusive lock on the existing ``folder`` for the duration of the block.

    Args:
        folder: the folder to lock (``flock`` on the folder itself; no lock file is left).
        busy: what is said when another process holds the lock ("another wmi data prepare
            is writing here").

    Raises:
        WmiError: ``"{folder}: {busy}"`` when another process holds the lock.
    """
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(Path(folder), os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WmiError(f"{folder}: {busy}") from None
        yield
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------------ shards

#: Environment variable that gives the number of shards of a Kubernetes Indexed Job (set it
#: to the Job's ``completions``): Kubernetes gives each pod ``JOB_COMPLETION_INDEX`` only.
SHARD_COUNT_ENV = "WMI_SHARD_COUNT"


@dataclass(frozen=True)
class Shard:
    """Part ``index`` of ``count`` of a folder job (``--shard K/N``, ``K`` in ``0..N-1``).

    A file belongs to shard :func:`shard_of` its image's stem (a SHA-256 of the name), so the
    N shards of a job cover each file exactly once, and a file lands in the same shard on
    every machine and in every command, whatever else the folders hold: shard K of ``masks
    generate --for``, ``inpaint folder`` and ``eval`` see the same images, and one task can
    run all three without waiting for the others. Each shard holds about ``files / N`` of them,
    give or take the randomness of a hash (about ``sqrt(files / N)``).
    """

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise WmiError(f"--shard {self.index}/{self.count}: need 0 <= K < N")

    @property
    def whole(self) -> bool:
        """The one shard of an unsharded job (``0/1``)."""
        return self.count == 1

    def holds(self, name: str) -> bool:
        """Whether the file named ``name`` (an image's stem) belongs to this shard."""
        return self.whole or shard_of(name, self.count) == self.index

    def take(self, items: Sequence[T], key: Callable[[T], str]) -> list[T]:
        """The items of this shard, in their order (``key``: an item's image stem)."""
        return [item for item in items if self.holds(key(item))]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @classmethod
    def parse(cls, text: str | None, environ: Mapping[str, str] | None = None) -> Shard:
        """``"K/N"``, ``"auto"`` (from the scheduler's environment) or None (the whole job).

        ``auto`` reads a SLURM array task (``SLURM_ARRAY_TASK_ID`` minus
        ``SLURM_ARRAY_TASK_MIN``, of ``SLURM_ARRAY_TASK_COUNT``), else a Kubernetes Indexed
        Job (``JOB_COMPLETION_INDEX`` of :data:`SHARD_COUNT_ENV`).

        Raises:
            WmiError: malformed text, K not in 0..N-1, or ``auto`` outside such a job.
        """
        if text is None:
            return cls()
        env = os.environ if environ is None else environ
        if text == "auto":
            return cls._from_env(env)
        k, sep, n = text.partition("/")
        try:
            index, count = int(k), int(n)
        except ValueError:
            index = count = -1
        if not sep or count < 1:
            raise WmiError(f"--shard {text!r}: expected K/N (K in 0..N-1) or auto")
        return cls(index, count)

    @classmethod
    def _from_env(cls, env: Mapping[str, str]) -> Shard:
        def number(name: str) -> int:
            try:
                return int(env[name])
            except ValueError:
                raise WmiError(f"--shard auto: {name}={env[name]!r} is not a number") from None

        if "SLURM_ARRAY_TASK_ID" in env:
            if "SLURM_ARRAY_TASK_COUNT" not in env:
                raise WmiError("--shard auto: SLURM_ARRAY_TASK_COUNT is not set")
            first = number("SLURM_ARRAY_TASK_MIN") if "SLURM_ARRAY_TASK_MIN" in env else 0
            return cls(number("SLURM_ARRAY_TASK_ID") - first, number("SLURM_ARRAY_TASK_COUNT"))
        if "JOB_COMPLETION_INDEX" in env:
            if SHARD_COUNT_ENV not in env:
                raise WmiError(
                    f"--shard auto: JOB_COMPLETION_INDEX is set but {SHARD_COUNT_ENV} is not; "
                    "set it to the Job's completions"
                )
            return cls(number("JOB_COMPLETION_INDEX"), number(SHARD_COUNT_ENV))
        raise WmiError(
            "--shard auto: neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX is set; give K/N"
        )


def shard_of(name: str, count: int) -> int:
    """The shard (``0..count-1``) of the file named ``name``: its SHA-256 modulo ``count``."""
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % count


@contextlib.contextmanager
def shard_lock(folder: str | os.PathLike[str], shard: Shard, busy: str) -> Iterator[None]:
    """:func:`folder_lock` for the whole job, or the lock of one shard of it.

    The shards of one job may write ``folder`` at once: each holds the folder's lock shared
    and an exclusive lock on its own hidden ``.wmi-shard-K-of-N.lock`` file there. So two runs
    of one shard, or an unsharded run beside any shard, are refused with ``busy``.

    Raises:
        WmiError: ``"{folder}: {busy}"`` (with the shard) when the lock is held.
    """
    if shard.whole:
        with folder_lock(folder, busy):
            yield
        return
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    folder_fd = os.open(Path(folder), os.O_RDONLY | os.O_DIRECTORY)
    lock = Path(folder) / f".wmi-shard-{shard.index}-of-{shard.count}.lock"
    try:
        try:
            fcntl.flock(folder_fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WmiError(f"{folder}: {busy}") from None
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise WmiError(f"{folder}: {busy} (shard {shard})") from None
            yield
        finally:
            os.close(fd)
    finally:
        os.close(folder_fd)
