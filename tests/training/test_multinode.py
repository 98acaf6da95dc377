"""Training across nodes: two torchrun nodes on localhost train what one node with two
processes trains, bit for bit (gloo on CPU). What docs/scale.md promises."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.training.test_train import (
    _free_port,
    _state,
    shards,  # noqa: F401 - the module's shard fixture
)

ROOT = Path(__file__).resolve().parents[2]
TRAIN = [
    "-m",
    "wmi",
    "train",
    "--steps",
    "3",
    "--size",
    "32",
    "--layers",
    "4",
    "--base-channels",
    "4",
    "--batch-size",
    "2",
    "--perceptual",
    "none",
    "--workers",
    "0",
    "--device",
    "cpu",
    "--val-every",
    "100",
    "--save-every",
    "100",
    "--no-progress",
]


def _torchrun(*launcher: str, data: Path, out: Path) -> subprocess.Popen[bytes]:
    torchrun = [sys.executable, "-m", "torch.distributed.run", *launcher]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [*torchrun, *TRAIN, "--data", str(data), "--out", str(out)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _wait(*procs: subprocess.Popen[bytes], timeout: float = 300) -> None:
    """Wait for every process; when one fails, stop the others (a node whose peer died waits
    for it at the rendezvous) and show what each printed."""
    deadline = time.monotonic() + timeout
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        if any(p.poll() not in (None, 0) for p in procs):
            break
        time.sleep(0.2)
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
    outputs = [proc.communicate()[0].decode(errors="replace")[-6000:] for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), "\n----\n".join(outputs)


def _listening(port: int, timeout: float = 60) -> None:
    """Wait until the master node's agent serves its store on ``port``: the second node then
    finds it at once instead of racing it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    raise AssertionError(f"no torchrun store on port {port} after {timeout} s")


@pytest.mark.slow
def test_two_nodes_train_the_weights_of_one_node_with_two_processes(
    tmp_path: Path,
    shards: Path,  # noqa: F811
) -> None:
    port = _free_port()

    def node(rank: int) -> subprocess.Popen[bytes]:
        return _torchrun(
            "--nnodes",
            "2",
            "--node-rank",
            str(rank),
            "--nproc-per-node",
            "1",
            "--master-addr",
            "127.0.0.1",
            "--master-port",
            str(port),
            data=shards,
            out=tmp_path / "two-nodes",
        )

    first = node(0)
    _listening(port)
    _wait(first, node(1))
    one_node = _torchrun(
        "--nnodes",
        "1",
        "--nproc-per-node",
        "2",
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(_free_port()),
        data=shards,
        out=tmp_path / "one-node",
    )
    _wait(one_node)
    a = _state(tmp_path / "two-nodes" / "checkpoints" / "last.pt")
    b = _state(tmp_path / "one-node" / "checkpoints" / "last.pt")
    assert a["step"] == b["step"] == 3
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key  # bit for bit
