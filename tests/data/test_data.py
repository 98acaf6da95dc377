from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from wmi import data
from wmi.cli import app
from wmi.data import preparation
from wmi.errors import WmiError
from wmi.io import read_mask, write_mask

runner = CliRunner()


def make_images(folder: Path, count: int, size: tuple[int, int] = (32, 32), seed: int = 0) -> None:
    """``count`` random RGB PNGs of ``size`` (width, height), half of them in a subfolder."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        sub = folder / "sub" if i % 2 else folder
        sub.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(sub / f"img{i:03d}.png")


def shard_contents(out: Path) -> dict[str, tuple[np.ndarray, list[str]]]:
    """Images and names of every shard in ``out``, by file name."""
    result = {}
    for split in data.SPLITS:
        for path in data.find_shards(out, split):
            with h5py.File(path, "r") as f:
                result[path.name] = (f["images"][:], [n.decode() for n in f["names"][:]])
    return result


def prep(src: Path, out: Path, **kwargs) -> data.PrepareResult:
    kwargs.setdefault("size", 32)
    kwargs.setdefault("workers", 0)
    return data.prepare(src, out, **kwargs)


# --------------------------------------------------------------------------------------------
# prepare


def test_pixel_round_trip_and_shard_format(tmp_path: Path) -> None:
    make_images(tmp_path / "src", 5)
    result = prep(tmp_path / "src", tmp_path / "out", split=(1, 0, 0), seed=3)
    assert result.counts == {"train": 5, "val": 0, "test": 0}
    path = tmp_path / "out" / "train-00000.h5"
    with h5py.File(path, "r") as f:
        images = f["images"]
        assert images.dtype == np.uint8 and images.shape == (5, 32, 32, 3)
        assert images.chunks == (1, 32, 32, 3)
        assert images.compression is None
        names = [n.decode() for n in f["names"][:]]
        for name, stored in zip(names, images[:], strict=True):
            source = np.asarray(Image.open(tmp_path / "src" / name))
            np.testing.assert_array_equal(stored, source)
        assert f.attrs["format_version"] == data.FORMAT_VERSION
        assert f.attrs["preset"] == "plain" and f.attrs["size"] == 32 and f.attrs["seed"] == 3
    assert sorted(names) == sorted(
        p.relative_to(tmp_path / "src").as_posix() for p in (tmp_path / "src").rglob("*.png")
    )
    assert "sub/img001.png" in names  # relative to SRC_DIR, found recursively
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["counts"] == {"train": 5, "val": 0, "test": 0}
    assert manifest["skipped"] == []
    assert manifest["shards"]["train"] == [{"file": "train-00000.h5", "images": 5}]
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's owner-only 0o600


def test_compressed_shards_read_back_the_same(tmp_path: Path) -> None:
    make_images(tmp_path / "src", 3)
    prep(tmp_path / "src", tmp_path / "plain", split=(1, 0, 0))
    prep(tmp_path / "src", tmp_path / "lzf", split=(1, 0, 0), compression="lzf")
    with h5py.File(tmp_path / "lzf" / "train-00000.h5", "r") as f:
        assert f["images"].compression == "lzf"
    assert data.shard_info(tmp_path / "lzf" / "train-00000.h5").compression == "lzf"
    a, b = shard_contents(tmp_path / "plain"), shard_contents(tmp_path / "lzf")
    np.testing.assert_array_equal(a["train-00000.h5"][0], b["train-00000.h5"][0])


def test_split_counts_are_exact() -> None:
    assert data.split_counts(5, (0.7, 0.15, 0.15)) == (3, 1, 1)
    assert data.split_counts(20, (0.7, 0.15, 0.15)) == (14, 3, 3)
    assert data.split_counts(0, (0.7, 0.15, 0.15)) == (0, 0, 0)
    for n in range(1, 60):
        counts = data.split_counts(n, (0.7, 0.15, 0.15))
        assert sum(counts) == n
        assert all(abs(c - n * f) < 1 for c, f in zip(counts, (0.7, 0.15, 0.15), strict=True))


def test_split_is_reproducible_from_the_seed(tmp_path: Path) -> None:
    make_images(tmp_path / "src", 20, size=(8, 8))
    a = prep(tmp_path / "src", tmp_path / "a", size=16, shard_size=5, seed=1)
    prep(tmp_path / "src", tmp_path / "b", size=16, shard_size=5, seed=1)
    c = prep(tmp_path / "src", tmp_path / "c", size=16, shard_size=5, seed=2)
    assert a.counts == {"train": 14, "val": 3, "test": 3}
    assert [p.name for p in a.shards["train"]] == [f"train-0000{i}.h5" for i in range(3)]
    ca, cb, cc = (shard_contents(tmp_path / d) for d in "abc")
    assert {k: v[1] for k, v in ca.items()} == {k: v[1] for k, v in cb.items()}
    assert {k: v[1] for k, v in ca.items()} != {k: v[1] for k, v in cc.items()}
    names = [n for _, ns in ca.values() for n in ns]
    assert len(names) == len(set(names)) == 20  # every image in exactly one split
    assert c.counts == a.counts


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("0.5,0.2,0.2", "sum to 1"),
        ("0.7,0.3", "three"),
        ("a,b,c", "numbers"),
        ("1.2,-0.1,-0.1", "non-negative"),
    ],
)
def test_parse_split_rejects(text: str, problem: str) -> None:
    with pytest.raises(WmiError, match=problem):
        data.parse_split(text)


def test_parse_split_accepts() -> None:
    assert data.parse_split("0.8, 0.1, 0.1") == (0.8, 0.1, 0.1)


def _marked(width: int, height: int) -> Image.Image:
    return Image.fromarray(np.full((height, width, 3), 128, np.uint8))


def test_preset_celeba_geometry() -> None:
    # A CelebA-shaped portrait, 178 wide x 218 tall: scaled to 256 x 313 and kept whole (the
    # paper then crops 256 x 256 at random; the loader does, see test_presets.py).
    pixels = np.full((218, 178, 3), 128, np.uint8)
    pixels[:15] = (0, 0, 255)
    pixels[24:41] = (0, 255, 0)
    pixels[:, :10] = (255, 255, 0)
    out = data.resize_for_preset(Image.fromarray(pixels), "celeba", 256)
    assert out.shape == (313, 256, 3) and out.dtype == np.uint8
    blue_rows = np.flatnonzero(((out[..., 2] > 200) & (out[..., 0] < 60))[:, 100])
    assert blue_rows.min() == 0 and 19 <= blue_rows.max() <= 22  # the top band is kept
    green_rows = np.flatnonzero(((out[..., 1] > 200) & (out[..., 0] < 60))[:, 100])
    # source rows 24..40 -> scaled 34.5..58.9
    assert 33 <= green_rows.min() <= 36 and 57 <= green_rows.max() <= 60
    yellow_cols = np.flatnonzero((out[128, :, 0] > 200) & (out[128, :, 2] < 60))
    # full width kept: 10 source columns x 256/178 = 14.4 columns at the left edge
    assert yellow_cols.min() == 0 and 13 <= yellow_cols.max() <= 15
    # size scales the same proportions: 128 -> 128 x round(128 * 313 / 256) = 156.5 -> 156
    assert data.resize_for_preset(Image.fromarray(pixels), "celeba", 128).shape == (156, 128, 3)


def test_preset_shape_keeps_the_paper_numbers() -> None:
    assert data.preset_shape("celeba", 256) == (256, 313)
    for size in (32, 64, 128, 178, 512, 1024):
        assert data.preset_shape("celeba", size) == (size, round(size * 313 / 256))
    assert data.preset_shape("plain", 256) is None
    assert data.preset_shape("places", 256) is None
    with pytest.raises(WmiError, match="--preset 'square'"):
        data.preset_shape("square", 256)


@pytest.fixture
def wide_preset():
    """A preset registered from outside: 2:1 landscape (width twice the height), then cropped."""
    from wmi.kinds import PRESETS, Preset

    PRESETS.register(Preset("wide", "2:1 landscape", aspect=0.5))
    yield "wide"
    PRESETS.unregister("wide")


def test_registered_preset_is_accepted_everywhere(tmp_path: Path, wide_preset: str) -> None:
    assert data.preset_shape(wide_preset, 32) == (64, 32)
    out = data.resize_for_preset(_marked(30, 40), wide_preset, 32)
    assert out.shape == (32, 32, 3)
    src, out_dir = tmp_path / "src", tmp_path / "out"
    make_images(src, 3)
    args = ["data", "prepare", str(src), str(out_dir), "--size", "16", "--workers", "0"]
    result = runner.invoke(app, [*args, "--preset", wide_preset, "--split", "1,0,0"])
    assert result.exit_code == 0, result.output
    assert data.shard_info(out_dir / "train-00000.h5").preset == wide_preset


def test_cli_rejects_unknown_preset_and_compression(tmp_path: Path) -> None:
    make_images(tmp_path / "src", 2)
    for option in ("--preset", "--compression"):
        args = ["data", "prepare", str(tmp_path / "src"), str(tmp_path / "out"), option, "zip"]
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and "'zip' is not one of" in result.output
        assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("preset", ["plain"])
def test_preset_plain_geometry(preset: str) -> None:
    # Landscape 400 x 200: shorter side 200 -> 256, so 512 wide, centre 256 columns kept.
    pixels = np.full((200, 400, 3), 128, np.uint8)
    pixels[:, :50] = (255, 0, 0)  # scaled to columns 0..64: outside the centre crop
    pixels[:, 190:210] = (0, 0, 255)  # the middle: scaled to 243..269, minus 128 = 115..141
    out = data.resize_for_preset(Image.fromarray(pixels), preset, 256)
    assert out.shape == (256, 256, 3)
    assert not ((out[..., 0] > 200) & (out[..., 1] < 60)).any()
    blue_cols = np.flatnonzero((out[100, :, 2] > 200) & (out[100, :, 0] < 60))
    assert 113 <= blue_cols.min() <= 117 and 139 <= blue_cols.max() <= 143
    # Portrait: the same on the other axis; a small image is scaled up.
    assert data.resize_for_preset(_marked(100, 300), preset, 64).shape == (64, 64, 3)
    assert data.resize_for_preset(_marked(20, 30), preset, 64).shape == (64, 64, 3)
    # Already the right size (Places2 at 256): pixels pass through unchanged.
    square = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    np.testing.assert_array_equal(
        data.resize_for_preset(Image.fromarray(square), preset, 256), square
    )


def test_prepare_handles_odd_image_modes(tmp_path: Path) -> None:
    import cv2

    src = tmp_path / "src"
    src.mkdir()
    Image.new("L", (40, 30), 77).save(src / "gray.png")
    Image.new("RGBA", (40, 30), (10, 20, 30, 0)).save(src / "alpha.png")
    Image.new("CMYK", (40, 30), (0, 0, 0, 0)).save(src / "cmyk.jpg")
    Image.new("P", (40, 30), 3).save(src / "palette.bmp")
    cv2.imwrite(str(src / "deep.tif"), np.full((30, 40, 3), 65535, np.uint16))
    result = prep(src, tmp_path / "out", split=(1, 0, 0), size=16)
    assert result.counts["train"] == 5 and result.skipped == []
    images, names = shard_contents(tmp_path / "out")["train-00000.h5"]
    by_name = dict(zip(names, images, strict=True))
    assert (by_name["gray.png"] == 77).all()
    assert (by_name["deep.tif"] == 255).all()
    assert (by_name["cmyk.jpg"] > 245).all()  # CMYK 0,0,0,0 is white


def test_corrupt_files_are_skipped_and_reported(tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_images(src, 3)
    (src / "garbage.jpg").write_bytes(b"this is not a jpeg")
    (src / "empty.png").write_bytes(b"")
    good = (src / "img000.png").read_bytes()
    (src / "truncated.png").write_bytes(good[: len(good) // 2])
    result = runner.invoke(
        app, ["data", "prepare", str(src), str(tmp_path / "out"), "--size", "32", "--workers", "0"]
    )
    assert result.exit_code == 0, result.output
    assert "skipped garbage.jpg" in result.output
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert sum(manifest["counts"].values()) == 3 and manifest["found"] == 6
    skipped = {s["path"]: s["reason"] for s in manifest["skipped"]}
    assert set(skipped) == {"garbage.jpg", "empty.png", "truncated.png"}
    assert all(reason for reason in skipped.values())


def test_extreme_aspect_ratios_are_skipped_with_a_reason(tmp_path: Path) -> None:
    """Issue 21, item 8: a 1 x 1,000,000 strip (1 MP, under --max-pixels) was scaled to
    256 x 256,000,000 before the crop; now it and a 4 x 2000 one get a per-file reason."""
    src = tmp_path / "src"
    make_images(src, 3)
    Image.new("RGB", (1_000_000, 1), (9, 9, 9)).save(src / "strip.png")
    Image.new("RGB", (4, 2000), (9, 9, 9)).save(src / "tall.png")
    Image.new("RGB", (16 * 32, 32), (9, 9, 9)).save(src / "panorama.png")  # 16:1 is kept
    result = runner.invoke(
        app, ["data", "prepare", str(src), str(tmp_path / "out"), "--size", "32", "--workers", "0"]
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    skipped = {s["path"]: s["reason"] for s in manifest["skipped"]}
    assert set(skipped) == {"strip.png", "tall.png"}
    assert all("ratio over 16:1" in reason for reason in skipped.values()), skipped
    assert sum(manifest["counts"].values()) == 4


def test_all_corrupt_is_an_error_with_the_report(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a.jpg", "b.png"):
        (src / name).write_bytes(b"broken")
    out = tmp_path / "out"
    result = runner.invoke(app, ["data", "prepare", str(src), str(out), "--workers", "0"])
    assert result.exit_code != 0
    assert "none of the 2 images could be read" in result.output
    assert "Traceback" not in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["path"] for s in manifest["skipped"]] == ["a.jpg", "b.png"]
    assert list(out.glob("*.h5")) == []


def test_interrupted_run_leaves_no_partial_shard_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    make_images(src, 12)
    real = preparation._decode_job
    calls = {"n": 0}

    def dies_in_second_shard(job):
        calls["n"] += 1
        if calls["n"] == 7:  # shard 0 holds 4 images; die in the middle of shard 1
            raise KeyboardInterrupt
        return real(job)

    monkeypatch.setattr(preparation, "_decode_job", dies_in_second_shard)
    with pytest.raises(KeyboardInterrupt):
        prep(src, out, split=(1, 0, 0), shard_size=4)
    assert sorted(p.name for p in out.iterdir()) == ["prepare.json", "train-00000.h5"]
    first = out / "train-00000.h5"
    first_stat = first.stat()
    # A killed run (no cleanup at all) can leave a temporary file behind.
    (out / ".train-00001.x1y2.tmp.h5").write_bytes(b"half a shard")

    monkeypatch.setattr(preparation, "_decode_job", real)
    resumed = prep(src, out, split=(1, 0, 0), shard_size=4)
    assert (resumed.kept, resumed.written) == (1, 2)
    assert resumed.counts["train"] == 12
    assert first.stat().st_mtime_ns == first_stat.st_mtime_ns  # kept, not rewritten
    assert not list(out.glob(".*"))
    fresh = prep(src, tmp_path / "fresh", split=(1, 0, 0), shard_size=4)
    assert fresh.counts == resumed.counts
    a, b = shard_contents(out), shard_contents(tmp_path / "fresh")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key][0], b[key][0])
        assert a[key][1] == b[key][1]
    assert json.loads((out / "manifest.json").read_text())["counts"]["train"] == 12


def test_rerun_of_complete_output_keeps_everything(tmp_path: Path) -> None:
    make_images(tmp_path / "src", 4)
    prep(tmp_path / "src", tmp_path / "out")
    again = prep(tmp_path / "src", tmp_path / "out")
    assert (again.written, again.kept) == (0, 2)  # 4 images: 3 train, 1 val, 0 test
    assert again.counts == {"train": 3, "val": 1, "test": 0}


def test_other_options_need_overwrite(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    make_images(src, 4)
    prep(src, out)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    with pytest.raises(WmiError, match=r"--size was 32 there, 16 now.*--overwrite"):
        prep(src, out, size=16)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    result = prep(src, out, size=16, overwrite=True)
    assert sum(result.counts.values()) == 4
    assert data.shard_info(result.shards["train"][0]).size == 16


def test_changed_source_needs_overwrite(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    make_images(src, 4)
    prep(src, out)
    make_images(src / "more", 1)
    with pytest.raises(WmiError, match="changed"):
        prep(src, out)


def test_foreign_folder_is_left_alone(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    make_images(src, 3)
    out.mkdir()
    for name in ("notes.txt", "preview.png", "manifest.json"):
        (out / name).write_text("mine")
    result = runner.invoke(app, ["data", "prepare", str(src), str(out), "--workers", "0"])
    assert result.exit_code == 2
    assert "not made by wmi data prepare" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "notes.txt", "preview.png"]
    (out / "train-00007.h5").write_text("stale shard")
    prep(src, out, overwrite=True)
    assert not (out / "train-00007.h5").exists()
    # --overwrite deletes shards, not files of the same name as ours in a folder not ours
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "preview.png").read_text() == "mine"
    assert json.loads((out / "manifest.json").read_text())["counts"]["train"] == 2


def test_output_inside_source_is_not_read_back(tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_images(src, 4)
    out = src / "prepared"
    prep(src, out)
    preview = str(out / "preview.png")
    result = runner.invoke(app, ["data", "info", str(out), "--preview", preview])
    assert result.exit_code == 0, result.output
    assert (out / "preview.png").is_file()
    again = prep(src, out)  # same file list: resumes instead of seeing preview.png
    assert again.found == 4 and again.written == 0


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "no such directory"),
        ("empty", "no images found"),
        ("split", "sum to 1"),
        ("out_is_file", "is a file"),
        ("out_is_src", "must differ from SRC_DIR"),
    ],
)
def test_prepare_bad_input_is_one_line(tmp_path: Path, case: str, message: str) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    make_images(src, 2)
    args = ["data", "prepare", str(src), str(out), "--workers", "0"]
    if case == "missing":
        args[2] = str(tmp_path / "nope")
    elif case == "empty":
        (tmp_path / "blank").mkdir()
        (tmp_path / "blank" / "readme.txt").write_text("no pictures")
        args[2] = str(tmp_path / "blank")
    elif case == "split":
        args += ["--split", "0.5,0.2,0.2"]
    elif case == "out_is_src":
        args[3] = str(src)
        out = src / "train-00000.h5"
    else:
        out.write_text("precious")
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    error_lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1
    if case == "out_is_file":
        assert out.read_text() == "precious"
    else:
        assert not out.exists()


def test_cli_prepare_with_worker_processes(tmp_path: Path) -> None:
    make_images(tmp_path / "src", 6, size=(40, 24))
    (tmp_path / "src" / "bad.jpg").write_bytes(b"x")
    result = runner.invoke(
        app,
        [
            *("data", "prepare", str(tmp_path / "src"), str(tmp_path / "pool")),
            *("--size", "16", "--workers", "2", "--split", "0.5,0.5,0"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "6 of 7 images written, 1 skipped" in result.output
    serial = prep(tmp_path / "src", tmp_path / "serial", size=16, split=(0.5, 0.5, 0))
    a, b = shard_contents(tmp_path / "pool"), shard_contents(tmp_path / "serial")
    manifest = json.loads((tmp_path / "pool" / "manifest.json").read_text())
    assert manifest["counts"] == serial.counts and sum(serial.counts.values()) == 6
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key][0], b[key][0])


# --------------------------------------------------------------------------------------------
# info


def test_info_json_and_preview(tmp_path: Path) -> None:
    make_images(tmp_path / "src", 10, size=(24, 24))
    prep(tmp_path / "src", tmp_path / "out", size=24)
    sheet = tmp_path / "sheet.png"
    result = runner.invoke(
        app, ["data", "info", str(tmp_path / "out"), "--json", "--preview", str(sheet)]
    )
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert {s: v["images"] for s, v in info["splits"].items()} == {"train": 7, "val": 2, "test": 1}
    assert info["images"] == 10 and info["size"] == 24 and info["complete"] is True
    assert info["splits"]["train"]["bytes"] == (tmp_path / "out" / "train-00000.h5").stat().st_size
    assert info["preview"] == str(sheet)
    assert Image.open(sheet).size[0] > 24 * 3  # a grid of tiles
    before = sorted(p.name for p in (tmp_path / "out").iterdir())
    table = runner.invoke(app, ["data", "info", str(tmp_path / "out")])
    assert table.exit_code == 0 and "train" in table.output and "24x24" in table.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == before  # writes nothing
    assert "preview:" not in table.output


def test_info_prints_the_info_when_the_preview_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_images(tmp_path / "src", 6, size=(24, 24))
    prep(tmp_path / "src", tmp_path / "out", size=24)
    sheet = tmp_path / "out" / "sheet.png"

    def read_only(path, *args, **kwargs):  # what a read-only dataset folder answers
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("wmi.io.preview.save_contact_sheet", read_only)
    result = runner.invoke(app, ["data", "info", str(tmp_path / "out"), "--preview", str(sheet)])
    assert result.exit_code == 1, result.output
    assert "24x24" in result.stdout and "train" in result.stdout  # the info is printed
    assert f"preview not written: {sheet}: Permission denied" in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_prepare_refuses_a_size_below_16(tmp_path: Path) -> None:
    make_images(tmp_path / "src", 2)
    result = runner.invoke(app, ["data", "prepare", str(tmp_path / "src"), str(tmp_path / "o"),
                                 "--size", "1"])  # fmt: skip
    assert result.exit_code == 2
    # the option's range (16 to 10,000, shown in --help) refuses it in one line
    assert result.output.strip() == (
        "error: Invalid value for '--size': Input should be greater than or equal to 16"
    )
    assert not (tmp_path / "o").exists()


def test_a_second_prepare_into_one_folder_is_refused(tmp_path: Path) -> None:
    from wmi.procs import folder_lock

    make_images(tmp_path / "src", 4)
    out = tmp_path / "out"
    out.mkdir()
    busy = pytest.raises(WmiError, match="another wmi data prepare is writing here")
    with folder_lock(out, "held by this test"), busy:  # another prepare in the middle of its work
        prep(tmp_path / "src", out)
    assert list(out.iterdir()) == []  # it wrote nothing
    assert prep(tmp_path / "src", out).counts["train"] == 3  # the lock goes with its holder


def test_full_disk_is_one_error_naming_the_shard_and_keeps_complete_shards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    make_images(tmp_path / "src", 12)
    out = tmp_path / "out"
    real = shutil.disk_usage
    checks = []

    def filling_up(path):  # room for two shards, then the disk is full
        usage = real(path)
        checks.append(path)
        return usage._replace(free=usage.free if len(checks) <= 2 else 1000)

    monkeypatch.setattr(preparation.shutil, "disk_usage", filling_up)
    with pytest.raises(WmiError) as caught:
        prep(tmp_path / "src", out, split=(1, 0, 0), shard_size=4)
    message = str(caught.value)
    assert message.startswith(f"{out / 'train-00002.h5'}: no space left on device")
    assert "the 2 complete shard(s) are kept" in message and "resume" in message
    assert [data.shard_info(out / f"train-0000{i}.h5").count for i in (0, 1)] == [4, 4]
    assert not (out / "train-00002.h5").exists() and not (out / "manifest.json").exists()
    monkeypatch.setattr(preparation.shutil, "disk_usage", real)  # space freed: resume
    resumed = prep(tmp_path / "src", out, split=(1, 0, 0), shard_size=4)
    assert resumed.kept == 2 and resumed.written == 1 and resumed.counts["train"] == 12


def test_ctrl_c_says_that_a_rerun_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(data, "prepare", interrupted)
    make_images(tmp_path / "src", 2)
    result = runner.invoke(app, ["data", "prepare", str(tmp_path / "src"), str(tmp_path / "o")])
    assert result.exit_code == 130
    assert "run the same command again to resume" in " ".join(result.output.split())


def test_info_without_shards_is_an_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "info", str(tmp_path)])
    assert result.exit_code == 2 and "no shards" in result.output


# --------------------------------------------------------------------------------------------
# shards


def test_find_shards_ignores_temporaries_and_other_splits(tmp_path: Path) -> None:
    for name in ("train-00001.h5", "train-00000.h5", "val-00000.h5", ".train-00002.ab.tmp.h5"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "train-1.h5").write_bytes(b"")
    assert [p.name for p in data.find_shards(tmp_path, "train")] == [
        "train-00000.h5",
        "train-00001.h5",
    ]
    assert data.find_shards(tmp_path / "missing", "val") == []
    with pytest.raises(WmiError, match="split"):
        data.find_shards(tmp_path, "training")


def test_check_shards_rejects_other_sizes(tmp_path: Path) -> None:
    make_images(tmp_path / "src", 2)
    shards = prep(tmp_path / "src", tmp_path / "out", split=(1, 0, 0)).shards["train"]
    assert data.check_shards(shards, 32)[0].count == 2
    with pytest.raises(
        WmiError, match=r"train-00000.h5: prepared with --size 32, not 16.*--size 16"
    ):
        data.check_shards(shards, 16)
    assert data.check_shards(shards, 16, exact=False)[0].height == 32
    with pytest.raises(WmiError, match="smaller than size 64"):
        data.check_shards(shards, 64, exact=False)
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(WmiError, match="junk.h5: not a readable HDF5 file"):
        data.shard_info(tmp_path / "junk.h5")


# --------------------------------------------------------------------------------------------
# loader


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("loader")
    make_images(root / "src", 12, size=(32, 32), seed=5)
    result = data.prepare(
        root / "src", root / "out", size=32, split=(1, 0, 0), shard_size=5, workers=0
    )
    return result.shards["train"]


@pytest.fixture(scope="module")
def mask_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("masks")
    for i in range(6):
        hole = np.zeros((32, 32), bool)
        hole[i * 4 : i * 4 + 8, 3 : 3 + 2 * i + 4] = True
        write_mask(folder / f"m{i}.png", hole)
    return folder


def stored(shards: list[Path]) -> np.ndarray:
    return np.concatenate([h5py.File(p, "r")["images"][:] for p in shards])


def test_items_are_float_images_and_validity_masks(shards: list[Path], mask_dir: Path) -> None:
    ds = data.InpaintingDataset(shards, mask_dir, size=32, augment=False)
    assert len(ds) == 12
    pixels = stored(shards)
    holes = [read_mask(p) for p in sorted(mask_dir.iterdir())]
    for i in (0, 4, 5, 11, -1):
        image, mask = ds[i]
        assert image.dtype == torch.float32 and image.shape == (3, 32, 32)
        assert mask.dtype == torch.float32 and mask.shape == (1, 32, 32)
        assert image.is_contiguous() and mask.is_contiguous()
        expected = torch.from_numpy(pixels[i]).permute(2, 0, 1).float() / 255
        assert torch.equal(image, expected)
        assert image.min() >= 0.0 and image.max() <= 1.0
        valid = mask[0].numpy()
        assert set(np.unique(valid)) <= {0.0, 1.0}
        assert any(np.array_equal(valid, (~h).astype(np.float32)) for h in holes)
    with pytest.raises(IndexError):
        ds[12]


def test_callable_mask_source(shards: list[Path]) -> None:
    seen = []

    def holes(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        seen.append((height, width))
        hole = np.zeros((height, width), bool)
        hole[: int(rng.integers(1, height))] = True
        return hole

    ds = data.InpaintingDataset(shards, holes, size=32)
    _, mask = ds[3]
    assert seen == [(32, 32)]
    rows = mask[0].numpy()
    assert (rows[0] == 0).all() and (rows[-1] == 1).all()  # hole at the top = validity 0
    bad = data.InpaintingDataset(shards, lambda rng, h, w: np.zeros((h, w + 1), bool), size=32)
    with pytest.raises(ValueError, match="shape"):
        bad[0]


def test_freeform_uses_the_deepfill_training_masks(shards: list[Path]) -> None:
    a = data.InpaintingDataset(shards, "freeform", size=32, seed=3)
    b = data.InpaintingDataset(shards, "freeform", size=32, seed=3)
    masks = [a[i][1] for i in range(len(a))]
    for i, mask in enumerate(masks):
        assert mask.shape == (1, 32, 32)
        assert set(mask.unique().tolist()) <= {0.0, 1.0}
        assert torch.equal(mask, b[i][1])  # reproducible from the seed
    # strokes OR a box: every mask has a hole, and they differ from image to image
    assert all((m == 0).any() for m in masks)
    assert len({m.numpy().tobytes() for m in masks}) > 1


def items(ds: data.InpaintingDataset) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [ds[i] for i in range(len(ds))]


def same(a, b) -> bool:
    return all(
        torch.equal(x, y) for pa, pb in zip(a, b, strict=True) for x, y in zip(pa, pb, strict=True)
    )


def test_pairing_is_reproducible_and_changes_per_epoch(shards: list[Path], mask_dir: Path) -> None:
    ds = data.InpaintingDataset(shards, mask_dir, size=32, seed=7)
    epoch0 = items(ds)
    assert same(epoch0, items(data.InpaintingDataset(shards, mask_dir, size=32, seed=7)))
    ds.set_epoch(1)
    assert ds.epoch == 1
    epoch1 = items(ds)
    assert not same(epoch0, epoch1)
    masks0 = [m for _, m in epoch0]
    masks1 = [m for _, m in epoch1]
    assert any(not torch.equal(a, b) for a, b in zip(masks0, masks1, strict=True))
    ds.set_epoch(0)
    assert same(epoch0, items(ds))
    with pytest.raises(ValueError, match="epoch"):
        ds.set_epoch(-1)
    other_seed = data.InpaintingDataset(shards, mask_dir, size=32, seed=8)
    assert not same(epoch0, items(other_seed))


def test_augment_flips_and_random_crops(tmp_path: Path, mask_dir: Path) -> None:
    make_images(tmp_path / "src", 3, size=(40, 40), seed=2)
    big = prep(tmp_path / "src", tmp_path / "out", size=40, split=(1, 0, 0)).shards["train"]
    pixels = stored(big)
    ds = data.InpaintingDataset(big, mask_dir, size=32, augment=True)
    offsets, flips = set(), set()
    for epoch in range(8):
        ds.set_epoch(epoch)
        image, _ = ds[1]
        got = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        hits = [
            (top, left, flip)
            for top in range(9)
            for left in range(9)
            for flip in (False, True)
            if np.array_equal(
                got,
                pixels[1, top : top + 32, left : left + 32][:, ::-1]
                if flip
                else pixels[1, top : top + 32, left : left + 32],
            )
        ]
        assert len(hits) == 1  # every item is a window of the stored image, maybe mirrored
        offsets.add(hits[0][:2])
        flips.add(hits[0][2])
    assert len(offsets) > 3 and flips == {False, True}
    plain = data.InpaintingDataset(big, mask_dir, size=32, augment=False)
    image, _ = plain[1]
    centre = torch.from_numpy(pixels[1, 4:36, 4:36]).permute(2, 0, 1).float() / 255
    assert torch.equal(image, centre)


def test_mask_files_are_resized_with_nearest_neighbour(shards: list[Path], tmp_path: Path) -> None:
    hole = np.zeros((64, 64), bool)
    hole[:32, :16] = True
    write_mask(tmp_path / "big.png", hole)
    ds = data.InpaintingDataset(shards, tmp_path, size=32, augment=False)
    _, mask = ds[0]
    expected = np.ones((32, 32), np.float32)
    expected[:16, :8] = 0
    np.testing.assert_array_equal(mask[0].numpy(), expected)
    _, again = ds[1]  # served from the per-process cache of decoded masks
    np.testing.assert_array_equal(again[0].numpy(), expected)


def test_dataloader_workers_give_the_same_batches(shards: list[Path], mask_dir: Path) -> None:
    from torch.utils.data import DataLoader

    ds = data.InpaintingDataset(shards, mask_dir, size=32, seed=3)
    ds[0]  # opens a file in this process first: workers must not reuse the handle
    serial = {}
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        serial[epoch] = list(DataLoader(ds, batch_size=4, num_workers=0))
    ds.set_epoch(0)
    loader = DataLoader(ds, batch_size=4, num_workers=2, persistent_workers=True)
    for epoch in (0, 1):
        ds.set_epoch(epoch)  # reaches the persistent workers through shared memory
        batches = list(loader)
        assert len(batches) == 3
        assert same(batches, serial[epoch])
    assert not same(serial[0], serial[1])


@pytest.mark.slow
def test_spawned_persistent_workers_follow_set_epoch(shards: list[Path], mask_dir: Path) -> None:
    # spawn pickles the dataset (forkserver too, the default from Python 3.14)
    from torch.utils.data import DataLoader

    ds = data.InpaintingDataset(shards, mask_dir, size=32, seed=4)
    serial = {}
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        serial[epoch] = list(DataLoader(ds, batch_size=6))
    ds.set_epoch(0)
    loader = DataLoader(
        ds, batch_size=6, num_workers=1, multiprocessing_context="spawn", persistent_workers=True
    )
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        assert same(list(loader), serial[epoch])


def test_distributed_sampler_ranks_see_the_same_items(shards: list[Path], mask_dir: Path) -> None:
    from torch.utils.data import DistributedSampler

    ds = data.InpaintingDataset(shards, mask_dir, size=32, seed=1)
    ds.set_epoch(2)
    reference = items(ds)
    seen = set()
    for rank in (0, 1):
        sampler = DistributedSampler(ds, num_replicas=2, rank=rank, shuffle=True, seed=1)
        sampler.set_epoch(2)
        for i in sampler:
            seen.add(i)
            assert same([ds[i]], [reference[i]])
    assert seen == set(range(12))


def test_dataset_pickles_without_open_files(shards: list[Path], mask_dir: Path) -> None:
    ds = data.InpaintingDataset(shards, mask_dir, size=32)
    first = ds[5]
    clone = pickle.loads(pickle.dumps(ds))
    assert same([clone[5]], [first])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"masks": "missing-dir"}, "no such mask folder"),
        ({"size": 64}, "smaller than size 64"),
        ({"shard_paths": []}, "no shard files"),
        ({"seed": -1}, "seed -1"),
    ],
)
def test_dataset_bad_input(shards: list[Path], mask_dir: Path, kwargs: dict, message: str) -> None:
    args = {"shard_paths": shards, "masks": mask_dir, "size": 32} | kwargs
    with pytest.raises(WmiError, match=message):
        data.InpaintingDataset(**args)


def test_empty_mask_dir_is_an_error(shards: list[Path], tmp_path: Path) -> None:
    with pytest.raises(WmiError, match="no mask images"):
        data.InpaintingDataset(shards, tmp_path, size=32)
