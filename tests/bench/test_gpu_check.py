"""benchmarks/gpu_check.sh --dry-run: every step of the GPU check, tiny and on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_check_dry_run(tmp_path: Path) -> None:
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run", "--keep", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHON": sys.executable},
    )
    summary = json.loads(proc.stdout)
    assert proc.returncode == 0, (summary.get("failed"), proc.stderr[-2000:])
    assert summary["ok"] is True and summary["dry_run"] is True and summary["failed"] == []
    assert summary["torch"] and "cuda" in summary and summary["card"] == "CPU (dry run)"
    steps = summary["steps"]
    assert set(steps) == {
        "gpu_tests", "bench_unet", "bench_train", "data_prepare", "train", "inpaint", "export"
    }  # fmt: skip
    unet = steps["bench_unet"]["ratio_vs_plain"]
    assert unet["fp32 plain forward b2"] == unet["bf16+cl plain forward+backward b2"] == 1.0
    assert unet["bf16+cl weighted forward b2"] > 0
    assert steps["bench_train"]["shape"] == {
        "size": 16, "batch_size": 2, "layers": 3, "perceptual": True
    }  # fmt: skip
    assert steps["bench_train"]["images_per_s"]["weighted bf16+cl"] > 0
    train = steps["train"]
    # interrupted with SIGINT (exit 130) part-way, resumed to the last step
    assert train["resumed"] and train["first"]["rc"] == 130
    assert 0 < train["stopped_at_step"] < train["final_step"] == 60
    assert train["images_per_s"] > 0 and train["last_validation"]["step"] == 60
    assert steps["inpaint"]["images"] == 16 and steps["inpaint"]["peak_rss_mb"] > 0
    assert steps["export"]["identical_to_checkpoint"] is True
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file()


def test_gpu_check_without_pytest_skips_the_tests_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # an install without the test extra: the step failed with an empty error
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pytest" else real(name, *a)
    )
    step = module.gpu_tests(tmp_path, dry=True)
    assert step == {"ok": True, "ran": False, "note": module.NO_PYTEST}
    assert "pip install pytest" in module.NO_PYTEST
    assert "pytest is not installed" in capsys.readouterr().err
