"""The dask backend (dctconv/cluster.py) on a real cluster: a scheduler and two worker processes.

The work sent to the cluster is the commands' own per-file work (pipeline.transform_file),
and its outputs are compared byte for byte with the same work done in this process.
"""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import subprocess
import socket
import sys
import time
from pathlib import Path

import pytest

import _helpers
from dask_cluster import slow_transform
from _helpers import output_names
from dctconv.runtime._cluster import connect, map_on_cluster, scheduler_address
from dctconv.io._npz import load_coefficients
from dctconv.errors import ClusterError, ImageReadError
from dctconv.runtime._jobs import transform_file


def write_images(folder: Path, count: int, size=(24, 20)) -> list[Path]:
    return _helpers.write_images(folder, count, size, seed=count, name="image{k:03d}.png")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive_writer(name: str) -> bool:
    """Whether the process that a temporary's name (.dctconv-PID-HOST-XXXXXXXX.tmp) names still exists."""
    match = re.fullmatch(r"\.dctconv-(\d+)-[0-9a-f]{8}-\w{8}\.tmp", name)
    if match is None:
        return False
    try:
        os.kill(int(match[1]), 0)
    except ProcessLookupError:
        return False
    return True


def same_files(folder_a: Path, folder_b: Path) -> None:
    names = sorted(p.name for p in folder_a.iterdir() if not p.name.startswith("."))
    assert names == sorted(p.name for p in folder_b.iterdir() if not p.name.startswith("."))
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
    assert len(output_names(out)) == 4  # written again, not a result remembered by the scheduler


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
    assert len(output_names(out)) == 24
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


def test_an_address_that_is_not_a_dask_scheduler_is_one_line_and_exit_1_within_seconds(tmp_path):
    """A web server, and a socket that accepts and never answers: dask's handshake had no limit."""
    from dask_cluster import NotAScheduler

    image = write_images(tmp_path / "in", 1)[0]
    with NotAScheduler("http") as http, NotAScheduler("silent") as silent:
        runs = {}
        start = time.monotonic()
        for server in (http, silent):  # side by side: each waits out the same deadline
            command = [Path(sys.executable).parent / "dctconv", "compress", image, "-o", tmp_path / server.kind,
                       "--scheduler", server.address]
            runs[server] = subprocess.Popen([str(a) for a in command], stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, text=True)
        try:
            ends = {server: run.communicate(timeout=60) for server, run in runs.items()}
        finally:
            for run in runs.values():
                run.kill()
        # 10 s of waiting (5 for the connection, 5 for the handshake); the rest starting Python
        assert time.monotonic() - start < 25
    for server, (stdout, stderr) in ends.items():
        assert runs[server].returncode == 1
        assert stdout == "" and stderr == (
            f"Error: cannot reach the dask scheduler at {server.address}: something accepts connections "
            "there but no dask scheduler answered within 10 s; is it the address the scheduler printed "
            "(tcp://HOST:PORT)?\n")
        assert not (tmp_path / server.kind).exists()


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
                                               r"\d of 8 files done: .*image\d+\.png; not done: .*image\d+\.png$"):
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


# ---------------------------------------------------------------- the command line: --scheduler


def invoke(*args):
    from click.testing import CliRunner

    from dctconv.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


def test_commands_on_the_cluster_write_what_jobs_1_writes(dask_cluster, tmp_path):
    images = write_images(tmp_path / "in", 3)
    broken = tmp_path / "in" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    inputs = [images[0], broken, *images[1:]]
    runs = {}
    for place in (["--jobs", "1"], ["--scheduler", dask_cluster.address]):
        out = tmp_path / place[0].strip("-")
        forward = invoke("transform", *inputs, "-o", out / "t", *place, "--json")
        npz = sorted((out / "t").glob("*_coefficients.npz"))
        inverse = invoke("transform", "--inverse", *npz, "-o", out / "t", *place)
        squeezed = invoke("compress", *inputs, "-o", out / "c", *place, "--json")
        checked = invoke("verify", *images, "-n", "4", *(place if place[0] != "--jobs" else ()), "--json")
        runs[place[0]] = (out, forward, inverse, squeezed, checked)
    (here, *local), (there, *remote) = runs["--jobs"], runs["--scheduler"]
    for a, b in zip(local, remote):
        # The same report, but for the output folder's name.
        assert (a.exit_code, a.stdout, a.stderr) == (
            b.exit_code, b.stdout.replace(str(there), str(here)), b.stderr.replace(str(there), str(here)))
    forward, inverse, squeezed, checked = remote
    # The broken file gets its one line in each run; the others go on.
    line = f"Error: {broken}: "
    assert forward.exit_code == 1 and forward.stderr.count(line) == 1
    assert len(json.loads(forward.stdout)["files"]) == 3
    assert inverse.exit_code == 0 and squeezed.exit_code == 1 and squeezed.stderr.count(line) == 1
    assert checked.exit_code == 0 and json.loads(checked.stdout)["passed"]
    for folder in ("t", "c"):
        same_files(here / folder, there / folder)
    assert len(output_names(there / "c")) == 3 * 6


def test_a_worker_killed_mid_command_leaves_every_output_complete(dask_cluster, tmp_path):
    images = write_images(tmp_path / "in", 16, size=(64, 64))
    out = tmp_path / "out"
    command = [Path(sys.executable).parent / "dctconv", "compress", tmp_path / "in", "-o", out,
               "--scheduler", dask_cluster.address]
    victim = next(iter(dask_cluster.worker_pids().values()))
    run = subprocess.Popen([str(a) for a in command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob("*_metrics.json")) and time.monotonic() < deadline:
            time.sleep(0.01)
        done_at_kill = len(list(out.glob("*_metrics.json")))
        os.kill(victim, signal.SIGKILL)
        stdout, stderr = run.communicate(timeout=180)
    finally:
        run.kill()
        dask_cluster.wait_for_workers()
    assert 1 <= done_at_kill < 16, "the run was not under way when the worker was killed"
    assert run.returncode == 0, stderr
    assert len(stdout.splitlines()) == 1 + 16  # the table: a header and one row per image
    assert invoke("compress", tmp_path / "in", "-o", tmp_path / "here", "--jobs", "1").exit_code == 0
    same_files(out, tmp_path / "here")
    # A task killed while writing leaves its hidden temporary (a SIGKILL gives no chance
    # to remove it); the end of the run removed it, its process being gone. (One of a
    # process not yet reaped, a zombie, counts as live and stays.)
    left = [p.name for p in out.glob(".dctconv-*")]
    assert all(alive_writer(name) for name in left), left


def test_an_unreachable_scheduler_is_one_line_and_exit_1(tmp_path):
    image = write_images(tmp_path / "in", 1)[0]
    address = f"tcp://127.0.0.1:{free_port()}"
    command = [Path(sys.executable).parent / "dctconv", "transform", image, "-o", tmp_path / "out",
               "--scheduler", address]
    start = time.monotonic()
    done = subprocess.run([str(a) for a in command], capture_output=True, text=True, timeout=60)
    assert time.monotonic() - start < 20  # 5 s of it waiting for the scheduler; the rest starting Python
    assert done.returncode == 1
    assert done.stderr == (f"Error: cannot reach the dask scheduler at {address}: "
                           f"Timed out trying to connect to {address} after 5 s\n")
    assert done.stdout == "" and not (tmp_path / "out").exists()


def test_without_dask_the_command_says_what_to_install(tmp_path, monkeypatch):
    image = write_images(tmp_path / "in", 1)[0]
    monkeypatch.setitem(sys.modules, "distributed", None)
    result = invoke("compress", image, "-o", tmp_path / "out", "--scheduler", "tcp://127.0.0.1:8786")
    assert result.exit_code == 1
    assert result.stderr == ('Error: running on a dask cluster needs dask.distributed: '
                             'pip install "dctconv[distributed]"\n')


@pytest.mark.parametrize("args, message", [
    (["--scheduler", "tcp://127.0.0.1:1", "--jobs", "2"],
     "Invalid value for '--jobs' / '-j': --jobs runs the files in processes here and --scheduler on a dask "
     "cluster; give only one of them"),
    (["--jobs", "2", "--scheduler", "tcp://127.0.0.1:1"],
     "Invalid value for '--scheduler': --jobs runs the files in processes here and --scheduler on a dask "
     "cluster; give only one of them"),
    (["--scheduler", "tcp://127.0.0.1:1", "--scheduler-file", "FILE"],
     "Invalid value for '--scheduler-file': give the scheduler's address (--scheduler) or its file "
     "(--scheduler-file), not both"),
])
def test_one_place_to_run(tmp_path, args, message):
    image = write_images(tmp_path / "in", 1)[0]
    (tmp_path / "FILE").write_text("{}")
    args = [tmp_path / "FILE" if a == "FILE" else a for a in args]
    for command in ("transform", "compress"):
        result = invoke(command, image, "-o", tmp_path / "out", *args)
        assert result.exit_code == 2
        assert result.stderr.splitlines()[-1] == f"Error: {message}"
    # --jobs 1 is the default place: it goes with a scheduler.
    result = invoke("transform", image, "-o", tmp_path / "out", "--jobs", "1", "--scheduler", "not an address")
    assert result.exit_code == 1 and result.stderr.startswith("Error: cannot reach the dask scheduler at not an address: ")


def test_verify_sends_only_image_lists_to_a_cluster(tmp_path):
    image = write_images(tmp_path / "in", 1)[0]
    assert invoke("transform", image, "-o", tmp_path / "out").exit_code == 0
    for args in ([], [tmp_path / "out" / "image000_coefficients.npz", image]):
        result = invoke("verify", *args, "--scheduler", "tcp://127.0.0.1:1")
        assert result.exit_code == 2
        assert result.stderr.splitlines()[-1] == (
            "Error: a dask cluster (--scheduler, --scheduler-file) checks image files: "
            "dctconv verify IMAGE... --scheduler ADDRESS")


def test_skip_existing_on_the_cluster(dask_cluster, tmp_path):
    images = write_images(tmp_path / "in", 3)
    out = tmp_path / "out"
    assert invoke("transform", images[0], "-o", out, "--no-pictures").exit_code == 0
    result = invoke("transform", *images, "-o", out, "--no-pictures", "--skip-existing",
                    "--scheduler-file", dask_cluster.scheduler_file, "--json")
    assert result.exit_code == 0, result.output
    assert ("Note: skipped 1 of 3 inputs whose outputs are there, whole, and made from the same content with "
            "the same settings (--skip-existing)") in result.stderr
    assert [Path(f["input"]).name for f in json.loads(result.stdout)["files"]] == ["image001.png", "image002.png"]
