from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from wmi.cli import app
from wmi.eval.metrics import hole_metrics
from wmi.eval.ssim import lama_ssim
from wmi.io import read_image, read_mask

runner = CliRunner()
SIZE = 16


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture
def folders(tmp_path: Path) -> Path:
    """gt/, masks/, a/ and b/ with images 0..3: hole ratios about 6 %, 14 %, 25 % and 56 %."""
    rng = np.random.default_rng(0)
    for i, side in enumerate((4, 6, 8, 12)):
        gt = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
        hole = np.zeros((SIZE, SIZE), bool)
        hole[2 : 2 + side, 3 : 3 + side] = True
        _save(tmp_path / "gt" / f"img{i}.png", gt)
        _save(tmp_path / "masks" / f"img{i}.png", (hole * 255).astype(np.uint8))
        for method, noise in (("a", 10), ("b", 40)):
            pred = np.clip(gt + rng.normal(0, noise, gt.shape), 0, 255).astype(np.uint8)
            _save(tmp_path / method / f"img{i}.png", np.where(hole[..., None], pred, gt))
    return tmp_path


def _eval(root: Path, *args: str) -> Any:
    return runner.invoke(
        app, ["eval", "--gt", str(root / "gt"), "--masks", str(root / "masks"), *args]
    )


def _expected(root: Path, method: str, names: list[str]) -> dict[str, float]:
    per_image = [
        hole_metrics(
            read_image(root / method / n),
            read_image(root / "gt" / n),
            read_mask(root / "masks" / n),
        )
        for n in names
    ]
    return {k: float(np.mean([m[k] for m in per_image])) for k in per_image[0]}


def _one_line_error(result: Any) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_two_methods_side_by_side(folders: Path) -> None:
    out = folders / "report"
    result = _eval(
        folders,
        "--pred",
        f"A={folders / 'a'}",
        "--pred",
        f"B={folders / 'b'}",
        "--json",
        str(out / "r.json"),
        "--csv",
        str(out / "r.csv"),
        "--markdown",
        str(out / "r.md"),
        "--latex",
        str(out / "r.tex"),
        "--workers",
        "1",
    )
    assert result.exit_code == 0, result.output
    data = json.loads((out / "r.json").read_text())
    names = [f"img{i}.png" for i in range(4)]
    for method, folder in zip(data["methods"], ("a", "b"), strict=True):
        assert method["images"] == 4
        expected = _expected(folders, folder, names)
        for key, value in expected.items():
            assert method["metrics"][key] == pytest.approx(value, rel=1e-9), key
        assert [b["range"] for b in method["buckets"]] == ["0-10%", "10-20%", "20-30%", "50-60%"]
        assert [b["images"] for b in method["buckets"]] == [1, 1, 1, 1]
    a, b = data["methods"]
    assert a["metrics"]["l1"] < b["metrics"]["l1"]  # less noise, smaller error
    assert "A" in result.stdout and "B" in result.stdout and "PSNR (dB)" in result.stdout
    assert (out / "r.csv").read_text().startswith("method,range,images,")
    assert "**" in (out / "r.md").read_text()
    assert r"\toprule" in (out / "r.tex").read_text()
    assert not list(out.glob(".*"))  # no temporary files left behind


def test_positional_folder_is_named_after_it_and_workers_agree(folders: Path) -> None:
    one = _eval(folders, str(folders / "a"), "--json", "-", "--workers", "1")
    two = _eval(folders, str(folders / "a"), "--json", "-", "--workers", "2")
    assert one.exit_code == two.exit_code == 0, one.output + two.output
    assert json.loads(one.stdout) == json.loads(two.stdout)
    assert json.loads(one.stdout)["methods"][0]["name"] == "a"
    assert "PSNR (dB)" in one.stderr  # the table moves to stderr when JSON goes to stdout


def test_no_buckets(folders: Path) -> None:
    result = _eval(folders, str(folders / "a"), "--no-buckets", "--json", "-")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["methods"][0]["buckets"] == []
    assert "0-10%" not in result.stderr


def test_wrong_sized_prediction_is_named_and_left_out_for_every_method(folders: Path) -> None:
    _save(folders / "b" / "img2.png", np.zeros((SIZE, SIZE + 1, 3), np.uint8))
    result = _eval(
        folders, str(folders / "a"), str(folders / "b"), "--json", str(folders / "r.json")
    )
    assert result.exit_code == 1, result.output
    (line,) = _error_lines(result)
    assert "img2.png: prediction is 17x16" in line and "is 16x16" in line
    assert "left out for every method" in line
    data = json.loads((folders / "r.json").read_text())
    assert [m["images"] for m in data["methods"]] == [3, 3]
    expected = _expected(folders, "a", ["img0.png", "img1.png", "img3.png"])
    assert data["methods"][0]["metrics"]["l1"] == pytest.approx(expected["l1"], rel=1e-9)


def test_masks_of_another_size_are_resized_and_said_once(folders: Path) -> None:
    for i in (1, 3):  # half-size masks: nearest neighbour x2 gives the full-size holes
        full = np.asarray(Image.open(folders / "masks" / f"img{i}.png"))
        _save(folders / "masks" / f"img{i}.png", full[::2, ::2])
    result = _eval(folders, str(folders / "a"), "--json", "-", "--workers", "1")
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stderr.splitlines() if "resized" in line]
    assert len(notes) == 1 and "2 masks had another size" in notes[0], result.stderr
    assert "nearest neighbour" in notes[0] and "img1.png" in notes[0] and "img3.png" in notes[0]
    assert json.loads(result.stdout)["methods"][0]["images"] == 4


def test_missing_counterparts_are_listed_and_strict_fails(folders: Path) -> None:
    (folders / "b" / "img1.png").unlink()
    (folders / "masks" / "img3.png").unlink()
    _save(folders / "a" / "stray.png", np.zeros((SIZE, SIZE, 3), np.uint8))
    result = _eval(folders, str(folders / "a"), str(folders / "b"), "--json", "-")
    assert result.exit_code == 0, result.output
    assert "1 ground truth has no mask" in result.stderr and "img3.png" in result.stderr
    assert "no prediction in" in result.stderr and "img1.png" in result.stderr
    assert "stray.png" in result.stderr
    data = json.loads(result.stdout)
    assert [m["images"] for m in data["methods"]] == [2, 2]  # img0 and img2 only
    expected = _expected(folders, "a", ["img0.png", "img2.png"])
    assert data["methods"][0]["metrics"]["l1"] == pytest.approx(expected["l1"])

    strict = _eval(folders, str(folders / "a"), str(folders / "b"), "--strict")
    assert "--strict" in _one_line_error(strict)


def test_mask_without_hole_is_left_out(folders: Path) -> None:
    _save(folders / "masks" / "img0.png", np.zeros((SIZE, SIZE), np.uint8))
    _save(folders / "masks" / "img2.png", np.full((SIZE, SIZE), 100, np.uint8))  # below 127
    result = _eval(folders, str(folders / "a"), "--json", "-")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if "selects nothing" in line]
    assert len(warnings) == 2, result.stderr  # one per file, each naming it
    assert str(folders / "masks" / "img0.png") in warnings[0]
    assert str(folders / "masks" / "img2.png") in warnings[1]
    method = json.loads(result.stdout)["methods"][0]
    assert method["images"] == 2
    expected = _expected(folders, "a", ["img1.png", "img3.png"])
    assert method["metrics"]["l2"] == pytest.approx(expected["l2"])


def test_all_masks_empty_is_an_error(folders: Path) -> None:
    for i in range(4):
        _save(folders / "masks" / f"img{i}.png", np.zeros((SIZE, SIZE), np.uint8))
    assert "no mask of the 4 paired images has a hole" in _one_line_error(
        _eval(folders, str(folders / "a"))
    )


def test_exact_reproduction_gives_a_finite_psnr_and_is_counted(folders: Path) -> None:
    exact = folders / "exact"
    exact.mkdir()
    for i in range(4):
        source = folders / ("gt" if i < 3 else "a") / f"img{i}.png"
        (exact / f"img{i}.png").write_bytes(source.read_bytes())
    result = _eval(
        folders, str(exact), "--json", str(folders / "r.json"), "--csv", str(folders / "r.csv")
    )
    assert result.exit_code == 0, result.output
    text = (folders / "r.json").read_text()
    assert "Infinity" not in text
    method = json.loads(text)["methods"][0]
    blocks = [method, *method["buckets"]]
    assert all(v is not None for b in blocks for v in b["metrics"].values())
    # one run: no interval, and JSON says so with null rather than a made-up number
    assert method["runs"] == 1 and method["ci95"]["psnr"] == [None, None]
    last = _expected(folders, "a", ["img3.png"])["psnr"]
    assert method["metrics"]["psnr"] == pytest.approx((3 * 100.0 + last) / 4)
    assert method["psnr_infinite"] == 3
    assert [b["psnr_infinite"] for b in method["buckets"]] == [1, 1, 1, 0]
    assert method["metrics"]["ssim"] < 1.0 and method["buckets"][0]["metrics"]["l1"] == 0.0
    flat = " ".join(result.stdout.split())
    assert "capped at 100 dB" in flat and "exact holes: exact 3" in flat
    assert "inf" not in result.stdout
    assert math.isfinite(float((folders / "r.csv").read_text().splitlines()[1].split(",")[-1]))


def test_no_pairs_names_the_folders(folders: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    line = _one_line_error(_eval(folders, str(empty)))
    assert "nothing to evaluate" in line
    assert str(folders / "gt") in line and str(folders / "masks") in line and str(empty) in line


def test_16bit_png_and_jpeg_inputs(tmp_path: Path) -> None:
    import cv2

    rng = np.random.default_rng(7)
    deep = rng.integers(0, 65536, (SIZE, SIZE, 3), dtype=np.uint16)
    (tmp_path / "gt").mkdir()
    cv2.imwrite(str(tmp_path / "gt" / "x.png"), deep[..., ::-1])  # OpenCV writes BGR
    hole = np.zeros((SIZE, SIZE), bool)
    hole[4:12, 4:12] = True
    _save(tmp_path / "masks" / "x.png", (hole * 255).astype(np.uint8))
    pred = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    (tmp_path / "jpeg").mkdir()
    Image.fromarray(pred).save(tmp_path / "jpeg" / "x.jpg", quality=90)
    decoded = np.asarray(Image.open(tmp_path / "jpeg" / "x.jpg").convert("RGB")) / 255.0

    result = _eval(tmp_path, str(tmp_path / "jpeg"), "--json", "-")
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)["methods"][0]["metrics"]
    expected = hole_metrics(decoded, deep / 65535.0, hole)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key


def test_lama_layout_masks_next_to_images(folders: Path) -> None:
    for i in range(4):
        (folders / "masks" / f"img{i}.png").rename(folders / "gt" / f"img{i}_mask000.png")
    result = runner.invoke(
        app,
        [
            "eval",
            "--gt",
            str(folders / "gt"),
            "--masks",
            str(folders / "gt"),
            str(folders / "a"),
            "--json",
            "-",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr
    assert json.loads(result.stdout)["methods"][0]["images"] == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "no predictions"),
        (["--pred", "=x"], "expected NAME=DIR"),
        (["--pred", "A={a}", "--pred", "A={b}"], "'A' is used twice"),
        (["{root}/nope"], "is not a folder"),
        (["{a}", "--json", "-", "--csv", "-"], "only one of"),
        (["{a}", "--json", "{root}/r", "--csv", "{root}/r"], "given to both --json and --csv"),
        (["{a}", "--csv", "{a}/img0.png"], "refusing to write a report over an input image"),
    ],
)
def test_option_errors(folders: Path, args: list[str], message: str) -> None:
    paths = {"root": folders, "a": folders / "a", "b": folders / "b"}
    before = (folders / "a" / "img0.png").read_bytes()
    result = _eval(folders, *(arg.format(**paths) for arg in args))
    assert message in _one_line_error(result)
    assert (folders / "a" / "img0.png").read_bytes() == before


def test_missing_gt_folder(folders: Path) -> None:
    args = ["eval", "--gt", str(folders / "nope"), "--masks", str(folders / "masks")]
    result = runner.invoke(app, [*args, str(folders / "a")])
    assert "--gt" in _one_line_error(result) and "nope: not a folder" in result.stderr


def test_wide_table_is_not_cropped_in_a_pipe(folders: Path) -> None:
    names = ["WConv", "PConv", "DF1", "DF2", "telea", "navier_stokes", "biharmonic"]
    args = [arg for name in names for arg in ("--pred", f"{name}={folders / 'a'}")]
    result = _eval(folders, *args, "--no-buckets")
    assert result.exit_code == 0, result.output
    header = next(line for line in result.stdout.splitlines() if "WConv" in line)
    assert all(name in header for name in names)
    table = [line for line in result.stdout.splitlines() if line[:1] in "┏┃┡│└"]
    assert len({len(line) for line in table}) == 1  # every row complete, none cropped
    assert table[0].endswith("┓")


def _corrupt(path: Path, truncate: bool = False) -> None:
    """Garbage bytes, or the first half of the file (a truncated PNG)."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if truncate else b"not an image at all")


def _error_lines(result: Any) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_unreadable_prediction_is_named_and_left_out_for_every_method(
    folders: Path, workers: str
) -> None:
    _corrupt(folders / "b" / "img2.png", truncate=True)
    out = folders / "r.json"
    result = _eval(
        folders, str(folders / "a"), str(folders / "b"), "--json", str(out), "--workers", workers
    )
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = _error_lines(result)
    assert len(lines) == 1, result.stderr
    assert str(folders / "b" / "img2.png") in lines[0] and "not a readable image" in lines[0]
    assert "PSNR (dB)" in result.stdout  # the report of the other images is still printed
    names = ["img0.png", "img1.png", "img3.png"]
    data = json.loads(out.read_text())
    for method, folder in zip(data["methods"], ("a", "b"), strict=True):
        assert method["images"] == 3  # img2 is out for a too, whose img2 is readable
        expected = _expected(folders, folder, names)
        for key, value in expected.items():
            assert method["metrics"][key] == pytest.approx(value, rel=1e-9), key


def test_unreadable_ground_truth_mask_and_prediction_each_named(folders: Path) -> None:
    _corrupt(folders / "gt" / "img1.png")
    _corrupt(folders / "a" / "img1.png")
    _corrupt(folders / "masks" / "img3.png", truncate=True)
    result = _eval(folders, str(folders / "a"), "--json", "-")
    assert result.exit_code == 1, result.output
    lines = _error_lines(result)
    assert len(lines) == 3, result.stderr
    for path in (folders / "gt" / "img1.png", folders / "a" / "img1.png"):
        assert sum(str(path) in line for line in lines) == 1, (path, lines)
    assert sum(str(folders / "masks" / "img3.png") in line for line in lines) == 1
    method = json.loads(result.stdout)["methods"][0]
    assert method["images"] == 2
    expected = _expected(folders, "a", ["img0.png", "img2.png"])
    assert method["metrics"]["l1"] == pytest.approx(expected["l1"], rel=1e-9)


def test_nothing_readable_is_one_line_and_no_report(folders: Path) -> None:
    for i in range(4):
        _corrupt(folders / "a" / f"img{i}.png")
    out = folders / "r.json"
    result = _eval(folders, str(folders / "a"), "--json", str(out))
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = _error_lines(result)
    assert len(lines) == 5, result.stderr  # each file, then why there is no report
    assert (
        "nothing could be scored: 4 paired images have a file that could not be used" in lines[-1]
    )
    assert not out.exists()
    assert "PSNR" not in result.stdout


def test_unreadable_file_does_not_hide_a_size_mismatch(folders: Path) -> None:
    _corrupt(folders / "a" / "img0.png")
    _save(folders / "a" / "img3.png", np.zeros((SIZE + 2, SIZE, 3), np.uint8))
    result = _eval(folders, str(folders / "a"), "--workers", "1")
    assert result.exit_code == 1, result.output
    lines = _error_lines(result)
    assert len(lines) == 2 and "img0.png: not a readable image" in lines[0]
    assert "img3.png: prediction is 16x18" in lines[1]


@pytest.mark.parametrize("option", ["--json", "--csv", "--markdown", "--latex"])
@pytest.mark.parametrize("below", ["x.out", "sub/x.out"])
def test_report_path_below_a_file_fails_before_scoring(
    folders: Path, option: str, below: str
) -> None:
    (folders / "afile").write_text("keep me")
    target = folders / "afile" / below
    result = _eval(folders, str(folders / "a"), option, str(target))
    line = _one_line_error(result)
    assert f"{option} {target}" in line and f"{folders / 'afile'} is not a folder" in line
    assert "scored" not in result.stderr and "PSNR" not in result.stdout  # nothing was scored
    assert (folders / "afile").read_text() == "keep me"


def test_report_path_that_is_a_folder_fails_before_scoring(folders: Path) -> None:
    (folders / "out").mkdir()
    result = _eval(folders, str(folders / "a"), "--csv", "-", "--latex", str(folders / "out"))
    assert "--latex" in _one_line_error(result) and "is a folder" in result.stderr
    assert "scored" not in result.stderr and result.stdout == ""


def test_lama_layout_one_row_per_mask_predictions_named_after_masks(folders: Path) -> None:
    """photo.png, photo_mask000.png, photo_mask001.png side by side; a prediction per mask."""
    lama, preds = folders / "lama", folders / "lama_out"
    rng = np.random.default_rng(3)
    gt = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    _save(lama / "photo.png", gt)
    holes = {}
    for k, (y, x) in enumerate([(2, 2), (8, 6)]):
        holes[k] = np.zeros((SIZE, SIZE), bool)
        holes[k][y : y + 6, x : x + 6] = True
        _save(lama / f"photo_mask{k:03d}.png", (holes[k] * 255).astype(np.uint8))
        pred = np.clip(gt + rng.normal(0, 20 * (k + 1), gt.shape), 0, 255).astype(np.uint8)
        _save(preds / f"photo_mask{k:03d}.png", pred)
    result = runner.invoke(
        app, ["eval", "--gt", str(lama), "--masks", str(lama), str(preds), "--json", "-"]
    )
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr
    method = json.loads(result.stdout)["methods"][0]
    assert method["images"] == 2  # one row per mask
    expected = np.mean(
        [
            hole_metrics(read_image(preds / f"photo_mask{k:03d}.png"), gt / 255.0, holes[k])["l1"]
            for k in range(2)
        ]
    )
    assert method["metrics"]["l1"] == pytest.approx(expected, rel=1e-6)


def test_two_predictions_of_one_image_is_an_error_naming_both(folders: Path) -> None:
    Image.open(folders / "a" / "img1.png").save(folders / "a" / "img1.jpg", quality=95)
    line = _one_line_error(_eval(folders, str(folders / "a"), "--json", "-"))
    assert "img1.jpg and img1.png are predictions of the same image" in line
    assert str(folders / "a") in line


@pytest.mark.parametrize(
    ("window", "label"),
    [
        ("gaussian", "gaussian 11x11 σ=1.5"),
        ("uniform", "uniform 7x7"),
        ("lama", "LaMa's 11x11 σ=1.5, zero-padded"),
    ],
)
def test_ssim_window_is_chosen_and_named_in_every_report(
    folders: Path, window: str, label: str
) -> None:
    from skimage.metrics import structural_similarity

    out = folders / "r"
    args = ["--json", str(out / "r.json"), "--markdown", str(out / "r.md")]
    args += ["--latex", str(out / "r.tex"), "--ssim-window", window]
    result = _eval(folders, str(folders / "a"), *args)
    assert result.exit_code == 0, result.output
    data = json.loads((out / "r.json").read_text())
    assert data["ssim_window"] == window
    assert f"SSIM window: {label}." in " ".join(result.stdout.split())
    assert f"SSIM window: {label}." in (out / "r.md").read_text()
    assert "SSIM window: " + label.replace("σ", r"$\sigma$") in (out / "r.tex").read_text()
    kwargs = (
        {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}
        if window == "gaussian"
        else {}
    )
    ssims = []
    for i in range(4):
        gt = read_image(folders / "gt" / f"img{i}.png")
        hole = read_mask(folders / "masks" / f"img{i}.png")
        comp = np.where(hole[..., None], read_image(folders / "a" / f"img{i}.png"), gt)
        if window == "lama":  # LaMa's own SSIM: zero padding, border included
            ssims.append(lama_ssim(comp, gt))
        else:
            ssims.append(structural_similarity(comp, gt, data_range=1, channel_axis=2, **kwargs))
    assert data["methods"][0]["metrics"]["ssim"] == pytest.approx(np.mean(ssims), rel=1e-6)


def test_help_lists_the_new_options_with_defaults() -> None:
    result = runner.invoke(app, ["eval", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "--ssim-window" in text and "gaussian" in text and "uniform" in text
    assert "[default: uniform]" in text
    assert "--html" in text


def test_html_report_of_an_eval(folders: Path) -> None:
    from tests.eval.test_html_report import decode, parse

    out = folders / "rep" / "r.html"
    result = _eval(folders, "--pred", f"A={folders / 'a'}", "--pred", f"B={folders / 'b'}",
                   "--html", str(out), "--ssim-window", "uniform")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.parent.iterdir()) == ["r.html"]
    text = out.read_text(encoding="utf-8")
    assert "SSIM window: uniform 7x7" in text
    root = parse(text)
    (table_one,) = root.find("table", id="table-one")
    assert [th.text for th in table_one.iter("thead")[0].iter("th")][2:] == ["A", "B"]
    rows = table_one.find("tr")
    assert [tr.attrs["data-metric"] for tr in rows if "data-metric" in tr.attrs][:5] == [
        "l1", "l2", "tv", "ssim", "psnr"
    ]  # fmt: skip
    (per_image,) = root.find("table", id="per-image")
    assert len(per_image.iter("tbody")[0].iter("tr")) == 4
    images = [img.attrs["src"] for img in root.iter("img") if img.attrs.get("src")]
    assert images and all(decode(src).size == (SIZE, SIZE) for src in images)


def test_html_path_is_checked_before_scoring(folders: Path) -> None:
    (folders / "out").mkdir()
    result = _eval(folders, str(folders / "a"), "--html", str(folders / "out"))
    assert "--html" in _one_line_error(result) and "is a folder" in result.stderr
    assert "scored" not in result.stderr
