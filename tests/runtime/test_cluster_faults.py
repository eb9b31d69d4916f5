"""A dask run ends, always, with the truth: a real scheduler on 127.0.0.1 with no workers, then
workers started, killed (SIGKILL) and misplaced by each test (tests/dask_cluster.py).

One scheduler serves the module; each test adds the workers it needs and leaves none.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dask_cluster import DaskCluster, hang_once_while_writing, slow_transform
from dctconv.errors import ClusterError
from dctconv.io._npz import load_coefficients
from dctconv.runtime._cluster import map_on_cluster

from test_cluster import invoke, write_images


@pytest.fixture(scope="module")
def bare_scheduler(tmp_path_factory):
    """A dask scheduler with no worker (tests add theirs and stop them)."""
    cluster = DaskCluster(tmp_path_factory.mktemp("bare-scheduler"), workers=0).start()
    try:
        yield cluster
    finally:
        cluster.stop()


def test_a_scheduler_without_workers_ends_the_run_in_one_line(bare_scheduler, tmp_path):
    images = write_images(tmp_path / "in", 3)
    out = tmp_path / "out"
    result = invoke("compress", *images, "-o", out, "--scheduler", bare_scheduler.address, "--worker-timeout", "2")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "compress 3 files",  # the progress bar's label
        f"Error: no dask worker at the scheduler {bare_scheduler.address} for 2 s (--worker-timeout); "
        f"0 of 3 files done; not done: {images[0]}, {images[1]}, {images[2]}"]
    assert not out.exists() or not list(out.iterdir())


def test_all_workers_lost_ends_the_run_naming_the_files_done(bare_scheduler, tmp_path):
    images = write_images(tmp_path / "in", 8)
    out = tmp_path / "out"
    workers = bare_scheduler.add_workers(2)
    work = functools.partial(slow_transform, out_dir=out, seconds=0.4)
    found = []
    with pytest.raises(ClusterError) as raised:
        for index, result, exc in map_on_cluster(images, work, address=bare_scheduler.address, worker_timeout=2):
            assert exc is None
            found.append(index)
            if len(found) == 2:
                bare_scheduler.kill(workers)
    match = re.fullmatch(
        rf"no dask worker at the scheduler {re.escape(bare_scheduler.address)} for 2 s \(--worker-timeout\); "
        r"(\d) of 8 files done: (.*); not done: (.*)", str(raised.value))
    assert match, str(raised.value)
    # The files handed back (2, and any that finished as the workers died) are named done; the rest not.
    assert int(match[1]) == len(found) >= 2
    assert match[2].split(", ") == [str(images[i]) for i in sorted(found)]
    assert match[3].split(", ") == [str(images[i]) for i in range(8) if i not in found]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{images[i].stem}_{kind}" for i in found for kind in ("coefficients.npz", "maps.png"))
