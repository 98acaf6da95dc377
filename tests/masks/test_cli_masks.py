"""``wmi masks generate`` and ``wmi masks stats`` through the command line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from wmi.cli import app
from wmi.errors import WmiError
from wmi.io import read_mask, write_mask
from wmi.masks import (
    BUCKET_LABELS,
    IRREGULAR_BUCKETS,
    MaskSetSpec,
    hole_ratio,
    hole_ratio_bucket,
    touches_border,
)

runner = CliRunner()


def run(*args: str | Path):
    return runner.invoke(app, ["masks", *map(str, args)])


def read_manifest(folder: Path) -> list[dict[str, str]]:
    with open(folder / "manifest.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_generate_writes_masks_manifest_and_preview(tmp_path: Path) -> None:
    out = tmp_path / "set"
    result = run("generate", out, "--kind", "freeform", "--count", 20, "--height", 48,
                 "--width", 80, "--seed", 4, "--workers", 1)  # fmt: skip
    assert result.exit_code == 0, result.output
    numbered = sorted(p.name for p in out.glob("[0-9]*.png"))
    assert numbered == [f"{i:06d}.png" for i in range(20)]
    rows = read_manifest(out)
    assert list(rows[0]) == ["file", "kind", "seed", "hole_ratio", "bucket", "touches_border"]
    assert [r["file"] for r in rows] == numbered
    spec = MaskSetSpec("freeform", 48, 80, count=20, seed=4)
    for i, row in enumerate(rows):
        hole = read_mask(out / row["file"])
        assert np.array_equal(hole, spec.make(i))  # white on disk = True = hole in memory
        assert float(row["hole_ratio"]) == pytest.approx(hole_ratio(hole), abs=1e-6)
        assert row["bucket"] == hole_ratio_bucket(hole_ratio(hole))
        assert row["touches_border"] == str(touches_border(hole)).lower()
        assert (row["kind"], row["seed"]) == ("freeform", "4")
    with Image.open(out / "preview.png") as preview:
        assert preview.mode == "RGB" and preview.width > 8 * 40  # 8 tiles per row
    assert "hole ratio" in result.output and "10-20%" in result.output
    assert not list(out.glob(".*"))  # no temporary files left


@pytest.mark.slow
def test_same_files_for_any_number_of_workers(tmp_path: Path) -> None:
    args = ("--kind", "irregular", "--count", 150, "--size", 32, "--seed", 7)
    assert run("generate", tmp_path / "one", *args, "--workers", 1).exit_code == 0
    result = run("generate", tmp_path / "two", *args, "--workers", 2, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["workers"] == 2  # 150 masks = 3 chunks: really two
    assert folder_bytes(tmp_path / "one") == folder_bytes(tmp_path / "two")
    assert run("generate", tmp_path / "other", *args[:-1], 8, "--workers", 1).exit_code == 0
    assert folder_bytes(tmp_path / "one") != folder_bytes(tmp_path / "other")


def test_irregular_buckets_exact_counts_and_layout(tmp_path: Path) -> None:
    out = tmp_path / "nvidia"
    result = run("generate", out, "--kind", "irregular", "--buckets", "--count", 24,
                 "--size", 64, "--workers", 1, "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["buckets"] == {**dict.fromkeys(IRREGULAR_BUCKETS, 4), ">60%": 0}
    assert summary["touches_border"] == 12
    for i, row in enumerate(read_manifest(out)):
        hole = read_mask(out / row["file"])
        assert hole_ratio_bucket(hole_ratio(hole)) == IRREGULAR_BUCKETS[i // 4] == row["bucket"]
        assert touches_border(hole) is (i % 4 < 2)


def test_irregular_buckets_with_fixed_border(tmp_path: Path) -> None:
    out = tmp_path / "inside"
    result = run("generate", out, "--kind", "irregular", "--buckets", "--count", 6,
                 "--size", 48, "--no-border", "--workers", 1, "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["touches_border"] == 0
    assert [r["bucket"] for r in read_manifest(out)] == list(IRREGULAR_BUCKETS)


def test_json_summary_agrees_with_manifest(tmp_path: Path) -> None:
    out = tmp_path / "thick"
    result = run("generate", out, "--kind", "thick", "--count", 30, "--size", 64, "--workers", 1,
                 "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    ratios = [float(r["hole_ratio"]) for r in read_manifest(out)]
    assert summary["count"] == 30 and summary["sizes"] == {"64x64": 30}
    assert summary["hole_ratio"]["max"] == pytest.approx(max(ratios), abs=1e-6)
    assert summary["hole_ratio"]["mean"] == pytest.approx(np.mean(ratios), abs=1e-6)
    assert sum(summary["buckets"].values()) == 30 and list(summary["buckets"]) == list(
        BUCKET_LABELS
    )


def test_training_variant_is_labelled(tmp_path: Path) -> None:
    out = tmp_path / "train"
    result = run("generate", out, "--kind", "freeform", "--training", "--count", 3, "--size", 64,
                 "--workers", 1)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert {r["kind"] for r in read_manifest(out)} == {"freeform+box"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # numbers out of their range: refused by the option parser, also in one line
        (["--kind", "freeform", "--count", "0"], "'--count': Input should be greater than or"),
        (["--kind", "freeform", "--count", "-3"], "'--count': Input should be greater than or"),
        (["--kind", "freeform", "--count", "2", "--size", "8"], "'--size': Input should be"),
        (["--kind", "box", "--count", "2", "--height", "15"], "'--height': Input should be"),
        (["--kind", "irregular", "--count", "13", "--buckets"], "multiple of 12"),
        (
            ["--kind", "freeform", "--count", "12", "--buckets"],
            "--buckets applies to --kind irregular",
        ),
        (["--kind", "box", "--count", "2", "--training"], "--training applies to --kind freeform"),
        (["--kind", "center", "--count", "2", "--border"], "center masks never touch"),
        (["--kind", "freeform", "--count", "2", "--workers", "-1"], "'--workers': Input should"),
    ],
)
def test_generate_bad_input_is_one_line_and_writes_nothing(
    tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "never"
    result = run("generate", out, *args)
    assert result.exit_code == 2
    assert message in result.output
    assert result.output.strip().count("\n") == 0  # one line
    assert "Traceback" not in result.output
    assert not out.exists()


def test_unknown_kind_is_refused(tmp_path: Path) -> None:
    result = run("generate", tmp_path / "never", "--kind", "blobs", "--count", "2")
    assert result.exit_code == 2
    assert "--kind" in result.output and "blobs" in result.output
    assert not (tmp_path / "never").exists()


def test_non_empty_folder_needs_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    (out / "000000.png").write_bytes(b"mine")
    result = run("generate", out, "--kind", "box", "--count", "2", "--size", "32")
    assert result.exit_code == 2
    assert "not empty" in result.output and "--overwrite" in result.output
    assert [p.name for p in out.iterdir()] == ["000000.png"]
    assert (out / "000000.png").read_bytes() == b"mine"


def test_overwrite_replaces_the_set_and_keeps_other_files(tmp_path: Path) -> None:
    out = tmp_path / "set"
    assert (
        run("generate", out, "--kind", "box", "--count", 10, "--size", 32, "--workers", 1).exit_code
        == 0
    )
    (out / "notes.txt").write_text("keep me")
    result = run("generate", out, "--kind", "center", "--count", 4, "--size", 32, "--overwrite",
                 "--workers", 1)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.glob("[0-9]*.png")) == [f"{i:06d}.png" for i in range(4)]
    assert len(read_manifest(out)) == 4 and (out / "notes.txt").read_text() == "keep me"
    assert "removed 6 masks of the earlier set" in result.output


def make_set(out: Path, count: int = 10) -> dict[str, bytes]:
    """A box set of ``count`` masks plus a file of the user's; returns the folder's bytes."""
    result = run("generate", out, "--kind", "box", "--count", count, "--size", 32, "--workers", 1)
    assert result.exit_code == 0, result.output
    (out / "notes.txt").write_text("keep me")
    return folder_bytes(out)


@pytest.mark.parametrize(
    "manifest",
    [
        None,  # masks from some other tool
        "name,label\n000000.png,x\n",  # someone else's manifest.csv
        "file,kind,seed,hole_ratio,bucket,touches_border\n../photo.png,box,0,0.1,0-10%,false\n",
    ],
)
def test_overwrite_refuses_a_folder_that_is_not_a_wmi_set(
    tmp_path: Path, manifest: str | None
) -> None:
    out = tmp_path / "theirs"
    out.mkdir()
    for name in ("000000.png", "000001.png", "1234567.png"):
        (out / name).write_bytes(name.encode())
    (out / "photo.jpg").write_bytes(b"jpeg")
    if manifest is not None:
        (out / "manifest.csv").write_text(manifest)
    before = folder_bytes(out)
    result = run("generate", out, "--kind", "box", "--count", 1, "--size", 32, "--overwrite",
                 "--workers", 1)  # fmt: skip
    assert result.exit_code == 2
    assert str(out) in result.output and "not a mask set written by wmi" in result.output
    assert result.output.strip().count("\n") == 0 and "Traceback" not in result.output
    assert folder_bytes(out) == before


def test_overwrite_refuses_to_replace_a_file_the_set_does_not_list(tmp_path: Path) -> None:
    out = tmp_path / "set"
    make_set(out, count=2)
    (out / "000003.png").write_bytes(b"mine")
    before = folder_bytes(out)
    result = run("generate", out, "--kind", "box", "--count", 5, "--size", 32, "--overwrite",
                 "--workers", 1)  # fmt: skip
    assert result.exit_code == 2
    assert "000003.png" in result.output and "not listed" in result.output
    assert folder_bytes(out) == before


def test_overwrite_with_a_smaller_count_removes_exactly_the_old_extra_masks(
    tmp_path: Path,
) -> None:
    out = tmp_path / "set"
    make_set(out, count=10)
    (out / "000123.png").write_bytes(b"mine")  # numbered, but not in the set's manifest
    result = run("generate", out, "--kind", "center", "--count", 4, "--size", 32, "--overwrite",
                 "--workers", 1, "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["stale_masks_removed"] == 6
    names = [f"{i:06d}.png" for i in range(4)] + ["000123.png", "manifest.csv", "notes.txt"]
    assert sorted(p.name for p in out.iterdir()) == sorted([*names, "preview.png"])
    assert (out / "000123.png").read_bytes() == b"mine"
    assert [r["file"] for r in read_manifest(out)] == names[:4]
    assert {r["kind"] for r in read_manifest(out)} == {"center"}
    # the replaced set is byte-identical to the same set written into an empty folder
    fresh = tmp_path / "fresh"
    run("generate", fresh, "--kind", "center", "--count", 4, "--size", 32, "--workers", 1)
    assert {k: v for k, v in folder_bytes(out).items() if k in folder_bytes(fresh)} == (
        folder_bytes(fresh)
    )


@pytest.mark.parametrize("error", [RuntimeError, WmiError])
def test_a_failed_overwrite_leaves_the_earlier_set_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: type[Exception]
) -> None:
    out = tmp_path / "set"
    before = make_set(out, count=10)
    make = MaskSetSpec.make

    def make_until_5(self: MaskSetSpec, index: int) -> np.ndarray:
        if index == 5:  # masks 0-4 of the new set are written by then
            raise error("drawing failed")
        return make(self, index)

    monkeypatch.setattr(MaskSetSpec, "make", make_until_5)
    result = run("generate", out, "--kind", "freeform", "--count", 12, "--size", 32, "--seed", 1,
                 "--overwrite", "--workers", 1)  # fmt: skip
    assert result.exit_code != 0
    assert isinstance(result.exception, error) or "drawing failed" in result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(before)  # no staging folder left
    assert folder_bytes(out) == before


def test_a_run_that_cannot_draw_leaves_the_earlier_set_as_it_was(tmp_path: Path) -> None:
    out = tmp_path / "set"
    before = make_set(out, count=10)
    # at 256x256 boxes touch the border about once in 500 draws: mask 0 gives up
    result = run("generate", out, "--kind", "box", "--count", 3, "--border", "--overwrite",
                 "--workers", 1)  # fmt: skip
    assert result.exit_code == 2 and "none of 100 draws" in result.output
    assert folder_bytes(out) == before


def test_a_failed_run_leaves_nothing(tmp_path: Path) -> None:
    # Boxes touch the border about once in 500 draws: 100 redraws give up on the first mask.
    out = tmp_path / "never"
    result = run("generate", out, "--kind", "box", "--count", 3, "--border", "--workers", 1)
    assert result.exit_code == 2
    assert "box masks: none of 100 draws" in result.output
    assert not out.exists()


def test_stats_matches_generate_and_reads_foreign_masks(tmp_path: Path) -> None:
    out = tmp_path / "set"
    generated = run("generate", out, "--kind", "medium", "--count", 12, "--size", 32,
                    "--workers", 1, "--json")  # fmt: skip
    stats = run("stats", out, "--json")
    assert stats.exit_code == 0, stats.output
    a, b = json.loads(generated.output), json.loads(stats.output)
    for key in ("count", "buckets", "hole_ratio", "touches_border", "sizes"):
        assert a[key] == b[key], key  # preview.png is not counted as a mask

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    gray = np.zeros((10, 20), np.uint8)
    gray[:, :5] = 200  # hole (> 127)
    gray[:, 5:8] = 127  # not a hole: the threshold is strict
    Image.fromarray(gray).save(foreign / "a.png")
    rgb = np.zeros((10, 10, 3), np.uint8)
    rgb[2:4, 2:7] = 255
    Image.fromarray(rgb).save(foreign / "b_mask.PNG")
    (foreign / "broken.png").write_bytes(b"not a png")
    (foreign / "notes.txt").write_text("ignored")
    result = run("stats", foreign, "--json")
    assert result.exit_code == 1, result.output  # a file was left out
    assert "broken.png" in result.output  # named on stderr
    summary = json.loads(result.stdout)
    assert summary["count"] == 2 and summary["skipped"] == [str(foreign / "broken.png")]
    assert summary["hole_ratio"]["min"] == pytest.approx(10 / 100)
    assert summary["hole_ratio"]["max"] == pytest.approx(50 / 200)
    assert summary["touches_border"] == 1 and summary["sizes"] == {"10x20": 1, "10x10": 1}


def test_stats_table(tmp_path: Path) -> None:
    out = tmp_path / "set"
    run("generate", out, "--kind", "center", "--count", 3, "--size", 32, "--workers", 1)
    result = run("stats", out)
    assert result.exit_code == 0, result.output
    assert "3 masks" in result.output and "mean 25.0 %" in result.output


def test_stats_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no masks here")
    result = run("stats", empty)
    assert result.exit_code == 2 and "no PNG files" in result.output
    result = run("stats", tmp_path / "missing")
    assert result.exit_code == 2 and "no such folder" in result.output
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.png").write_bytes(b"garbage")
    result = run("stats", bad)
    assert result.exit_code == 2 and "none of the 1 PNG files is readable" in result.output


# ------------------------------------------------------------------- masks that select nothing


def test_stats_warns_about_each_mask_that_selects_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "masks"
    folder.mkdir()
    hole = np.zeros((32, 32), np.uint8)
    hole[4:12, 4:12] = 255
    Image.fromarray(hole).save(folder / "good.png")
    red = np.zeros((32, 32, 3), np.uint8)
    red[8:20, 8:20, 0] = 255  # the hole in pure red: grey 76, below the threshold
    Image.fromarray(red).save(folder / "red.png")
    alpha = np.zeros((32, 32, 4), np.uint8)
    alpha[8:20, 8:20, 3] = 255  # the hole drawn in alpha only
    Image.fromarray(alpha).save(folder / "alpha.png")
    dim = np.zeros((32, 32), np.uint8)
    dim[8:20, 8:20] = 127  # the threshold is strict
    Image.fromarray(dim).save(folder / "dim.png")
    result = run("stats", folder, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["count"] == 1 and summary["buckets"]["0-10%"] == 1  # only good.png
    assert sorted(Path(p).name for p in summary["empty"]) == ["alpha.png", "dim.png", "red.png"]
    text = " ".join(result.stderr.split())
    for name in ("alpha.png", "dim.png", "red.png"):
        assert f"{folder / name}: selects nothing" in text
    assert "3 mask(s) select nothing" in text


def _bomb_png(path: Path, side: int = 20000) -> None:
    """A 1-bit PNG of ``side``² black pixels: a few kB on disk, over Pillow's pixel limit."""
    import struct
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\0" * (1 + (side + 7) // 8)
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data)
                     + chunk(b"IEND", b""))  # fmt: skip


def test_stats_treats_a_decompression_bomb_as_one_bad_file(tmp_path: Path) -> None:
    folder = tmp_path / "masks"
    folder.mkdir()
    hole = np.zeros((32, 32), np.uint8)
    hole[:8] = 255
    Image.fromarray(hole).save(folder / "a.png")
    _bomb_png(folder / "bomb.png")
    assert (folder / "bomb.png").stat().st_size < 100_000
    result = run("stats", folder, "--json")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    summary = json.loads(result.stdout)
    assert summary["count"] == 1 and summary["skipped"] == [str(folder / "bomb.png")]
    assert f"skipped: {folder / 'bomb.png'}" in " ".join(result.stderr.split())


# ------------------------------------------------------------------------- masks for images


def _photo(path: Path, width: int, height: int, mode: str = "RGB", **save: object) -> None:
    rng = np.random.default_rng(len(path.name))
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    pixels = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    Image.fromarray(pixels.squeeze(), mode).save(path, **save)


def _rotated_jpeg(path: Path, width: int, height: int) -> None:
    """A JPEG stored ``width`` x ``height`` whose EXIF says: turn it by 90 degrees."""
    exif = Image.Exif()
    exif[0x0112] = 6
    _photo(path, width, height, exif=exif.tobytes())


def test_generate_for_a_folder_of_images_pairs_by_stem_at_each_size(tmp_path: Path) -> None:
    from wmi.io import pair_folders

    photos = tmp_path / "photos"
    photos.mkdir()
    _photo(photos / "wide.png", 451, 300)
    _photo(photos / "grey.jpg", 120, 200, "L")
    _photo(photos / "alpha.png", 64, 64, "RGBA")
    _rotated_jpeg(photos / "turned.jpg", 160, 96)  # shown as 96 wide, 160 high
    out = tmp_path / "masks" / "free"
    result = run("generate", out, "--kind", "freeform", "--for", photos, "--seed", 0,
                 "--workers", 1, "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == ["alpha.png", "grey.png", "manifest.csv", "preview.png", "turned.png",
                     "wide.png"]  # fmt: skip
    masks = [name for name in names if name.endswith(".png") and name != "preview.png"]
    sizes = {name: read_mask(out / name).shape for name in masks}
    assert sizes == {"alpha.png": (64, 64), "grey.png": (200, 120), "turned.png": (160, 96),
                     "wide.png": (300, 451)}  # fmt: skip
    assert [row["file"] for row in read_manifest(out)] == ["alpha.png", "grey.png", "turned.png",
                                                           "wide.png"]  # fmt: skip
    summary = json.loads(result.stdout)
    assert summary["count"] == 4 and summary["sizes"]["300x451"] == 1 and summary["skipped"] == []
    pairing = pair_folders(photos, out)
    assert pairing.images == 4 and not pairing.images_without_mask  # what inpaint and eval see


def test_masks_for_images_are_seeded_by_name_not_by_position(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("b", "d"):
        _photo(photos / f"{name}.png", 80, 60)
    run("generate", tmp_path / "one", "--kind", "irregular", "--for", photos, "--workers", 1)
    for name in ("a", "c"):  # new photos sort before and between the others
        _photo(photos / f"{name}.png", 80, 60)
    run("generate", tmp_path / "two", "--kind", "irregular", "--for", photos, "--workers", 1)
    for name in ("b.png", "d.png"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    assert (tmp_path / "two" / "a.png").read_bytes() != (tmp_path / "two" / "c.png").read_bytes()
    result = run("generate", tmp_path / "three", "--kind", "irregular", "--for", photos,
                 "--seed", 1, "--workers", 1)  # fmt: skip
    assert result.exit_code == 0
    assert (tmp_path / "three" / "b.png").read_bytes() != (tmp_path / "two" / "b.png").read_bytes()


def test_masks_for_images_spread_the_buckets_and_need_no_count(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(30):
        _photo(photos / f"img{i:02d}.png", 64, 64)
    result = run("generate", tmp_path / "m", "--kind", "irregular", "--for", photos,
                 "--workers", 2, "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    buckets = json.loads(result.stdout)["buckets"]
    assert sum(1 for label in IRREGULAR_BUCKETS if buckets[label]) >= 5  # spread, not one bucket


def test_masks_for_images_name_the_images_they_leave_out(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    _photo(photos / "ok.png", 40, 40)
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    _photo(photos / "tiny.png", 8, 40)
    _photo(photos / "preview.png", 40, 40)
    _bomb_png(photos / "bomb.png")
    out = tmp_path / "m"
    result = run("generate", out, "--kind", "box", "--for", photos, "--workers", 1)
    assert result.exit_code == 1, result.output
    text = " ".join(result.stderr.split())
    for name in ("broken.jpg", "tiny.png", "preview.png", "bomb.png"):
        assert f"left out: {photos / name}" in text, name
    assert "Traceback" not in result.output
    assert sorted(p.name for p in out.iterdir()) == ["manifest.csv", "ok.png", "preview.png"]


def test_masks_for_images_use_the_readers_pixel_limit(tmp_path: Path) -> None:
    """--for sizes images by wmi.io's rule: --max-pixels, as inpaint and eval read them."""
    photos = tmp_path / "photos"
    photos.mkdir()
    _photo(photos / "small.png", 40, 40)
    _photo(photos / "large.png", 80, 60)
    result = run("generate", tmp_path / "m", "--kind", "box", "--for", photos,
                 "--max-pixels", 2000, "--workers", 1)  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "large.png" in " ".join(result.stderr.split())
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "manifest.csv", "preview.png", "small.png"]  # fmt: skip
    everything = run("generate", tmp_path / "all", "--kind", "box", "--for", photos, "--workers", 1)
    assert everything.exit_code == 0, everything.output


def test_stats_progress_reaches_the_total_with_empty_masks_last(tmp_path: Path) -> None:
    from wmi.masks import mask_folder_stats

    masks = tmp_path / "masks"
    masks.mkdir()
    hole = np.zeros((32, 32), bool)
    hole[4:12, 4:12] = True
    write_mask(masks / "a.png", hole)
    write_mask(masks / "z.png", np.zeros((32, 32), bool))  # selects nothing, read last
    calls: list[tuple[int, int]] = []
    mask_folder_stats(masks, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (2, 2)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--count", "3"], "--for makes one mask per image at its size"),
        (["--size", "64"], "--for makes one mask per image at its size"),
        (["--buckets"], "--buckets lays out a numbered set"),
    ],
)
def test_masks_for_images_refuse_a_count_a_size_and_buckets(
    tmp_path: Path, extra: list[str], message: str
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    _photo(photos / "a.png", 40, 40)
    result = run("generate", tmp_path / "m", "--kind", "irregular", "--for", photos, *extra)
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "m").exists()


def test_masks_for_images_refuse_two_images_with_one_stem_and_the_image_folder(
    tmp_path: Path,
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    _photo(photos / "a.png", 40, 40)
    _photo(photos / "a.jpg", 40, 40)
    result = run("generate", tmp_path / "m", "--kind", "box", "--for", photos)
    assert result.exit_code == 2 and "share the stem 'a'" in result.output
    (photos / "a.jpg").unlink()
    before = folder_bytes(photos)
    result = run("generate", photos, "--kind", "box", "--for", photos, "--overwrite")
    assert result.exit_code == 2 and "must differ from the --for folder" in result.output
    assert folder_bytes(photos) == before  # never an overwritten input


def test_a_count_is_needed_without_for(tmp_path: Path) -> None:
    result = run("generate", tmp_path / "m", "--kind", "box")
    assert result.exit_code == 2 and "--count is required" in result.output


# ------------------------------------------------------------------ locks and killed runs


def test_a_staging_folder_left_by_a_killed_run_does_not_lock_the_folder_out(
    tmp_path: Path,
) -> None:
    out = tmp_path / "set"
    stale = out / ".wmi-masks-k1ll3d"  # what kill -9 leaves (tests/test_worker_faults.py)
    stale.mkdir(parents=True)
    (stale / "000000.png").write_bytes(b"half")
    result = run("generate", out, "--kind", "box", "--count", 2, "--size", 32, "--workers", 1)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["000000.png", "000001.png", "manifest.csv",
                                                     "preview.png"]  # fmt: skip


def test_a_folder_another_run_is_writing_is_refused(tmp_path: Path) -> None:
    from wmi.procs import folder_lock

    out = tmp_path / "set"
    out.mkdir()
    with folder_lock(out, "held by this test"):
        result = run("generate", out, "--kind", "box", "--count", 2, "--size", 32)
    assert result.exit_code == 2
    assert "another wmi masks generate is writing here" in result.output
    assert list(out.iterdir()) == []


def test_generate_timing_line_wording(tmp_path: Path) -> None:
    result = run("generate", tmp_path / "m", "--kind", "box", "--count", 3, "--size", 32,
                 "--workers", 1)  # fmt: skip
    assert result.exit_code == 0
    assert "wrote 3 masks in " in result.output and " in this process" in result.output
    assert "worker(s)" not in result.output and "0.0 s" not in result.output


@pytest.mark.parametrize(
    "args,says",
    [
        (["--count", "1", "--size", "100000"], "over --max-pixels"),
        (["--count", "1", "--height", "1000000000", "--width", "16"], "over --max-pixels"),
        (["--count", "1", "--size", "64", "--max-pixels", "4000"], "over --max-pixels 4,000"),
        (["--count", "99999999999999999999", "--size", "64"], "'--count': Input should be less"),
        (["--count", "1000001", "--size", "16"], "'--count': Input should be less than"),
    ],
)
def test_sizes_and_counts_beyond_their_meaning_are_refused_before_anything_is_written(
    tmp_path: Path, args: list[str], says: str
) -> None:
    """Issue 21, item 5: these asked for 9 GB, 16 GB and an endless list."""
    result = run("generate", tmp_path / "o", "--kind", "box", *args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and says in lines[0] and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()
