"""The fast :func:`wmi.masks.freeform` draws exactly the masks of the first implementation.

Training reproducibility depends on it: the same generator must give the same hole, bit for
bit, and leave the generator in the same state. ``_reference`` is the implementation before
the speed-up (scalar draws, 255 strokes, numpy flips and OR), kept here as the oracle.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from wmi.masks import freeform
from wmi.masks.generators import (
    FREEFORM_ANGLE_RANGE,
    FREEFORM_MAX_STROKES,
    FREEFORM_MAX_VERTICES,
    FREEFORM_MAX_WIDTH,
    FREEFORM_MEAN_ANGLE,
    FREEFORM_MIN_STROKES,
    FREEFORM_MIN_VERTICES,
    FREEFORM_MIN_WIDTH,
)


def _clip(value: float, lo: float, hi: float) -> float:
    return min(max(value, lo), hi)


def _box(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    bh, bw = height // 2, width // 2
    top = int(rng.integers(0, height - bh + 1))
    left = int(rng.integers(0, width - bw + 1))
    dh = int(rng.integers(0, height // 16 + 1))
    dw = int(rng.integers(0, width // 16 + 1))
    hole = np.zeros((height, width), bool)
    hole[top + dh : top + bh - dh, left + dw : left + bw - dw] = True
    return hole


def _reference(height: int, width: int, rng: np.random.Generator, training: bool) -> np.ndarray:
    canvas = np.zeros((height, width), np.uint8)
    radius = math.sqrt(height * height + width * width) / 8
    for _ in range(int(rng.integers(FREEFORM_MIN_STROKES, FREEFORM_MAX_STROKES + 1))):
        n_vertices = int(rng.integers(FREEFORM_MIN_VERTICES, FREEFORM_MAX_VERTICES + 1))
        angle_min = FREEFORM_MEAN_ANGLE - rng.uniform(0, FREEFORM_ANGLE_RANGE)
        angle_max = FREEFORM_MEAN_ANGLE + rng.uniform(0, FREEFORM_ANGLE_RANGE)
        angles = [
            2 * math.pi - rng.uniform(angle_min, angle_max)
            if i % 2 == 0
            else rng.uniform(angle_min, angle_max)
            for i in range(n_vertices)
        ]
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        vertices = [(x, y)]
        for angle in angles:
            step = _clip(rng.normal(radius, radius / 2), 0, 2 * radius)
            x = int(_clip(x + step * math.cos(angle), 0, width))
            y = int(_clip(y + step * math.sin(angle), 0, height))
            vertices.append((x, y))
        brush = int(rng.uniform(FREEFORM_MIN_WIDTH, FREEFORM_MAX_WIDTH))
        cv2.polylines(canvas, [np.array(vertices, np.int32)], False, 255, brush - 1)
        for vertex in vertices:
            cv2.circle(canvas, vertex, brush // 2, 255, -1)
    hole = canvas > 0
    if rng.normal() > 0:
        hole = hole[:, ::-1]
    if rng.normal() > 0:
        hole = hole[::-1]
    if training:
        hole = hole | _box(height, width, rng)
    return np.ascontiguousarray(hole)


@pytest.mark.parametrize(
    ("height", "width", "training"),
    [(256, 256, True), (256, 256, False), (64, 96, True), (97, 33, False)],
)
def test_freeform_is_bit_identical_to_the_reference(height: int, width: int, training: bool):
    for seed in range(400):
        ours_rng = np.random.default_rng([seed, 3])
        ref_rng = np.random.default_rng([seed, 3])
        ours = freeform(height, width, ours_rng, training=training)
        ref = _reference(height, width, ref_rng, training)
        assert ours.dtype == bool and ours.shape == (height, width)
        assert ours.flags.c_contiguous
        np.testing.assert_array_equal(ours, ref, err_msg=f"seed {seed}")
        # the generator is left in the same state: later draws (crops, flips) do not move
        assert ours_rng.random() == ref_rng.random()
