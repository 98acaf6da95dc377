"""One call from what a user names to an inpainter: a classical method or a trained network.

:func:`load_batch_inpainter` takes a classical method's name (``"telea"``), a checkpoint file,
a run folder or an export folder (see :func:`wmi.models.loading.find_model`), and returns an
:class:`~wmi.inpaint.strategies.Inpainter` (lists of arrays, what the folder runner uses);
:func:`load_inpainter` (``wmi.load_inpainter``) wraps it for one photo at a time
(:class:`~wmi.inpaint.photo.PhotoInpainter`). :func:`source_record` is what an output folder
records about it, so that a later run with another method or other weights is noticed.
"""

from __future__ import annotations

import os
from typing import Any

from wmi.inpaint.classical import ClassicalInpainter
from wmi.inpaint.strategies import Inpainter
from wmi.kinds import CLASSICAL_METHODS


def is_method(source: object) -> bool:
    """Whether ``source`` names a classical method of :data:`wmi.kinds.CLASSICAL_METHODS`."""
    return isinstance(source, str) and source in CLASSICAL_METHODS


def load_inpainter(source: str | os.PathLike[str], device: Any = "auto", **options: Any) -> Any:
    """What fills one photo: ``load_inpainter(source)(image, mask) -> filled image``.

    Example::

        import wmi
        from PIL import Image

        fill = wmi.load_inpainter("telea")  # or "runs/wconv", "models/wconv", "best.pt"
        fill(Image.open("photo.jpg"), Image.open("mask.png")).save("filled.png")

    Args:
        source: as :func:`load_batch_inpainter`.
        device: as :func:`load_batch_inpainter`.
        options: ``radius`` and ``batch_size`` (:func:`load_batch_inpainter`); ``threshold``,
            ``blend``, ``dilate``, ``strategy``, ``max_size`` as ``wmi inpaint image`` takes
            them (defaults: :class:`wmi.inpaint.folder.FolderOptions`).

    Returns:
        a :class:`~wmi.inpaint.photo.PhotoInpainter`: called with a PIL image or an
        ``(H, W, 3)`` uint8 array and a mask (PIL: white = hole; array: nonzero = hole), it
        returns the filled image in the same type and size, the pixels ``wmi inpaint image``
        writes with the same options.

    Raises:
        WmiError: as :func:`load_batch_inpainter`, or an unknown option.
    """
    from wmi.inpaint.photo import make_photo_inpainter

    loading = {k: options.pop(k) for k in ("radius", "batch_size") if k in options}
    return make_photo_inpainter(load_batch_inpainter(source, device, **loading), **options)


def load_batch_inpainter(
    source: str | os.PathLike[str],
    device: Any = "auto",
    *,
    batch_size: int = 8,
    radius: int = 3,
) -> Inpainter:
    """The batch-level inpainter ``source`` names.

    Args:
        source: a classical method (``"telea"``, ``"ns"``, ``"biharmonic"``, ...), or a
            checkpoint (``best.pt``), a run folder (its best checkpoint) or an export folder.
        device: for a network: a ``--device`` choice (``"auto"``: cuda, then mps, then cpu)
            or a ``torch.device``. A network trained with AMP runs with it on CUDA only.
        batch_size: images per forward pass of a network.
        radius: neighbourhood radius of the OpenCV methods.

    Raises:
        WmiError: an unknown method, a missing or unreadable checkpoint, an unavailable device.
    """
    if is_method(source):
        return ClassicalInpainter(str(source), radius)
    from wmi.device import resolve_device
    from wmi.inpaint.network import ModelInpainter
    from wmi.models.loading import load_model

    dev = resolve_device(device) if isinstance(device, str) else device
    model, info = load_model(source, device=dev)
    amp = info.amp if dev.type == "cuda" else "off"
    size = info.config.get("size")
    train_size = int(size) if isinstance(size, int | float) and size > 0 else None
    return ModelInpainter(model, amp=amp, device=dev, batch_size=batch_size, train_size=train_size)


#: How many times larger (or smaller) than its training crops a network may see an image
#: before :func:`scale_warning` speaks: the receptive field and the hole sizes it learnt are
#: in pixels, so at 4x the scale a hole is 16x the area it learnt to fill.
FAR_SCALE = 4.0


def scale_warning(inpainter: object, side: int, how: str) -> str | None:
    """One line when a network would run at a scale far from its training size, else None.

    Args:
        inpainter: what fills; only a network with a known ``train_size`` can be far.
        side: the longest side, in pixels, that it will be given.
        how: what gives it that side ("photo.jpg", "--strategy resize --max-size 1024").
    """
    train = getattr(inpainter, "train_size", None)
    if not train or 1 / FAR_SCALE <= side / train <= FAR_SCALE:
        return None
    return (
        f"the network was trained on {train}x{train} crops but {how} gives it images of "
        f"{side} px ({side / train:.3g}x): far from its training scale, expect poor fills "
        f"(a smaller --max-size with --strategy resize brings it nearer)"
    )


def source_record(source: str | os.PathLike[str]) -> dict[str, str]:
    """What identifies ``source``'s results: the method, or the weights' name and digest.

    Reads the weights file (not the network), so it is cheap and needs no torch.
    """
    if is_method(source):
        return {"method": str(source)}
    from wmi.io.files import file_sha256
    from wmi.models.loading import find_model

    found = find_model(source)
    return {"checkpoint": found.path.name, "sha256": file_sha256(found.weights)[:16]}
