"""``wmi eval --shard K/N --scores-out PART`` and ``--merge PART...``: the unsharded Table I."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from wmi.cli import app
from wmi.errors import WmiError
from wmi.eval.parts import identity, merge_parts, write_part
from wmi.eval.perceptual import PerceptualNets
from wmi.eval.scoring import score_folders
from wmi.procs import Shard


class FakeNets(PerceptualNets):
    """LPIPS and FID with cheap stand-ins: what matters here is how their outputs merge."""

    def __init__(self) -> None:
        super().__init__(lpips_net="alex")

    @property
    def metrics(self) -> tuple[str, ...]:
        return ("lpips", "fid")

    def lpips(self, a: object, b: object) -> np.ndarray:
        return np.abs(np.asarray(a) - np.asarray(b)).mean(axis=(1, 2, 3))

    def lpips_many(self, comps: dict[str, object], gt: object) -> dict[str, np.ndarray]:
        return {m: self.lpips(c, gt) for m, c in comps.items()}

    def gt_fid_features(self, paths: object, images: object) -> np.ndarray:
        return self.fid_features(images)

    def fid_features(self, images: object) -> np.ndarray:
        x = np.asarray(images, dtype=np.float64)
        return np.concatenate(
            [x.mean(axis=(1, 2)), x.std(axis=(1, 2)), x[:, ::7, ::5].reshape(len(x), -1)[:, :6]],
            axis=1,
        )


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten ground truths, masks of growing holes (several buckets), two methods' predictions."""
    root = tmp_path_factory.mktemp("eval-parts")
    rng = np.random.default_rng(7)
    for sub in ("gt", "masks", "A", "B"):
        (root / sub).mkdir()
    for i in range(10):
        gt = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
        Image.fromarray(gt).save(root / "gt" / f"p{i}.png")
        hole = np.zeros((32, 32), np.uint8)
        hole[: 3 + 2 * i, : 4 + 2 * i] = 255
        Image.fromarray(hole).save(root / "masks" / f"p{i}.png")
        for method, noise in (("A", 20), ("B", 60)):
            pred = np.clip(gt + rng.normal(0, noise, gt.shape), 0, 255).astype(np.uint8)
            Image.fromarray(pred).save(root / method / f"p{i}.png")
    return root


STEMS = [f"p{i}" for i in range(10)]


def preds(root: Path) -> dict[str, Path]:
    return {"A": root / "A", "B": root / "B"}


def runs(root: Path) -> dict[str, list[Path]]:
    """Two methods of two and one runs (the runs' folders need not differ for the sums)."""
    return {"A": [root / "A", root / "B"], "B": [root / "B"]}


def parts(
    root: Path, out: Path, n: int, window: str = "uniform", given: dict | None = None
) -> list[Path]:
    given = given or preds(root)
    ident = identity(root / "gt", root / "masks", given, window, ["lpips-alex", "fid"], True)
    paths = []
    for k in range(n):
        scored = score_folders(
            root / "gt",
            root / "masks",
            given,
            workers=1,
            ssim_window=window,
            perceptual=FakeNets(),
            shard=Shard(k, n),
        )
        paths.append(out / f"part{k}.json")
        write_part(paths[-1], scored, Shard(k, n), ident)
    return paths


def assert_same_table(merged: dict, whole: dict) -> None:
    """Equal Table I: every mean exactly, FID to float rounding."""
    assert json.dumps(merged, sort_keys=True, default=str).count("fid") > 0
    for m, w in zip(merged["methods"], whole["methods"], strict=True):
        for a, b in [(m, w), *zip(m["buckets"], w["buckets"], strict=True)]:
            assert (a.get("range"), a["images"], a["psnr_infinite"]) == (
                b.get("range"),
                b["images"],
                b["psnr_infinite"],
            )
            fid_a, fid_b = a["metrics"].pop("fid"), b["metrics"].pop("fid")
            assert a["metrics"] == b["metrics"]
            assert (math.isnan(fid_a) and math.isnan(fid_b)) or fid_a == pytest.approx(fid_b, 1e-9)


@pytest.mark.parametrize("n", [2, 3])
def test_merged_parts_equal_the_unsharded_table(tmp_path: Path, folders: Path, n: int) -> None:
    whole = score_folders(
        folders / "gt",
        folders / "masks",
        preds(folders),
        workers=1,
        ssim_window="uniform",
        perceptual=FakeNets(),
    )
    merged = merge_parts(parts(folders, tmp_path, n))
    assert len(merged.scores) == 10 and sorted(merged.fid_rows) == merged.fid_rows
    assert all("lpips" in s.metrics["A"] for s in merged.scores)
    assert_same_table(merged.results, whole.results)


def test_merged_parts_of_several_runs_keep_intervals_and_comparisons(
    tmp_path: Path, folders: Path
) -> None:
    """Parts keep every run's scores: the merge folds runs and compares as one run does."""
    kwargs = dict(workers=1, ssim_window="uniform", perceptual=FakeNets(), resamples=200)
    whole = score_folders(folders / "gt", folders / "masks", runs(folders), **kwargs)
    merged = merge_parts(parts(folders, tmp_path, 2, given=runs(folders)), resamples=200)
    first = merged.results["methods"][0]
    assert first["runs"] == 2 and first["ci95"] == whole.results["methods"][0]["ci95"]
    assert merged.results["comparisons"] == whole.results["comparisons"]
    assert merged.results["comparisons"]  # B compared with the baseline A


def test_merge_refuses_parts_of_other_evaluations(tmp_path: Path, folders: Path) -> None:
    two = parts(folders, tmp_path, 2)
    (tmp_path / "gaussian").mkdir()
    other = parts(folders, tmp_path / "gaussian", 2, window="gaussian")
    with pytest.raises(WmiError, match="different SSIM windows"):
        merge_parts([two[0], other[1]])
    (tmp_path / "three").mkdir()
    with pytest.raises(WmiError, match="different splits"):
        merge_parts([two[0], parts(folders, tmp_path / "three", 3)[1]])
    with pytest.raises(WmiError, match=r"shard 1/2 are missing"):
        merge_parts([two[0]])
    with pytest.raises(WmiError, match="both are shard 0/2"):
        merge_parts([two[0], two[0], two[1]])
    (tmp_path / "part0.fid.npz").write_bytes(b"changed")
    with pytest.raises(WmiError, match="changed since"):
        merge_parts(two)


def test_merge_refuses_another_ground_truth(tmp_path: Path, folders: Path) -> None:
    two = parts(folders, tmp_path, 2)
    copy = tmp_path / "copy"
    for sub in ("gt", "masks", "A", "B"):
        (copy / sub).mkdir(parents=True)
        for f in (folders / sub).iterdir():
            (copy / sub / f.name).write_bytes(f.read_bytes())
    (copy / "gt" / "extra.png").write_bytes((folders / "gt" / "p0.png").read_bytes())
    (tmp_path / "other").mkdir()
    with pytest.raises(WmiError, match="different ground truths"):
        merge_parts([two[0], parts(copy, tmp_path / "other", 2)[1]])


def cli(*args: object) -> object:
    return CliRunner().invoke(app, ["eval", *map(str, args)])


def test_cli_shards_and_merge_equal_one_run(tmp_path: Path, folders: Path) -> None:
    base = [
        "--gt",
        folders / "gt",
        "--masks",
        folders / "masks",
        "--pred",
        f"A={folders / 'A'}",
        "--pred",
        f"B={folders / 'B'}",
        "--no-perceptual",
        "--workers",
        1,
    ]
    one = cli(*base, "--json", tmp_path / "one.json", "--markdown", tmp_path / "one.md")
    assert one.exit_code == 0, one.output
    n = 12  # more shards than images: some parts hold no image
    for k in range(n):
        result = cli(*base, "--shard", f"{k}/{n}", "--scores-out", tmp_path / f"p{k}.json")
        assert result.exit_code == 0, result.output
    empty = [k for k in range(n) if not json.loads((tmp_path / f"p{k}.json").read_text())["images"]]
    assert empty and empty == [k for k in range(n) if not Shard(k, n).take(STEMS, str)]
    merged = cli(
        "--merge",
        *(tmp_path / f"p{k}.json" for k in range(n)),
        "--json",
        tmp_path / "merged.json",
        "--markdown",
        tmp_path / "merged.md",
    )
    assert merged.exit_code == 0, merged.output
    assert (tmp_path / "merged.json").read_text() == (tmp_path / "one.json").read_text()
    assert (tmp_path / "merged.md").read_text() == (tmp_path / "one.md").read_text()
    over = cli(
        "--merge", *(tmp_path / f"p{k}.json" for k in range(n)), "--json", tmp_path / "p0.json"
    )
    assert over.exit_code == 2 and "over a part file" in over.output
    refused = cli("--merge", tmp_path / "p0.json", "--gt", folders / "gt")
    assert refused.exit_code == 2 and "part files only" in refused.output
    no_part = cli(*base, "--shard", "0/2")
    assert no_part.exit_code == 2 and "--scores-out" in no_part.output
