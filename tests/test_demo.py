from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wmi.cli import app


def test_demo_runs_the_whole_pipeline(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    args = [
        "demo",
        "--out",
        str(out),
        "--steps",
        "3",
        "--size",
        "32",
        "--layers",
        "5",
        "--crops",
        "3",
        "--device",
        "cpu",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    # results on stdout, steps and commands on stderr (so `wmi demo > log` keeps the tables)
    headers = ["1/8 data", "2/8 masks", "3/8 train weighted", "4/8 train partial",
               "5/8 inpaint (freeform", "6/8 eval (freeform", "7/8 inpaint (center",
               "8/8 eval (center"]  # fmt: skip
    at = [result.stderr.find(h) for h in headers]
    assert -1 not in at and at == sorted(at), at  # every step once, numbered in order
    assert not any(h in result.stdout for h in headers)
    # after the first network: when the demo should end
    assert "WConv trained in" in result.stderr and "the demo should end in about" in result.stderr
    assert "Table I" in result.stdout and "demo-report.md" in result.stdout
    # every printed command is runnable as shown: no placeholders
    assert "..." not in result.stderr and "--checkpoint" in result.stderr
    # the test images are crops of photographs the networks never saw
    tested = {p.name.rsplit("-", 1)[0] for p in (out / "test" / "images").glob("*.png")}
    trained = {p.name.rsplit("-", 1)[0] for p in (out / "photos").glob("*.png")}
    assert tested == {"astronaut", "coffee"} and not tested & trained
    manifest = json.loads((out / "shards" / "manifest.json").read_text())
    assert manifest  # shards were prepared
    for mask_set in ("freeform", "center"):
        gt = sorted(p.name for p in (out / "test" / "images").glob("*.png"))
        masks = out / "masks" / mask_set
        assert gt and sorted(p.name for p in masks.glob("*.png") if p.name != "preview.png") == gt
        # a full mask set, as `wmi masks generate` writes it: manifest and preview sheet
        assert (masks / "manifest.csv").is_file() and (masks / "preview.png").is_file()
        for method in ("wconv", "pconv", "telea", "biharmonic"):
            written = sorted(p.name for p in (out / "results" / mask_set / method).glob("*.png"))
            assert written == gt
        assert (out / f"preview-{mask_set}.png").stat().st_size > 0
    html = (out / "demo-report.html").read_text()
    assert "WConv" in html and "<svg" in html and "data:image/jpeg;base64," in html
    assert (out / "demo-report-center.html").is_file()
    report = (out / "demo-report.md").read_text()
    assert "WConv" in report and "Biharmonic" in report
    for run in ("wconv", "pconv"):
        assert (out / "runs" / run / "checkpoints" / "last.pt").is_file()

    again = CliRunner().invoke(app, args)
    assert again.exit_code == 2
    assert "not empty" in again.output
    (out / "stale.txt").write_text("from an older demo")
    replaced = CliRunner().invoke(app, [*args, "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert not (out / "stale.txt").exists() and (out / "demo-report.md").is_file()


@pytest.mark.slow
def test_with_deepfill_adds_deepfill_v2_beside_the_u_nets(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--steps", "1", "--size", "32", "--layers", "5",
            "--crops", "3", "--device", "cpu", "--with-deepfill"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "5/9 train deepfill2" in result.stderr and "--arch deepfill2" in result.stderr
    assert "--conv None" not in result.stderr  # the U-Net's options are not DeepFill's
    config = json.loads((out / "runs" / "df2" / "config.json").read_text())
    assert config["arch"] == "deepfill2" and config["base_channels"] == 48
    tested = sorted(p.name for p in (out / "test" / "images").glob("*.png"))
    for method in ("wconv", "pconv", "df2"):
        written = sorted(p.name for p in (out / "results" / "freeform" / method).glob("*.png"))
        assert written == tested
    assert "DF2" in (out / "demo-report.md").read_text()
    assert "DF2" in (out / "demo-report.html").read_text()


def test_overwrite_never_deletes_a_folder_the_demo_did_not_make(tmp_path: Path) -> None:
    folder = tmp_path / "thesis"
    (folder / "photos").mkdir(parents=True)
    (folder / "thesis.tex").write_text("years of work")
    (folder / "photos" / "holiday.jpg").write_bytes(b"jpeg")
    result = CliRunner().invoke(app, ["demo", "--out", str(folder), "--overwrite", "--steps", "1"])
    assert result.exit_code == 2
    assert "not made by wmi demo" in result.output
    assert (folder / "thesis.tex").read_text() == "years of work"
    assert (folder / "photos" / "holiday.jpg").exists()


def test_too_few_crops_is_refused_before_any_work(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "--crops", "1"])
    assert result.exit_code == 2
    assert "--crops 1" in result.output
    assert not out.exists()
