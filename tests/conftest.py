"""Shared fixtures of the test suite; the references and tolerances are in references.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from references import SAMPLE_NAMES, SAMPLES

@pytest.fixture
def rng():
    return np.random.default_rng(20261125)


@pytest.fixture(params=SAMPLE_NAMES)
def sample_path(request) -> Path:
    return SAMPLES / request.param


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory):
    """A running dask scheduler with two single-threaded workers (tests/dask_cluster.py)."""
    from dask_cluster import DaskCluster

    cluster = DaskCluster(tmp_path_factory.mktemp("dask-cluster")).start()
    try:
        yield cluster
    finally:
        cluster.stop()
