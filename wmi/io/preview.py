"""Contact sheets: many small pictures in one PNG, for people who would rather look than read."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from wmi.io import to_uint8, write_image


def _as_rgb_uint8(tile: np.ndarray) -> np.ndarray:
    tile = np.asarray(tile)
    if tile.dtype == bool:
        tile = tile.astype(np.uint8) * 255
    tile = to_uint8(tile)
    if tile.ndim == 2:
        tile = np.repeat(tile[..., None], 3, axis=2)
    return tile


def contact_sheet(
    tiles: Sequence[np.ndarray],
    columns: int | None = None,
    labels: Sequence[str] | None = None,
    pad: int = 2,
    background: int = 128,
    scale: int = 1,
) -> np.ndarray:
    """Arrange images in a grid.

    Args:
        tiles: images ``(H, W)`` or ``(H, W, 3)``; bool (True = white), uint8, or float in
            [0, 1]. Tiles of another size than the first are resized (nearest neighbour, so
            masks stay binary).
        columns: tiles per row; default is about square.
        labels: optional caption per tile, drawn in its top-left corner.
        pad: pixels between tiles.
        background: grey level of the padding.
        scale: enlarge every tile by this integer factor (nearest neighbour), for small tiles.

    Returns:
        uint8 array ``(H, W, 3)``.
    """
    if not tiles:
        raise ValueError("contact_sheet needs at least one tile")
    if scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    first = _as_rgb_uint8(tiles[0])
    th, tw = first.shape[0] * scale, first.shape[1] * scale
    columns = columns or math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / columns)
    sheet = np.full(
        (rows * th + (rows + 1) * pad, columns * tw + (columns + 1) * pad, 3), background, np.uint8
    )
    for i, tile in enumerate(tiles):
        tile = _as_rgb_uint8(tile)
        if tile.shape[:2] != (th, tw):
            tile = np.asarray(Image.fromarray(tile).resize((tw, th), Image.NEAREST))
        r, c = divmod(i, columns)
        y, x = pad + r * (th + pad), pad + c * (tw + pad)
        sheet[y : y + th, x : x + tw] = tile
    if labels:
        img = Image.fromarray(sheet)
        draw = ImageDraw.Draw(img)
        for i, label in enumerate(labels):
            r, c = divmod(i, columns)
            xy = (pad + c * (tw + pad) + 3, pad + r * (th + pad) + 2)
            draw.text(xy, label, fill=(255, 255, 0), stroke_width=1, stroke_fill=(0, 0, 0))
        sheet = np.asarray(img)
    return sheet


def save_contact_sheet(path: str | os.PathLike[str], tiles: Sequence[np.ndarray], **kwargs) -> None:
    """:func:`contact_sheet` written atomically to ``path`` (PNG)."""
    write_image(path, contact_sheet(tiles, **kwargs))
