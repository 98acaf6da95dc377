"""Worker processes that never outlive the command that started them, and folder locks.

``ProcessPoolExecutor`` workers of a process killed with ``kill -9`` (or a default
``SIGTERM``) keep waiting for work forever, each holding its memory. wmi's pools are started
inside :func:`starting_workers` and with :func:`worker_init` as their initializer:

- each worker watches the parent's pid (a ``pidfd`` on Linux, else a 1-second poll) and exits
  as soon as the parent is gone;
- Ctrl-C belongs to the parent: it is blocked while the workers start (so a worker that is
  still importing does not print a ``KeyboardInterrupt`` traceback) and ignored in them.

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
    """Initializer of wmi's worker processes: ignore Ctrl-C, exit when ``parent`` exits.

    Pass it as ``initializer=worker_init, initargs=(os.getpid(),)``.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    watch_parent(parent)


@contextlib.contextmanager
def starting_workers() -> Iterator[None]:
    """Block Ctrl-C in this thread while worker processes are started inside the block.

    The workers inherit the blocked signal, so a Ctrl-C while they import cannot print their
    tracebacks; :func:`worker_init` then ignores it there. In the parent nothing is lost: a
    Ctrl-C during the block is delivered when it ends.
    """
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


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
