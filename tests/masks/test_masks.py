"""wmi.masks: the generators, hole-ratio buckets, sets and summaries.

The free-form and LaMa distributions are checked against independent transcriptions of the
published reference code (DeepFill v2's ``brush_stroke_mask`` drawn with PIL, LaMa's
``make_random_irregular_mask``/``make_random_rectangle_mask``), driven by numpy's legacy
``RandomState`` as the originals are, so only the distributions can agree, not the pixels.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw

from wmi.errors import WmiError
from wmi.io import read_mask
from wmi.kinds import MASK_KINDS
from wmi.masks import (
    BUCKET_LABELS,
    IRREGULAR_BUCKETS,
    MaskSetSpec,
    box,
    center,
    freeform,
    generate,
    hole_ratio,
    hole_ratio_bucket,
    irregular,
    irregular_plan,
    mask_set_stats,
    rng_for,
    touches_border,
    write_mask_files,
)
from wmi.masks import generators as masks

# ------------------------------------------------------------------------ independent refs


def deepfill_reference(height: int, width: int, rs: np.random.RandomState) -> np.ndarray:
    """DeepFill v2 ``brush_stroke_mask`` as published (PIL drawing, ``r // 2``, no flips)."""
    mean_angle, angle_range = 2 * math.pi / 5, 2 * math.pi / 15
    average_radius = math.sqrt(height * height + width * width) / 8
    mask = Image.new("L", (width, height), 0)
    for _ in range(rs.randint(1, 4)):
        num_vertex = rs.randint(4, 12)
        angle_min = mean_angle - rs.uniform(0, angle_range)
        angle_max = mean_angle + rs.uniform(0, angle_range)
        angles = [
            2 * math.pi - rs.uniform(angle_min, angle_max)
            if i % 2 == 0
            else rs.uniform(angle_min, angle_max)
            for i in range(num_vertex)
        ]
        vertex = [(int(rs.randint(0, width)), int(rs.randint(0, height)))]
        for i in range(num_vertex):
            r = np.clip(
                rs.normal(loc=average_radius, scale=average_radius // 2), 0, 2 * average_radius
            )
            new_x = np.clip(vertex[-1][0] + r * math.cos(angles[i]), 0, width)
            new_y = np.clip(vertex[-1][1] + r * math.sin(angles[i]), 0, height)
            vertex.append((int(new_x), int(new_y)))
        draw = ImageDraw.Draw(mask)
        w = int(rs.uniform(12, 40))
        draw.line(vertex, fill=1, width=w)
        for v in vertex:
            draw.ellipse((v[0] - w // 2, v[1] - w // 2, v[0] + w // 2, v[1] + w // 2), fill=1)
    return np.asarray(mask) > 0


LAMA_REFERENCE = {  # configs/data_gen/random_*_256.yaml
    "thin": ({"min_times": 4, "max_times": 50, "max_width": 10, "max_len": 40}, 0.0, None),
    "medium": (
        {"min_times": 4, "max_times": 5, "max_width": 50, "max_len": 100},
        0.3,
        {"margin": 0, "bbox_min_size": 10, "bbox_max_size": 50, "min_times": 1, "max_times": 5},
    ),
    "thick": (
        {"min_times": 1, "max_times": 5, "max_width": 100, "max_len": 200},
        0.3,
        {"margin": 10, "bbox_min_size": 30, "bbox_max_size": 150, "min_times": 1, "max_times": 3},
    ),
}


def lama_reference(preset: str, shape: tuple[int, int], rs: np.random.RandomState) -> np.ndarray:
    """LaMa's MixedMaskGenerator with a preset, masks over half the image dropped."""
    strokes, box_proba, boxes = LAMA_REFERENCE[preset]
    height, width = shape
    while True:
        mask = np.zeros((height, width), np.float32)
        probas = np.array([1.0, box_proba] if box_proba else [1.0])
        kind = rs.choice(len(probas), p=probas / probas.sum())
        if kind == 0:
            for i in range(rs.randint(strokes["min_times"], strokes["max_times"] + 1)):
                start_x, start_y = rs.randint(width), rs.randint(height)
                for _ in range(1 + rs.randint(5)):
                    angle = 0.01 + rs.randint(4)
                    if i % 2 == 0:
                        angle = 2 * 3.1415926 - angle
                    length = 10 + rs.randint(strokes["max_len"])
                    brush_w = 5 + rs.randint(strokes["max_width"])
                    end_x = np.clip(int(start_x + length * np.sin(angle)), 0, width)
                    end_y = np.clip(int(start_y + length * np.cos(angle)), 0, height)
                    cv2.line(
                        mask, (int(start_x), int(start_y)), (int(end_x), int(end_y)), 1.0, brush_w
                    )
                    start_x, start_y = end_x, end_y
        else:
            margin = boxes["margin"]
            max_size = min(boxes["bbox_max_size"], height - margin * 2, width - margin * 2)
            for _ in range(rs.randint(boxes["min_times"], boxes["max_times"] + 1)):
                box_width = rs.randint(boxes["bbox_min_size"], max_size)
                box_height = rs.randint(boxes["bbox_min_size"], max_size)
                start_x = rs.randint(margin, width - margin - box_width + 1)
                start_y = rs.randint(margin, height - margin - box_height + 1)
                mask[start_y : start_y + box_height, start_x : start_x + box_width] = 1
        if mask.mean() <= 0.5:  # LaMa's max_tamper_area
            return mask > 0


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic."""
    grid = np.union1d(a, b)
    fa = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    fb = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    return float(np.abs(fa - fb).max())


def ratios_of(kind: str, n: int, seed: int, size: int = 256, **kw) -> np.ndarray:
    return np.array(
        [hole_ratio(generate(kind, size, size, rng_for(seed, i), **kw)) for i in range(n)]
    )


# ----------------------------------------------------------------------------------- buckets


def test_bucket_labels() -> None:
    assert BUCKET_LABELS == ("0-10%", "10-20%", "20-30%", "30-40%", "40-50%", "50-60%", ">60%")
    assert BUCKET_LABELS[:6] == IRREGULAR_BUCKETS


@pytest.mark.parametrize("size", [100, 250, 256 * 256, 48 * 80])
def test_bucket_of_every_pixel_count_matches_integer_arithmetic(size: int) -> None:
    step = max(1, size // 2000)
    for count in [
        *range(0, size + 1, step),
        *(size * k // 10 + d for k in range(11) for d in (0, 1)),
    ]:
        if count > size:
            continue
        # right-closed buckets: smallest k with count/size <= k/10, i.e. 10*count <= k*size
        k = max(1, -(-10 * count // size))
        expected = BUCKET_LABELS[k - 1] if k <= 6 else ">60%"
        assert hole_ratio_bucket(count / size) == expected, (count, size)


def test_bucket_edges_and_bad_ratios() -> None:
    assert hole_ratio_bucket(0.0) == "0-10%"
    assert hole_ratio_bucket(0.1) == "0-10%"
    assert hole_ratio_bucket(float(Fraction(3, 10))) == "20-30%"
    assert hole_ratio_bucket(0.6) == "50-60%"
    assert hole_ratio_bucket(0.600001) == ">60%"
    assert hole_ratio_bucket(1.0) == ">60%"
    for bad in (-0.01, 1.01, float("nan")):
        with pytest.raises(ValueError):
            hole_ratio_bucket(bad)


# ------------------------------------------------------------------------------ centre, box


def test_center_is_the_papers_128_box_at_256() -> None:
    hole = center(256, 256)
    rows, cols = np.nonzero(hole)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (64, 191, 64, 191)
    assert hole.sum() == 128 * 128
    odd = center(33, 47)
    rows, cols = np.nonzero(odd)
    assert odd.sum() == 16 * 23
    assert abs(rows.min() - (32 - rows.max())) <= 1 and abs(cols.min() - (46 - cols.max())) <= 1


def test_box_is_a_shrunk_half_size_rectangle() -> None:
    heights, widths = set(), set()
    for i in range(400):
        hole = box(256, 256, rng_for(3, i))
        rows, cols = np.nonzero(hole)
        h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert hole.sum() == h * w  # one solid axis-aligned rectangle
        assert h % 2 == 0 and 96 <= h <= 128 and w % 2 == 0 and 96 <= w <= 128
        heights.add(h)
        widths.add(w)
    assert {96, 128} <= heights and {96, 128} <= widths  # shrink 0 and 16 px per side both occur


# ---------------------------------------------------------------------------------- freeform


def test_freeform_hole_ratio_matches_the_deepfill_reference() -> None:
    n = 1500
    ours = ratios_of("freeform", n, seed=11)
    rs = np.random.RandomState(12345)
    ref = np.array([hole_ratio(deepfill_reference(256, 256, rs)) for _ in range(n)])
    # Standard error of a difference of means here is about 0.003; of a quantile about 0.005.
    assert abs(ours.mean() - ref.mean()) < 0.008, (ours.mean(), ref.mean())
    for q in (0.1, 0.5, 0.9):
        assert abs(np.quantile(ours, q) - np.quantile(ref, q)) < 0.015, q
    assert ks_distance(ours, ref) < 0.06  # 0.1 % critical value for n = m = 1500 is 0.071
    assert ours.min() > 0 and ours.max() < 0.8


def test_freeform_mean_is_below_the_no_overlap_bound() -> None:
    # Union <= sum of parts: E[strokes] * (E[vertices] * (r + 2)(E[w] + 2)
    # + E[vertices + 1] * E[(2 * (w // 2) + 1)^2]), the pixel bounding boxes of segments and discs.
    r = math.hypot(256, 256) / 8
    widths = np.arange(12, 40)  # int(uniform(12, 40))
    e_strokes, e_vertices = 2.0, 7.5
    e_disc = np.mean((2 * (widths // 2) + 1) ** 2)
    bound = e_strokes * (e_vertices * (r + 2) * (widths.mean() + 2) + (e_vertices + 1) * e_disc)
    ours = ratios_of("freeform", 300, seed=5)
    assert ours.mean() < bound / 256**2


def test_freeform_has_at_most_three_strokes() -> None:
    for i in range(100):
        hole = freeform(256, 256, rng_for(2, i)).astype(np.uint8)
        n_labels, _ = cv2.connectedComponents(hole, connectivity=8)
        assert 2 <= n_labels <= 4  # background + 1..3 connected strokes


def test_freeform_training_variant_is_strokes_or_a_box() -> None:
    for i in range(20):
        trained = freeform(128, 96, rng_for(4, i), training=True)
        rng = rng_for(4, i)
        strokes = freeform(128, 96, rng)
        assert np.array_equal(trained, strokes | box(128, 96, rng))
        assert hole_ratio(trained) >= hole_ratio(strokes)


def test_freeform_non_square_shape() -> None:
    hole = freeform(64, 160, rng_for(0, 0))
    assert hole.shape == (64, 160) and hole.dtype == bool and hole.flags.c_contiguous


# ---------------------------------------------------------------------------- LaMa presets


@pytest.mark.parametrize(("preset", "n"), [("thin", 250), ("medium", 500), ("thick", 500)])
def test_lama_presets_match_the_lama_reference(preset: str, n: int) -> None:
    ours = ratios_of(preset, n, seed=21)
    rs = np.random.RandomState(777)
    ref = np.array([hole_ratio(lama_reference(preset, (256, 256), rs)) for _ in range(n)])
    assert ours.max() <= 0.5 and ours.min() > 0
    assert abs(ours.mean() - ref.mean()) < 0.03, (ours.mean(), ref.mean())
    assert ks_distance(ours, ref) < 0.13  # 0.1 % critical value for n = m = 250


def test_lama_presets_scale_with_size() -> None:
    # Same draws at 512 with lengths and widths doubled: ratios stay close to those at 256.
    small, large = ratios_of("medium", 150, 8, size=128), ratios_of("medium", 150, 8, size=512)
    assert abs(small.mean() - large.mean()) < 0.06


# --------------------------------------------------------------------------------- irregular


@pytest.mark.parametrize("size", [32, 256])
def test_irregular_meets_bucket_and_border(size: int) -> None:
    for b, label in enumerate(IRREGULAR_BUCKETS):
        for border in (True, False):
            for i in range(3):
                hole = irregular(
                    size, size, rng_for(b, 10 * i + border), bucket=label, touches_border=border
                )
                assert hole_ratio_bucket(hole_ratio(hole)) == label
                assert hole_ratio(hole) > 0
                assert touches_border(hole) is border
    by_index = irregular(64, 64, rng_for(0, 0), bucket=2)
    assert hole_ratio_bucket(hole_ratio(by_index)) == "20-30%"


def test_irregular_random_bucket_covers_all_buckets() -> None:
    seen = {hole_ratio_bucket(hole_ratio(irregular(64, 64, rng_for(9, i)))) for i in range(120)}
    assert seen == set(IRREGULAR_BUCKETS)


def test_irregular_gives_up_with_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        masks, "_grow_strokes", lambda h, w, rng, target, border: np.zeros((h, w), bool)
    )
    with pytest.raises(
        WmiError, match=r"no 50-60% hole not touching the border at 64x64 in 7 tries"
    ):
        irregular(64, 64, rng_for(0, 0), bucket="50-60%", touches_border=False, max_tries=7)


def test_irregular_rejects_unknown_bucket() -> None:
    with pytest.raises(WmiError, match="unknown hole-ratio bucket"):
        irregular(64, 64, rng_for(0, 0), bucket="60-70%")
    with pytest.raises(WmiError, match="0-5"):
        irregular(64, 64, rng_for(0, 0), bucket=6)


def test_irregular_plan_equal_counts() -> None:
    plan = irregular_plan(48)
    for label in IRREGULAR_BUCKETS:
        assert plan.count((label, True)) == 4 and plan.count((label, False)) == 4
    assert [b for b, _ in plan] == sorted([b for b, _ in plan], key=IRREGULAR_BUCKETS.index)
    assert all(border is False for _, border in irregular_plan(18, touches_border=False))
    for bad, border in ((18, None), (0, None), (10, True)):
        with pytest.raises(WmiError, match="multiple of"):
            irregular_plan(bad, border)


# ------------------------------------------------------------------------------ generate()


@pytest.mark.parametrize("kind", MASK_KINDS.names())
def test_every_kind_is_deterministic_per_seed_and_index(kind: str) -> None:
    a = generate(kind, 48, 64, rng_for(5, 3))
    b = generate(kind, 48, 64, rng_for(5, 3))
    assert a.shape == (48, 64) and a.dtype == bool
    assert np.array_equal(a, b)
    if kind != "center":
        others = [generate(kind, 48, 64, rng_for(5, i)) for i in range(4, 8)]
        assert any(not np.array_equal(a, o) for o in others)


def test_border_condition_by_redrawing() -> None:
    for i in range(10):
        assert touches_border(generate("freeform", 256, 256, rng_for(1, i), touches_border=True))
        assert not touches_border(
            generate("freeform", 256, 256, rng_for(1, i), touches_border=False)
        )
    with pytest.raises(WmiError, match="center masks: none of 5 draws"):
        generate("center", 64, 64, rng_for(0, 0), touches_border=True, max_tries=5)


def test_generate_rejects_bad_arguments() -> None:
    rng = rng_for(0, 0)
    with pytest.raises(WmiError, match="unknown mask kind 'blob'"):
        generate("blob", 64, 64, rng)
    with pytest.raises(WmiError, match="at least 16x16, got 15x64"):
        generate("freeform", 15, 64, rng)
    with pytest.raises(WmiError, match="training variant"):
        generate("box", 64, 64, rng, training=True)
    with pytest.raises(WmiError, match="irregular masks only"):
        generate("thin", 64, 64, rng, bucket="0-10%")


# --------------------------------------------------------------------------- sets and files


def test_spec_validation() -> None:
    ok = MaskSetSpec("irregular", 64, 64, count=24, buckets=True)
    ok.validate()
    bad = [
        (MaskSetSpec("freeform", 64, 64, count=0), "--count must be at least 1"),
        (MaskSetSpec("freeform", 8, 64, count=1), "at least 16, got 8x64"),
        (MaskSetSpec("spots", 64, 64, count=1), "unknown mask kind"),
        (MaskSetSpec("box", 64, 64, count=1, training=True), "--training applies"),
        (MaskSetSpec("box", 64, 64, count=12, buckets=True), "--buckets applies"),
        (MaskSetSpec("irregular", 64, 64, count=13, buckets=True), "multiple of 12"),
        (MaskSetSpec("center", 64, 64, count=1, touches_border=True), "never touch"),
        (MaskSetSpec("box", 64, 64, count=1, seed=-1), "--seed"),
    ]
    for spec, message in bad:
        with pytest.raises(WmiError, match=message):
            spec.validate()
    assert MaskSetSpec("freeform", 64, 64, 1, training=True).label == "freeform+box"


def test_written_files_round_trip_with_white_as_hole(tmp_path: Path) -> None:
    spec = MaskSetSpec("freeform", 40, 56, count=6, seed=3)
    records = write_mask_files(spec, tmp_path, range(6))
    for record in records:
        path = tmp_path / f"{record.index:06d}.png"
        expected = spec.make(record.index)
        with Image.open(path) as img:
            assert img.mode == "L" and img.size == (56, 40)
            pixels = np.asarray(img)
        assert set(np.unique(pixels)) <= {0, 255}
        assert np.array_equal(pixels == 255, expected)  # white = hole
        assert np.array_equal(read_mask(path), expected)
        assert record.hole_ratio == hole_ratio(expected)
        assert record.touches_border == touches_border(expected)
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_mask_set_stats_counts_and_extremes() -> None:
    ratios = [0.0, 0.05, 0.1, 0.15, 0.55, 0.6, 0.7, 1.0]
    s = mask_set_stats(ratios, [True, False] * 4, [(4, 4)] * 7 + [(8, 2)])
    assert s["count"] == 8
    assert s["buckets"] == {
        "0-10%": 3, "10-20%": 1, "20-30%": 0, "30-40%": 0, "40-50%": 0, "50-60%": 2, ">60%": 2,
    }  # fmt: skip
    assert s["hole_ratio"] == {"mean": pytest.approx(sum(ratios) / 8), "min": 0.0, "max": 1.0}
    assert s["touches_border"] == 4
    assert s["sizes"] == {"4x4": 7, "8x2": 1}
    assert mask_set_stats([], [])["hole_ratio"]["mean"] is None


def test_freeform_masks_for_big_photos_have_the_hole_ratios_of_small_ones(tmp_path: Path) -> None:
    # DeepFill's brushes are 12-40 px wide: on 1600x1200 photos they covered 0.6-6.9 % and
    # every mask landed in the 0-10 % bucket; they now grow with the image beyond 256²
    from wmi.masks import MaskSetSpec, write_mask_set
    from wmi.masks.generators import hole_ratio_bucket
    from wmi.masks.targets import MaskTarget

    def ratios(height: int, width: int) -> np.ndarray:
        targets = [MaskTarget(f"p{i:02d}", height, width) for i in range(24)]
        out = tmp_path / f"{width}x{height}"
        write_mask_set(out, MaskSetSpec.for_images("freeform", targets, seed=0))
        return np.array([read_mask(out / t.filename).mean() for t in targets])

    big, small = ratios(1200, 1600), ratios(256, 256)
    buckets = {hole_ratio_bucket(r) for r in big}
    assert len(buckets) >= 3 and {"10-20%", "20-30%"} <= buckets, sorted(big)
    assert abs(np.median(big) - np.median(small)) < 0.05
    assert np.all(np.abs(np.sort(big) - np.sort(small)) < 0.12)  # the same distribution
