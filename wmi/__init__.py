"""wmi: image inpainting with weighted mask convolution (Kang et al.).

The layers, normalization and network are importable from the top level::

    import wmi
    conv = wmi.WeightedConv2d(3, 64, 7, stride=2, padding=3)
    y, new_mask = conv(x, mask)  # mask: validity, 1 = known pixel

Attributes are imported lazily so that ``wmi --help`` does not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "WeightedConv2d": "wmi.layers.conv",
    "PartialConv2d": "wmi.layers.conv",
    "GatedConv2d": "wmi.layers.conv",
    "PlainConv2d": "wmi.layers.conv",
    "create_conv": "wmi.layers.conv",
    "WeightedBatchNorm2d": "wmi.layers.norm",
    "WeightedInstanceNorm2d": "wmi.layers.norm",
    "create_norm": "wmi.layers.norm",
    "InpaintingUNet": "wmi.models.unet",
    "WmiError": "wmi.errors",
    "load_model": "wmi.models.loading",
    "load_inpainter": "wmi.inpaint.load",
}

__all__ = ["__version__", "functional", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name == "functional":
        return importlib.import_module("wmi.functional")
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'wmi' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
