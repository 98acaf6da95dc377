"""A mask kind is one ``MASK_KINDS.register`` call: the library, the mask-set writer (with and
without worker processes) and ``wmi masks generate`` accept it without any other change."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.masks.stripe_masks import stripe
from wmi.cli import app
from wmi.errors import WmiError
from wmi.io import read_mask
from wmi.kinds import MASK_KINDS, MaskKind
from wmi.masks import (
    MaskSetSpec,
    generate,
    hole_ratio,
    mask_folder_stats,
    rng_for,
    write_mask_set,
)


@pytest.fixture
def stripe_kind() -> Iterator[MaskKind]:
    entry = MASK_KINDS.register(
        MaskKind("stripe", "horizontal stripes", generator=stripe, options={"period": 4})
    )
    try:
        yield entry
    finally:
        MASK_KINDS.unregister("stripe")


def test_generate_calls_the_registered_generator_with_its_options(stripe_kind: MaskKind) -> None:
    hole = generate("stripe", 32, 24, rng_for(3, 1))
    assert np.array_equal(hole, stripe(32, 24, rng_for(3, 1), period=4))
    assert hole.shape == (32, 24) and hole.dtype == bool and hole_ratio(hole) == 0.5
    # the generic options work for it: a border condition by redrawing (stripes always touch)
    assert generate("stripe", 32, 24, rng_for(0, 0), touches_border=True).any()
    with pytest.raises(WmiError, match="stripe masks: none of 3 draws at 32x24 keeps off"):
        generate("stripe", 32, 24, rng_for(0, 0), touches_border=False, max_tries=3)
    # options of other kinds are refused by the entry's facts, naming the kinds that take them
    with pytest.raises(WmiError, match="training variant exists for freeform masks only"):
        generate("stripe", 32, 32, rng_for(0, 0), training=True)
    with pytest.raises(WmiError, match="buckets exist for irregular masks only, not stripe"):
        generate("stripe", 32, 32, rng_for(0, 0), bucket=0)


@pytest.mark.parametrize("workers", [1, 2])
def test_write_mask_set_accepts_it(stripe_kind: MaskKind, tmp_path: Path, workers: int) -> None:
    spec = MaskSetSpec("stripe", 32, 32, count=70, seed=2)  # 70 masks = 2 chunks
    result = write_mask_set(tmp_path / "set", spec, workers=workers)
    assert result.workers == workers
    with open(tmp_path / "set" / "manifest.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 70 and {r["kind"] for r in rows} == {"stripe"}
    for i in (0, 69):
        assert np.array_equal(read_mask(tmp_path / "set" / f"{i:06d}.png"), spec.make(i))
    assert (tmp_path / "set" / "preview.png").is_file()
    assert mask_folder_stats(tmp_path / "set").summary["count"] == 70


def test_the_command_line_accepts_it(stripe_kind: MaskKind, tmp_path: Path) -> None:
    out = tmp_path / "cli"
    args = ["masks", "generate", str(out), "--kind", "stripe", "--count", "3", "--size", "32"]
    result = CliRunner().invoke(app, [*args, "--workers", "1", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["kind"] == "stripe"
    assert np.array_equal(read_mask(out / "000002.png"), stripe(32, 32, rng_for(0, 2), period=4))


def test_an_unregistered_kind_is_refused_again(tmp_path: Path) -> None:
    assert "stripe" not in MASK_KINDS
    result = CliRunner().invoke(
        app, ["masks", "generate", str(tmp_path / "x"), "--kind", "stripe", "--count", "1"]
    )
    assert result.exit_code == 2 and "stripe" in result.output
    with pytest.raises(WmiError, match="unknown mask kind 'stripe'"):
        generate("stripe", 32, 32, rng_for(0, 0))


def test_a_generator_that_returns_the_wrong_thing_is_named() -> None:
    MASK_KINDS.register(MaskKind("bad", "uint8", generator=lambda h, w, rng: np.zeros((h, w))))
    try:
        with pytest.raises(WmiError, match=r"mask kind 'bad': .* returned float64 \(32, 32\)"):
            generate("bad", 32, 32, rng_for(0, 0))
    finally:
        MASK_KINDS.unregister("bad")
