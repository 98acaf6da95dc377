"""Functional forms of the layers, for people who bring their own weights.

Each returns what the corresponding module returns; see :mod:`wmi.layers.conv` and
:mod:`wmi.layers.norm` (and :mod:`wmi.layers.attention` for DeepFill's contextual attention).
"""

from wmi.layers.attention import contextual_attention
from wmi.layers.conv import (
    gated_conv2d,
    mask_window_sum,
    partial_conv2d,
    partial_mask_update,
    weighted_conv2d,
)
from wmi.layers.norm import weighted_batch_norm, weighted_instance_norm

__all__ = [
    "contextual_attention",
    "gated_conv2d",
    "mask_window_sum",
    "partial_conv2d",
    "partial_mask_update",
    "weighted_batch_norm",
    "weighted_conv2d",
    "weighted_instance_norm",
]
