"""Kills, Ctrl-C and full disks against `wmi data prepare` and `wmi masks generate`, for real.

Each test runs the command line in a subprocess and does to it what a user or the system
would: kill -9, SIGTERM, SIGINT early, or a small tmpfs that fills up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc (Linux)"),
]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}


def _start(*args: object) -> subprocess.Popen[str]:
    """The command in a process group of its own, as a shell runs it (Ctrl-C reaches all)."""
    return subprocess.Popen(
        [sys.executable, "-m", "wmi", *map(str, args)],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _run(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wmi", *map(str, args)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _children(pid: int) -> set[int]:
    """Every descendant of ``pid`` (from /proc/PID/task/*/children)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*"):
            try:
                kids = {int(k) for k in (task / "children").read_text().split()}
            except OSError:
                continue
            todo += kids - found
            found |= kids
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


def _wait_for_workers(proc: subprocess.Popen[str], at_least: int, seconds: float = 60) -> set[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        kids = _children(proc.pid)
        if len(kids) >= at_least:
            return kids
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    raise AssertionError(f"no {at_least} worker processes after {seconds} s")


def _photos(folder: Path, count: int, size: int = 200) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        pixels = rng.integers(0, 256, (size, size + 40, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"p{i:03d}.png")
    return folder


def _assert_all_gone(pids: set[int], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while _alive(pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = _alive(pids)
    for pid in left:  # do not leave them behind even when the test fails
        os.kill(pid, signal.SIGKILL)
    assert not left, f"{len(left)} worker process(es) outlived their parent"


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_prepare_workers_exit_with_their_parent(tmp_path: Path, how: signal.Signals) -> None:
    src = _photos(tmp_path / "src", 300)
    proc = _start("data", "prepare", src, tmp_path / "out", "--workers", 2, "--shard-size", 20)
    workers = _wait_for_workers(proc, at_least=3)  # two decoders and the resource tracker
    proc.send_signal(how)
    proc.communicate(timeout=30)
    _assert_all_gone(workers | _children(proc.pid))


def test_masks_generate_workers_exit_with_their_parent_and_a_rerun_is_not_locked_out(
    tmp_path: Path,
) -> None:
    out = tmp_path / "masks"
    args = ("masks", "generate", out, "--kind", "irregular", "--count", 3000, "--size", 256)
    proc = _start(*args, "--workers", 2)
    workers = _wait_for_workers(proc, at_least=3)
    deadline = time.monotonic() + 60
    while not any(out.glob(".wmi-masks-*/*.png")) and time.monotonic() < deadline:
        time.sleep(0.1)  # killed in the middle of writing its staging folder
    proc.kill()
    proc.communicate(timeout=30)
    _assert_all_gone(workers)
    assert [p.name[:11] for p in out.iterdir()] == [".wmi-masks-"]  # what issue 15 found
    rerun = _run("masks", "generate", out, "--kind", "box", "--count", 3, "--size", 32)
    assert rerun.returncode == 0, rerun.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "000000.png", "000001.png", "000002.png", "manifest.csv", "preview.png"
    ]  # fmt: skip


def test_ctrl_c_while_the_workers_start_prints_no_traceback(tmp_path: Path) -> None:
    # enough masks that the run cannot end before the Ctrl-C (free-form masks are fast now)
    args = ("masks", "generate", tmp_path / "m", "--kind", "freeform", "--count", 100_000)
    proc = _start(*args, "--size", 512, "--workers", 2)
    _wait_for_workers(proc, at_least=3)  # started, still importing
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert "interrupted" in err
    assert not (tmp_path / "m").exists()  # it made the folder and removed it


def _mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir()
    if os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True)  # fmt: skip
    return done.returncode == 0


def test_prepare_on_a_full_disk_is_one_error_line_with_complete_shards_kept(
    tmp_path: Path,
) -> None:
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "3m"):
        pytest.skip("needs root to mount a small tmpfs")
    try:
        src = _photos(tmp_path / "src", 400)
        out = disk / "out"
        done = _run("data", "prepare", src, out, "--size", 64, "--shard-size", 20,
                    "--workers", 0)  # fmt: skip
        assert done.returncode == 2, (done.returncode, done.stderr)  # it was 139, a segfault
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {out}/train-"), done.stderr
        assert "no space left on device" in lines[0]
        from wmi.data import find_shards, shard_info

        shards = find_shards(out, "train")
        assert shards and all(shard_info(p).count == 20 for p in shards)
        assert not list(out.glob(".*"))  # no temporary file left
    finally:
        subprocess.run(["umount", str(disk)], check=False)
