"""The dask backend (dctconv/cluster.py) on a real cluster: a scheduler and two worker processes.

The work sent to the cluster is the commands' own per-file work (pipeline.transform_file),
and its outputs are compared byte for byte with the same work done in this process.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dctconv.cluster import connect, map_on_cluster, scheduler_address
from dctconv.coefficient_file import load_coefficients
from dctconv.errors import ClusterError, ImageReadError
from dctconv.pipeline import transform_file


def write_images(folder: Path, count: int, size=(24, 20)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(count)
    paths = []
    for k in range(count):
        path = folder / f"image{k:03d}.png"
        Image.fromarray(rng.integers(0, 256, size, dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def slow_transform(path, *, out_dir, seconds):
    """transform_file after a pause: long enough for a test to kill a worker mid-run."""
    time.sleep(seconds)
    return transform_file(path, out_dir)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def same_files(folder_a: Path, folder_b: Path) -> None:
    names = sorted(p.name for p in folder_a.iterdir())
    assert names == sorted(p.name for p in folder_b.iterdir())
    for name in names:
        assert (folder_a / name).read_bytes() == (folder_b / name).read_bytes(), name


def test_each_file_is_a_task_and_the_outputs_are_those_of_one_process(dask_cluster, tmp_path):
    images = write_images(tmp_path / "in", 6) + [tmp_path / "in" / "missing.png"]
    work = functools.partial(transform_file, out_dir=tmp_path / "cluster")
    found = list(map_on_cluster(images, work, scheduler_file=dask_cluster.scheduler_file))
    assert sorted(index for index, _, _ in found) == list(range(len(images)))
    failures = {index: exc for index, result, exc in found if exc is not None}
    # A failing file gets its own error, raised on the worker and sent back; the others go on.
    assert list(failures) == [6] and isinstance(failures[6], ImageReadError)
    for index, result, exc in found:
        if exc is None:
            assert result.source == images[index]
    for image in images[:-1]:
        transform_file(image, tmp_path / "here")
    same_files(tmp_path / "cluster", tmp_path / "here")


def test_a_second_run_of_the_same_files_computes_again(dask_cluster, tmp_path):
    images = write_images(tmp_path / "in", 2)
    out = tmp_path / "out"
    work = functools.partial(transform_file, out_dir=out)
    list(map_on_cluster(images, work, address=dask_cluster.address))
    for path in out.iterdir():
        path.unlink()
    found = list(map_on_cluster(images, work, address=dask_cluster.address))
    assert [exc for _, _, exc in found] == [None, None]
    assert len(list(out.iterdir())) == 4  # written again, not a result remembered by the scheduler


def test_a_worker_killed_mid_run_loses_nothing(dask_cluster, tmp_path):
    images = write_images(tmp_path / "in", 12)
    out = tmp_path / "out"
    work = functools.partial(slow_transform, out_dir=out, seconds=0.3)
    victim = next(iter(dask_cluster.worker_pids().values()))
    found = []
    try:
        for index, result, exc in map_on_cluster(images, work, address=dask_cluster.address):
            found.append((index, exc))
            if len(found) == 2:
                os.kill(victim, signal.SIGKILL)  # its nanny starts a new worker
    finally:
        dask_cluster.wait_for_workers()  # leave two workers for the next test
    assert sorted(index for index, _ in found) == list(range(12))
    assert [exc for _, exc in found] == [None] * 12
    assert victim not in dask_cluster.worker_pids().values()
    # Every output is complete: it loads, and holds what the image transforms to.
    assert len(list(out.iterdir())) == 24
    for image in images:
        transform_file(image, tmp_path / "here")
    same_files(out, tmp_path / "here")
    coefficients, _ = load_coefficients(out / "image007_coefficients.npz")
    assert coefficients.shape == (16, 6, 5)


def test_local_cluster_of_processes(tmp_path):
    from distributed import Client, LocalCluster

    images = write_images(tmp_path / "in", 3)
    # One worker process (with its nanny): two would only add start-up time.
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster, set_as_default=False) as client:
        work = functools.partial(transform_file, out_dir=tmp_path / "cluster")
        found = list(map_on_cluster(images, work, client=client))
        assert client.status == "running"  # a client given is left open
    assert sorted((index, exc) for index, _, exc in found) == [(0, None), (1, None), (2, None)]
    for image in images:
        transform_file(image, tmp_path / "here")
    same_files(tmp_path / "cluster", tmp_path / "here")


def test_an_unreachable_scheduler_fails_in_one_line_within_seconds():
    address = f"tcp://127.0.0.1:{free_port()}"
    start = time.monotonic()
    with pytest.raises(ClusterError) as raised:
        list(map_on_cluster([Path("a.png")], str, address=address))
    assert time.monotonic() - start < 10
    message = str(raised.value)
    assert message.startswith(f"cannot reach the dask scheduler at {address}: ")
    assert "\n" not in message


@pytest.mark.parametrize(
    "text, message",
    [
        (None, "cannot read the scheduler file: No such file or directory"),
        ("{", 'not a dask scheduler file (JSON with the scheduler\'s "address")'),
        ('{"address": 3}', 'not a dask scheduler file (JSON with the scheduler\'s "address")'),
    ],
)
def test_a_bad_scheduler_file_is_named(tmp_path, text, message):
    path = tmp_path / "scheduler.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ClusterError, match=f"^{path}: ") as raised:
        connect(scheduler_file=path)
    assert message in str(raised.value)


def test_scheduler_file_address(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"type": "Scheduler", "address": "tcp://10.0.0.1:8786"}))
    assert scheduler_address(path) == "tcp://10.0.0.1:8786"


def test_without_dask_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed raises ImportError
    with pytest.raises(ClusterError, match=r'needs dask.distributed: pip install "dctconv\[distributed\]"$'):
        connect("tcp://127.0.0.1:8786")


def test_a_scheduler_that_dies_mid_run_ends_the_run_in_one_error(tmp_path):
    from dask_cluster import DaskCluster

    cluster = DaskCluster(tmp_path / "cluster", workers=1, nanny=False).start()
    try:
        images = write_images(tmp_path / "in", 8)
        out = tmp_path / "out"
        work = functools.partial(slow_transform, out_dir=out, seconds=0.3)
        finished = []
        with pytest.raises(ClusterError, match=r"^lost the connection to the dask scheduler at tcp://127\.0\.0\.1:\d+; "
                                               r"\d of 8 files were not finished$"):
            for index, result, exc in map_on_cluster(images, work, scheduler_file=cluster.scheduler_file):
                assert exc is None
                finished.append(index)
                if len(finished) == 1:
                    cluster.scheduler.kill()
    finally:
        cluster.stop()
    # The files finished before stay, complete.
    for index in finished:
        coefficients, header = load_coefficients(out / f"{images[index].stem}_coefficients.npz")
        assert header.image_shape == (24, 20)
