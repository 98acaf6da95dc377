"""wmi train on faults and first runs: longer resumed runs, kills, full and read-only disks,
damaged checkpoints, the batch-norm momentum of short runs, missing options."""

from __future__ import annotations

import errno
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.models.test_checkpoint import _member_data_offset
from tests.training.test_train import (
    Pairs,
    _assert_same_tensors,
    _cfg,
    _cli,
    _metrics,
    _one_line_error,
    _run,
    _state,
    shards,  # noqa: F401 - the module's shard fixture
)
from wmi.errors import WmiError
from wmi.training.config import resume_config
from wmi.training.step import lr_at


def _last(run: Path) -> Path:
    return run / "checkpoints" / "last.pt"


# ---------------------------------------------------------------------------------------------
# --resume may raise --steps


def test_resume_may_raise_steps_and_re_plans_the_cosine(tmp_path: Path) -> None:
    # A 4-step run stopped after step 2 (Ctrl-C), continued to 8 steps in one go (a), or in
    # two goes with a second Ctrl-C after step 5 and a plain --resume (b): the same run.
    for name, stop_again in (("a", None), ("b", 5)):
        run = tmp_path / name
        assert _run(_cfg(run, steps=4), Pairs(6, 32, interrupt_at=3)).step == 2
        longer = resume_config(run, {"steps": 8})
        data = Pairs(6, 32, interrupt_at=(stop_again - 2) * 2 - 1 if stop_again else None)
        result = _run(longer, data, resume=True)
        assert json.loads((run / "config.json").read_text())["steps"] == 8
        if stop_again:
            assert result.status == "interrupted" and result.step == stop_again
            result = _run(resume_config(run, {}), resume=True)  # config.json says 8 now
        assert result.status == "done" and result.step == 8

    a, b = _state(_last(tmp_path / "a")), _state(_last(tmp_path / "b"))
    _assert_same_tensors(a["model"], b["model"])
    _assert_same_tensors(a["optimizer"], b["optimizer"])
    rates = [r["lr"] for r in _metrics(tmp_path / "a")]
    assert rates == [r["lr"] for r in _metrics(tmp_path / "b")]
    # steps 1-2 as planned for 4 steps; then from the rate step 3 would have had, a cosine
    # down to lr_final at the new last step
    assert rates[:2] == [lr_at(s, 4, 5e-4, 1e-5) for s in range(2)]
    assert rates[2:] == [lr_at(s, 6, lr_at(2, 4, 5e-4, 1e-5), 1e-5) for s in range(6)]
    assert a["scheduler"]["total_steps"] == 8 and len(a["scheduler"]["segments"]) == 2
    log = (tmp_path / "a" / "train.log").read_text()
    assert "run extended to 8 steps: lr cosine re-planned" in log


def test_cli_resume_raises_steps_but_refuses_lowering_them(
    tmp_path: Path,
    shards: Path,  # noqa: F811 - the fixture of test_train
) -> None:
    out = tmp_path / "run"
    small = ("--size", "32", "--layers", "4", "--base-channels", "4", "--batch-size", "2",
             "--workers", "0", "--no-progress", "--perceptual", "none")  # fmt: skip
    assert _cli("--data", str(shards), "--out", str(out), *small, "--steps", "2").exit_code == 0
    before = _last(out).read_bytes()
    _one_line_error(
        _cli("--out", str(out), "--resume", "--steps", "1"),
        "--resume may raise --steps, not lower it: it was 2, now 1",
    )
    _one_line_error(_cli("--out", str(out), "--resume", "--lr-final", "0.1"), "--lr-final was")
    assert _last(out).read_bytes() == before
    result = _cli("--out", str(out), "--resume", "--steps", "3")
    assert result.exit_code == 0 and "trained 3 steps" in result.output, result.output


# ---------------------------------------------------------------------------------------------
# After a kill: stale temporary files, a run that saved nothing


def test_a_killed_runs_temporary_files_are_removed(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _run(_cfg(run, steps=2))
    stale = [
        run / "checkpoints" / ".last.k3j2_x9a.tmp.pt",  # what atomic_path names them
        run / "checkpoints" / ".best.0abc.tmp.pt",
        run / "previews" / ".step-00000002.q1.tmp.png",
        run / ".config.zz.tmp.json",
        run / ".metrics.zz.tmp.jsonl",
    ]
    kept = [run / "checkpoints" / "mine.tmp.pt", run / "notes.txt"]  # not wmi's names
    for path in stale + kept:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"half")
    assert _run(resume_config(run, {"steps": 3}), resume=True).step == 3
    assert [p for p in stale if p.exists()] == []
    assert all(p.read_bytes() == b"half" for p in kept)


def test_a_run_that_saved_no_checkpoint_starts_again_without_overwrite(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _run(_cfg(run, steps=1))
    shutil.rmtree(run / "checkpoints")  # as a run stopped before its first save leaves it
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / ".last.x1.tmp.pt").write_bytes(b"half")
    (run / "train.log").write_text("the failed run\n")
    assert _run(_cfg(run, steps=2)).step == 2
    assert "the failed run" not in (run / "train.log").read_text()
    assert [r["step"] for r in _metrics(run)] == [1, 2]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.pt"]
    # with a checkpoint it is a run: refused without --resume or --overwrite
    with pytest.raises(WmiError, match="already holds a run"):
        _run(_cfg(run, steps=2))


# ---------------------------------------------------------------------------------------------
# Full disk, read-only folders, damaged checkpoints


def _full_disk_from_call(monkeypatch: pytest.MonkeyPatch, call: int) -> None:
    """torch.save writes half a file and fails with ENOSPC from its ``call``-th use on."""
    real, calls = torch.save, [0]

    def save(obj, f, *args, **kwargs):
        calls[0] += 1
        if calls[0] < call:
            return real(obj, f, *args, **kwargs)
        f.write(b"PK\x03\x04 half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", save)


def test_full_disk_stops_with_one_line_and_keeps_the_last_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    _full_disk_from_call(monkeypatch, 2)  # the save at step 2 works, the one at step 4 fails
    with pytest.raises(WmiError) as caught:
        _run(_cfg(run, steps=6, save_every=2))
    last = _last(run)
    assert str(caught.value) == (
        f"{last}: cannot write (No space left on device); the previous last.pt is kept"
    )
    monkeypatch.undo()
    assert _state(last)["step"] == 2
    assert not list(run.rglob(".*.tmp*"))
    assert _run(resume_config(run, {}), resume=True).step == 6  # and it resumes from there


def test_cli_full_disk_is_one_line_and_rc_2(
    tmp_path: Path,
    shards: Path,  # noqa: F811 - the fixture of test_train
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "run"
    small = ("--size", "32", "--layers", "4", "--base-channels", "4", "--batch-size", "2",
             "--workers", "0", "--no-progress", "--perceptual", "none")  # fmt: skip
    _full_disk_from_call(monkeypatch, 2)
    result = _cli("--data", str(shards), "--out", str(out), *small, "--steps", "4",
                  "--save-every", "2", "--val-images", "0")  # fmt: skip
    # the run's log lines, then one error line naming the file
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    errors = [line for line in result.output.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0] == (
        f"error: {out / 'checkpoints' / 'last.pt'}: cannot write (No space left on device); "
        "the previous last.pt is kept"
    ), result.output
    monkeypatch.undo()
    assert _state(_last(out))["step"] == 2


def _namespace_prefix() -> list[str] | None:
    """How to run a command where a bind mount can make a folder read-only even for root."""
    if os.geteuid() != 0:
        return []
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    return ["unshare", "-m"] if probe.returncode == 0 else None


_RESUME = """
import sys
sys.path.insert(0, {tests!r})
from tests.training.test_train import Pairs
from wmi.errors import WmiError
from wmi.training.config import resume_config
from wmi.training.loop import train
try:
    train(resume_config({run!r}, {{"steps": 4}}), resume=True, train_set=Pairs(6, 32),
          progress=False, echo=False)
except WmiError as exc:
    print(exc)
"""


def test_read_only_checkpoints_folder_is_found_before_the_first_step(tmp_path: Path) -> None:
    prefix = _namespace_prefix()
    if prefix is None:
        pytest.skip("root without unshare: cannot make a folder read-only")
    run = tmp_path / "run"
    _run(_cfg(run, steps=2))
    log = (run / "train.log").read_text()
    checkpoints = run / "checkpoints"
    script = _RESUME.format(tests=str(Path(__file__).parent), run=str(run))
    python = f"{sys.executable} -c {shlex.quote(script)}"
    if prefix:
        command = (f"mount --bind {checkpoints} {checkpoints} && "
                   f"mount -o remount,ro,bind {checkpoints} {checkpoints} && {python}")  # fmt: skip
    else:
        checkpoints.chmod(0o555)
        command = python
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    try:
        done = subprocess.run([*prefix, "sh", "-c", command], capture_output=True, text=True,
                              env=env, timeout=300)  # fmt: skip
    finally:
        checkpoints.chmod(0o755)
    assert done.stdout.strip() == f"{checkpoints}: cannot write there (Read-only file system)" or (
        done.stdout.strip() == f"{checkpoints}: cannot write there (Permission denied)"
    ), done.stdout + done.stderr
    assert (run / "train.log").read_text() == log  # found before anything was trained
    assert _state(_last(run))["step"] == 2


def test_a_damaged_last_checkpoint_is_not_resumed(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _run(_cfg(run, steps=2))
    last = _last(run)
    raw = bytearray(last.read_bytes())
    start = _member_data_offset(last, "/data/") + 16
    raw[start : start + 8] = b"\xff" * 8  # 8 bytes inside a tensor: NaN
    last.write_bytes(bytes(raw))
    with pytest.raises(WmiError, match=r"last.pt: damaged: .* does not match its checksum"):
        _run(resume_config(run, {}), resume=True)
    assert last.read_bytes() == bytes(raw)  # left as it was


# ---------------------------------------------------------------------------------------------
# Batch-norm momentum of short runs; the options of a new run


def test_short_runs_get_a_momentum_that_settles_and_a_warning_for_one_that_does_not(
    tmp_path: Path,
) -> None:
    _run(_cfg(tmp_path / "auto", steps=4))
    saved = _state(_last(tmp_path / "auto"))
    assert saved["config"]["bn_momentum"] == 0.1 and saved["model_config"]["norm_momentum"] == 0.1
    assert "warning" not in (tmp_path / "auto" / "train.log").read_text()
    _run(_cfg(tmp_path / "paper", steps=4, bn_momentum=0.001))
    assert (
        "warning: --bn-momentum 0.001 is too small for a run of 4 steps"
        in (tmp_path / "paper" / "train.log").read_text()
    )


def test_cli_reports_every_missing_option_at_once(tmp_path: Path) -> None:
    _one_line_error(_cli(), "missing --data DIR, --out RUN_DIR, --steps N (or --epochs N)")
    _one_line_error(
        _cli("--data", str(tmp_path), "--out", str(tmp_path / "run")),
        "missing --steps N (or --epochs N)",
    )
    for steps in ("0", "-3"):
        _one_line_error(
            _cli("--data", str(tmp_path), "--out", str(tmp_path / "run"), "--steps", steps),
            "Invalid value for '--steps': Input should be greater than or equal to 1",
        )
    assert not (tmp_path / "run").exists()
    help_text = " ".join(_cli("--help").output.replace("│", " ").split())
    assert "Required (here or in --config" in help_text and "Required: the run folder" in help_text


def test_a_bottleneck_batch_norm_cannot_train_on_is_refused_before_anything_runs(
    tmp_path: Path,
    shards: Path,  # noqa: F811 - the fixture of test_train
) -> None:
    # 32² crops, 5 layers: a 1×1 bottleneck; at batch 1 nn.BatchNorm2d (PConv's) gets one
    # value per channel: a ValueError traceback after the run folder was made, before
    base = ["--data", str(shards), "--size", "32", "--layers", "5", "--base-channels", "4",
            "--batch-size", "1", "--steps", "1", "--perceptual", "none",
            "--workers", "0"]  # fmt: skip
    refused = _cli(*base, "--out", str(tmp_path / "pconv"), "--conv", "partial")
    _one_line_error(refused, "--size 32 with --layers 5 leaves a 1×1 bottleneck")
    assert "use --size 64 or --batch-size 2" in refused.output
    assert not (tmp_path / "pconv").exists()
    # the advice works; and the weighted norm trains there (one value: its shift β)
    for conv, extra in (("partial", ["--batch-size", "2"]), ("weighted", [])):
        done = _cli(*base, "--out", str(tmp_path / conv), "--conv", conv, *extra)
        assert done.exit_code == 0, done.output
