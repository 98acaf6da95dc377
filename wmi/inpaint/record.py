"""The output folder of ``wmi inpaint folder``: its record, stale temporary files, results to trust.

``.wmi-inpaint.json`` names what made the results (method or checkpoint, the settings that
change pixels, the output format). A run that changes it marks it "in progress" first and
writes it only when done, so an interrupted run never leaves the record claiming results that
another method made.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from wmi.errors import WmiError
from wmi.io.files import temp_stem
from wmi.progress import Notify

#: The record of what made the results of an output folder (hidden: never paired or scored).
RECORD_NAME = ".wmi-inpaint.json"
#: Keys of the record while a run that changed it is under way: ``state`` "in progress" and
#: ``replacing`` (the folder may still hold results of the record before).
STATE, IN_PROGRESS, REPLACING = "state", "in progress", "replacing"
#: Said when another process holds OUT_DIR's lock.
BUSY = "another wmi inpaint is writing here"


def describe(record: Any) -> str:
    """A record as ``key value, ...`` for a message."""
    if not isinstance(record, dict):
        return "an unreadable record"
    return ", ".join(f"{k} {v}" for k, v in record.items())


def check_record(
    out_dir: Path, record: Mapping[str, Any], overwrite: bool, notify: Notify
) -> tuple[bool, bool]:
    """Refuse an OUT_DIR whose results another record made (unless ``overwrite``).

    Returns whether the record must be written, and whether this run replaces results of
    another record: then no existing result is trusted, not even after an interruption (the
    record says "in progress" until the run is done, see :func:`wmi.inpaint.folder.inpaint_folder`).
    """
    path = out_dir / RECORD_NAME
    try:
        old = json.loads(path.read_text())
    except FileNotFoundError:
        return True, False
    except (OSError, ValueError):
        old = None
    interrupted = isinstance(old, dict) and old.get(STATE) == IN_PROGRESS
    replacing = interrupted and bool(old.get(REPLACING))
    if interrupted:
        old = {k: v for k, v in old.items() if k not in (STATE, REPLACING)}
    if old == dict(record):
        if replacing and not overwrite:
            notify(
                "warning",
                f"{out_dir}: a run replacing another method's results was interrupted; "
                "making every result again",
            )
        return interrupted, replacing
    if not overwrite:
        what = "an interrupted run with " if interrupted else ""
        raise WmiError(
            f"{out_dir}: holds results made with {what}{describe(old)}; this run uses "
            f"{describe(dict(record))}. Pass --overwrite to replace them, or choose another OUT_DIR"
        )
    return True, True


def write_record(out_dir: Path, record: Mapping[str, Any]) -> None:
    from wmi.io import atomic_path

    with atomic_path(out_dir / RECORD_NAME) as tmp:
        tmp.write_text(json.dumps(dict(record), indent=2) + "\n")


def remove_stale_temps(out_dir: Path, targets: Iterable[Path]) -> int:
    """Delete ``.NAME.XXXXXXXX.tmp.EXT`` files that :func:`wmi.io.atomic_path` left for our
    targets when a run was killed; returns how many."""
    if not out_dir.is_dir():
        return 0
    wanted = {(temp_stem(t), t.suffix) for t in targets}  # a long stem is cut in temp names
    pattern = re.compile(r"^\.(?P<stem>.+)\.[A-Za-z0-9_]{8}\.tmp(?P<suffix>\.[^.]+)$")
    removed = 0
    for path in out_dir.glob(".*.tmp.*"):
        found = pattern.match(path.name)
        if found and (found["stem"], found["suffix"]) in wanted and path.is_file():
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def result_ok(image: Path, target: Path, max_pixels: int) -> bool:
    """An existing result counts as done only when it decodes at its image's size."""
    from wmi.io import image_decodes, oriented_size

    try:
        size = oriented_size(image, max_pixels)
    except WmiError:
        return True  # the image itself is unreadable: nothing better to make
    return image_decodes(target, size)
