"""pytest fixtures of the openmmbg Python tests (helpers.py holds the helper functions)."""
import numpy as np
import pytest


@pytest.fixture
def rng():
    """A seeded numpy generator, so that every test sees the same random inputs."""
    return np.random.default_rng(1234)
