"""Training across nodes: two torchrun nodes on localhost train what one node with two
processes trains, bit for bit (gloo on CPU). What docs/scale.md promises."""

from __future__ import annotations

import os
import subprocess
import sys
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


def _wait(*procs: subprocess.Popen[bytes]) -> None:
    for proc in procs:
        output, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, output.decode(errors="replace")[-3000:]


@pytest.mark.slow
def test_two_nodes_train_the_weights_of_one_node_with_two_processes(
    tmp_path: Path,
    shards: Path,  # noqa: F811
) -> None:
    port = str(_free_port())
    nodes = [
        _torchrun(
            "--nnodes",
            "2",
            "--node-rank",
            str(rank),
            "--nproc-per-node",
            "1",
            "--master-addr",
            "127.0.0.1",
            "--master-port",
            port,
            data=shards,
            out=tmp_path / "two-nodes",
        )
        for rank in (0, 1)
    ]
    _wait(*nodes)
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
