"""Helpers shared by several test files (tests/ is on sys.path: ``from _helpers import ...``).

The independent references (scipy per-block DCTs, tolerances, sample paths) are in
references.py; the hostile inputs and the checks of every command's outputs in hostile.py;
the dask cluster in dask_cluster.py. The benchmarks use the process helpers below too
(benchmarks/_common.py imports them), so each is written once.
"""

from __future__ import annotations

import subprocess
import sys
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


def write_images(folder, count: int, size=(20, 28), *, seed: int = 7, name: str = "im{k}.png") -> list[Path]:
    """``count`` random 8-bit PNGs of ``size`` in ``folder`` (made if missing), named ``name.format(k=k)``."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for k in range(count):
        path = folder / name.format(k=k)
        Image.fromarray(rng.integers(0, 256, size, dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


# ---------------------------------------------------------------- processes (Linux /proc)


def process_stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state letter) of ``pid`` from /proc, or None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[1]), fields[0]
    except (OSError, ValueError, IndexError):
        return None


def descendants(pid: int) -> list[int]:
    """Every process started, directly or not, by ``pid``: fork server, workers, resource tracker."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := process_stat(int(entry.name))) is not None:
            children.setdefault(stat[0], []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, finished but not yet waited for, does not)."""
    stat = process_stat(pid)
    return stat is not None and stat[1] != "Z"


def temporary_of_a_process(folder: Path, *, killed: bool):
    """A real dctconv temporary in ``folder``, of a process SIGKILLed while writing it, or still running."""
    code = ("import sys, time; from pathlib import Path; from dctconv.io._atomic import atomic_outputs\n"
            "with atomic_outputs() as outputs:\n"
            "    temp = outputs.path(Path(sys.argv[1]) / 'x.npz'); temp.write_bytes(b'half')\n"
            "    print(temp, flush=True); time.sleep(300)\n")
    process = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True)
    temp = Path(process.stdout.readline().strip())
    assert temp.exists() and temp.name.startswith(f".dctconv-{process.pid}-")
    if killed:
        process.kill()
        process.wait()
    return temp, process
