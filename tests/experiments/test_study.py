"""``wmi study``: the smoke study end to end, killed during training and resumed; study files."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from wmi.cli import app
from wmi.experiments.study import DONE, MARKER

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "studies" / "smoke.toml"
runner = CliRunner()


def _one_line_error(result: Any, message: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], result.stderr


def _study(out: Path) -> list[str]:
    return [sys.executable, "-m", "wmi", "study", str(SMOKE), "--out", str(out)]


@pytest.mark.slow
def test_smoke_study_runs_end_to_end_and_resumes_after_a_kill(tmp_path: Path) -> None:
    out = tmp_path / "study"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen(
        _study(out), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    done_run = out / "runs" / "WConv-seed0"
    killed_run = out / "runs" / "WConv-seed1"
    deadline = time.monotonic() + 600
    # kill it once the first run is finished and the second has saved a checkpoint
    while not (killed_run / "checkpoints" / "last.pt").is_file():
        assert first.poll() is None, first.communicate()[1].decode()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert (done_run / DONE).is_file() and not (killed_run / DONE).is_file()
    finished = (done_run / "checkpoints" / "last.pt").stat().st_mtime_ns

    start = time.perf_counter()
    second = subprocess.run(_study(out), cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    assert second.returncode == 0, second.stderr
    assert "WConv-seed0: finished earlier, skipped" in second.stderr
    assert "WConv-seed1: resuming the run from its last checkpoint" in second.stderr
    assert (done_run / "checkpoints" / "last.pt").stat().st_mtime_ns == finished
    log = (killed_run / "train.log").read_text()
    assert "training from step 0 of 30" in log
    resumed = re.findall(r"resuming at step (\d+) of 30", log)  # from its checkpoint
    assert len(resumed) == 1 and int(resumed[0]) >= 10, log
    for name in ("report.md", "report.json", "report.html", "report-center.html"):
        assert (out / name).is_file(), name
    report = json.loads((out / "report.json").read_text())
    assert set(report) == {"freeform", "center"}
    methods = {m["name"]: m for m in report["freeform"]["methods"]}
    assert [methods[n]["runs"] for n in ("WConv", "PConv", "Telea")] == [2, 2, 1]
    assert methods["WConv"]["images"] == 8 and "ci95" in methods["PConv"]
    assert report["freeform"]["baseline"] == "WConv"
    assert "## freeform masks" in second.stdout and "±" in second.stdout
    print(f"resumed study: {seconds:.1f} s")  # the resumed part's wall time, for the record


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


MINIMAL = """
seeds = [0]
[data]
shards = "shards"
[test]
images = "images"
[[methods]]
name = "Telea"
classical = "telea"
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bogus = 1\n" + MINIMAL, "unknown key 'bogus'"),
        (MINIMAL.replace("seeds = [0]", "seeds = [0, 0]"), "seeds repeat"),
        (MINIMAL.replace('shards = "shards"', ""), "[data] needs shards"),
        (MINIMAL + '[[methods]]\nname = "W"\nconv = "nope"\n', "methods[1] (W)"),
        (MINIMAL + '[[methods]]\nname = "W"\nseed = 3\n', "seed is set by the study"),
        (MINIMAL + '[[methods]]\nname = "Telea"\nclassical = "ns"\n', "share a name"),
        (MINIMAL.replace('"telea"', '"nope"'), "unknown classical method 'nope'"),
        (MINIMAL.replace('images = "images"', 'photos = ["skimage:nope"]'), "skimage:nope"),
    ],
)
def test_study_file_mistakes_are_one_line(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "shards").mkdir()
    (tmp_path / "images").mkdir()
    study = _write(tmp_path / "s.toml", text)
    result = runner.invoke(app, ["study", str(study), "--out", str(tmp_path / "out")])
    _one_line_error(result, message)


def test_an_arch_this_wmi_cannot_train_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import wmi.training.config as config

    names = tuple(n for n in config.field_names() if n != "arch")
    monkeypatch.setattr(config, "field_names", lambda: names)
    study = _write(tmp_path / "s.toml", MINIMAL + '[[methods]]\nname = "DF2"\narch = "deepfill2"\n')
    (tmp_path / "shards").mkdir()
    result = runner.invoke(app, ["study", str(study), "--out", str(tmp_path / "out")])
    _one_line_error(result, "arch = 'deepfill2' needs `wmi train --arch`")


def test_a_changed_study_file_is_refused_and_other_folders_are_left_alone(tmp_path: Path) -> None:
    (tmp_path / "shards").mkdir()
    (tmp_path / "images").mkdir()
    study = _write(tmp_path / "s.toml", MINIMAL)
    out = tmp_path / "out"
    out.mkdir()
    (out / MARKER).write_text("")
    (out / "study.json").write_text(json.dumps({"seeds": [5]}))
    result = runner.invoke(app, ["study", str(study), "--out", str(out)])
    _one_line_error(result, "differs from the study in")
    assert (out / "study.json").read_text() == json.dumps({"seeds": [5]})  # untouched
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    result = runner.invoke(app, ["study", str(study), "--out", str(other), "--overwrite"])
    _one_line_error(result, "not a study's folder")
    assert (other / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("name", ["table1-celeba", "table1-imagenet"])
def test_the_papers_study_files_parse_up_to_the_arch_option(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Everything before DF1 (data, test masks, the shared recipe, WConv, PConv) is a valid
    study; DF1 needs ``wmi train --arch``, here taken away so the test holds either way."""
    import wmi.training.config as config
    from wmi.errors import WmiError
    from wmi.experiments.study import load_study

    names = tuple(n for n in config.field_names() if n != "arch")
    monkeypatch.setattr(config, "field_names", lambda: names)
    with pytest.raises(WmiError, match=r"methods\[2\] \(DF1\): arch = 'deepfill1'"):
        load_study(ROOT / "studies" / f"{name}.toml")


@pytest.mark.parametrize("name", ["table1-celeba", "table1-imagenet"])
def test_the_papers_study_files_train_all_four_systems(name: str) -> None:
    from wmi.experiments.study import load_study
    from wmi.training.config import TrainConfig, resolve_config

    study = load_study(ROOT / "studies" / f"{name}.toml")
    archs = {m.name: resolve_config(TrainConfig.from_dict(m.train), "cpu", False).arch
             for m in study.methods if not m.classical}  # fmt: skip
    assert archs == {"WConv": "unet", "PConv": "unet", "DF1": "deepfill1", "DF2": "deepfill2"}


@pytest.mark.slow
def test_a_study_under_torchrun_trains_each_run_on_every_process(tmp_path: Path) -> None:
    """Two processes (gloo on the CPU), two runs: the study joins the process group once (a
    join per run hung at the second run)."""
    text = SMOKE.read_text(encoding="utf-8").replace("seeds = [0, 1]", "seeds = [0]")
    text = text.replace('masks = ["freeform", "center"]', 'masks = ["center"]')
    study = _write(tmp_path / "ddp.toml", text)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc-per-node", "2", "-m", "wmi", "study", str(study), "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for run in ("WConv-seed0", "PConv-seed0"):
        log = (out / "runs" / run / "train.log").read_text()
        assert "batch=4×2" in log and (out / "runs" / run / DONE).is_file()
    report = json.loads((out / "report.json").read_text())
    assert [m["name"] for m in report["center"]["methods"]] == ["WConv", "PConv", "Telea"]
    assert done.stdout.count("## center masks") == 1  # only rank 0 reports
