"""A mask kind defined outside wmi, for tests/masks/test_mask_kinds.py.

Its own module so that worker processes unpickle the generator by name without importing the
test module (and, through it, the whole command line).
"""

from __future__ import annotations

import numpy as np


def stripe(height: int, width: int, rng: np.random.Generator, *, period: int = 8) -> np.ndarray:
    """Horizontal stripes ``period // 2`` rows thick at a random phase, True = hole."""
    rows = (np.arange(height) + int(rng.integers(period))) % period < period // 2
    return np.repeat(rows[:, None], width, axis=1)
