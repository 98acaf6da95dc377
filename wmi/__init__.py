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
    "WeightedConv2d": "wmi.conv",
    "PartialConv2d": "wmi.conv",
    "GatedConv2d": "wmi.conv",
    "PlainConv2d": "wmi.conv",
    "create_conv": "wmi.conv",
    "WeightedBatchNorm2d": "wmi.norm",
    "WeightedInstanceNorm2d": "wmi.norm",
    "create_norm": "wmi.norm",
    "InpaintingUNet": "wmi.unet",
    "WmiError": "wmi.errors",
    "load_model": "wmi.checkpoint",
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
