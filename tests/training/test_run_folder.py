"""wmi train's run folder against careless and hostile folders: files it did not write, a
second run on the same folder, links where a run writes (issue 21, items 1, 3 and 4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.training.test_train import Pairs, _cfg, _cli, _metrics, _one_line_error, _run
from wmi.errors import WmiError
from wmi.procs import folder_lock
from wmi.training.config import resume_config


def _foreign_folder(out: Path) -> dict[str, bytes]:
    """A folder with run-like names that a user made: none of it may be touched."""
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "mine.bin").write_bytes(b"x")
    (out / "previews").mkdir()
    (out / "previews" / "holiday.png").write_bytes(b"png")
    (out / "config.json").write_text('{"app": 1}')
    return {str(p): p.read_bytes() for p in out.rglob("*") if p.is_file()}


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_folder_wmi_did_not_make_is_refused_and_left_alone(
    tmp_path: Path, overwrite: bool
) -> None:
    out = tmp_path / "P"
    before = _foreign_folder(out)
    with pytest.raises(WmiError, match="was not written by wmi train"):
        _run(_cfg(out, steps=1), overwrite=overwrite)
    assert {str(p): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_a_stranger_file_in_a_stopped_runs_folder_is_not_deleted(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _run(_cfg(run, steps=1))
    (run / "checkpoints" / "last.pt").unlink()  # a run stopped before it saved
    (run / "checkpoints" / "mine.bin").write_bytes(b"x")
    with pytest.raises(WmiError, match=r"mine.bin was not written by wmi train"):
        _run(_cfg(run, steps=1))
    assert (run / "checkpoints" / "mine.bin").read_bytes() == b"x"
    # a config.json that is not a run's, beside wmi's own files only, is refused too
    (run / "checkpoints" / "mine.bin").unlink()
    (run / "config.json").write_text(json.dumps({"app": 1}))
    with pytest.raises(WmiError, match=r"config.json was not written by wmi train"):
        _run(_cfg(run, steps=1))
    assert json.loads((run / "config.json").read_text()) == {"app": 1}


def test_cli_refuses_a_foreign_folder_in_one_line(tmp_path: Path) -> None:
    out = tmp_path / "P"
    before = _foreign_folder(out)
    result = _cli("--data", str(tmp_path / "nodata"), "--out", str(out), "--steps", "1",
                  "--perceptual", "none")  # fmt: skip
    _one_line_error(result, "was not written by wmi train")
    assert {str(p): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


class _Peek(Pairs):
    """Pairs that try RUN_DIR's lock while the run trains (as a second wmi train would)."""

    def __init__(self, run: Path, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.run, self.refusals = run, []

    def __getitem__(self, i: int):
        try:
            with folder_lock(self.run, "busy"):
                pass
        except WmiError as exc:
            self.refusals.append(str(exc))
        return super().__getitem__(i)


def test_a_second_run_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    run = tmp_path / "run"
    data = _Peek(run, 6, 32)
    _run(_cfg(run, steps=2), data)
    assert len(data.refusals) == data.fetched > 0  # locked for every step of the run
    with folder_lock(run, "a first run"):  # a run in progress, as another process holds it
        with pytest.raises(WmiError, match="another wmi train is writing here"):
            _run(_cfg(run, steps=1), overwrite=True)
        with pytest.raises(WmiError, match="another wmi train is writing here"):
            _run(resume_config(run, {"steps": 3}), resume=True)
    assert [r["step"] for r in _metrics(run)] == [1, 2]  # the first run's, unmixed


@pytest.mark.parametrize("name", ["train.log", "metrics.jsonl", "previews", "tensorboard"])
def test_resume_does_not_write_through_links(tmp_path: Path, name: str) -> None:
    run = tmp_path / "run"
    _run(_cfg(run, steps=1, val_every=1), val=Pairs(2, 32))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = elsewhere / name
    source = run / name
    if source.is_dir():
        for child in source.iterdir():
            child.unlink()
        source.rmdir()
        target.mkdir()
    else:
        source.replace(target)
    before = sorted(p.name for p in elsewhere.rglob("*"))
    sizes = {p: p.stat().st_size for p in elsewhere.rglob("*") if p.is_file()}
    source.symlink_to(target)
    with pytest.raises(WmiError, match=f"{name} is a link"):
        _run(resume_config(run, {"steps": 2}), val=Pairs(2, 32), resume=True)
    assert sorted(p.name for p in elsewhere.rglob("*")) == before
    assert {p: p.stat().st_size for p in elsewhere.rglob("*") if p.is_file()} == sizes


def test_a_log_replaced_by_a_link_during_a_run_is_not_written_through(tmp_path: Path) -> None:
    from wmi.training.run import RunLog

    target = tmp_path / "secret.txt"
    target.write_text("keep\n")
    (tmp_path / "train.log").symlink_to(target)
    with pytest.raises(WmiError, match="train.log: is a link"):
        RunLog(tmp_path, enabled=True, echo=False).info("hello")
    assert target.read_text() == "keep\n"
