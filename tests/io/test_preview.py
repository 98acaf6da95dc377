from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from wmi.io.preview import contact_sheet, save_contact_sheet


def test_grid_geometry_and_placement() -> None:
    a = np.zeros((4, 6), bool)
    b = np.ones((4, 6), bool)
    sheet = contact_sheet([a, b, a], columns=2, pad=1, background=7)
    assert sheet.shape == (2 * 4 + 3, 2 * 6 + 3, 3)
    assert (sheet[1:5, 1:7] == 0).all()
    assert (sheet[1:5, 8:14] == 255).all()
    assert (sheet[6:10, 8:14] == 7).all()  # empty cell keeps the background


def test_resizes_odd_tiles_and_saves(tmp_path: Path) -> None:
    tiles = [np.full((8, 8, 3), 0.5, np.float32), np.zeros((3, 5), np.uint8)]
    save_contact_sheet(tmp_path / "s.png", tiles, labels=["a", "b"])
    assert Image.open(tmp_path / "s.png").size == (2 * 8 + 3 * 2, 8 + 2 * 2)


def test_scale_enlarges_tiles_by_nearest_neighbour() -> None:
    tile = np.array([[True, False]])
    sheet = contact_sheet([tile], pad=0, scale=3)
    assert sheet.shape == (3, 6, 3)
    assert (sheet[:, :3] == 255).all() and (sheet[:, 3:] == 0).all()
