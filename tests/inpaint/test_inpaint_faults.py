"""``wmi inpaint folder`` and ``image`` under faults: interrupted ``--overwrite`` runs, large EXIF,
encoder failures, a full disk, two runs into one OUT_DIR, and what the OUT_DIR record holds."""

from __future__ import annotations

import errno
import json
import os
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data
from typer.testing import CliRunner

import wmi.inpaint.folder
from wmi.cli import app
from wmi.errors import WmiError

runner = CliRunner()


def photo(h: int, w: int) -> np.ndarray:
    return cv2.resize(data.coffee(), (w, h), interpolation=cv2.INTER_AREA)


def save(path: Path, array: np.ndarray, **kwargs: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def box(h: int, w: int) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    mask[h // 3 : h // 2, w // 3 : w // 2] = 255
    return mask


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def folders(tmp_path: Path, stems: str = "abcd", size: tuple[int, int] = (48, 64)):
    images, masks = tmp_path / "img", tmp_path / "mask"
    for k, stem in enumerate(stems):
        save(images / f"{stem}.png", np.roll(photo(*size), 7 * k, axis=1))
        save(masks / f"{stem}.png", box(*size))
    return images, masks


def interrupt_after(monkeypatch: pytest.MonkeyPatch, writes: int) -> None:
    """Make the run die (as Ctrl-C would) once ``writes`` results were written."""
    real, done = wmi.inpaint.folder._write, []

    def write(*args: object, **kwargs: object) -> object:
        if len(done) >= writes:
            raise KeyboardInterrupt
        done.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(wmi.inpaint.folder, "_write", write)


def last_line(result) -> str:
    """The error line under the progress bar; the only one, no traceback."""
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert [n for n in lines if n.startswith("error:")] == lines[-1:]
    return lines[-1]


def run_json(*args: object) -> dict:
    result = invoke("inpaint", "folder", *args, "--workers", 1, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# ----------------------------------------------------------------- 1: interrupted overwrite


def test_interrupted_overwrite_with_another_method_redoes_the_old_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images, masks = folders(tmp_path)
    out, reference = tmp_path / "out", tmp_path / "reference"
    run_json(images, masks, reference, "--method", "ns")
    run_json(images, masks, out, "--method", "telea")
    with monkeypatch.context() as m:
        interrupt_after(m, 1)
        killed = invoke("inpaint", "folder", images, masks, out, "--method", "ns", "--overwrite",
                        "--workers", 1)  # fmt: skip
    assert killed.exit_code == 130
    said = killed.stderr.strip().splitlines()[-1]
    assert (
        said
        == f"interrupted: the finished results in {out} are kept: run the same command to finish"
    )
    again = run_json(images, masks, out, "--method", "ns")
    assert again["skipped_existing"] == 0 and again["processed"] == 4
    for stem in "abcd":
        assert (out / f"{stem}.png").read_bytes() == (reference / f"{stem}.png").read_bytes()
    assert json.loads((out / ".wmi-inpaint.json").read_text()) == json.loads(
        (reference / ".wmi-inpaint.json").read_text()
    )
    assert run_json(images, masks, out, "--method", "ns")["skipped_existing"] == 4


def test_interrupted_overwrite_then_the_old_method_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images, masks = folders(tmp_path)
    out = tmp_path / "out"
    run_json(images, masks, out, "--method", "telea")
    with monkeypatch.context() as m:
        interrupt_after(m, 1)
        invoke("inpaint", "folder", images, masks, out, "--method", "ns", "--overwrite",
               "--workers", 1)  # fmt: skip
    telea = invoke("inpaint", "folder", images, masks, out, "--method", "telea")
    assert telea.exit_code == 2 and "interrupted run" in telea.stderr, telea.output
    assert "--overwrite" in telea.stderr


def test_an_interrupted_first_run_still_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images, masks = folders(tmp_path)
    out = tmp_path / "out"
    with monkeypatch.context() as m:
        interrupt_after(m, 1)
        killed = invoke("inpaint", "folder", images, masks, out, "--method", "telea",
                        "--workers", 1)  # fmt: skip
    assert killed.exit_code == 130
    again = run_json(images, masks, out, "--method", "telea")
    assert again["skipped_existing"] == 1 and again["processed"] == 3


def test_a_failed_image_in_an_overwrite_run_leaves_no_old_result(tmp_path: Path) -> None:
    images, masks = folders(tmp_path, "ab")
    out = tmp_path / "out"
    run_json(images, masks, out, "--method", "telea")
    (images / "b.png").write_bytes(b"not a png")
    result = invoke("inpaint", "folder", images, masks, out, "--method", "ns", "--overwrite")
    assert result.exit_code == 1 and "b.png" in result.stderr
    assert (out / "a.png").is_file() and not (out / "b.png").exists()
    assert json.loads((out / ".wmi-inpaint.json").read_text())["method"] == "ns"


# ------------------------------------------------------------- 2: large EXIF, encoder errors


def big_exif_png(path: Path, size: int = 70_000) -> Path:
    exif = Image.Exif()
    exif[0x010E] = "x" * size  # ImageDescription
    return save(path, photo(48, 64), exif=exif)


def test_large_exif_is_left_out_of_a_jpeg_with_a_warning(tmp_path: Path) -> None:
    images, masks = folders(tmp_path, "ab")
    big_exif_png(images / "a.png")
    out = tmp_path / "out"
    result = invoke("inpaint", "folder", images, masks, out, "--method", "telea", "--format",
                    "jpg", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["processed"] == 2
    assert result.stderr.count("EXIF") == 1 and "a.jpg" in result.stderr
    with Image.open(out / "a.jpg") as img:
        assert img.size == (64, 48) and not img.getexif()
    png = invoke("inpaint", "folder", images, masks, tmp_path / "png", "--method", "telea")
    assert png.exit_code == 0 and "EXIF" not in png.stderr  # a PNG holds it
    with Image.open(tmp_path / "png" / "a.png") as img:
        assert len(img.getexif()[0x010E]) == 70_000


def test_large_exif_in_inpaint_image(tmp_path: Path) -> None:
    image = big_exif_png(tmp_path / "a.png")
    mask = save(tmp_path / "m.png", box(48, 64))
    result = invoke("inpaint", "image", image, mask, tmp_path / "r.jpg", "--method", "telea")
    assert result.exit_code == 0, result.output
    assert "EXIF" in result.stderr and (tmp_path / "r.jpg").is_file()


def failing_save(monkeypatch: pytest.MonkeyPatch, name: str, exc: BaseException) -> None:
    """Pillow's encoder raises ``exc`` for results whose final name is ``name``."""
    real = Image.Image.save

    def save_(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        if Path(str(fp)).name.startswith(f".{Path(name).stem}."):
            raise exc
        real(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save_)


def test_an_encoder_error_is_a_per_file_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    images, masks = folders(tmp_path, "ab")
    out = tmp_path / "out"
    failing_save(monkeypatch, "a.jpg", ValueError("encoder says no"))
    result = invoke("inpaint", "folder", images, masks, out, "--method", "telea", "--format",
                    "jpg", "--json")  # fmt: skip
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["processed"] == 1 and len(report["failed"]) == 1
    assert str(out / "a.jpg") in report["failed"][0]["error"]
    assert "encoder says no" in report["failed"][0]["error"]
    assert (out / "b.jpg").is_file() and not (out / "a.jpg").exists()
    assert not list(out.glob(".*.tmp.*"))


def test_write_image_turns_encoder_errors_into_wmi_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wmi.io import write_image

    failing_save(monkeypatch, "r.png", OSError("encoder error -2 when writing image file"))
    with pytest.raises(WmiError, match="r.png: .*encoder error -2"):
        write_image(tmp_path / "r.png", photo(8, 8))
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------------ 3: a full disk


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_out_of_space_stops_the_run_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    images, masks = folders(tmp_path, "ab")
    out = tmp_path / "out"
    failing_save(monkeypatch, "a.png", OSError(code, os.strerror(code)))
    result = invoke("inpaint", "folder", images, masks, out, "--method", "telea")
    assert result.exit_code == 2, result.output
    assert last_line(result) == f"error: {out / 'a.png'}: {os.strerror(code)}"
    one = invoke("inpaint", "image", images / "a.png", masks / "a.png", out / "a.png",
                 "--method", "telea")  # fmt: skip
    assert last_line(one) == f"error: {out / 'a.png'}: {os.strerror(code)}"
    assert not list(out.glob(".*.tmp.*"))


def test_a_real_full_tmpfs_names_the_file(tmp_path: Path) -> None:
    images, masks = folders(tmp_path, "abcdefgh", size=(240, 320))
    out = tmp_path / "small"
    out.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(out)],
                             capture_output=True, check=False)  # fmt: skip
    if mounted.returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        result = invoke("inpaint", "folder", images, masks, out, "--method", "telea")
        assert result.exit_code == 2, result.output
        line = last_line(result)
        assert line.startswith(f"error: {out}/") and line.endswith("No space left on device")
        assert not list(out.glob(".*.tmp.*"))
    finally:
        subprocess.run(["umount", str(out)], check=False)


# ------------------------------------------------------------------- 4: two runs, one folder


def test_a_second_run_into_a_busy_out_dir_is_refused(tmp_path: Path) -> None:
    from wmi.procs import folder_lock

    images, masks = folders(tmp_path, "a")
    out = tmp_path / "out"
    out.mkdir()
    theirs = out / ".a.k3j_x9q2.tmp.png"
    theirs.write_bytes(b"being written by the other run")
    with folder_lock(out, "busy"):
        result = invoke("inpaint", "folder", images, masks, out, "--method", "telea")
    assert result.exit_code == 2
    assert last_line(result) == f"error: {out}: another wmi inpaint is writing here"
    assert theirs.exists() and not (out / "a.png").exists()
    assert invoke("inpaint", "folder", images, masks, out, "--method", "telea").exit_code == 0
    assert not theirs.exists()


# -------------------------------------------------------------- 5: format and quality recorded


def test_another_quality_or_format_is_refused(tmp_path: Path) -> None:
    images, masks = folders(tmp_path, "a")
    out = tmp_path / "out"
    run_json(images, masks, out, "--method", "telea", "--format", "jpg", "--quality", "95")
    before = (out / "a.jpg").read_bytes()
    lower = invoke("inpaint", "folder", images, masks, out, "--method", "telea", "--format",
                   "jpg", "--quality", "50")  # fmt: skip
    assert lower.exit_code == 2 and "quality 95" in lower.stderr and "quality 50" in lower.stderr
    assert (out / "a.jpg").read_bytes() == before
    webp = invoke("inpaint", "folder", images, masks, out, "--method", "telea", "--format",
                  "webp", "--quality", "95")  # fmt: skip
    assert webp.exit_code == 2 and "format jpg" in webp.stderr
    forced = run_json(images, masks, out, "--method", "telea", "--format", "jpg", "--quality",
                      "50", "--overwrite")  # fmt: skip
    assert forced["processed"] == 1 and (out / "a.jpg").read_bytes() != before
    record = json.loads((out / ".wmi-inpaint.json").read_text())
    assert record["format"] == "jpg" and record["quality"] == 50


def test_quality_is_not_recorded_for_png(tmp_path: Path) -> None:
    images, masks = folders(tmp_path, "a")
    out = tmp_path / "out"
    run_json(images, masks, out, "--method", "telea")
    assert (
        run_json(images, masks, out, "--method", "telea", "--quality", "50")["skipped_existing"]
        == 1
    )
    record = json.loads((out / ".wmi-inpaint.json").read_text())
    assert record["format"] == "png" and "quality" not in record


# ----------------------------------------------------------------------------- 6: dead code


def test_load_pair_is_gone() -> None:
    import wmi.inpaint.folder

    assert not hasattr(wmi.inpaint.folder, "load_pair")
