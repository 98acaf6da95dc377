"""The library behind ``wmi inpaint folder`` and ``wmi eval``, registries, torch-free CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from wmi.cli import app
from wmi.errors import WmiError
from wmi.eval import report
from wmi.eval.metrics import hole_metrics
from wmi.eval.scoring import score_folders
from wmi.inpaint.classical import ClassicalInpainter
from wmi.inpaint.folder import inpaint_folder
from wmi.io import format_names, pair_folders, read_image
from wmi.kinds import METRICS, Metric

ROOT = Path(__file__).resolve().parents[2]


def _save(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def _photo(rng: np.random.Generator, size: int = 24) -> np.ndarray:
    return rng.integers(0, 256, (size, size, 3), dtype=np.uint8)


def _hole(size: int = 24) -> np.ndarray:
    hole = np.zeros((size, size), bool)
    hole[6:14, 8:16] = True
    return hole


def _mask(hole: np.ndarray) -> np.ndarray:
    return (hole * 255).astype(np.uint8)


def test_pair_folders_one_rule_for_lama_layout(tmp_path: Path) -> None:
    """x.png + x_mask000.png, y.jpg + y.png; an orphan ``z_mask1.png`` is an image."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "lama"
    _save(folder / "x.png", _photo(rng))
    _save(folder / "x_mask000.png", _mask(_hole()))
    _save(folder / "y.jpg", _photo(rng))
    _save(folder / "y.png", _mask(_hole()))
    _save(folder / "z_mask1.png", _photo(rng))
    pairing = pair_folders(folder, folder)
    assert [(p.image.name, p.mask.name) for p in pairing.complete] == [
        ("x.png", "x_mask000.png"),
        ("y.jpg", "y.png"),
    ]
    assert [p.name for p in pairing.images_without_mask] == ["z_mask1.png"]
    assert pairing.masks_without_image == [] and (pairing.images, pairing.masks) == (3, 2)


def test_pair_folders_with_predictions(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    for stem in ("a", "b", "c"):
        _save(tmp_path / "gt" / f"{stem}.png", _photo(rng))
        _save(tmp_path / "masks" / f"{stem}_mask001.png", _mask(_hole()))
    _save(tmp_path / "p" / "a.JPG", _photo(rng))
    _save(tmp_path / "p" / "b.png", _photo(rng))
    _save(tmp_path / "p" / "stray.png", _photo(rng))
    pairing = pair_folders(tmp_path / "gt", tmp_path / "masks", {"P": tmp_path / "p"})
    assert [(p.image.name, p.predictions["P"].name) for p in pairing.complete] == [
        ("a.png", "a.JPG"),
        ("b.png", "b.png"),
    ]
    assert [p.name for p in pairing.missing_predictions["P"]] == ["c.png"]
    assert [p.name for p in pairing.stray_predictions["P"]] == ["stray.png"]


def test_format_names() -> None:
    assert format_names([Path("a/x.png")]) == "x.png"
    assert (
        format_names([f"{i}.png" for i in range(7)])
        == "0.png, 1.png, 2.png, 3.png, 4.png and 2 more"
    )


@pytest.fixture
def damaged(tmp_path: Path) -> Path:
    rng = np.random.default_rng(2)
    for stem in ("a", "b"):
        image = _photo(rng)
        image[_hole()] = 0
        _save(tmp_path / "gt" / f"{stem}.png", _photo(rng))
        _save(tmp_path / "img" / f"{stem}.png", image)
        _save(tmp_path / "masks" / f"{stem}.png", _mask(_hole()))
    return tmp_path


def test_inpaint_then_score_from_python(damaged: Path) -> None:
    """What wmi demo does: an in-memory inpainter or a method name, progress, messages."""
    calls: list[tuple[int, int]] = []
    messages: list[tuple[str, str]] = []
    result = inpaint_folder(
        damaged / "img",
        damaged / "masks",
        damaged / "telea",
        ClassicalInpainter("telea"),
        progress=lambda done, total: calls.append((done, total)),
        notify=lambda level, message: messages.append((level, message)),
    )
    assert result.processed == 2 and not result.failed and messages == []
    assert calls == [(0, 2), (1, 2), (2, 2)]
    again = inpaint_folder(damaged / "img", damaged / "masks", damaged / "telea", "telea")
    assert again.skipped_existing == 2 and again.processed == 0
    inpaint_folder(damaged / "img", damaged / "masks", damaged / "ns", lambda: "ns")

    scored = score_folders(
        damaged / "gt",
        damaged / "masks",
        {"Telea": damaged / "telea", "NS": damaged / "ns"},
        workers=1,
    )
    assert [m["name"] for m in scored.results["methods"]] == ["Telea", "NS"]
    assert [m["images"] for m in scored.results["methods"]] == [2, 2]
    assert scored.unreadable == [] and scored.no_hole == []
    hole = _hole()
    expected = np.mean(
        [
            hole_metrics(
                read_image(damaged / "telea" / f"{s}.png"),
                read_image(damaged / "gt" / f"{s}.png"),
                hole,
            )["l1"]
            for s in ("a", "b")
        ]
    )
    assert scored.results["methods"][0]["metrics"]["l1"] == expected


def test_biharmonic_is_scikit_image_on_the_float_image() -> None:
    from skimage.restoration import inpaint_biharmonic

    rng = np.random.default_rng(3)
    image = rng.random((20, 20, 3)).astype(np.float32)
    hole = _hole(20)
    direct = np.clip(inpaint_biharmonic(image, hole, channel_axis=-1), 0, 1).astype(np.float32)
    ours = ClassicalInpainter("biharmonic").inpaint_batch([image], [hole])[0]
    np.testing.assert_array_equal(ours, direct)


def hole_max_error(pred: np.ndarray, gt: np.ndarray, hole: np.ndarray, comp: np.ndarray) -> float:
    """A metric registered by the test below."""
    return float(np.abs(pred[hole] - gt[hole]).max())


@pytest.fixture
def max_error_metric():
    METRICS.register(
        Metric(
            "maxerr",
            "largest error over the hole",
            hole_max_error,
            label="Max err ↓",
            latex=r"Max err $\downarrow$",
        )
    )
    yield
    METRICS.unregister("maxerr")


def test_a_registered_metric_reaches_every_output(damaged: Path, max_error_metric: None) -> None:
    pred = np.zeros((24, 24, 3))
    gt = np.full((24, 24, 3), 0.25)
    assert hole_metrics(pred, gt, _hole())["maxerr"] == 0.25
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["eval", "--gt", str(damaged / "gt"), "--masks", str(damaged / "masks"),
         str(damaged / "img"), "--json", "-", "--workers", "1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert list(data["methods"][0]["metrics"])[-1] == "maxerr"
    assert "Max err" in result.stderr  # the terminal table
    scored = score_folders(damaged / "gt", damaged / "masks", {"A": damaged / "img"}, workers=1)
    assert "| Max err ↓ |" in report.to_markdown(scored.results)
    assert r"Max err $\downarrow$" in report.to_latex(scored.results)
    assert report.csv_columns(scored.results)[-1] == "maxerr"


STUB_SIBLINGS = """
import sys, types, typer
for name in ("bench", "demo", "train", "data", "masks"):
    stub = types.ModuleType(f"wmi.cli.{name}")
    stub.app = typer.Typer()
    setattr(stub, name, lambda: None)
    sys.modules[stub.__name__] = stub
"""


def test_inpaint_and_eval_commands_do_not_import_torch() -> None:
    """Other command groups are stubbed: this checks the two modules and what they import."""
    code = STUB_SIBLINGS + (
        "import wmi.cli.inpaint, wmi.cli.eval, wmi.inpaint.strategies, wmi.inpaint.folder, "
        "wmi.eval.metrics, wmi.eval.report, wmi.inpaint.classical, wmi.inpaint.load, wmi.io\n"
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_pair_folders_every_mask_and_two_predictions(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    folder = tmp_path / "lama"
    _save(folder / "x.png", _photo(rng))
    _save(folder / "y.png", _photo(rng))
    for name in ("x_mask000.png", "x_mask001.png", "y_mask000.png"):
        _save(folder / name, _mask(_hole()))
    _save(tmp_path / "p" / "x_mask000.png", _photo(rng))
    _save(tmp_path / "p" / "x_mask001.png", _photo(rng))
    _save(tmp_path / "p" / "y.png", _photo(rng))  # one mask: the image's stem will do
    one = pair_folders(folder, folder, {"P": tmp_path / "p"})
    assert [p.mask.name for p in one.complete] == ["x_mask000.png", "y_mask000.png"]
    assert [p.name for p in one.masks_without_image] == ["x_mask001.png"]
    every = pair_folders(folder, folder, {"P": tmp_path / "p"}, every_mask=True)
    assert [(p.name, p.mask.name, p.predictions["P"].name) for p in every.complete] == [
        ("x_mask000.png", "x_mask000.png", "x_mask000.png"),
        ("x_mask001.png", "x_mask001.png", "x_mask001.png"),
        ("y.png", "y_mask000.png", "y.png"),
    ]
    assert every.masks_without_image == [] and every.stray_predictions["P"] == []
    _save(tmp_path / "p" / "y.jpg", _photo(rng))
    with pytest.raises(WmiError, match=r"y\.jpg and y\.png are predictions of the same image"):
        pair_folders(folder, folder, {"P": tmp_path / "p"})
