from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wmi.errors import WmiError
from wmi.io import (
    atomic_path,
    match_pattern,
    pair_by_stem,
    read_image,
    read_mask,
    write_image,
    write_mask,
)


def test_mask_polarity_round_trip(tmp_path: Path) -> None:
    hole = np.zeros((5, 7), bool)
    hole[1:3, 2:6] = True
    write_mask(tmp_path / "m.png", hole)
    raw = np.asarray(Image.open(tmp_path / "m.png"))
    assert raw.dtype == np.uint8 and raw.ndim == 2
    assert set(np.unique(raw)) == {0, 255}
    assert (raw == 255).sum() == hole.sum()
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), hole)


def test_mask_threshold_is_127(tmp_path: Path) -> None:
    Image.fromarray(np.array([[127, 128]], np.uint8)).save(tmp_path / "m.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), [[False, True]])


def test_read_image_16bit_keeps_precision(tmp_path: Path) -> None:
    import cv2

    arr = np.array([[[0, 257, 65535], [1000, 2000, 3000]]], np.uint16)  # RGB
    cv2.imwrite(str(tmp_path / "deep.png"), arr[..., ::-1])
    out = read_image(tmp_path / "deep.png")
    np.testing.assert_allclose(out, arr / 65535.0, atol=1e-7)


def test_read_image_rgba_and_gray(tmp_path: Path) -> None:
    Image.new("RGBA", (4, 3), (10, 20, 30, 0)).save(tmp_path / "a.png")
    Image.new("L", (4, 3), 51).save(tmp_path / "g.png")
    assert read_image(tmp_path / "a.png").shape == (3, 4, 3)
    np.testing.assert_allclose(read_image(tmp_path / "g.png"), 0.2, atol=1e-6)


def test_corrupt_and_missing_files_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(WmiError, match="bad.png"):
        read_image(tmp_path / "bad.png")
    with pytest.raises(WmiError, match="nope.png"):
        read_mask(tmp_path / "nope.png")


def test_atomic_path_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("crash")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_write_image_atomic(tmp_path: Path) -> None:
    img = np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    write_image(tmp_path / "x.png", img)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "x.png")), img)


def test_pair_by_stem_iopaint_and_lama_names() -> None:
    images = [Path("a.jpg"), Path("b.png"), Path("c.png")]
    masks = [Path("a.png"), Path("b_mask001.png"), Path("b_mask000.png"), Path("z.png")]
    pairing = pair_by_stem(images, masks)
    assert pairing.pairs == [(Path("a.jpg"), Path("a.png")), (Path("b.png"), Path("b_mask000.png"))]
    assert pairing.unmatched_images == [Path("c.png")]
    assert pairing.unmatched_masks == [Path("b_mask001.png"), Path("z.png")]


def test_write_image_png_compress_level_is_lossless(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    image = (rng.random((64, 64, 3)) * 4).astype(np.uint8) * 60  # few values: compressible
    write_image(tmp_path / "fast.png", image, png_compress_level=0)
    write_image(tmp_path / "small.png", image, png_compress_level=9)
    assert (tmp_path / "fast.png").stat().st_size > (tmp_path / "small.png").stat().st_size
    for name in ("fast.png", "small.png"):
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / name)), image)


def test_match_pattern_wildcards_only_in_the_pattern() -> None:
    names = sorted(
        ["a[1].png", "a1.png", "a[1]_mask0.png", "b_mask1.png", "b_mask2.png", "mask_b.png"]
    )
    assert match_pattern("{stem}.png", "a[1]", names) == ["a[1].png"]
    assert match_pattern("{stem}_mask*.png", "a[1]", names) == ["a[1]_mask0.png"]
    assert match_pattern("{stem}_mask*.png", "b", names) == ["b_mask1.png", "b_mask2.png"]
    assert match_pattern("*_{stem}.png", "b", names) == ["mask_b.png"]  # wildcard before the stem
    assert match_pattern("{stem}.png", "c", names) == []


def test_pair_by_stem_with_brackets_in_the_name() -> None:
    pairing = pair_by_stem([Path("x[2].jpg")], [Path("x[2]_mask000.png"), Path("x2_mask000.png")])
    assert pairing.pairs == [(Path("x[2].jpg"), Path("x[2]_mask000.png"))]


def test_list_masks_leaves_out_a_mask_sets_preview(tmp_path: Path) -> None:
    from wmi.io import list_masks

    write_mask(tmp_path / "000000.png", np.zeros((4, 4), bool))
    write_mask(tmp_path / "preview.png", np.zeros((4, 4), bool))
    assert [p.name for p in list_masks(tmp_path)] == ["000000.png", "preview.png"]
    (tmp_path / "manifest.csv").write_text("file\n000000.png\n")  # a wmi mask set
    assert [p.name for p in list_masks(tmp_path)] == ["000000.png"]


def test_a_photograph_given_as_mask_is_refused(tmp_path: Path) -> None:
    from skimage import data

    Image.fromarray(data.astronaut()[:64, :64]).save(tmp_path / "photo.png")
    with pytest.raises(WmiError, match="photo.png: does not look like a mask"):
        read_mask(tmp_path / "photo.png")
    # an anti-aliased mask (grey only along the edges) is still a mask
    soft = np.zeros((64, 64), np.uint8)
    soft[16:48, 16:48] = 255
    soft[15, 16:48] = soft[48, 16:48] = 128
    Image.fromarray(soft).save(tmp_path / "soft.png")
    assert read_mask(tmp_path / "soft.png").sum() == 32 * 32 + 2 * 32
