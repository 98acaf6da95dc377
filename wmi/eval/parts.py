"""Evaluation parts: the per-image scores of one shard, and their merge into one Table I.

``wmi eval --shard K/N --scores-out PART.json`` scores the images of one shard
(:class:`wmi.procs.Shard`) and :func:`write_part` keeps everything the averages need: every
image's metrics per method (what :func:`wmi.eval.metrics.summarize_scores` averages) and, with
FID, each image's Inception features (``PART.fid.npz`` beside the JSON, named in it with its
SHA-256; FID is not a mean over images, so its inputs are kept, not its value).
``wmi eval --merge PART...`` reads the N parts (:func:`merge_parts`) and gives back a
:class:`~wmi.eval.scoring.FolderScores` made by the same code an unsharded run uses: the
merged Table I equals the unsharded one (FID to float rounding, its rows summed in another
order), and every report renders it unchanged.

A part records what its scores depend on (:func:`identity`): the ground truths and masks (each
folder's file names and sizes), the SSIM window, the LPIPS and FID networks, the methods and
the record of the folder each method's predictions came from (what made them: a checkpoint,
a method). Parts that differ in any of these are refused with one line, as are parts of
different shard counts, a shard given twice, or a missing one.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from wmi.errors import WmiError
from wmi.eval.compare import combine_runs, run_keys
from wmi.eval.metrics import ImageScore, Results, summarize_scores
from wmi.eval.scoring import FolderScores, _add_fid
from wmi.io import atomic_path, list_images, list_masks
from wmi.io.files import file_sha256
from wmi.kinds import DEFAULT_RESAMPLES
from wmi.procs import Shard

#: The ``format`` of a part file, and its version.
PART_FORMAT, PART_VERSION = "wmi-eval-part", 1
#: The record ``wmi inpaint folder`` keeps in its OUT_DIR (what made the predictions).
_INPAINT_RECORD = ".wmi-inpaint.json"


def _listing(files: Sequence[Path]) -> str:
    """SHA-256 of the folder's file names and sizes: the same folder on every machine."""
    lines = "".join(f"{p.name}\t{p.stat().st_size}\n" for p in files)
    return hashlib.sha256(lines.encode("utf-8", "surrogateescape")).hexdigest()


def _made_with(folder: Path) -> Any:
    """What made a folder of predictions (its ``wmi inpaint`` record), or None."""
    try:
        return json.loads((folder / _INPAINT_RECORD).read_text())
    except (OSError, ValueError):
        return None


def _folders(runs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path]:
    return [Path(runs)] if isinstance(runs, str | os.PathLike) else [Path(f) for f in runs]


def identity(
    gt_dir: str | os.PathLike[str],
    mask_dir: str | os.PathLike[str],
    preds: Mapping[str, str | os.PathLike[str] | Sequence[str | os.PathLike[str]]],
    ssim_window: str,
    networks: Sequence[str],
    buckets: bool,
) -> dict[str, Any]:
    """What every part of one evaluation shares (see the module's docstring).

    Args:
        preds: method name -> the folders of its runs (or its one folder).
        networks: the perceptual metrics computed with their networks' names
            (``["lpips-alex", "fid"]``; empty without).
    """
    return {
        "gt": _listing(list_images(gt_dir)),
        "masks": _listing(list_masks(mask_dir)),
        "ssim_window": ssim_window,
        "networks": list(networks),
        "buckets": buckets,
        "methods": [
            {"name": name, "made_with": [_made_with(Path(folder)) for folder in _folders(runs)]}
            for name, runs in preds.items()
        ],
    }


def _score_to_json(score: ImageScore) -> dict[str, Any]:
    return {
        "name": score.name,
        "hole_ratio": score.hole_ratio,
        "metrics": score.metrics,
        "skipped": score.skipped,
        "unreadable": score.unreadable,
        "exact": score.exact,
        "mask_resized": score.mask_resized,
        "paths": {key: str(path) for key, path in score.paths.items()},
    }


def _score_from_json(data: Mapping[str, Any]) -> ImageScore:
    return ImageScore(
        data["name"],
        data["hole_ratio"],
        {m: dict(v) for m, v in data["metrics"].items()},
        data["skipped"],
        list(data["unreadable"]),
        list(data["exact"]),
        data["mask_resized"],
        {key: Path(path) for key, path in data["paths"].items()},
    )


def write_part(
    path: str | os.PathLike[str], scored: FolderScores, shard: Shard, ident: Mapping[str, Any]
) -> None:
    """Write one shard's scores to ``path`` (JSON), FID features to ``{stem}.fid.npz`` beside it.

    Both are written atomically, the features first, so a part that exists is whole.
    """
    path = Path(path)
    fid: dict[str, Any] | None = None
    features = path.with_name(f"{path.stem}.fid.npz")
    if scored.fid_features:
        keys = _run_keys(ident)
        arrays = {"gt": scored.fid_features["gt"]}
        arrays.update({f"method{i}": scored.fid_features[k] for i, k in enumerate(keys)})
        with atomic_path(features) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
        fid = {"file": features.name, "sha256": file_sha256(features), "rows": scored.fid_rows}
    part = {
        "format": PART_FORMAT,
        "version": PART_VERSION,
        "shard": [shard.index, shard.count],
        "identity": dict(ident),
        "seconds": scored.seconds,
        # per run, not folded: the merge folds them as an unsharded run does
        "images": [_score_to_json(s) for s in sorted(scored.run_scores, key=lambda s: s.name)],
        "fid": fid,
    }
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(part) + "\n", encoding="utf-8")


def _read(path: Path) -> dict[str, Any]:
    try:
        part = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WmiError(f"{path}: no such part file (--merge)") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise WmiError(f"{path}: not a part file of wmi eval --scores-out ({exc})") from None
    if not isinstance(part, dict) or part.get("format") != PART_FORMAT:
        raise WmiError(f"{path}: not a part file of wmi eval --scores-out")
    if part.get("version") != PART_VERSION:
        raise WmiError(
            f"{path}: part format version {part.get('version')}, expected {PART_VERSION}"
        )
    return part


def _differs(a: Mapping[str, Any], b: Mapping[str, Any]) -> str:
    """What differs between two identities, in words."""
    words = {
        "gt": "ground truths",
        "masks": "mask sets",
        "ssim_window": "SSIM windows",
        "networks": "LPIPS/FID networks",
        "buckets": "--buckets settings",
        "methods": "methods or the weights/methods that made their predictions",
    }
    return ", ".join(text for key, text in words.items() if a.get(key) != b.get(key))


def _check(paths: Sequence[Path], parts: Sequence[dict[str, Any]]) -> int:
    """Refuse parts of different evaluations or shard counts, and a missing or repeated shard."""
    first = parts[0]
    for path, part in zip(paths[1:], parts[1:], strict=True):
        if part["identity"] != first["identity"]:
            raise WmiError(
                f"{path} and {paths[0]}: parts of different evaluations (different "
                f"{_differs(part['identity'], first['identity'])})"
            )
        if part["shard"][1] != first["shard"][1]:
            raise WmiError(
                f"{path} is shard {part['shard'][0]}/{part['shard'][1]}, {paths[0]} of "
                f"{first['shard'][1]} shards: parts of different splits"
            )
    count = first["shard"][1]
    seen: dict[int, Path] = {}
    for path, part in zip(paths, parts, strict=True):
        index = part["shard"][0]
        if index in seen:
            raise WmiError(f"{path} and {seen[index]}: both are shard {index}/{count}")
        seen[index] = path
    missing = [f"{k}/{count}" for k in range(count) if k not in seen]
    if missing:
        raise WmiError(f"--merge: the parts of shard {', '.join(missing)} are missing")
    return count


def _features(path: Path, part: Mapping[str, Any], methods: Sequence[str]) -> dict[str, Any]:
    """A part's FID features by row name: ``{"gt": {name: row}, method: {name: row}}``."""
    fid = part["fid"]
    file = path.with_name(fid["file"])
    if not file.is_file() or file_sha256(file) != fid["sha256"]:
        raise WmiError(f"{file}: missing or changed since {path} was written (FID features)")
    with np.load(file) as arrays:
        keys = {"gt": "gt", **{m: f"method{i}" for i, m in enumerate(methods)}}
        return {
            name: dict(zip(fid["rows"], arrays[key], strict=True)) for name, key in keys.items()
        }


def _runs(ident: Mapping[str, Any]) -> dict[str, list[str]]:
    """Method name -> its run keys, as :func:`wmi.eval.scoring.score_folders` names them."""
    return run_keys({m["name"]: m["made_with"] for m in ident["methods"]})


def _run_keys(ident: Mapping[str, Any]) -> list[str]:
    return [key for keys in _runs(ident).values() for key in keys]


def merge_parts(
    paths: Sequence[str | os.PathLike[str]],
    baseline: str | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> FolderScores:
    """The :class:`~wmi.eval.scoring.FolderScores` of an unsharded run, from its N parts.

    ``baseline``, ``resamples`` and ``seed``: the comparisons, as for
    :func:`~wmi.eval.scoring.score_folders`.

    Raises:
        WmiError: a file is not a part; the parts are of different evaluations (ground
            truths, masks, SSIM window, networks, methods or what made the predictions) or
            shard counts; a shard is given twice or missing; FID features are missing or
            changed; no image of any part has a score.
    """
    if not paths:
        raise WmiError("--merge: give the part files (PART.json ...) of wmi eval --scores-out")
    files = [Path(p) for p in paths]
    parts = [_read(p) for p in files]
    _check(files, parts)
    ident = parts[0]["identity"]
    runs = _runs(ident)
    methods = [key for keys in runs.values() for key in keys]
    scores = [_score_from_json(image) for part in parts for image in part["images"]]
    names = [s.name for s in scores]
    if len(set(names)) != len(names):
        raise WmiError("--merge: an image is scored in two parts; the parts overlap")
    scored = [s for s in scores if not s.skipped]
    if not scored:
        raise WmiError("--merge: no image of any part has a score (no hole, or unreadable)")
    per_run: Results = summarize_scores(scores, methods, ident["buckets"], ident["ssim_window"])
    rows: list[str] = []
    features: dict[str, np.ndarray] = {}
    with_fid = [(f, p) for f, p in zip(files, parts, strict=True) if p["fid"] is not None]
    if with_fid:
        by_name: dict[str, dict[str, Any]] = {key: {} for key in ("gt", *methods)}
        for file, part in with_fid:
            for key, rows_of in _features(file, part, methods).items():
                by_name[key].update(rows_of)
        rows = sorted(by_name["gt"])
        features = {key: np.stack([by_name[key][r] for r in rows]) for key in by_name}
        lookup = {s.name: s for s in scores}
        _add_fid(per_run, [lookup[r] for r in rows], features)
    run_scores = copy.deepcopy(scores)
    results = combine_runs(per_run, scores, runs, baseline=baseline, resamples=resamples, seed=seed)
    broken = sorted((s for s in scores if s.unreadable), key=lambda s: s.name)
    empty = sorted(s.name for s in scores if s.skipped and not s.unreadable)
    seconds = sum(part["seconds"] for part in parts)
    return FolderScores(results, scores, broken, empty, seconds, rows, features, run_scores, runs)
