"""Every format wmi writes decodes to the pixels it meant, for every kind of input image
(issue 21, item 2: a TIFF input's layout tags were copied into its result as EXIF)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from wmi.io.images import FORMATS, load_image, to_uint8, write_image

#: Input mode -> the input formats that store it.
MODES = {
    "RGB": (".tif", ".png", ".jpg"),
    "L": (".tif", ".png", ".jpg"),
    "I;16": (".tif", ".png"),
    "P": (".tif", ".png", ".gif"),
    "1": (".tif", ".png"),
    "CMYK": (".tif", ".jpg"),
    "RGBA": (".tif", ".png"),
    "LA": (".tif", ".png"),
    "F": (".tif",),
}
LOSSY = (".jpg", ".jpeg", ".webp")


def _input(path: Path, mode: str) -> None:
    """A smooth picture (so lossy results stay close) in ``mode``, saved as ``path``."""
    y, x = np.mgrid[0:24, 0:32].astype(np.float32)
    ramp = np.stack([x / 31, y / 23, (x + y) / 54], axis=2)
    rgb = Image.fromarray((ramp * 255).round().astype(np.uint8))
    if mode == "I;16":
        img = Image.fromarray((ramp[..., 0] * 65535).astype(np.uint16))
    elif mode == "F":
        img = Image.fromarray(ramp[..., 1] * 255)
    else:
        img = rgb.convert(mode, dither=Image.Dither.NONE)  # dithered noise is not smooth
    exif = Image.Exif()
    exif[0x010F] = "wmi-test camera"  # Make: kept in results that hold EXIF
    img.save(path, exif=exif) if path.suffix != ".gif" else img.save(path)


@pytest.mark.parametrize("mode,suffix", [(m, s) for m, ss in MODES.items() for s in ss])
def test_every_result_format_decodes_to_the_pixels_written(
    tmp_path: Path, mode: str, suffix: str
) -> None:
    source = tmp_path / f"in{suffix}"
    _input(source, mode)
    pixels, info = load_image(source)
    meant = to_uint8(pixels)
    for out_suffix in sorted(set(FORMATS)):
        out = tmp_path / f"out{out_suffix}"
        write_image(out, pixels, info=info)
        with Image.open(out) as img:
            back = np.asarray(img.convert("RGB"))
        by_cv = cv2.imread(str(out), cv2.IMREAD_COLOR)
        assert by_cv is not None, f"{mode}{suffix} -> {out_suffix}: OpenCV cannot read it"
        by_cv = by_cv[..., ::-1]
        if out_suffix in LOSSY:
            assert np.abs(back.astype(int) - meant).mean() < 8, (mode, suffix, out_suffix)
        else:
            assert np.array_equal(back, meant), (mode, suffix, out_suffix)
            assert np.array_equal(by_cv, meant), (mode, suffix, out_suffix)


def test_a_tiff_inputs_description_survives_but_not_its_layout(tmp_path: Path) -> None:
    _input(tmp_path / "g.tif", "L")
    pixels, info = load_image(tmp_path / "g.tif")
    write_image(tmp_path / "out.tif", pixels, info=info)
    with Image.open(tmp_path / "out.tif") as img:
        assert img.mode == "RGB" and img.getexif()[0x010F] == "wmi-test camera"
        assert img.getexif()[258] == (8, 8, 8)  # its own bits per sample, not the grey input's


def test_animations_multi_page_files_and_nan_pixels_are_per_file_errors(tmp_path: Path) -> None:
    """Issue 21, item 18: APNG and multi-page TIFF were read as their first frame, a float
    TIFF full of NaN as a black picture, without a word."""
    from wmi.errors import WmiError
    from wmi.io.images import open_rgb

    frames = [Image.new("RGB", (16, 16), (i * 80, 0, 0)) for i in range(3)]
    frames[0].save(tmp_path / "anim.png", save_all=True, append_images=frames[1:])
    frames[0].save(tmp_path / "pages.tif", save_all=True, append_images=frames[1:])
    Image.fromarray(np.full((16, 16), np.nan, np.float32)).save(tmp_path / "nan.tif")
    for name, says in (("anim.png", "holds 3 frames"), ("pages.tif", "holds 3 frames"),
                       ("nan.tif", "NaN or infinite")):  # fmt: skip
        for read in (load_image, open_rgb):
            with pytest.raises(WmiError, match=says):
                read(tmp_path / name)
