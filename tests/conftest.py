"""Shared fixtures. Reference masks live in the package (`simsparse.testing.reference_masks`,
`simsparse.masks.synthetic.two_four_checkerboard`) so that tests and the conformance suite use
the same ones."""

from __future__ import annotations

import numpy as np
import pytest

from simsparse.archs import load_arch
from simsparse.testing import reference_masks


@pytest.fixture(scope="session")
def a100():
    """The shipped A100 2:4 arch (read-only: models are immutable)."""
    return load_arch("a100_2to4")


@pytest.fixture(scope="session")
def masks_64x128() -> dict[str, np.ndarray]:
    """The reference masks (dense, 2:4, 1:8, fanin, unstructured, channels) of a [64, 128] weight."""
    return reference_masks(64, 128)


@pytest.fixture
def torch_single_thread():
    """torch on one thread for the test (restored after): training tests stay fast and repeatable
    on a shared machine. Use with `pytestmark = pytest.mark.usefixtures("torch_single_thread")`."""
    import torch  # only the tests that train pay for importing torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
