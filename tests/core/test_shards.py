"""``wmi.procs.Shard``: ``--shard K/N`` and ``auto``, the partition, and the per-shard lock."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from wmi.errors import WmiError
from wmi.procs import SHARD_COUNT_ENV, Shard, folder_lock, shard_lock


def test_parse_k_of_n_and_refuse_bad_text() -> None:
    assert Shard.parse("2/3") == Shard(2, 3)
    assert Shard.parse(None) == Shard(0, 1) and Shard.parse(None).whole
    for bad in ("3/3", "-1/2", "1", "a/b", "1/0", "1/2/3"):
        with pytest.raises(WmiError, match="--shard"):
            Shard.parse(bad, environ={})


def test_auto_reads_slurm_and_kubernetes() -> None:
    slurm = {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "8"}
    assert Shard.parse("auto", slurm) == Shard(4, 8)  # --array=1-8: task 5 is shard 4 of 8
    zero_based = {"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "2"}
    assert Shard.parse("auto", zero_based) == Shard(0, 2)
    assert Shard.parse("auto", {"JOB_COMPLETION_INDEX": "2", SHARD_COUNT_ENV: "3"}) == Shard(2, 3)
    with pytest.raises(WmiError, match=SHARD_COUNT_ENV):
        Shard.parse("auto", {"JOB_COMPLETION_INDEX": "2"})
    with pytest.raises(WmiError, match="neither"):
        Shard.parse("auto", {})


def test_shards_are_balanced_for_many_files() -> None:
    sizes = [len(Shard(k, 4).take([f"{i:06d}.jpg" for i in range(4000)], str)) for k in range(4)]
    assert sum(sizes) == 4000 and max(abs(size - 1000) for size in sizes) < 100  # ~3 sd


@pytest.mark.parametrize("n", [1, 2, 3, 7, 40])
def test_shards_partition_the_names(n: int) -> None:
    names = [f"img{i:03d}" for i in range(25)][::-1]
    parts = [Shard(k, n).take(names, str) for k in range(n)]
    flat = [name for part in parts for name in part]
    assert sorted(flat) == sorted(names)  # each name exactly once
    assert all(part == [x for x in names if x in part] for part in parts)  # order kept
    # a name's shard does not depend on the other names (a folder seen half-written)
    assert all(Shard(k, n).take(names[:7], str) == [x for x in parts[k] if x in names[:7]]
               for k in range(n))  # fmt: skip
    if n > len(names):
        assert [] in parts
    # items with one key (an image with several masks) stay together
    items = [(name, i) for name in names for i in range(2)]
    for k in range(n):
        taken = Shard(k, n).take(items, lambda item: item[0])
        assert sorted({name for name, _ in taken}) == sorted(parts[k])


def refused(lock: Callable[[], AbstractContextManager[None]], match: str = "busy") -> None:
    with pytest.raises(WmiError, match=match), lock():
        pass


def test_shard_locks_let_shards_share_and_refuse_the_rest(tmp_path: Path) -> None:
    with shard_lock(tmp_path, Shard(0, 2), "busy"):
        with shard_lock(tmp_path, Shard(1, 2), "busy"):  # another shard: at once
            pass
        refused(lambda: shard_lock(tmp_path, Shard(0, 2), "busy"), r"busy \(shard 0/2\)")
        refused(lambda: folder_lock(tmp_path, "busy"))  # an unsharded run waits for the shards
    with folder_lock(tmp_path, "busy"):
        refused(lambda: shard_lock(tmp_path, Shard(1, 2), "busy"))
