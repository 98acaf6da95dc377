"""Classical inpainting that needs no checkpoint: the ``fill`` functions of
:data:`wmi.kinds.CLASSICAL_METHODS`.

Each is ``fill(image, hole, radius) -> filled`` with a float ``(H, W, 3)`` image in [0, 1], a
bool ``(H, W)`` hole (True = hole, not empty) and a neighbourhood radius in pixels (used by the
OpenCV methods); it returns float32 ``(H, W, 3)`` in [0, 1]. Float, not uint8, in and out:
scikit-image's biharmonic works on floats and keeps 16-bit precision, while the OpenCV methods
round to 8 bits themselves. This module imports neither torch nor OpenCV at import time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from wmi.errors import WmiError
from wmi.io import to_uint8
from wmi.kinds import CLASSICAL_METHODS
from wmi.registry import load


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

    :class:`ClassicalInpainter` calls OpenCV on uint8 images directly with it:
    the same result as the float functions here, without two full-size float copies.
    """
    name = {telea: "INPAINT_TELEA", navier_stokes: "INPAINT_NS"}.get(fill)  # type: ignore[call-overload]
    if name is None:
        return None
    import cv2

    return int(getattr(cv2, name))


class ClassicalInpainter:
    """A method of :data:`wmi.kinds.CLASSICAL_METHODS`: OpenCV Telea / Navier-Stokes,
    scikit-image biharmonic, or one you registered.

    Args:
        method: its name (``telea``, ``ns``, ``biharmonic``, ...).
        radius: neighbourhood radius in pixels of ``cv2.inpaint`` (telea and ns only).

    Raises:
        WmiError: an unknown method or a radius below 1.
    """

    multiple = 1
    takes_real_validity = False
    #: uint8 images are filled as uint8 (OpenCV methods) or converted once (others).
    accepts_uint8 = True

    def __init__(self, method: str, radius: int = 3) -> None:
        self.method = CLASSICAL_METHODS[method]
        if radius < 1:
            raise WmiError(f"--radius: must be at least 1, got {radius}")
        self.radius = radius

    def inpaint_batch(
        self,
        images: Sequence[np.ndarray],
        holes: Sequence[np.ndarray],
        validities: Sequence[np.ndarray | None] | None = None,
    ) -> list[np.ndarray]:
        """Inpaint each image on its own (``validities`` are not used).

        Float32 ``(H, W, 3)`` in [0, 1] in and out; uint8 in, uint8 out (the OpenCV methods
        work on uint8 anyway, so this is the same result without two full-size float copies).
        """
        return [self._one(img, hole) for img, hole in zip(images, holes, strict=True)]

    def _one(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        if not hole.any():
            return image.copy() if image.dtype == np.uint8 else image.astype(np.float32)
        fill = load(self.method.fill)
        if image.dtype != np.uint8:
            return fill(image, hole, self.radius)
        flag = opencv_flag(fill)
        if flag is not None:
            import cv2

            return cv2.inpaint(image, hole.astype(np.uint8) * 255, self.radius, flag)
        return to_uint8(fill(image.astype(np.float32) / 255.0, hole, self.radius))
