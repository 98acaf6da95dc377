from __future__ import annotations

import json
import os
import types
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data
from typer.testing import CliRunner

from wmi.cli import app

runner = CliRunner()
RED = (255, 0, 0)


def photo(h: int, w: int) -> np.ndarray:
    """scikit-image's coffee resized to ``(h, w)``, uint8 RGB."""
    return cv2.resize(data.coffee(), (w, h), interpolation=cv2.INTER_AREA)


def save(path: Path, array: np.ndarray, **kwargs: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def box_hole(h: int, w: int) -> np.ndarray:
    hole = np.zeros((h, w), bool)
    hole[h // 3 : h // 2, w // 3 : w // 2] = True
    return hole


def damaged_pair(folder: Path, masks: Path, stem: str, h: int = 64, w: int = 80, **kw) -> Path:
    """Write ``stem.png`` with a red square and its mask ``masks/<mask name>`` (white = hole)."""
    image = photo(h, w)
    hole = box_hole(h, w)
    image[hole] = RED
    save(masks / kw.get("mask_name", f"{stem}.png"), np.where(hole, 255, 0).astype(np.uint8))
    return save(folder / kw.get("image_name", f"{stem}.png"), image)


def read(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def summary(result) -> dict:
    return json.loads(result.stdout)


def test_folder_pairs_by_stem_and_lama_names_and_reports_unmatched(tmp_path: Path) -> None:
    images, masks, out = tmp_path / "img", tmp_path / "mask", tmp_path / "out"
    damaged_pair(images, masks, "plain")  # plain.png <-> plain.png
    damaged_pair(images, masks, "lama", image_name="lama.jpg", mask_name="lama_mask001.png")
    save(images / "lonely.png", photo(32, 32))
    save(masks / "orphan.png", np.zeros((8, 8), np.uint8))
    result = invoke("inpaint", "folder", images, masks, out, "--method", "telea", "--json")
    assert result.exit_code == 0, result.output
    report = summary(result)
    assert report["processed"] == 2
    assert [Path(p).name for p in report["unmatched_images"]] == ["lonely.png"]
    assert [Path(p).name for p in report["unmatched_masks"]] == ["orphan.png"]
    assert report["images_per_second"] > 0
    assert sorted(p.name for p in out.glob("[!.]*")) == ["lama.png", "plain.png"]
    assert "images without a mask: 1 (lonely.png)" in result.stderr


def test_folder_table_summary_and_throughput(tmp_path: Path) -> None:
    images, masks, out = tmp_path / "img", tmp_path / "mask", tmp_path / "out"
    damaged_pair(images, masks, "a")
    result = invoke("inpaint", "folder", images, masks, out, "--method", "ns")
    assert result.exit_code == 0, result.output
    for row in ("processed", "skipped (output exists)", "failed", "unmatched images"):
        assert row in result.stdout
    assert "images/s" in result.stdout


def test_white_is_hole_and_known_pixels_survive_exactly(tmp_path: Path) -> None:
    images, masks, out = tmp_path / "img", tmp_path / "mask", tmp_path / "out"
    src = damaged_pair(images, masks, "a")
    result = invoke("inpaint", "folder", images, masks, out, "--method", "telea")
    assert result.exit_code == 0, result.output
    before, after = read(src), read(out / "a.png")
    hole = box_hole(*before.shape[:2])
    np.testing.assert_array_equal(after[~hole], before[~hole])
    # the red square was the hole: none of it is left
    assert (after[hole] == RED).all(axis=1).sum() == 0


def test_odd_size_and_mask_of_another_size(tmp_path: Path) -> None:
    images, masks, out = tmp_path / "img", tmp_path / "mask", tmp_path / "out"
    image = photo(217, 301)
    save(images / "odd.png", image)
    small_hole = np.zeros((50, 70), np.uint8)
    small_hole[20:30, 30:40] = 255
    save(masks / "odd.png", small_hole)
    result = invoke("inpaint", "folder", images, masks, out, "--method", "telea")
    assert result.exit_code == 0, result.output
    after = read(out / "odd.png")
    assert after.shape == (217, 301, 3)
    hole = cv2.resize(small_hole, (301, 217), interpolation=cv2.INTER_NEAREST) > 127
    np.testing.assert_array_equal(after[~hole], image[~hole])


def test_nothing_matched_names_both_folders_and_the_patterns(tmp_path: Path) -> None:
    images, masks, out = tmp_path / "img", tmp_path / "mask", tmp_path / "out"
    save(images / "a.png", photo(16, 16))
    save(masks / "b.png", np.zeros((16, 16), np.uint8))
    result = invoke("inpaint", "folder", images, masks, out, "--method", "telea")
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert str(images) in lines[0] and str(masks) in lines[0]
    assert "{stem}.png" in lines[0] and "{stem}_mask*.png" in lines[0]
    assert not out.exists()


def test_strict_fails_on_unmatched_before_writing(tmp_path: Path) -> None:
    images, masks, out = tmp_path / "img", tmp_path / "mask", tmp_path / "out"
    damaged_pair(images, masks, "a")
    save(images / "lonely.png", photo(16, 16))
    result = invoke("inpaint", "folder", images, masks, out, "--method", "telea", "--strict")
    assert result.exit_code != 0
    assert "--strict" in result.stderr and "lonely.png" in result.stderr
    assert not out.exists()


@pytest.mark.parametrize("where", ["images", "inside-masks"])
def test_out_dir_inside_an_input_is_refused(tmp_path: Path, where: str) -> None:
    images, masks = tmp_path / "img", tmp_path / "mask"
    src = damaged_pair(images, masks, "a")
    original = src.read_bytes()
    out = images if where == "images" else masks / "sub" / ".." / "results"
    result = invoke("inpaint", "folder", images, masks, out, "--method", "telea", "--overwrite")
    assert result.exit_code != 0
    assert "OUT_DIR must not be or lie inside" in result.stderr
    assert src.read_bytes() == original
    assert not (masks / "results").exists()


def test_existing_outputs_are_skipped_unless_overwrite(tmp_path: Path) -> None:
    images, masks, out = tmp_path / "img", tmp_path / "mask", tmp_path / "out"
    damaged_pair(images, masks, "a")
    damaged_pair(images, masks, "b")
    keep = save(out / "a.png", photo(64, 80)).read_bytes()  # a complete earlier result
    result = invoke("inpaint", "folder", images, masks, out, "--method", "telea", "--json")
    assert result.exit_code == 0, result.output
    assert summary(result)["skipped_existing"] == 1 and summary(result)["processed"] == 1
    assert (out / "a.png").read_bytes() == keep
    args = ("inpaint", "folder", images, masks, out, "--method", "telea", "--json", "--overwrite")
    result = invoke(*args)
    assert summary(result)["processed"] == 2
    assert read(out / "a.png").shape == (64, 80, 3)
    assert [p.name for p in out.glob(".*")] == [".wmi-inpaint.json"]  # no temp files left


def test_corrupt_image_and_mask_are_named_and_skipped(tmp_path: Path) -> None:
    images, masks, out = tmp_path / "img", tmp_path / "mask", tmp_path / "out"
    damaged_pair(images, masks, "good")
    (images / "broken.png").write_bytes(b"not a png")
    save(masks / "broken.png", np.zeros((16, 16), np.uint8))
    save(images / "badmask.png", photo(16, 16))
    (masks / "badmask.png").write_bytes(b"\x89PNG truncated")
    save(images / "[all].png", photo(16, 16))  # brackets: not rich markup
    save(masks / "[all].png", np.full((16, 16), 255, np.uint8))
    result = invoke("inpaint", "folder", images, masks, out, "--method", "telea", "--json")
    assert result.exit_code == 1
    assert "broken.png" in result.stderr and "badmask.png" in result.stderr
    assert "[all].png: the hole covers all of [all].png" in result.stderr
    assert "Traceback" not in result.output
    report = summary(result)
    assert report["processed"] == 1 and len(report["failed"]) == 3
    assert sorted(p.name for p in out.glob("[!.]*")) == ["good.png"]


def test_format_jpg_and_same(tmp_path: Path) -> None:
    images, masks = tmp_path / "img", tmp_path / "mask"
    damaged_pair(images, masks, "a", image_name="a.jpg")
    damaged_pair(images, masks, "b", image_name="b.webp")
    result = invoke(
        "inpaint", "folder", images, masks, tmp_path / "jpg", "--method", "ns", "--format", "jpg"
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "jpg").glob("[!.]*")) == ["a.jpg", "b.jpg"]
    result = invoke(
        "inpaint", "folder", images, masks, tmp_path / "same", "--method", "ns", "--format", "same"
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "same").glob("[!.]*")) == ["a.jpg", "b.webp"]
    assert Image.open(tmp_path / "same" / "b.webp").format == "WEBP"


def test_two_images_with_one_output_name_are_refused(tmp_path: Path) -> None:
    images, masks, out = tmp_path / "img", tmp_path / "mask", tmp_path / "out"
    damaged_pair(images, masks, "a", image_name="a.jpg", mask_name="a.png")
    damaged_pair(images, masks, "a", image_name="a.png", mask_name="a_mask1.png")
    result = invoke("inpaint", "folder", images, masks, out, "--method", "ns")
    assert result.exit_code != 0
    assert "would overwrite" in result.stderr
    assert not out.exists()


def test_lama_layout_in_one_folder(tmp_path: Path) -> None:
    folder, out = tmp_path / "lama", tmp_path / "out"
    damaged_pair(folder, folder, "x", mask_name="x_mask000.png")
    damaged_pair(folder, folder, "y", image_name="y.jpg", mask_name="y.png")
    result = invoke("inpaint", "folder", folder, folder, out, "--method", "telea", "--json")
    assert result.exit_code == 0, result.output
    report = summary(result)
    assert report["processed"] == 2
    assert report["unmatched_images"] == [] and report["unmatched_masks"] == []


def test_mask_patterns_repeatable_and_comma_separated(tmp_path: Path) -> None:
    images, masks, out = tmp_path / "img", tmp_path / "mask", tmp_path / "out"
    damaged_pair(images, masks, "a", mask_name="mask_a.png")
    damaged_pair(images, masks, "b", mask_name="b-hole.png")
    damaged_pair(images, masks, "c", mask_name="c.hole.png")
    result = invoke(
        "inpaint", "folder", images, masks, out, "--method", "ns", "--json",
        "--mask-pattern", "mask_{stem}.png,{stem}-hole.png", "--mask-pattern", "{stem}.hole.png",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert summary(result)["processed"] == 3


@pytest.mark.parametrize("pattern", ["*.png", "{stem}_{n}.png", "{0}.png"])
def test_bad_mask_pattern(tmp_path: Path, pattern: str) -> None:
    images, masks = tmp_path / "img", tmp_path / "mask"
    damaged_pair(images, masks, "a")
    result = invoke(
        "inpaint",
        "folder",
        images,
        masks,
        tmp_path / "o",
        "--method",
        "ns",
        "--mask-pattern",
        pattern,
    )
    assert result.exit_code != 0
    assert "--mask-pattern" in result.stderr


def test_dilate_grows_the_hole(tmp_path: Path) -> None:
    images, masks = tmp_path / "img", tmp_path / "mask"
    src = damaged_pair(images, masks, "a")
    before = read(src).astype(int)
    hole = box_hole(*before.shape[:2])
    ring = (cv2.dilate(hole.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0) & ~hole
    invoke("inpaint", "folder", images, masks, tmp_path / "d0", "--method", "telea")
    invoke(
        "inpaint", "folder", images, masks, tmp_path / "d3", "--method", "telea", "--dilate", "3"
    )
    plain, dilated = (
        read(tmp_path / "d0" / "a.png").astype(int),
        read(tmp_path / "d3" / "a.png").astype(int),
    )
    np.testing.assert_array_equal(plain[ring], before[ring])
    assert (dilated[ring] != before[ring]).any(axis=1).mean() > 0.5
    assert (dilated[:5] == before[:5]).all()  # far from the hole: untouched


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--method", "ns", "--checkpoint", "x.pt"], "--checkpoint CKPT or --method, not both"),
        (["--checkpoint", "missing.pt"], "missing.pt: no such checkpoint file"),
    ],
)
def test_option_errors(tmp_path: Path, extra: list[str], message: str) -> None:
    images, masks = tmp_path / "img", tmp_path / "mask"
    damaged_pair(images, masks, "a")
    result = invoke("inpaint", "folder", images, masks, tmp_path / "o", "--device", "cpu", *extra)
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_without_checkpoint_or_method_the_default_method_inpaints(tmp_path: Path) -> None:
    # what README's `wmi inpaint folder photos/ watermark.png out/` needs (was an error)
    from wmi.cli.inpaint import DEFAULT_METHOD

    images, masks = tmp_path / "img", tmp_path / "mask"
    damaged_pair(images, masks, "a")
    plain = invoke("inpaint", "folder", images, masks, tmp_path / "o")
    assert plain.exit_code == 0, plain.output
    named = invoke("inpaint", "folder", images, masks, tmp_path / "n", "--method", DEFAULT_METHOD)
    assert named.exit_code == 0, named.output
    np.testing.assert_array_equal(read(tmp_path / "o" / "a.png"), read(tmp_path / "n" / "a.png"))
    one = invoke("inpaint", "image", images / "a.png", masks / "a.png", tmp_path / "one.png")
    assert one.exit_code == 0, one.output
    np.testing.assert_array_equal(read(tmp_path / "one.png"), read(tmp_path / "n" / "a.png"))
    assert f"--checkpoint and --method: {DEFAULT_METHOD}" in invoke(
        "inpaint", "folder", "--help"
    ).stdout.replace("\n", " ").replace("  ", " ")


def test_missing_input_folder(tmp_path: Path) -> None:
    result = invoke(
        "inpaint", "folder", tmp_path / "nope", tmp_path, tmp_path / "o", "--method", "ns"
    )
    assert result.exit_code == 2
    assert "nope: IMAGE_DIR is not a folder" in result.stderr


def test_cuda_requested_without_cuda(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    images, masks = tmp_path / "img", tmp_path / "mask"
    damaged_pair(images, masks, "a")
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"")
    result = invoke(
        "inpaint", "folder", images, masks, tmp_path / "o", "--checkpoint", ckpt, "--device", "cuda"
    )
    assert result.exit_code == 2
    assert "--device cuda: no CUDA device" in result.stderr


class MeanColour(torch.nn.Module):
    """Stand-in for a loaded checkpoint: fills holes with the mean known colour."""

    multiple = 8
    amp = "bf16"

    def __init__(self) -> None:
        super().__init__()
        self.batch_sizes: list[int] = []

    def forward(self, image: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        assert image.shape[2] % 8 == 0 and image.shape[3] % 8 == 0
        self.batch_sizes.append(image.shape[0])
        mean = (image * valid).sum(dim=(2, 3), keepdim=True) / valid.sum(dim=(2, 3), keepdim=True)
        return mean.expand_as(image)


def test_checkpoint_path_batches_through_load_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = MeanColour()
    loaded: list[tuple[Path, torch.device]] = []

    def load_model(path: Path, device: torch.device) -> tuple[torch.nn.Module, object]:
        loaded.append((Path(path), device))
        return model.eval(), types.SimpleNamespace(amp="off", config={})

    monkeypatch.setattr("wmi.models.loading.load_model", load_model)
    images, masks, out = tmp_path / "img", tmp_path / "mask", tmp_path / "out"
    for stem in "abcde":
        damaged_pair(images, masks, stem)
    damaged_pair(images, masks, "odd", h=217, w=301)
    ckpt = tmp_path / "tiny.pt"
    ckpt.write_bytes(b"weights")
    result = invoke(
        "inpaint",
        "folder",
        images,
        masks,
        out,
        "--checkpoint",
        ckpt,
        "--device",
        "cpu",
        "--batch-size",
        "2",
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert loaded == [(ckpt, torch.device("cpu"))]
    assert summary(result)["processed"] == 6
    # chunks of 2 images: (a, b), (c, d), (e, odd) -> e and odd differ in size: two passes
    assert model.batch_sizes == [2, 2, 1, 1]
    for stem in ["a", "odd"]:
        before, after = read(images / f"{stem}.png"), read(out / f"{stem}.png")
        hole = box_hole(*before.shape[:2])
        np.testing.assert_array_equal(after[~hole], before[~hole])
        mean = before[~hole].mean(axis=0)
        assert np.abs(after[hole].mean(axis=0) - mean).max() < 2.0


def test_image_command(tmp_path: Path) -> None:
    src = damaged_pair(tmp_path, tmp_path / "m", "a")
    out = tmp_path / "res" / "a.png"
    result = invoke(
        "inpaint", "image", src, tmp_path / "m" / "a.png", out, "--method", "biharmonic"
    )
    assert result.exit_code == 0, result.output
    before, after = read(src), read(out)
    hole = box_hole(*before.shape[:2])
    np.testing.assert_array_equal(after[~hole], before[~hole])
    assert (after[hole] == RED).all(axis=1).sum() == 0
    again = invoke("inpaint", "image", src, tmp_path / "m" / "a.png", out, "--method", "ns")
    assert again.exit_code == 2 and "--overwrite" in again.stderr
    again = invoke(
        "inpaint", "image", src, tmp_path / "m" / "a.png", out, "--method", "ns", "--overwrite"
    )
    assert again.exit_code == 0, again.output


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("a.png", "must not be an input"),
        ("m/a.png", "must not be an input"),
        ("a.txt", "unsupported"),
    ],
)
def test_image_command_refusals(tmp_path: Path, output: str, message: str) -> None:
    src = damaged_pair(tmp_path, tmp_path / "m", "a")
    original = src.read_bytes()
    result = invoke(
        "inpaint",
        "image",
        src,
        tmp_path / "m" / "a.png",
        tmp_path / output,
        "--method",
        "ns",
        "--overwrite",
    )
    assert result.exit_code == 2
    assert message in result.stderr
    assert src.read_bytes() == original


def test_image_command_corrupt_mask(tmp_path: Path) -> None:
    src = save(tmp_path / "a.png", photo(16, 16))
    (tmp_path / "m.png").write_bytes(b"junk")
    result = invoke(
        "inpaint", "image", src, tmp_path / "m.png", tmp_path / "o.png", "--method", "ns"
    )
    assert result.exit_code == 2
    assert "m.png: not a readable image" in result.stderr
    assert not (tmp_path / "o.png").exists()


def test_a_checkpoint_trained_here_inpaints_a_folder(tmp_path: Path) -> None:
    """The real path: ``wmi.training.loop.train`` writes last.pt, ``inpaint folder`` loads it."""
    from torch.utils.data import TensorDataset

    from wmi.training.config import TrainConfig
    from wmi.training.loop import train

    gen = torch.Generator().manual_seed(0)
    images_t = torch.rand(8, 3, 32, 32, generator=gen)
    masks_t = (torch.rand(8, 1, 32, 32, generator=gen) > 0.3).float()
    cfg = TrainConfig(
        out=str(tmp_path / "run"),
        conv="weighted",
        size=32,
        layers=3,
        base_channels=4,
        batch_size=4,
        steps=4,
        device="cpu",
        workers=0,
        val_every=4,
        save_every=4,
        val_images=0,
        perceptual="none",
        amp="off",
    )
    train(cfg, train_set=TensorDataset(images_t, masks_t), progress=False, echo=False)
    ckpt = tmp_path / "run" / "checkpoints" / "last.pt"
    assert ckpt.is_file()

    images, masks, out = tmp_path / "img", tmp_path / "mask", tmp_path / "out"
    damaged_pair(images, masks, "a")
    damaged_pair(images, masks, "odd", h=217, w=301)
    result = invoke(
        "inpaint", "folder", images, masks, out, "--checkpoint", ckpt, "--device", "cpu", "--json"
    )
    assert result.exit_code == 0, result.output
    assert summary(result)["processed"] == 2
    for stem in ("a", "odd"):
        before, after = read(images / f"{stem}.png"), read(out / f"{stem}.png")
        hole = box_hole(*before.shape[:2])
        np.testing.assert_array_equal(after[~hole], before[~hole])  # exact composite
        assert not (after[hole] == RED).all(axis=-1).all()  # the network wrote the hole


def test_a_legal_name_of_248_characters_is_inpainted_and_given_masks(tmp_path: Path) -> None:
    """Issue 21, item 14: the temporary name (15 bytes longer) must fit, too."""
    stem = "n" * 244  # 248 characters with ".png"; 255 is the limit
    damaged_pair(tmp_path / "img", tmp_path / "masks", stem)
    result = invoke("inpaint", "folder", tmp_path / "img", tmp_path / "masks",
                    tmp_path / "out", "--method", "telea")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert read(tmp_path / "out" / f"{stem}.png").shape == (64, 80, 3)
    assert [p.name for p in (tmp_path / "out").iterdir() if ".tmp." in p.name] == []
    result = invoke("masks", "generate", tmp_path / "gen", "--kind", "freeform",
                    "--for", tmp_path / "img", "--seed", 0)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (tmp_path / "gen" / f"{stem}.png").is_file()


def test_a_killed_runs_temporary_file_of_a_long_name_is_removed(tmp_path: Path) -> None:
    from wmi.inpaint.record import remove_stale_temps
    from wmi.io.files import atomic_path

    target = tmp_path / ("m" * 250 + ".png")
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"done")
    left = tmp_path / tmp.name  # the name a killed run leaves
    left.write_bytes(b"half")
    assert len(os.fsencode(left.name)) <= 255 and left.name.endswith(".tmp.png")
    assert remove_stale_temps(tmp_path, [target]) == 1 and not left.exists()
    assert target.read_bytes() == b"done"
