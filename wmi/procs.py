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

Only the standard library is imported here.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from wmi.errors import WmiError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory folder locks
    fcntl = None  # type: ignore[assignment]

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
