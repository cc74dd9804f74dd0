"""Test configuration: precision decisions are made here, never at import time of the package."""

import os

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _torch_precision():
    """float64 by default and TF32 off for every test that uses torch (measurements must be exact)."""
    try:
        import torch
    except ImportError:  # the theory tests do not need torch
        yield
        return
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.set_default_dtype(old)


@pytest.fixture
def rng():
    return np.random.default_rng(20261123)
