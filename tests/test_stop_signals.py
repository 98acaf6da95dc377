"""Ctrl-C (SIGINT) and SIGTERM stop every long command the same way: what can be resumed is
saved, one line says so, the exit status is 130 / 143, and nothing downstream runs.

The slow tests start real ``python -m wmi`` processes in their own session and signal the
whole group, as a terminal (Ctrl-C) or ``kill -TERM -PGID`` does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from wmi.cli.common import App
from wmi.procs import Interrupted, interrupted, stop_signals

ROOT = Path(__file__).resolve().parent.parent


def test_sigterm_raises_interrupted_inside_stop_signals() -> None:
    with pytest.raises(Interrupted) as caught, stop_signals():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises at the next bytecode, long before this ends
    assert caught.value.exit_code == 143
    assert interrupted(KeyboardInterrupt()).exit_code == 130
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # restored


def test_every_command_turns_interrupted_into_one_line_and_its_exit_status() -> None:
    app = App()

    @app.command()
    def work(sig: int = 15, saved: str = "") -> None:
        raise Interrupted(sig, saved)

    @app.command()
    def other() -> None:
        """Only so that "work" is a subcommand."""

    runner = CliRunner()
    term = runner.invoke(app, ["work", "--saved", "kept x.pt"])
    assert term.exit_code == 143
    assert term.output.splitlines() == ["interrupted: kept x.pt"]
    ctrl_c = runner.invoke(app, ["work", "--sig", "2"])
    assert ctrl_c.exit_code == 130 and ctrl_c.output.splitlines() == ["interrupted"]


class _Started:
    """A ``python -m wmi`` process in its own session whose stderr is read as it comes."""

    def __init__(self, cwd: Path, *args: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wmi", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.err: list[str] = []
        self.out: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(stream, lines), daemon=True)
            for stream, lines in ((self.proc.stderr, self.err), (self.proc.stdout, self.out))
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: object, lines: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            lines.append(line)

    def wait_for(self, ready: object, seconds: float = 180) -> None:
        """Wait until ``ready()`` is true; fail (and kill the group) if the process ends."""
        deadline = time.monotonic() + seconds
        while not ready():  # type: ignore[operator]
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"never got ready (rc {self.proc.returncode}):\n{''.join(self.err)}")
            time.sleep(0.1)

    def stop(self, how: signal.Signals) -> tuple[int, list[str]]:
        """Send ``how`` to the whole process group; the exit status and stderr's lines."""
        os.killpg(self.proc.pid, how)
        try:
            self.proc.wait(timeout=120)
        finally:
            self.kill()
        for reader in self._readers:
            reader.join(10)
        return self.proc.returncode, "".join(self.err).splitlines()

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def _lines_of(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from wmi.data import prepare

    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(root / f"{i}.png")
    prepare(root, root / "shards", size=32, preset="plain", split=(0.5, 0.25, 0.25), workers=0)
    return root / "shards"


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT])
def test_train_saves_last_pt_and_says_so_in_one_line(
    tmp_path: Path, shards: Path, how: signal.Signals
) -> None:
    # with loader workers (default --workers): a SIGTERM to the group once killed them and
    # ended the run with a DataLoader traceback and no checkpoint
    run = _Started(
        tmp_path, "train", "--data", str(shards), "--out", "run", "--steps", "100000",
        "--size", "32", "--layers", "3", "--base-channels", "8", "--batch-size", "2",
        "--workers", "2", "--perceptual", "none", "--no-tensorboard", "--no-progress",
        "--log-every", "1", "--val-every", "100000", "--save-every", "100000",
    )  # fmt: skip
    run.wait_for(lambda: _lines_of(tmp_path / "run" / "metrics.jsonl") >= 2)
    code, lines = run.stop(how)
    assert code == 128 + how, lines
    assert "Traceback" not in "\n".join(lines)
    said = [line for line in lines if "interrupted" in line]
    assert len(said) == 1 and said == lines[-1:], lines
    assert "saved checkpoints/last.pt" in said[0] and "--resume" in said[0]
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file()


@pytest.mark.slow
def test_demo_stops_at_the_first_network_and_makes_no_table(tmp_path: Path) -> None:
    demo = _Started(
        tmp_path, "demo", "--out", "d", "--steps", "100000", "--size", "32", "--layers", "5",
        "--crops", "3", "--device", "cpu",
    )  # fmt: skip
    wconv = tmp_path / "d" / "runs" / "wconv"
    demo.wait_for(lambda: (wconv / "train.log").exists())
    time.sleep(2)  # a few steps in
    code, lines = demo.stop(signal.SIGTERM)
    assert code == 143, lines
    assert "Traceback" not in "\n".join(lines)
    assert lines[-1].startswith("interrupted: WConv stopped at step"), lines
    assert "wmi train --resume --out" in lines[-1]
    assert sum("interrupted" in line for line in lines) == 1
    assert (wconv / "checkpoints" / "last.pt").is_file()
    # nothing downstream ran on the interrupted result
    assert not (tmp_path / "d" / "runs" / "pconv").exists()
    assert not (tmp_path / "d" / "results").exists()
    assert "Table I" not in "".join(demo.out) and not (tmp_path / "d" / "demo-report.md").exists()


@pytest.mark.slow
def test_masks_generate_with_workers_stops_on_sigterm_in_one_line(tmp_path: Path) -> None:
    args = ("masks", "generate", "m", "--kind", "freeform", "--count", "100000")
    gen = _Started(tmp_path, *args, "--size", "256", "--workers", "2")
    gen.wait_for(lambda: any((tmp_path / "m").glob(".wmi-masks-*/*.png")))
    code, lines = gen.stop(signal.SIGTERM)
    assert code == 143, lines
    assert "Traceback" not in "\n".join(lines)
    assert sum("interrupted" in line for line in lines) == 1, lines
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").glob("*.png"))
