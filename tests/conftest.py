"""Shared fixtures. Tests make their own small data; nothing is downloaded."""

from __future__ import annotations

import pytest
import torch


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _small_thread_count() -> None:
    # The CI machine has 2 cores; oversubscription makes the suite slower, not faster.
    torch.set_num_threads(2)
