"""One shard of a mask set made for images (``wmi masks generate --for DIR --shard K/N``).

Each shard draws the masks of its images (:meth:`wmi.procs.Shard.take`) straight into
OUT_DIR, each file written atomically, then a hidden part file
``.wmi-masks-part-K-of-N.json`` with its masks' manifest rows. The shard that finds every part
present writes ``manifest.csv`` and ``preview.png`` of the whole set and removes the parts, so
the folder looks complete (it has a manifest) only when every shard is done, and then holds
exactly the files of one unsharded run: a mask depends only on the seed and its image's stem.
Shards may run at once (:func:`wmi.procs.shard_lock`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wmi.errors import WmiError
from wmi.io import MASK_SET_PREVIEW, atomic_path
from wmi.masks.generators import MIN_SIZE
from wmi.masks.sets import (
    BUSY,
    CHUNK,
    MANIFEST,
    MaskRecord,
    MaskSetResult,
    MaskSetSpec,
    Progress,
    _write_all,
    _write_manifest,
    _write_preview,
)
from wmi.masks.targets import MaskTarget
from wmi.procs import Shard, shard_lock

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks
    fcntl = None  # type: ignore[assignment]

#: The part file a shard writes when its masks are in place: ``.wmi-masks-part-K-of-N.json``.
PART_PREFIX = ".wmi-masks-part-"
#: Held (blocking) by the shard that looks for every part and writes the manifest.
ASSEMBLY_LOCK = ".wmi-masks-assemble.lock"


@dataclass(frozen=True)
class SetPart:
    """Which shard of which set: ``shard`` of the set made for the images named ``stems``
    (every image the folder lists, whichever shard it falls in)."""

    shard: Shard
    stems: tuple[str, ...]

    def identity(self, spec: MaskSetSpec) -> dict[str, Any]:
        """What every part of one set shares: the options that draw the masks, N, the images."""
        names = "\n".join(sorted(self.stems)).encode("utf-8", "surrogateescape")
        return {
            "kind": spec.label,
            "seed": spec.seed,
            "touches_border": spec.touches_border,
            "shards": self.shard.count,
            "images": hashlib.sha256(names).hexdigest(),
        }

    def part_name(self, index: int | None = None) -> str:
        index = self.shard.index if index is None else index
        return f"{PART_PREFIX}{index}-of-{self.shard.count}.json"


def write_mask_set_part(
    out_dir: str | os.PathLike[str],
    spec: MaskSetSpec,
    part: SetPart,
    *,
    workers: int = 0,
    progress: Progress | None = None,
) -> tuple[MaskSetResult, bool]:
    """Write the masks of one shard of a set made for images (``spec.targets``: the shard's).

    Returns:
        The shard's result, and whether this call completed the set (wrote the manifest).

    Raises:
        WmiError: bad options, OUT_DIR holds a complete set, files that are not masks of this
            set, or parts of a set with other options; or this shard is being written.
    """
    if spec.targets:
        spec.validate()
    else:  # an empty shard has no target: its options are checked as those of one square mask
        dataclasses.replace(spec, count=1, height=MIN_SIZE, width=MIN_SIZE).validate()
    if workers < 0:
        raise WmiError(f"--workers must be >= 0, got {workers}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise WmiError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    identity = part.identity(spec)
    n_workers = min(workers or os.cpu_count() or 1, max(1, math.ceil(spec.count / CHUNK)))
    with shard_lock(out, part.shard, BUSY):
        _check_folder(out, part, identity)
        start = time.perf_counter()
        records = _write_all(spec, out, n_workers, progress)
        seconds = time.perf_counter() - start
        rows = [[spec.targets[r.index].stem, *r.shape, r.hole_ratio, r.touches_border]
                for r in records]  # fmt: skip
        with atomic_path(out / part.part_name()) as tmp:
            tmp.write_text(json.dumps({"set": identity, "masks": rows}) + "\n")
        completed = _assemble(out, spec, part, identity)
    return MaskSetResult(out, spec, tuple(records), n_workers, seconds, 0), completed


def _check_folder(out: Path, part: SetPart, identity: dict[str, Any]) -> None:
    """Refuse an OUT_DIR that holds anything but this set's masks and parts."""
    if (out / MANIFEST).exists():
        raise WmiError(
            f"{out}: holds a complete mask set ({MANIFEST}); --shard adds to a set being made: "
            "choose an empty folder, or run without --shard and with --overwrite"
        )
    allowed = {f"{stem}.png" for stem in part.stems}
    for entry in out.iterdir():
        if entry.name.startswith(PART_PREFIX):
            try:
                other = json.loads(entry.read_text())["set"]
            except (OSError, ValueError, KeyError, TypeError):
                other = None
            if other != identity:
                raise WmiError(
                    f"{entry}: a shard of another mask set (other options, images or number of "
                    "shards) is in this folder; choose another OUT_DIR"
                )
        elif not entry.name.startswith(".") and entry.name not in allowed:
            raise WmiError(
                f"{out}: holds {entry.name}, which is no mask of this set; choose an empty folder"
            )


def _assemble(out: Path, spec: MaskSetSpec, part: SetPart, identity: dict[str, Any]) -> bool:
    """Write the whole set's manifest and preview if every part is there; remove the parts.

    Under a blocking lock: of shards that end together, one writes the manifest and the
    others find the parts gone.
    """
    fd = os.open(out / ASSEMBLY_LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        paths = [out / part.part_name(k) for k in range(part.shard.count)]
        parts = []
        for path in paths:
            try:
                parts.append(json.loads(path.read_text()))
            except FileNotFoundError:
                return False
        if any(p["set"] != identity for p in parts):  # checked on entry; a part came since
            raise WmiError(f"{out}: a shard of another mask set was written meanwhile")
        rows = sorted((row for p in parts for row in p["masks"]), key=lambda row: row[0])
        whole = MaskSetSpec.for_images(
            spec.kind,
            [MaskTarget(stem, h, w) for stem, h, w, *_ in rows],
            spec.seed,
            spec.training,
            spec.buckets,
            spec.touches_border,
        )
        records = [MaskRecord(i, ratio, border, (h, w))
                   for i, (_, h, w, ratio, border) in enumerate(rows)]  # fmt: skip
        if records:
            _write_preview(out, whole, records)
        else:  # no image in any shard could be given a mask: nothing to show
            with contextlib.suppress(FileNotFoundError):
                (out / MASK_SET_PREVIEW).unlink()
        _write_manifest(out, whole, records)
        for path in paths:
            path.unlink()
        return True
    finally:
        os.close(fd)
