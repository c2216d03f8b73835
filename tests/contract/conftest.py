from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def registry():
    from studio.backend.core.registry import default_registry

    return default_registry()


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
