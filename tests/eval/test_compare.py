"""Several runs per method and paired comparisons (``wmi eval --pred NAME=DIR,DIR,...``)."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from scipy.stats import t as student_t
from typer.testing import CliRunner

from wmi.cli import app
from wmi.eval.compare import MIN_ITEMS, run_keys
from wmi.eval.metrics import hole_metrics
from wmi.io import read_image, read_mask

runner = CliRunner()
SIZE, IMAGES, NOISE = 24, 24, 8.0


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 ground truths with holes of 2 % to 17 %, and three runs of three methods: ``a``
    (noise of sd 8 in the hole), ``same`` (sd 8, other seeds) and ``worse`` (sd 24)."""
    root = tmp_path_factory.mktemp("runs")
    rng = np.random.default_rng(0)
    for i in range(IMAGES):
        gt = rng.integers(30, 226, (SIZE, SIZE, 3), dtype=np.uint8)
        side = 3 + i % 8  # 15 images with 2-9 % hole, 9 with 11-17 %
        hole = np.zeros((SIZE, SIZE), bool)
        hole[1 : 1 + side, 2 : 2 + min(side, SIZE - 3)] = True
        _save(root / "gt" / f"img{i:02d}.png", gt)
        _save(root / "masks" / f"img{i:02d}.png", (hole * 255).astype(np.uint8))
        for method, noise, first_seed in (("a", 1, 100), ("same", 1, 200), ("worse", 3, 300)):
            for run in range(3):
                noisy = np.random.default_rng(first_seed + 10 * i + run).normal(
                    0, noise * NOISE, gt.shape
                )
                pred = np.clip(gt + noisy, 0, 255).astype(np.uint8)
                _save(root / f"{method}{run}" / f"img{i:02d}.png", pred)
    return root


def _runs(root: Path, method: str) -> str:
    return ",".join(str(root / f"{method}{r}") for r in range(3))


def _eval(root: Path, *args: str) -> Any:
    result = runner.invoke(
        app,
        [
            "eval",
            "--gt",
            str(root / "gt"),
            "--masks",
            str(root / "masks"),
            "--no-perceptual",
            "--workers",
            "1",
            *args,
        ],
    )
    return result


def _run_means(root: Path, folder: str) -> dict[str, float]:
    names = sorted(p.name for p in (root / "gt").iterdir())
    per_image = [
        hole_metrics(
            read_image(root / folder / n),
            read_image(root / "gt" / n),
            read_mask(root / "masks" / n),
        )
        for n in names
    ]
    return {k: float(np.mean([m[k] for m in per_image])) for k in per_image[0]}


def test_three_runs_give_the_mean_and_the_t_interval_over_runs(study: Path) -> None:
    out = study / "r1"
    result = _eval(
        study,
        "--pred",
        f"A={_runs(study, 'a')}",
        "--pred",
        f"Same={_runs(study, 'same')}",
        "--pred",
        f"Worse={_runs(study, 'worse')}",
        "--json",
        str(out / "r.json"),
        "--markdown",
        str(out / "r.md"),
        "--csv",
        str(out / "r.csv"),
        "--latex",
        str(out / "r.tex"),
        "--html",
        str(out / "r.html"),
    )
    assert result.exit_code == 0, result.output
    data = json.loads((out / "r.json").read_text())
    a = data["methods"][0]
    assert a["name"] == "A" and a["runs"] == 3 and a["images"] == IMAGES
    runs = [_run_means(study, f"a{r}") for r in range(3)]
    for key in ("l1", "psnr", "ssim"):
        values = np.array([r[key] for r in runs])
        half = student_t.ppf(0.975, 2) * values.std(ddof=1) / math.sqrt(3)
        assert a["metrics"][key] == pytest.approx(values.mean(), rel=1e-9)
        assert a["ci95"][key] == pytest.approx([values.mean() - half, values.mean() + half])
    for bucket in a["buckets"]:
        assert bucket["runs"] == 3 and set(bucket["ci95"]) == set(bucket["metrics"])

    # the paired test: 3x the noise is clearly worse on every metric, the same noise with
    # other seeds is no different on any
    overall = {(c["method"], c["metric"]): c for c in data["comparisons"] if c["range"] == "all"}
    assert data["baseline"] == "A"
    assert {m for m, _ in overall} == {"Same", "Worse"}
    for metric in ("l1", "l2", "psnr", "ssim", "tv"):
        worse, same = overall[("Worse", metric)], overall[("Same", metric)]
        assert set(worse) >= {"method", "baseline", "metric", "difference", "ci95", "significant"}
        assert worse["significant"] and not same["significant"], metric
        assert worse["ci95"][0] <= worse["difference"] <= worse["ci95"][1]
        assert worse["items"] == IMAGES
    assert overall[("Worse", "l1")]["difference"] > 0 > overall[("Worse", "psnr")]["difference"]
    # per bucket too, where a bucket has enough images for a bootstrap
    by_range = {c["range"] for c in data["comparisons"]}
    assert by_range == {"all", "0-10%"}
    assert [b["images"] for b in a["buckets"]] == [15, 9] and 9 < MIN_ITEMS <= 15

    # every report: mean ± half, worse cells marked (direction from the metric's entry)
    md = (out / "r.md").read_text()
    l1_row = next(line for line in md.splitlines() if "| L1" in line)
    assert "±" in l1_row and l1_row.count("▼") == 1 and "▲" not in l1_row
    assert "significantly better / worse than A" in md
    assert "± 0." in result.stdout and "▼" in result.stdout
    rows = list(csv.DictReader(io.StringIO((out / "r.csv").read_text())))
    worse_all = next(r for r in rows if r["method"] == "Worse" and r["range"] == "all")
    assert worse_all["runs"] == "3" and float(worse_all["l1_pm"]) > 0
    assert worse_all["l1_vs_baseline"] == "worse" and worse_all["psnr_vs_baseline"] == "worse"
    assert r"$\pm$" in (out / "r.tex").read_text() and "$^{-}$" in (out / "r.tex").read_text()
    html = (out / "r.html").read_text()
    assert 'class="pm"' in html and 'class="worse"' in html and 'class="eb"' in html


def test_baseline_bootstrap_and_seed(study: Path) -> None:
    def comparisons(*args: str) -> list[dict[str, Any]]:
        result = _eval(
            study,
            "--pred",
            f"A={_runs(study, 'a')}",
            "--pred",
            f"Worse={_runs(study, 'worse')}",
            "--json",
            "-",
            "--no-buckets",
            *args,
        )
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout[result.stdout.index("{") :])["comparisons"]

    default = comparisons("--bootstrap", "500")
    assert default == comparisons("--bootstrap", "500", "--seed", "0")
    assert default != comparisons("--bootstrap", "500", "--seed", "1")
    flipped = comparisons("--bootstrap", "500", "--baseline", "Worse")
    assert {c["method"] for c in flipped} == {"A"}
    l1 = next(c for c in flipped if c["metric"] == "l1")
    assert l1["significant"] and l1["difference"] < 0  # A is better than Worse
    assert comparisons("--bootstrap", "0") == []


def test_one_run_has_no_interval_and_option_mistakes_are_one_line(study: Path) -> None:
    result = _eval(study, "--pred", f"A={study / 'a0'}", "--pred", f"B={study / 'same0'}")
    assert result.exit_code == 0, result.output
    assert "±" not in result.stdout and "runs:" not in result.stdout
    for args, message in (
        (["--pred", f"A={study / 'a0'}", "--baseline", "Z"], "--baseline 'Z': not a method"),
        (["--pred", f"A={study / 'a0'},{study / 'a0'}"], "the same folder is given twice"),
        (["--pred", f"A={study / 'a0'},"], "an empty folder name"),
        (["--pred", f"A={study / 'a0'},{study / 'nope'}"], "nope: prediction folder of 'A'"),
        (
            ["--pred", f"A={study / 'a0'}", "--feature-cache", str(study / "gt" / "img00.png")],
            "--feature-cache",
        ),
    ):
        result = _eval(study, *args)
        assert result.exit_code == 2 and "Traceback" not in result.output
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and message in errors[0], result.stderr


def test_run_keys_name_each_run() -> None:
    assert run_keys({"A": ["x"], "B": ["y", "z"]}) == {"A": ["A"], "B": ["B run 1", "B run 2"]}
    with pytest.raises(ValueError, match="used twice"):
        run_keys({"B run 1": ["x"], "B": ["y", "z"]})
