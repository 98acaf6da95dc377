"""TensorBoard event files of a run: a view of metrics.jsonl and the previews, nothing more.

``wmi train`` writes RUN_DIR/tensorboard/ when ``--tensorboard`` is on (the default) and the
``tensorboard`` package is installed (``pip install 'wmi[tensorboard]'``); see them with
``tensorboard --logdir runs/``. metrics.jsonl stays the record of a run: every value here is
also there, and a resumed run truncates both to the step of its checkpoint.

Tags: ``loss/<term>`` (each loss term, mean over the log window), ``train/lr``,
``train/images_per_s``, ``val/<metric>`` (the Table I metrics of the validation split) and the
image ``val/preview`` (the preview sheet: input, output, composite, truth per row).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: The folder of the event files inside RUN_DIR.
FOLDER = "tensorboard"
#: The note for a run that asked for TensorBoard without the package.
MISSING = (
    "tensorboard is not installed: no TensorBoard event files (metrics.jsonl has every value); "
    "pip install 'wmi[tensorboard]' to get them"
)


def tensorboard_installed() -> bool:
    """Whether ``torch.utils.tensorboard`` can write event files here."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


class Board:
    """Writes scalars and preview sheets to RUN_DIR/tensorboard; does nothing when off.

    Args:
        run_dir: the run folder (it exists: the run has claimed it).
        enabled: write at all (``--tensorboard``, the package installed, rank 0).
        resume_step: the step a resumed run continues from (0 for a new run): TensorBoard
            drops the events an earlier session wrote after it, as metrics.jsonl does.
    """

    def __init__(self, run_dir: Path, enabled: bool, resume_step: int = 0) -> None:
        self._writer: Any = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(
                str(run_dir / FOLDER), purge_step=resume_step + 1 if resume_step else None
            )

    @property
    def enabled(self) -> bool:
        """Whether event files are written."""
        return self._writer is not None

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        """One scalar per tag (``"loss/total"``, ``"val/psnr"``, ...) at ``step``."""
        if self._writer is None:
            return
        for tag, value in values.items():
            self._writer.add_scalar(tag, value, step)

    def preview(self, step: int, tiles: Sequence[np.ndarray], labels: Sequence[str]) -> None:
        """The preview sheet of :func:`wmi.training.validate.validate`'s tiles, one row each."""
        if self._writer is None or not tiles:
            return
        from wmi.io.preview import contact_sheet

        sheet = contact_sheet(
            tiles, columns=len(labels), labels=list(labels) * (len(tiles) // len(labels))
        )
        self._writer.add_image("val/preview", sheet, step, dataformats="HWC")
        self._writer.flush()  # a validation is the moment someone looks

    def close(self) -> None:
        """Flush and close the event file."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
