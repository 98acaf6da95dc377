"""The parts of a dataset prepared on several machines, and their merge into one dataset.

``wmi data prepare SRC PART_K --shard K/N`` writes, into its own folder, the K-th, (K+N)-th, ...
shard files of the plan that one unsharded run follows (:func:`wmi.data.preparation.prepare`):
which image goes to which split and shard file depends on the files, split, seed and shard
size only, never on N. :func:`merge_prepared` checks that the N parts are one plan's and puts
their shard files (hard links where the file system allows, else copies) with the options and
manifest of one unsharded run into OUT_DIR: ``wmi train`` reads it as if prepared at once.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wmi.data.preparation import (
    BUSY,
    PART_KEY,
    PrepareResult,
    _write_manifest,
    _write_text,
)
from wmi.data.shards import MANIFEST_NAME, OPTIONS_NAME, SPLITS, find_shards, shard_info
from wmi.errors import WmiError
from wmi.io import atomic_path
from wmi.procs import folder_lock


def read_part(folder: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A part's options (``prepare.json``) and manifest, both naming the part.

    Raises:
        WmiError: not a folder made by ``wmi data prepare --shard``, or not finished.
    """
    folder = Path(folder)
    try:
        options = json.loads((folder / OPTIONS_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise WmiError(
            f"{folder}: no readable {OPTIONS_NAME}; not made by wmi data prepare"
        ) from None
    if not isinstance(options, dict) or PART_KEY not in options:
        raise WmiError(f"{folder}: a whole dataset, not a part of one (wmi data prepare --shard)")
    try:
        manifest = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise WmiError(
            f"{folder}: part {options[PART_KEY][0]}/{options[PART_KEY][1]} is not finished "
            f"(no {MANIFEST_NAME}); run its wmi data prepare --shard again to resume"
        ) from None
    return options, manifest


def check_parts(folders: Sequence[str | os.PathLike[str]]) -> list[dict[str, Any]]:
    """Refuse parts of different preparations, a part given twice or missing, a damaged
    shard file; returns each part's manifest, in the order given.

    Raises:
        WmiError: one line naming the folder and what is wrong.
    """
    if not folders:
        raise WmiError("give the part folders of wmi data prepare --shard K/N")
    paths = [Path(f) for f in folders]
    read = [read_part(p) for p in paths]
    first = {k: v for k, v in read[0][0].items() if k != PART_KEY}
    count = read[0][0][PART_KEY][1]
    seen: dict[int, Path] = {}
    for path, (options, manifest) in zip(paths, read, strict=True):
        rest = {k: v for k, v in options.items() if k != PART_KEY}
        if rest != first:
            keys = sorted(k for k in set(rest) | set(first) if rest.get(k) != first.get(k))
            raise WmiError(
                f"{path} and {paths[0]}: parts of different preparations ({', '.join(keys)} differ)"
            )
        index, n = options[PART_KEY]
        if n != count:
            raise WmiError(f"{path} is part {index}/{n}, {paths[0]} of {count} parts")
        if index in seen:
            raise WmiError(f"{path} and {seen[index]}: both are part {index}/{count}")
        seen[index] = path
        for split in SPLITS:
            listed = [entry["file"] for entry in manifest["shards"][split]]
            found = [p.name for p in find_shards(path, split)]
            if sorted(listed) != found:
                raise WmiError(f"{path}: its {split} shard files differ from its {MANIFEST_NAME}")
            for name in found:
                shard_info(path / name)  # raises for a damaged file
    missing = [f"{k}/{count}" for k in range(count) if k not in seen]
    if missing:
        raise WmiError(f"the parts {', '.join(missing)} are missing")
    return [manifest for _, manifest in read]


def merge_prepared(
    folders: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str]
) -> PrepareResult:
    """One dataset in ``out_dir`` from the N parts of ``wmi data prepare --shard K/N``.

    ``out_dir`` must be empty or missing; it then holds every part's shard files and the
    ``prepare.json`` and ``manifest.json`` that one unsharded run writes (written last, so
    an interrupted merge leaves no manifest: the folder does not look complete).

    Raises:
        WmiError: see :func:`check_parts`; ``out_dir`` is not empty or is one of the parts.
    """
    manifests = check_parts(folders)
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise WmiError(f"{out}: OUT_DIR must be an empty or new folder")
    options, _ = read_part(folders[0])
    del options[PART_KEY]
    out.mkdir(parents=True, exist_ok=True)
    result = PrepareResult(out, dict.fromkeys(SPLITS, 0), {s: [] for s in SPLITS})
    result.found = options["files"]
    with folder_lock(out, BUSY):
        for folder, manifest in zip(folders, manifests, strict=True):
            for split in SPLITS:
                for entry in manifest["shards"][split]:
                    target = out / entry["file"]
                    _link_or_copy(Path(folder) / entry["file"], target)
                    result.shards[split].append(target)
                    result.counts[split] += entry["images"]
            result.skipped += [(s["path"], s["reason"]) for s in manifest["skipped"]]
            result.written += sum(len(manifest["shards"][s]) for s in SPLITS)
        for split in SPLITS:
            result.shards[split].sort()
        result.skipped.sort()
        _write_text(out / OPTIONS_NAME, json.dumps(options, indent=2) + "\n")
        result.manifest = _write_manifest(out, options, result)
    return result


def _link_or_copy(source: Path, target: Path) -> None:
    """``target`` as a hard link to ``source`` (no copy of the pixels), else a copy."""
    with atomic_path(target) as tmp:
        tmp.unlink()
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
