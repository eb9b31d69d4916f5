"""A dask run ends, always, with the truth: a real scheduler on 127.0.0.1 with no workers, then
workers started, killed (SIGKILL) and misplaced by each test (tests/dask_cluster.py).

One scheduler serves the module; each test adds the workers it needs and leaves none.
"""

from __future__ import annotations

import functools
import json
import os
import re
import socket
import time
from pathlib import Path

import pytest

from _helpers import temporary_of_a_process
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


def visible(folder: Path) -> list[str]:
    """The names of the files in ``folder`` but hidden ones (--skip-existing's records, temporaries)."""
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


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
    assert visible(out) == sorted(
        f"{images[i].stem}_{kind}" for i in found for kind in ("coefficients.npz", "maps.png"))


def test_outputs_the_client_does_not_see_are_errors_not_results(bare_scheduler, tmp_path, monkeypatch):
    """A worker whose output folder is another file system than the client's, at the same path.

    /proc/self/cwd is such a path: in each process it is that process's working
    folder, the worker's (its cluster folder) and the client's (here, client/).
    """
    images = write_images(tmp_path / "in", 2)
    (tmp_path / "client" / "out").mkdir(parents=True)
    # The client has a file of that name, but not the one the worker wrote.
    (tmp_path / "client" / "out" / "image001_coefficients.npz").write_bytes(b"an older file")
    monkeypatch.chdir(tmp_path / "client")
    out = Path("/proc/self/cwd/out")
    workers = bare_scheduler.add_workers(1)
    try:
        result = invoke("transform", *images, "-o", out, "--no-pictures", "--scheduler", bare_scheduler.address,
                        "--json")
    finally:
        bare_scheduler.kill(workers)
    assert result.exit_code == 1
    assert json.loads(result.stdout)["files"] == []  # no output that is not there
    lines = result.stderr.splitlines()[1:]  # after the progress bar's label
    host = socket.gethostname()
    share = "workers must share the file system with the client, at the same paths"
    size = (bare_scheduler.folder / "out" / "image000_coefficients.npz").stat().st_size  # the worker's file
    assert lines[0] == (f"Error: {images[0]}: the worker on {host} wrote {out}/image000_coefficients.npz "
                        f"({size:,} bytes), but this machine sees no such file; {share}")
    assert re.fullmatch(
        rf"Error: {re.escape(str(images[1]))}: {out}/image001_coefficients\.npz here is not the file the worker on "
        rf"{re.escape(host)} wrote \(13 bytes, CRC32 [0-9a-f]{{8}} here; [\d,]+ bytes, CRC32 [0-9a-f]{{8}} there\); "
        rf"{share} \(or another run wrote it since\)", lines[1]), lines[1]
    assert len(lines) == 2


def test_temporaries_of_a_killed_worker_are_removed_when_the_run_ends(bare_scheduler, tmp_path):
    images = write_images(tmp_path / "in", 3)
    out, marker = tmp_path / "out", tmp_path / "hung"
    workers = bare_scheduler.add_workers(2)
    work = functools.partial(hang_once_while_writing, out_dir=out, marker=marker)
    left = []
    try:
        found = []
        for index, result, exc in map_on_cluster(images, work, address=bare_scheduler.address, output_dirs=[out]):
            found.append((index, exc))
            if not left:
                while not (marker.exists() and marker.read_text()):
                    time.sleep(0.02)
                pid = int(marker.read_text())
                left = [p.name for p in out.glob(f".dctconv-{pid}-*.tmp")]  # (the other worker may hold one too)
                victim = next(w for w in workers if w.pid == pid)
                bare_scheduler.kill([victim])
                workers.remove(victim)
    finally:
        bare_scheduler.kill(workers)
    assert sorted(found) == [(0, None), (1, None), (2, None)]  # the hung one ran again on the other worker
    assert len(left) == 1
    assert visible(out) == sorted(
        f"image{k:03d}_{kind}" for k in range(3) for kind in ("coefficients.npz", "maps.png"))
    assert not list(out.glob(".dctconv-*"))


def test_the_next_run_removes_stale_temporaries_and_only_those(bare_scheduler, tmp_path):
    image = write_images(tmp_path / "in", 1)[0]
    out = tmp_path / "out"
    out.mkdir()
    stale, _ = temporary_of_a_process(out, killed=True)
    live, writer = temporary_of_a_process(out, killed=False)  # another run, writing there now
    others = [out / ".dctconv-ab12cd34.tmp", out / ".dctconv-ab12cd34.old", out / ".dctconv-1-00000000-abcdefgh.tmp"]
    for path in others:  # an older dctconv's temporary, a backup, another machine's temporary
        path.write_bytes(b"kept")
    workers = bare_scheduler.add_workers(1)
    try:
        result = invoke("transform", image, "-o", out, "--no-pictures", "--scheduler", bare_scheduler.address)
    finally:
        bare_scheduler.kill(workers)
        writer.kill()
        writer.wait()
    assert result.exit_code == 0, result.output
    assert not stale.exists()
    assert live.exists() and all(path.exists() for path in others)
