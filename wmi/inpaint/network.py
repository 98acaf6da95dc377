"""The torch half of inpainting: batched inference of a trained network on numpy images."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from wmi.device import amp_dtype
from wmi.errors import WmiError
from wmi.inpaint.pixels import pad_to_multiple


class ModelInpainter:
    """Batched inference of a network with the U-Net's forward signature.

    Args:
        model: ``forward(image (N, 3, H, W) in [0, 1], validity (N, 1, H, W) 1 = known)
            -> (N, 3, H, W)``; hole pixels of ``image`` are passed as 0.
        multiple: inputs are padded (reflect) to a multiple of this; default: the model's
            ``multiple`` attribute (``InpaintingUNet.multiple`` is ``2 ** layers``), else 1.
        amp: ``bf16``, ``fp16`` or ``off``: autocast dtype during the forward pass.
        device: where to run; default: the device of the model's first parameter (or CPU).
        batch_size: at most this many images per forward pass.
        train_size: the crop side it was trained on (its checkpoint's ``size``), if known.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        multiple: int | None = None,
        amp: str = "off",
        device: torch.device | str | None = None,
        batch_size: int = 8,
        train_size: int | None = None,
    ) -> None:
        import torch

        amp_dtype(amp)  # an unknown mode fails here, not at the first batch
        if multiple is None:
            multiple = int(getattr(model, "multiple", 1))
        if multiple < 1 or batch_size < 1:
            raise WmiError("multiple and batch_size must be at least 1")
        if device is None:
            first = next(model.parameters(), None)
            device = first.device if first is not None else torch.device("cpu")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.multiple = multiple
        #: soft masks go to the network as real-valued validity (a weighted-conv network)
        self.takes_real_validity = bool(getattr(model, "takes_real_validity", False))
        self.amp = amp
        self.batch_size = batch_size
        self.train_size = train_size

    def inpaint_batch(
        self,
        images: Sequence[np.ndarray],
        holes: Sequence[np.ndarray],
        validities: Sequence[np.ndarray | None] | None = None,
    ) -> list[np.ndarray]:
        """Inpaint images of any sizes; equal padded sizes share a forward pass.

        Args:
            images: float32 ``(H, W, 3)`` in [0, 1].
            holes: bool ``(H, W)``, True = hole.
            validities: optional float32 ``(H, W)`` validity in [0, 1] (1 = known) given to
                the network instead of ``~hole`` (soft masks on a weighted-conv network).

        Returns:
            float32 ``(H, W, 3)`` predictions in [0, 1] (not yet composited).
        """
        results: list[np.ndarray | None] = [None] * len(images)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, img in enumerate(images):
            h, w = img.shape[:2]
            key = (h + (-h) % self.multiple, w + (-w) % self.multiple)
            groups.setdefault(key, []).append(i)
        for indices in groups.values():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                valid = [
                    validities[i]
                    if validities is not None and validities[i] is not None
                    else (~holes[i]).astype(np.float32)
                    for i in chunk
                ]
                preds = self._forward([images[i] for i in chunk], valid)
                for i, pred in zip(chunk, preds, strict=True):
                    results[i] = pred
        assert all(r is not None for r in results)
        return results  # type: ignore[return-value]

    def check_memory(self, height: int, width: int, batch: int = 1) -> None:
        """Refuse a forward pass of ``batch`` images of ``height`` x ``width`` (padded) that
        the network's own estimate says will not fit in the device's available memory.

        Raises:
            WmiError: one line with the estimate, what is available and the alternatives.
        """
        from wmi.device import available_bytes

        estimate = getattr(self.model, "inference_bytes", None)
        if estimate is None:
            return
        need, free = estimate(height, width, batch), available_bytes(self.device)
        if free is not None and need > free:
            raise WmiError(
                f"{width}x{height}: the network needs about {need / 1e9:.1f} GB on "
                f"{self.device.type} at this size, {free / 1e9:.1f} GB is available; use "
                "--strategy resize (the default) or crop with a --max-size that fits, or a "
                "smaller image"
            )

    def _forward(self, images: list[np.ndarray], validity: list[np.ndarray]) -> list[np.ndarray]:
        import torch

        h, w = images[0].shape[:2]
        self.check_memory(h + (-h) % self.multiple, w + (-w) % self.multiple, len(images))
        valid = np.stack([pad_to_multiple(v, self.multiple) for v in validity])
        x = np.stack([pad_to_multiple(img.astype(np.float32), self.multiple) for img in images])
        x_t = torch.from_numpy(x).permute(0, 3, 1, 2).to(self.device)
        m_t = torch.from_numpy(valid)[:, None].to(self.device)
        dtype = amp_dtype(self.amp)
        with (
            torch.inference_mode(),
            torch.autocast(
                device_type=self.device.type,
                dtype=dtype,
                enabled=dtype is not None,
            ),
        ):
            y = self.model(x_t * m_t, m_t)
        y = y.float().clamp(0.0, 1.0).permute(0, 2, 3, 1).cpu().numpy()
        return [y[i, : img.shape[0], : img.shape[1]] for i, img in enumerate(images)]
