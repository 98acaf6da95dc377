"""``wmi data prepare --shard K/N``, ``wmi data merge`` and ``wmi data info PART...``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from wmi.cli import app


def data(*args: object) -> object:
    return CliRunner().invoke(app, ["data", *map(str, args)])


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("src")
    rng = np.random.default_rng(3)
    for i in range(11):
        Image.fromarray(rng.integers(0, 255, (20 + i, 24, 3), dtype=np.uint8)).save(
            folder / f"s{i:02d}.png"
        )
    (folder / "broken.png").write_bytes(b"not an image")  # skipped, listed in the manifest
    return folder


def prepare(source: Path, out: Path, *extra: object) -> None:
    result = data("prepare", source, out, "--size", 16, "--shard-size", 2, "--workers", 0, *extra)
    assert result.exit_code == 0, result.output


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("n", [2, 3, 9])
def test_merged_parts_equal_one_preparation(tmp_path: Path, source: Path, n: int) -> None:
    prepare(source, tmp_path / "one")
    parts = [tmp_path / f"part{k}" for k in range(n)]
    for k, part in enumerate(parts):
        prepare(source, part, "--shard", f"{k}/{n}")
    if n == 9:  # 6 planned shard files (4 train, 1 val, 1 test): parts 6, 7 and 8 are empty
        assert any(not list(p.glob("*.h5")) for p in parts)
    info = data("info", *parts)
    assert info.exit_code == 0 and "ready for wmi data merge" in info.output, info.output
    merged = data("merge", *parts[::-1], tmp_path / "merged")  # any order
    assert merged.exit_code == 0, merged.output
    # shard files, prepare.json and manifest.json (with the skipped file): one run's bytes
    assert files(tmp_path / "merged") == files(tmp_path / "one")


def test_merge_refuses_other_parts(tmp_path: Path, source: Path) -> None:
    for k in range(2):
        prepare(source, tmp_path / f"p{k}", "--shard", f"{k}/2")
    prepare(source, tmp_path / "seed1", "--shard", "1/2", "--seed", 1)
    prepare(source, tmp_path / "whole")
    cases = [
        (["p0", "seed1"], "parts of different preparations (seed differ)"),
        (["p0"], "the parts 1/2 are missing"),
        (["p0", "p0", "p1"], "both are part 0/2"),
        (["p0", "whole"], "a whole dataset, not a part"),
    ]
    for names, message in cases:
        result = data("merge", *(tmp_path / n for n in names), tmp_path / "out")
        assert result.exit_code == 2 and message in result.output, result.output
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    result = data("merge", tmp_path / "p0", tmp_path / "p1", tmp_path / "full")
    assert result.exit_code == 2 and "empty or new folder" in result.output
    (tmp_path / "p1" / "manifest.json").unlink()
    result = data("info", tmp_path / "p0", tmp_path / "p1")
    assert result.exit_code == 2 and "part 1/2 is not finished" in result.output
