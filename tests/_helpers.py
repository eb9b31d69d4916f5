"""Helpers shared by several test files (tests/ is on sys.path: ``from _helpers import ...``).

The independent references (scipy per-block DCTs, tolerances, sample paths) are in
references.py; the hostile inputs and the checks of every command's outputs in hostile.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_legacy_compressed(path, kept, channel_mask, *, block_size: int, image_shape, image_mode: str = "L",
                            step: float = 0.0, threshold: float = 0.0, source: str = "") -> Path:
    """An old zonal ``_compressed.npz`` file, written from the key table of docs/formats.md.

    dctconv only reads these files now; the tests make their own, with no dctconv code.
    ``kept`` is (K, rows, columns): integer levels when ``step`` > 0, floats when it is 0.
    """
    np.savez_compressed(
        path, format_version=np.array(1), kind=np.array("compressed"), block_size=np.array(block_size),
        image_shape=np.array(image_shape, dtype=np.int64), image_mode=np.array(image_mode),
        source=np.array(source), step=np.array(float(step)), threshold=np.array(float(threshold)),
        channel_mask=np.asarray(channel_mask, dtype=bool), kept=np.asarray(kept),
    )
    return Path(path) if isinstance(path, (str, Path)) else path


def output_names(folder) -> list[str]:
    """The sorted names in ``folder`` other than the hidden records of ``--skip-existing``
    (``.<stem>_<command>.made``, dctconv.runtime._records): what a user sees as outputs."""
    return sorted(p.name for p in Path(folder).iterdir() if not (p.name.startswith(".") and p.name.endswith(".made")))


def record_names(folder) -> list[str]:
    """The sorted names of the hidden records in ``folder``."""
    return sorted(p.name for p in Path(folder).iterdir() if p.name.startswith(".") and p.name.endswith(".made"))
