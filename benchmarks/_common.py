"""Helpers shared by the benchmarks (each runs as a script, so benchmarks/ is on sys.path:
``from _common import ...``).

The process helpers and the dask cluster are the tests' own (tests/_helpers.py,
tests/dask_cluster.py), imported here so that each is written once.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT / "tests"))

from _helpers import alive, descendants, process_stat  # noqa: E402,F401 (re-exported)
from dask_cluster import DaskCluster  # noqa: E402,F401 (re-exported)


def load() -> str:
    """The load average over the last minute, as the results files record it ("?" where unknown)."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "?"


def rss_mib(pid: int) -> float | None:
    """Resident memory of ``pid`` in MiB (VmRSS), or None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def same_outputs(a: Path, b: Path) -> bool:
    """Whether two output folders hold the same files with the same content.

    ``.npz`` files are compared array by array: their zip members carry their write time.
    """
    names = sorted(p.name for p in a.iterdir())
    if names != sorted(p.name for p in b.iterdir()):
        return False
    for name in names:
        if name.endswith(".npz"):
            with np.load(a / name) as x, np.load(b / name) as y:
                if x.files != y.files or not all(np.array_equal(x[k], y[k]) for k in x.files):
                    return False
        elif (a / name).read_bytes() != (b / name).read_bytes():
            return False
    return True
