"""Seeded hole masks: the paper's centre box and DeepFill v2 free-form strokes, NVIDIA-style
irregular test masks in hole-ratio buckets, and LaMa's thin/medium/thick presets.

Every generator returns a boolean ``(H, W)`` array where True marks the hole
(docs/paper.md#masks-and-their-convention:
on disk that is a white pixel). Randomness comes only from the ``numpy.random.Generator``
passed in; :func:`rng_for` derives one generator per ``(seed, index)``, so a mask set is the
same however it is split between worker processes::

    from wmi.masks import generate, rng_for
    hole = generate("freeform", 256, 256, rng_for(seed=0, index=12))  # == masks/000012.png

Hole ratios are grouped into the buckets of NVIDIA's irregular mask set (Liu et al., 2018):
``(0, 10 %]`` is "0-10%", ``(10, 20 %]`` is "10-20%", ..., ``(50, 60 %]`` is "50-60%", and
anything larger is ">60%" (:func:`hole_ratio_bucket`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from wmi.errors import WmiError
from wmi.kinds import MASK_KINDS, MIN_MASK_SIDE, MaskKind
from wmi.registry import load

#: Hole-ratio bucket labels in report order; the last one collects ratios above 60 %.
BUCKET_LABELS = ("0-10%", "10-20%", "20-30%", "30-40%", "40-50%", "50-60%", ">60%")
#: The six buckets of NVIDIA's irregular test set (all labels but ">60%").
IRREGULAR_BUCKETS = BUCKET_LABELS[:6]
MIN_SIZE = MIN_MASK_SIDE
#: Default number of attempts of the rejection samplers before they give up.
MAX_TRIES = 100

# DeepFill v2 ``brush_stroke_mask`` (Yu et al., ICCV 2019), docs/paper.md#masks-to-generate.
FREEFORM_MIN_STROKES, FREEFORM_MAX_STROKES = 1, 3
FREEFORM_MIN_VERTICES, FREEFORM_MAX_VERTICES = 4, 11
FREEFORM_MEAN_ANGLE = 2 * math.pi / 5
FREEFORM_ANGLE_RANGE = 2 * math.pi / 15
FREEFORM_MIN_WIDTH, FREEFORM_MAX_WIDTH = 12, 40
#: DeepFill's images are 256²: on larger ones the brush widths grow with the diagonal (the
#: stroke lengths already do), so a 1600x1200 photo gets the hole ratios of a 256² crop.
FREEFORM_REFERENCE_SIDE = 256

# LaMa's ``configs/data_gen/random_{thin,medium,thick}_256.yaml`` (Suvorov et al., WACV 2022):
# irregular strokes, or (with probability box_proba / (1 + box_proba)) random rectangles;
# masks covering more than half of the image are dropped (``max_tamper_area: 0.5``).
LAMA_PRESETS: dict[str, dict[str, Any]] = {
    "thin": {
        "strokes": {
            "min_times": 4,
            "max_times": 50,
            "max_width": 10,
            "max_angle": 4,
            "max_len": 40,
        },
        "box_proba": 0.0,
        "boxes": None,
    },
    "medium": {
        "strokes": {
            "min_times": 4,
            "max_times": 5,
            "max_width": 50,
            "max_angle": 4,
            "max_len": 100,
        },
        "box_proba": 0.3,
        "boxes": {"margin": 0, "min_size": 10, "max_size": 50, "min_times": 1, "max_times": 5},
    },
    "thick": {
        "strokes": {
            "min_times": 1,
            "max_times": 5,
            "max_width": 100,
            "max_angle": 4,
            "max_len": 200,
        },
        "box_proba": 0.3,
        "boxes": {"margin": 10, "min_size": 30, "max_size": 150, "min_times": 1, "max_times": 3},
    },
}
LAMA_MAX_HOLE_RATIO = 0.5


def rng_for(seed: int, index: int) -> np.random.Generator:
    """The generator of mask number ``index`` in a set made with ``seed`` (both >= 0)."""
    return np.random.default_rng([seed, index])


def hole_ratio(hole: np.ndarray) -> float:
    """Fraction of hole pixels of a boolean ``(H, W)`` hole array, in [0, 1]."""
    return np.count_nonzero(hole) / hole.size


def touches_border(hole: np.ndarray) -> bool:
    """True if any hole pixel lies in the first or last row or column."""
    return bool(hole[0].any() or hole[-1].any() or hole[:, 0].any() or hole[:, -1].any())


def hole_ratio_bucket(ratio: float) -> str:
    """The bucket label of a hole ratio in [0, 1].

    Buckets are closed on the right, as in NVIDIA's set: 0.1 is "0-10%", 0.1001 is "10-20%",
    0.6 is "50-60%" and anything above is ">60%". A ratio of 0 (no hole) counts as "0-10%".

    Raises:
        ValueError: ``ratio`` is not a number in [0, 1].
    """
    if not 0.0 <= ratio <= 1.0:  # also rejects NaN
        raise ValueError(f"hole ratio must be in [0, 1], got {ratio!r}")
    # Compare with k / 10 rather than ceil(10 * ratio): count / size and k / 10 are both the
    # correctly rounded value of the same fraction when they are equal, 10 * ratio is not.
    for k, label in enumerate(IRREGULAR_BUCKETS, start=1):
        if ratio <= k / 10:
            return label
    return BUCKET_LABELS[-1]


def _bucket_index(bucket: str | int) -> int:
    if isinstance(bucket, str):
        if bucket not in IRREGULAR_BUCKETS:
            raise WmiError(
                f"unknown hole-ratio bucket {bucket!r}; choose from {', '.join(IRREGULAR_BUCKETS)}"
            )
        return IRREGULAR_BUCKETS.index(bucket)
    if not 0 <= bucket < len(IRREGULAR_BUCKETS):
        raise WmiError(f"hole-ratio bucket index must be 0-5, got {bucket}")
    return int(bucket)


def _clip(value: float, lo: float, hi: float) -> float:
    """``np.clip`` for one number, without numpy's per-call overhead."""
    return min(max(value, lo), hi)


def _check_size(height: int, width: int) -> None:
    if height < MIN_SIZE or width < MIN_SIZE:
        raise WmiError(f"mask size must be at least {MIN_SIZE}x{MIN_SIZE}, got {height}x{width}")


# --------------------------------------------------------------------------------- the kinds


def center(height: int, width: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """The paper's centre mask: a box of half the height and width in the middle.

    128x128 at 256x256 (rows and columns 64..191). ``rng`` is accepted for a uniform
    signature and not used.

    Returns:
        bool ``(height, width)``, True = hole.
    """
    bh, bw = height // 2, width // 2
    top, left = (height - bh) // 2, (width - bw) // 2
    hole = np.zeros((height, width), bool)
    hole[top : top + bh, left : left + bw] = True
    return hole


def box(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A random box, DeepFill's ``random_bbox`` + ``bbox2mask``.

    A ``height/2 x width/2`` box placed uniformly (it may touch the border), then shrunk by
    ``dh`` rows at the top and at the bottom and ``dw`` columns at the left and at the right,
    ``dh`` uniform in ``0..height//16``, ``dw`` in ``0..width//16``: at 256² a box of at most
    128x128 shrunk by up to 16 px per side.

    Returns:
        bool ``(height, width)``, True = hole.
    """
    hole = np.zeros((height, width), bool)
    hole[_box_slices(height, width, rng)] = True
    return hole


def _box_slices(height: int, width: int, rng: np.random.Generator) -> tuple[slice, slice]:
    """The rows and columns of :func:`box`'s hole (the same draws from ``rng``)."""
    bh, bw = height // 2, width // 2
    top = int(rng.integers(0, height - bh + 1))
    left = int(rng.integers(0, width - bw + 1))
    dh = int(rng.integers(0, height // 16 + 1))
    dw = int(rng.integers(0, width // 16 + 1))
    return slice(top + dh, top + bh - dh), slice(left + dw, left + bw - dw)


def freeform(
    height: int, width: int, rng: np.random.Generator, *, training: bool = False
) -> np.ndarray:
    """DeepFill v2's free-form brush strokes (``brush_stroke_mask``),
    docs/paper.md#masks-to-generate.

    1-3 strokes; each has 4-11 vertices joined by segments whose angles alternate around
    ``2π/5`` (even vertices turn by ``2π`` minus the angle), angle range ``2π/15``; step
    length ``clip(N(r, r/2), 0, 2r)`` with ``r = sqrt(H² + W²)/8``; brush width
    ``int(uniform(12, 40) · s)`` pixels with ``s = max(1, sqrt(H² + W²) / sqrt(2·256²))``: as
    in DeepFill up to 256² (its size), and growing with the image beyond, so that the hole
    ratios of a big photograph are those of a 256² crop (DeepFill's fixed widths cover a few
    percent of a 1600x1200 photo); each stroke is a thick polyline plus a filled disc of radius
    ``width//2`` at every vertex. The mask is then flipped left-right and up-down, each with
    probability 1/2.

    Differences from the TensorFlow original, none of which changes the distribution much:
    drawing uses OpenCV instead of PIL, with lines ``width - 1`` thick (OpenCV draws about a
    pixel wider; so the stroke areas agree within 1 % on average); the step deviation is
    ``r/2`` (the original has ``r//2``); the start vertex uses the right axis on non-square
    images (the original swaps them); the flips are applied (the original discards them).

    Args:
        height, width: mask size.
        rng: the only source of randomness.
        training: OR the strokes with a random :func:`box`, DeepFill v2's training mask.

    Returns:
        bool ``(height, width)``, True = hole.
    """
    # Drawn as 0/1 bytes, viewed as bool at the end. The random draws are those of DeepFill's
    # scalar loop, in the same order (a vector of n draws equals n single draws).
    canvas = np.zeros((height, width), np.uint8)
    radius = math.sqrt(height * height + width * width) / 8
    brush_scale = max(1.0, 8 * radius / (math.sqrt(2) * FREEFORM_REFERENCE_SIDE))
    two_pi, step_max = 2 * math.pi, 2 * radius
    for _ in range(int(rng.integers(FREEFORM_MIN_STROKES, FREEFORM_MAX_STROKES + 1))):
        n_vertices = int(rng.integers(FREEFORM_MIN_VERTICES, FREEFORM_MAX_VERTICES + 1))
        angle_min = FREEFORM_MEAN_ANGLE - rng.uniform(0, FREEFORM_ANGLE_RANGE)
        angle_max = FREEFORM_MEAN_ANGLE + rng.uniform(0, FREEFORM_ANGLE_RANGE)
        angles = rng.uniform(angle_min, angle_max, n_vertices).tolist()
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        vertices = [(x, y)]
        steps = rng.normal(radius, radius / 2, n_vertices).tolist()
        for i, (angle, step) in enumerate(zip(angles, steps, strict=True)):
            if i % 2 == 0:
                angle = two_pi - angle
            step = min(max(step, 0), step_max)
            x = int(min(max(x + step * math.cos(angle), 0), width))
            y = int(min(max(y + step * math.sin(angle), 0), height))
            vertices.append((x, y))
        brush = int(rng.uniform(FREEFORM_MIN_WIDTH, FREEFORM_MAX_WIDTH) * brush_scale)
        # OpenCV's thick lines are about a pixel wider than PIL's: width - 1 matches the area.
        cv2.polylines(canvas, [np.array(vertices, np.int32)], False, 1, brush - 1)
        radius_px = brush // 2
        for vertex in vertices:
            cv2.circle(canvas, vertex, radius_px, 1, -1)
    left_right, up_down = rng.normal() > 0, rng.normal() > 0
    if left_right or up_down:
        canvas = cv2.flip(canvas, -1 if left_right and up_down else int(left_right))
    if training:
        canvas[_box_slices(height, width, rng)] = 1
    return canvas.view(bool)


def irregular(
    height: int,
    width: int,
    rng: np.random.Generator,
    *,
    bucket: str | int | None = None,
    touches_border: bool | None = None,
    max_tries: int = MAX_TRIES,
) -> np.ndarray:
    """An NVIDIA-style irregular test mask with a hole ratio in a given bucket.

    NVIDIA's set (Liu et al., ECCV 2018) was cut from video occlusion maps, which are not
    reproducible; this draws random-walk strokes of random thickness (``min(H, W)/64`` to
    ``/8``) until the hole reaches a target ratio drawn uniformly inside the bucket (at least
    1 %), then checks bucket and border condition, and starts over if either is missed
    (rejection sampling, at most ``max_tries`` masks). Masks that must not touch the border
    keep their strokes a margin away from it; masks that must touch it start their first
    stroke on it.

    Args:
        height, width: mask size.
        rng: the only source of randomness.
        bucket: a label of :data:`IRREGULAR_BUCKETS` or its index 0-5; None picks one
            uniformly at random.
        touches_border: whether a hole pixel must lie on the image border; None picks
            either with probability 1/2.
        max_tries: attempts before giving up.

    Returns:
        bool ``(height, width)``, True = hole.

    Raises:
        WmiError: no attempt met the bucket and border condition.
    """
    index = int(rng.integers(len(IRREGULAR_BUCKETS))) if bucket is None else _bucket_index(bucket)
    border = bool(rng.integers(2)) if touches_border is None else touches_border
    return _draw_irregular(height, width, rng, index, border, max_tries)


def _draw_irregular(
    height: int, width: int, rng: np.random.Generator, index: int, border: bool, max_tries: int
) -> np.ndarray:
    """:func:`irregular`'s rejection sampling, for bucket number ``index``."""
    lo, hi = index / 10, (index + 1) / 10
    for _ in range(max_tries):
        target = rng.uniform(max(lo, 0.01), hi)
        hole = _grow_strokes(height, width, rng, target, border)
        ratio = hole_ratio(hole)
        if (
            ratio > 0
            and hole_ratio_bucket(ratio) == IRREGULAR_BUCKETS[index]
            and touches_border(hole) == border
        ):
            return hole
    where = "touching" if border else "not touching"
    raise WmiError(
        f"irregular masks: no {IRREGULAR_BUCKETS[index]} hole {where} the border at "
        f"{height}x{width} in {max_tries} tries; use a larger size"
    )


def _grow_strokes(
    height: int, width: int, rng: np.random.Generator, target: float, border: bool
) -> np.ndarray:
    """Random-walk strokes added one segment at a time until ``target`` of the image is hole."""
    canvas = np.zeros((height, width), np.uint8)
    side = min(height, width)
    thick_lo = max(1, round(side / 64))
    thick_hi = max(thick_lo + 1, round(side / 8))
    step_lo, step_hi = max(2.0, side / 32), max(3.0, side / 6)
    needed = math.ceil(target * height * width)
    segments_left = 50 * side  # a bound for targets the border condition makes unreachable
    first = True
    while segments_left > 0:
        thickness = int(rng.integers(thick_lo, thick_hi + 1))
        margin = 0 if border else thickness // 2 + 2
        x_lo, x_hi, y_lo, y_hi = margin, width - 1 - margin, margin, height - 1 - margin
        if border and first:
            edge = int(rng.integers(4))
            along = rng.uniform(0, 1)
            if edge < 2:
                x, y = along * (width - 1), float(0 if edge == 0 else height - 1)
            else:
                x, y = float(0 if edge == 2 else width - 1), along * (height - 1)
            first = False
        else:
            x, y = rng.uniform(x_lo, x_hi), rng.uniform(y_lo, y_hi)
        angle = rng.uniform(0, 2 * math.pi)
        for _ in range(int(rng.integers(3, 13))):
            angle += rng.normal(0, 0.7)
            step = rng.uniform(step_lo, step_hi)
            nx, ny = x + step * math.cos(angle), y + step * math.sin(angle)
            # Bounce off the allowed rectangle instead of sticking to its edge.
            if nx < x_lo or nx > x_hi:
                nx = 2 * (x_lo if nx < x_lo else x_hi) - nx
                angle = math.pi - angle
            if ny < y_lo or ny > y_hi:
                ny = 2 * (y_lo if ny < y_lo else y_hi) - ny
                angle = -angle
            nx, ny = min(max(nx, x_lo), x_hi), min(max(ny, y_lo), y_hi)
            cv2.line(canvas, (round(x), round(y)), (round(nx), round(ny)), 255, thickness)
            x, y = nx, ny
            segments_left -= 1
            if cv2.countNonZero(canvas) >= needed:
                return canvas > 0
    return canvas > 0


def lama(height: int, width: int, rng: np.random.Generator, preset: str) -> np.ndarray:
    """LaMa's random masks, ``preset`` "thin", "medium" or "thick" (:data:`LAMA_PRESETS`).

    Lengths, widths, box sizes and margins are LaMa's at 256 px and scale with
    ``min(H, W) / 256``; stroke and box counts do not. As LaMa's ``MixedMaskGenerator``, a
    mask is either strokes or boxes; as its data generator, a mask covering more than half
    of the image is redrawn (at most :data:`MAX_TRIES` times, then the last draw is kept).

    Returns:
        bool ``(height, width)``, True = hole.
    """
    config = LAMA_PRESETS[preset]
    scale = min(height, width) / 256
    box_share = config["box_proba"] / (1 + config["box_proba"])
    for _ in range(MAX_TRIES):
        if config["boxes"] is not None and rng.uniform() < box_share:
            hole = _lama_boxes(height, width, rng, scale, **config["boxes"])
        else:
            hole = _lama_strokes(height, width, rng, scale, **config["strokes"])
        if hole_ratio(hole) <= LAMA_MAX_HOLE_RATIO:
            break
    return hole


def thin(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """LaMa's ``random_thin`` masks: 4-50 strokes of width 5-14 px at 256² (see :func:`lama`)."""
    return lama(height, width, rng, "thin")


def medium(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """LaMa's ``random_medium`` masks: strokes of width 5-54 px at 256², or 1-5 boxes."""
    return lama(height, width, rng, "medium")


def thick(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """LaMa's ``random_thick`` masks: strokes of width 5-104 px at 256², or 1-3 boxes."""
    return lama(height, width, rng, "thick")


def _scaled(value: float, scale: float) -> int:
    return max(1, round(value * scale))


def _lama_strokes(
    height: int,
    width: int,
    rng: np.random.Generator,
    scale: float,
    *,
    min_times: int,
    max_times: int,
    max_width: int,
    max_angle: int,
    max_len: int,
) -> np.ndarray:
    """LaMa's ``make_random_irregular_mask`` with ``DrawMethod.LINE``."""
    canvas = np.zeros((height, width), np.uint8)
    min_len, min_width = _scaled(10, scale), _scaled(5, scale)
    max_len, max_width = _scaled(max_len, scale), _scaled(max_width, scale)
    for i in range(int(rng.integers(min_times, max_times + 1))):
        x, y = int(rng.integers(width)), int(rng.integers(height))
        for _ in range(1 + int(rng.integers(5))):
            angle = 0.01 + int(rng.integers(max_angle))  # whole radians, as in LaMa
            if i % 2 == 0:
                angle = 2 * math.pi - angle
            length = min_len + int(rng.integers(max_len))
            brush = min_width + int(rng.integers(max_width))
            end_x = int(_clip(x + length * math.sin(angle), 0, width))
            end_y = int(_clip(y + length * math.cos(angle), 0, height))
            cv2.line(canvas, (x, y), (end_x, end_y), 255, brush)
            x, y = end_x, end_y
    return canvas > 0


def _lama_boxes(
    height: int,
    width: int,
    rng: np.random.Generator,
    scale: float,
    *,
    margin: int,
    min_size: int,
    max_size: int,
    min_times: int,
    max_times: int,
) -> np.ndarray:
    """LaMa's ``make_random_rectangle_mask``."""
    hole = np.zeros((height, width), bool)
    margin = round(margin * scale)
    min_size = _scaled(min_size, scale)
    max_size = max(
        min_size + 1, min(_scaled(max_size, scale), height - 2 * margin, width - 2 * margin)
    )
    for _ in range(int(rng.integers(min_times, max_times + 1))):
        box_w = int(rng.integers(min_size, max_size))
        box_h = int(rng.integers(min_size, max_size))
        left = int(rng.integers(margin, max(margin, width - margin - box_w) + 1))
        top = int(rng.integers(margin, max(margin, height - margin - box_h) + 1))
        hole[top : top + box_h, left : left + box_w] = True
    return hole


# ------------------------------------------------------------------------------- dispatching


def generate(
    kind: str,
    height: int,
    width: int,
    rng: np.random.Generator,
    *,
    training: bool = False,
    bucket: str | int | None = None,
    touches_border: bool | None = None,
    max_tries: int = MAX_TRIES,
) -> np.ndarray:
    """One mask of any kind registered in :data:`wmi.kinds.MASK_KINDS`.

    Calls the kind's generator as ``generator(height, width, rng, **options)``, plus
    ``training=`` for a kind that has a training variant and ``bucket=``, ``touches_border=``,
    ``max_tries=`` for a bucketed kind (which meets its border condition itself).

    Args:
        kind: a registered name: "center", "box", "freeform", "irregular", "thin", "medium",
            "thick", or one registered later (docs/masks.md, "Adding a mask kind").
        height, width: mask size, each at least :data:`MIN_SIZE`.
        rng: the only source of randomness (see :func:`rng_for`).
        training: kinds with ``training=True`` only (freeform): DeepFill v2's training mask
            (strokes OR a random box).
        bucket: bucketed kinds only (irregular): the hole-ratio bucket (label or index 0-5).
        touches_border: True/False: redraw until a hole pixel does/does not lie on the border
            (at most ``max_tries`` draws); None: no condition (irregular: either, at random).
        max_tries: bound of the rejection sampling.

    Returns:
        bool ``(height, width)``, True = hole.

    Raises:
        WmiError: unknown kind, too small a size, an option the kind does not take, or a
            border condition that ``max_tries`` draws did not meet.
    """
    entry = MASK_KINDS[kind]
    _check_size(height, width)
    check_kind_options(entry, training=training, bucket=bucket is not None)
    generator = load(entry.generator)
    if entry.bucketed:
        options = {"bucket": bucket, "touches_border": touches_border, "max_tries": max_tries}
        hole = generator(height, width, rng, **entry.options, **options)
        return _checked(kind, hole, height, width)
    options = {**entry.options, "training": training} if entry.training else entry.options

    def draw() -> np.ndarray:
        return _checked(kind, generator(height, width, rng, **options), height, width)

    return _redraw(f"{kind} masks", draw, touches_border, max_tries, f"{height}x{width}")


def check_kind_options(entry: MaskKind, *, training: bool, bucket: bool) -> None:
    """Refuse ``training`` or a hole-ratio bucket for a kind that does not take it.

    Raises:
        WmiError: naming the kinds that do take it.
    """
    if training and not entry.training:
        takes = _kinds_with("training")
        raise WmiError(f"the training variant exists for {takes} masks only, not {entry.name}")
    if bucket and not entry.bucketed:
        takes = _kinds_with("bucketed")
        raise WmiError(f"hole-ratio buckets exist for {takes} masks only, not {entry.name}")


def _kinds_with(fact: str) -> str:
    """The registered kinds with a true ``fact``, "freeform" or "a or b"."""
    return " or ".join(e.name for e in MASK_KINDS.entries() if getattr(e, fact)) or "no"


def _redraw(
    what: str, draw: Callable[[], np.ndarray], border: bool | None, max_tries: int, size: str
) -> np.ndarray:
    """``draw()`` until the hole touches (``border`` True) or keeps off (False) the border."""
    for _ in range(max_tries):
        hole = draw()
        if border is None or touches_border(hole) == border:
            return hole
    where = "touches" if border else "keeps off"
    raise WmiError(f"{what}: none of {max_tries} draws at {size} {where} the image border")


def _checked(kind: str, hole: Any, height: int, width: int) -> np.ndarray:
    """A generator's result, refused unless it is a bool ``(height, width)`` array."""
    if not (isinstance(hole, np.ndarray) and hole.dtype == bool and hole.shape == (height, width)):
        got = f"{hole.dtype} {hole.shape}" if isinstance(hole, np.ndarray) else type(hole).__name__
        raise WmiError(
            f"mask kind {kind!r}: its generator returned {got}, not a bool {(height, width)} array"
        )
    return hole
