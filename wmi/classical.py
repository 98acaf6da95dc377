"""Classical inpainting that needs no checkpoint: the ``fill`` functions of
:data:`wmi.kinds.CLASSICAL_METHODS`.

Each is ``fill(image, hole, radius) -> filled`` with a float ``(H, W, 3)`` image in [0, 1], a
bool ``(H, W)`` hole (True = hole, not empty) and a neighbourhood radius in pixels (used by the
OpenCV methods); it returns float32 ``(H, W, 3)`` in [0, 1]. Float, not uint8, in and out:
scikit-image's biharmonic works on floats and keeps 16-bit precision, while the OpenCV methods
round to 8 bits themselves. This module imports neither torch nor OpenCV at import time.
"""

from __future__ import annotations

import numpy as np

from wmi.io import to_uint8


def _opencv(image: np.ndarray, hole: np.ndarray, radius: int, flag_name: str) -> np.ndarray:
    import cv2

    flag = getattr(cv2, flag_name)
    out = cv2.inpaint(to_uint8(image), hole.astype(np.uint8) * 255, radius, flag)
    return out.astype(np.float32) / 255.0


def telea(image: np.ndarray, hole: np.ndarray, radius: int = 3) -> np.ndarray:
    """OpenCV's fast marching method (Telea 2004) on the image rounded to uint8."""
    return _opencv(image, hole, radius, "INPAINT_TELEA")


def navier_stokes(image: np.ndarray, hole: np.ndarray, radius: int = 3) -> np.ndarray:
    """OpenCV's Navier-Stokes method (Bertalmio et al. 2001) on the image rounded to uint8."""
    return _opencv(image, hole, radius, "INPAINT_NS")


def biharmonic(image: np.ndarray, hole: np.ndarray, radius: int = 3) -> np.ndarray:
    """scikit-image's ``inpaint_biharmonic`` on the float image; ``radius`` is not used."""
    from skimage.restoration import inpaint_biharmonic

    out = inpaint_biharmonic(image, hole, channel_axis=-1)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def opencv_flag(fill: object) -> int | None:
    """The ``cv2.inpaint`` flag of :func:`telea` or :func:`navier_stokes`, else None.

    :class:`wmi.inference.ClassicalInpainter` calls OpenCV on uint8 images directly with it:
    the same result as the float functions here, without two full-size float copies.
    """
    name = {telea: "INPAINT_TELEA", navier_stokes: "INPAINT_NS"}.get(fill)  # type: ignore[call-overload]
    if name is None:
        return None
    import cv2

    return int(getattr(cv2, name))
