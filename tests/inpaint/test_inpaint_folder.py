"""``wmi inpaint folder`` for real photo work (issue 14) and its faults (issues 15, 16)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data
from typer.testing import CliRunner

from wmi.cli import app
from wmi.errors import WmiError

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def photo(h: int, w: int) -> np.ndarray:
    return cv2.resize(data.coffee(), (w, h), interpolation=cv2.INTER_AREA)


def save(path: Path, array: np.ndarray, **kwargs: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def box(h: int, w: int, value: int = 255) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    mask[h // 3 : h // 2, w // 3 : w // 2] = value
    return mask


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def summary(result) -> dict:
    return json.loads(result.stdout)


def read(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def telea_reference(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Today's result, written out: OpenCV's Telea on uint8, pasted into the hole only."""
    filled = cv2.inpaint(image, hole.astype(np.uint8) * 255, 3, cv2.INPAINT_TELEA)
    out = image.copy()
    out[hole] = filled[hole]
    return out


def test_results_equal_opencv_in_the_hole_and_the_input_elsewhere(tmp_path: Path) -> None:
    images, masks, out = tmp_path / "img", tmp_path / "mask", tmp_path / "out"
    for i, (h, w) in enumerate([(64, 80), (217, 301), (256, 256)]):
        save(images / f"{i}.png", photo(h, w))
        save(masks / f"{i}.png", box(h, w))
    result = invoke("inpaint", "folder", images, masks, out, "--method", "telea", "--workers", 2)
    assert result.exit_code == 0, result.output
    for i, (h, w) in enumerate([(64, 80), (217, 301), (256, 256)]):
        expected = telea_reference(photo(h, w), box(h, w) > 127)
        np.testing.assert_array_equal(read(out / f"{i}.png"), expected)


def test_one_mask_file_for_every_image_resized_and_counted(tmp_path: Path) -> None:
    images, out = tmp_path / "img", tmp_path / "out"
    save(images / "a.png", photo(64, 80))
    save(images / "b.jpg", photo(90, 60))
    mask = save(tmp_path / "watermark.png", box(64, 80))
    result = invoke("inpaint", "folder", images, mask, out, "--method", "ns", "--json")
    assert result.exit_code == 0, result.output
    report = summary(result)
    assert report["processed"] == 2 and report["masks_resized"] == 1
    assert report["masks_stretched"] == 1
    assert "the mask was resized for 1 images (nearest neighbour)" in result.stderr
    assert read(out / "b.png").shape == (90, 60, 3)


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        (np.full((16, 16), 255, np.uint8), "every pixel is hole"),
        (np.zeros((16, 16), np.uint8), "no hole"),
        (None, "not a readable image"),
    ],
)
def test_one_mask_file_unusable_is_one_line_and_writes_nothing(
    tmp_path: Path, mask: np.ndarray | None, message: str
) -> None:
    save(tmp_path / "img" / "a.png", photo(16, 16))
    path = tmp_path / "m.png"
    if mask is None:
        path.write_bytes(b"\x89PNG broken")
    else:
        save(path, mask)
    result = invoke("inpaint", "folder", tmp_path / "img", path, tmp_path / "out", "--method", "ns")
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_one_result_per_mask_named_after_the_mask(tmp_path: Path) -> None:
    folder, out = tmp_path / "lama", tmp_path / "out"
    save(folder / "photo.png", photo(64, 80))
    save(folder / "photo_mask000.png", box(64, 80))
    save(folder / "photo_mask001.png", np.flipud(box(64, 80)).copy())
    save(folder / "single.png", photo(64, 80))
    save(folder / "single_mask000.png", box(64, 80))
    result = invoke("inpaint", "folder", folder, folder, out, "--method", "telea", "--json")
    assert result.exit_code == 0, result.output
    assert summary(result)["processed"] == 3 and summary(result)["unmatched_masks"] == []
    names = sorted(p.name for p in out.glob("[!.]*"))
    assert names == ["photo_mask000.png", "photo_mask001.png", "single.png"]
    assert not np.array_equal(read(out / "photo_mask000.png"), read(out / "photo_mask001.png"))


def test_threshold_and_a_mask_below_it_warns_no_hole(tmp_path: Path) -> None:
    images, masks, out = tmp_path / "img", tmp_path / "mask", tmp_path / "out"
    save(images / "a.png", photo(64, 80))
    save(masks / "a.png", box(64, 80, value=1))  # a 0/1 mask
    result = invoke("inpaint", "folder", images, masks, out, "--method", "telea", "--json")
    assert result.exit_code == 0, result.output
    assert "a.png: no hole (no pixel above 127)" in result.stderr
    assert summary(result)["processed"] == 0 and len(summary(result)["no_hole"]) == 1
    again = invoke(
        "inpaint",
        "folder",
        images,
        masks,
        tmp_path / "t0",
        "--method",
        "telea",
        "--threshold",
        "0",
        "--json",
    )
    assert summary(again)["processed"] == 1
    assert not np.array_equal(read(tmp_path / "t0" / "a.png"), photo(64, 80))


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        # the option parser holds the range (shown in --help), in one line
        ("--threshold", "255", "'--threshold': Input should be less than or equal to 254"),
        ("--threshold", "-1", "'--threshold': Input should be greater than or equal to 0"),
        ("--quality", "0", "'--quality': Input should be greater than or equal to 1"),
        ("--quality", "101", "'--quality': Input should be less than or equal to 100"),
    ],
)
def test_option_ranges(tmp_path: Path, option: str, value: str, message: str) -> None:
    save(tmp_path / "img" / "a.png", photo(16, 16))
    save(tmp_path / "mask" / "a.png", box(16, 16))
    result = invoke(
        "inpaint",
        "folder",
        tmp_path / "img",
        tmp_path / "mask",
        tmp_path / "out",
        "--method",
        "ns",
        option,
        value,
    )
    assert result.exit_code == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_soft_blend_feathers_by_grey_level(tmp_path: Path) -> None:
    images, masks = tmp_path / "img", tmp_path / "mask"
    image = photo(64, 80)
    save(images / "a.png", image)
    grey = box(64, 80)
    grey[grey == 255] = 191  # a = 1 - 191/255 = 0.25 of the input kept
    save(masks / "a.png", grey)
    args = ("inpaint", "folder", images, masks)
    assert invoke(*args, tmp_path / "hard", "--method", "telea").exit_code == 0
    assert invoke(*args, tmp_path / "soft", "--method", "telea", "--blend", "soft").exit_code == 0
    hard = read(tmp_path / "hard" / "a.png").astype(float)
    soft = read(tmp_path / "soft" / "a.png").astype(float)
    hole = grey > 127
    expected = 0.25 * image[hole] + 0.75 * hard[hole]
    assert np.abs(soft[hole] - expected).max() <= 1.0
    np.testing.assert_array_equal(soft[~hole], image[~hole])


def test_metadata_exif_icc_dpi_carried_and_quality(tmp_path: Path) -> None:
    images, masks, out = tmp_path / "img", tmp_path / "mask", tmp_path / "out"
    exif = Image.Exif()
    exif[0x010F] = "WmiCam"  # Make
    icc = b"\x00" * 128  # any bytes: carried, not interpreted
    save(images / "a.jpg", photo(64, 80), exif=exif, icc_profile=icc, dpi=(300, 300))
    save(masks / "a.png", box(64, 80))
    for q in (30, 95):
        result = invoke(
            "inpaint",
            "folder",
            images,
            masks,
            out / str(q),
            "--method",
            "ns",
            "--format",
            "jpg",
            "--quality",
            q,
        )
        assert result.exit_code == 0, result.output
    with Image.open(out / "95" / "a.jpg") as img:
        assert img.getexif().get(0x010F) == "WmiCam"
        assert img.info.get("icc_profile") == icc
        assert tuple(round(v) for v in img.info["dpi"]) == (300, 300)
    assert (out / "30" / "a.jpg").stat().st_size < (out / "95" / "a.jpg").stat().st_size
    webp = invoke(
        "inpaint", "folder", images, masks, out / "w", "--method", "ns", "--format", "webp"
    )
    assert webp.exit_code == 0 and Image.open(out / "w" / "a.webp").format == "WEBP"


def test_exif_orientation_applied_once_also_for_16_bit(tmp_path: Path) -> None:
    """A portrait photo stored landscape with orientation 6: the mask is drawn upright."""
    upright = photo(80, 64)  # what a viewer shows
    stored = np.rot90(upright, 1).copy()  # orientation 6: rotate 90° clockwise to display
    exif = Image.Exif()
    exif[0x0112] = 6
    images, masks = tmp_path / "img", tmp_path / "mask"
    save(images / "a.png", stored, exif=exif)
    deep = (stored.astype(np.uint16) * 257)[..., ::-1].copy()  # BGR for OpenCV
    cv2.imwrite(str(images / "b.png"), deep)
    with Image.open(images / "b.png") as img:  # add the EXIF chunk to the 16-bit PNG
        raw = (images / "b.png").read_bytes()
    chunk = (
        b"eXIf" + exif.tobytes()[6:]
        if exif.tobytes().startswith(b"Exif")
        else b"eXIf" + exif.tobytes()
    )
    data_len = len(chunk) - 4
    crc = zlib.crc32(chunk).to_bytes(4, "big")
    (images / "b.png").write_bytes(raw[:33] + data_len.to_bytes(4, "big") + chunk + crc + raw[33:])
    del img
    for stem in "ab":
        save(masks / f"{stem}.png", box(80, 64))
    out = tmp_path / "out"
    result = invoke("inpaint", "folder", images, masks, out, "--method", "telea", "--json")
    assert result.exit_code == 0, result.output
    assert summary(result)["masks_resized"] == 0
    for stem in "ab":
        result_img = read(out / f"{stem}.png")
        assert result_img.shape == (80, 64, 3)
        hole = box(80, 64) > 127
        np.testing.assert_array_equal(result_img[~hole], upright[~hole])
        with Image.open(out / f"{stem}.png") as img:
            assert img.getexif().get(0x0112, 1) == 1  # not turned a second time


def test_a_decompression_bomb_is_a_per_file_error(tmp_path: Path) -> None:
    images, masks, out = tmp_path / "img", tmp_path / "mask", tmp_path / "out"
    for stem in ("a", "c"):
        save(images / f"{stem}.png", photo(32, 32))
        save(masks / f"{stem}.png", box(32, 32))
    Image.new("1", (20000, 20000)).save(images / "bomb.png")  # ~50 kB, 400 megapixels
    save(masks / "bomb.png", box(32, 32))
    assert (images / "bomb.png").stat().st_size < 100_000
    result = invoke("inpaint", "folder", images, masks, out, "--method", "telea", "--json")
    assert result.exit_code == 1
    assert "bomb.png: over the limit of 100 megapixels" in result.stderr
    assert "Traceback" not in result.output
    assert summary(result)["processed"] == 2
    small = invoke(
        "inpaint",
        "folder",
        images,
        masks,
        tmp_path / "o2",
        "--method",
        "telea",
        "--max-pixels",
        1000,
        "--json",
    )
    assert "a.png: 32x32 is 1024 pixels, over the limit of 1000 pixels" in small.stderr
    one = invoke(
        "inpaint",
        "image",
        images / "bomb.png",
        masks / "bomb.png",
        tmp_path / "x.png",
        "--method",
        "ns",
    )
    assert one.exit_code == 2 and len(one.stderr.strip().splitlines()) == 1


def test_another_method_into_the_same_folder_is_refused(tmp_path: Path) -> None:
    images, masks, out = tmp_path / "img", tmp_path / "mask", tmp_path / "out"
    save(images / "a.png", photo(32, 32))
    save(masks / "a.png", box(32, 32))
    assert invoke("inpaint", "folder", images, masks, out, "--method", "telea").exit_code == 0
    before = (out / "a.png").read_bytes()
    again = invoke("inpaint", "folder", images, masks, out, "--method", "telea", "--json")
    assert again.exit_code == 0 and summary(again)["skipped_existing"] == 1
    other = invoke("inpaint", "folder", images, masks, out, "--method", "ns")
    assert other.exit_code == 2
    assert "holds results made with method telea" in other.stderr and "--overwrite" in other.stderr
    assert (out / "a.png").read_bytes() == before
    forced = invoke("inpaint", "folder", images, masks, out, "--method", "ns", "--overwrite")
    assert forced.exit_code == 0
    assert json.loads((out / ".wmi-inpaint.json").read_text())["method"] == "ns"


def test_stale_temp_files_removed_and_truncated_result_redone(tmp_path: Path) -> None:
    images, masks, out = tmp_path / "img", tmp_path / "mask", tmp_path / "out"
    for stem in "ab":
        save(images / f"{stem}.png", photo(64, 80))
        save(masks / f"{stem}.png", box(64, 80))
    assert invoke("inpaint", "folder", images, masks, out, "--method", "telea").exit_code == 0
    good = (out / "a.png").read_bytes()
    (out / "b.png").write_bytes(good[: len(good) // 2])  # killed mid-write by another tool
    (out / ".a.k3j_x9q2.tmp.png").write_bytes(b"half")  # left by a killed run
    (out / "notes.tmp.txt").write_text("not ours")
    result = invoke("inpaint", "folder", images, masks, out, "--method", "telea", "--json")
    assert result.exit_code == 0, result.output
    report = summary(result)
    assert report["skipped_existing"] == 1 and report["processed"] == 1
    assert report["stale_temp_removed"] == 1 and len(report["redone"]) == 1
    assert not (out / ".a.k3j_x9q2.tmp.png").exists() and (out / "notes.tmp.txt").exists()
    assert (out / "b.png").read_bytes() == good  # same image, same mask, same result


def test_alpha_dropped_said_once(tmp_path: Path) -> None:
    images, masks, out = tmp_path / "img", tmp_path / "mask", tmp_path / "out"
    for stem in "ab":
        rgba = np.dstack([photo(32, 32), np.full((32, 32), 200, np.uint8)])
        save(images / f"{stem}.png", rgba)
        save(masks / f"{stem}.png", box(32, 32))
    result = invoke("inpaint", "folder", images, masks, out, "--method", "telea", "--json")
    assert result.exit_code == 0
    assert result.stderr.count("dropped the alpha channel of 2 images") == 1


def test_a_classical_run_does_not_import_torch(tmp_path: Path) -> None:
    save(tmp_path / "img" / "a.png", photo(32, 32))
    save(tmp_path / "mask" / "a.png", box(32, 32))
    code = (
        "import sys\nfrom wmi.cli import app\n"
        f"sys.argv = ['wmi', 'inpaint', 'folder', {str(tmp_path / 'img')!r}, "
        f"{str(tmp_path / 'mask')!r}, {str(tmp_path / 'out')!r}, '--method', 'telea']\n"
        "try:\n    app()\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=env)
    assert (tmp_path / "out" / "a.png").is_file()


def test_mps_requested_where_there_is_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    save(tmp_path / "img" / "a.png", photo(16, 16))
    save(tmp_path / "mask" / "a.png", box(16, 16))
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"")
    result = invoke(
        "inpaint",
        "folder",
        tmp_path / "img",
        tmp_path / "mask",
        tmp_path / "out",
        "--checkpoint",
        ckpt,
        "--device",
        "mps",
    )
    assert result.exit_code == 2 and "--device mps: no Apple MPS device" in result.stderr
    assert not (tmp_path / "out").exists()


def test_library_raises_for_bad_options(tmp_path: Path) -> None:
    from wmi.inpaint.folder import inpaint_folder

    with pytest.raises(WmiError, match="--threshold"):
        inpaint_folder(tmp_path, tmp_path, tmp_path / "o", "telea", threshold=300)
