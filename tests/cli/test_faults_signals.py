"""Issue 10, signals sent to the installed script: SIGTERM as Ctrl-C (item 3), no traceback at
any moment of a --jobs run (item 8), no orphans after a SIGKILL (item 9)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _helpers import alive, descendants
from references import SAMPLES
from _helpers import output_names

DCTCONV = Path(sys.executable).with_name("dctconv")


def start(args, **kwargs):
    return subprocess.Popen([str(DCTCONV), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kwargs)


def wait_for(condition, timeout=60.0, what="the condition"):
    """Poll ``condition()`` every 5 ms until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".dctconv-*")) if folder.exists() else []


def test_sigterm_while_writing_one_file_removes_the_temporaries(tmp_path):
    """timeout, kill, a service manager: one file, no --jobs. It used to die at once, leaving .tmp files."""
    out = tmp_path / "out"
    process = start(["compress", SAMPLES / "camera.png", "-o", out])
    try:
        wait_for(lambda: temporaries(out), what="the first temporary")
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 1
    assert stderr.splitlines() == ["", "Aborted!"]  # click ends the line, then says so
    assert os.listdir(out) == []


# ---------------------------------------------------------------- the processes of a --jobs run

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def photos(folder: Path, count: int = 3) -> Path:
    folder.mkdir()
    for k in range(count):
        shutil.copy(SAMPLES / "camera.png", folder / f"photo{k}.png")
    return folder


def fork_server_started(process):
    return lambda: any("forkserver" in _cmdline(pid) for pid in descendants(process.pid))


def first_temporary(out):
    return lambda: temporaries(out)


def first_output(out):
    return lambda: out.exists() and any(not name.startswith(".") for name in os.listdir(out))


@pytest.mark.parametrize("moment", [fork_server_started, first_temporary, first_output],
                         ids=["while-the-fork-server-imports", "while-writing", "after-a-file"])
def test_ctrl_c_at_any_moment_of_a_jobs_run_prints_no_traceback(moment, tmp_path):
    """Ctrl-C from a terminal reaches the whole process group: main process, fork server, workers."""
    out = tmp_path / "out"
    process = start(["compress", photos(tmp_path / "in"), "-o", out, "--jobs", "2"], start_new_session=True)
    try:
        wait_for(moment(process) if moment is fork_server_started else moment(out), what=moment.__name__)
        started = descendants(process.pid)
        os.killpg(process.pid, signal.SIGINT)
        stdout, stderr = process.communicate(timeout=90)
    finally:
        process.kill()
    assert process.returncode == 1
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line and line != "compress 3 files"]
    assert lines[-1] == "Aborted!" and len(lines) == 2, stderr
    assert lines[0].startswith("Note: interrupted")  # which files finished, if any
    wait_for(lambda: not any(alive(pid) for pid in started), timeout=30, what="the workers to exit")
    assert temporaries(out) == []


def test_a_worker_killed_for_memory_costs_one_line_per_file(tmp_path):
    """The out-of-memory killer SIGKILLs a worker: its files get one line each, never a traceback."""
    out = tmp_path / "out"
    process = start(["compress", photos(tmp_path / "in"), "-o", out, "--jobs", "2"])
    try:
        wait_for(first_temporary(out), what="a worker writing")
        server = next(pid for pid in descendants(process.pid) if "forkserver" in _cmdline(pid))
        worker = next(pid for pid in descendants(server) if alive(pid))
        os.kill(worker, signal.SIGKILL)
        stdout, stderr = process.communicate(timeout=90)
    finally:
        process.kill()
    assert process.returncode == 1
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("Error")]
    assert errors, stderr
    for line in errors:
        assert line.endswith(": not enough memory to process it, or its worker process crashed "
                             "(it ended abruptly); retry with fewer --jobs"), line


def test_sigkill_of_the_main_process_leaves_no_orphans(tmp_path):
    """kill -9 of dctconv: the fork server and the workers exit within seconds, and the caller's pipes close."""
    out = tmp_path / "out"
    process = start(["compress", photos(tmp_path / "in"), "-o", out, "--jobs", "2"])
    try:
        wait_for(first_temporary(out), what="the workers writing")
        started = descendants(process.pid)
        assert len(started) >= 3  # fork server and two workers (and the resource tracker)
        process.kill()
        # A worker that kept the pipes open would make this wait for ever (it timed out).
        process.communicate(timeout=20)
    finally:
        process.kill()
    wait_for(lambda: not any(alive(pid) for pid in started), timeout=20, what="the orphans to exit")


COMPRESS_OUTPUTS = ("compressed.dctz", "error.png", "maps.png", "metrics.json", "reconstruction.png", "summary.png")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupt_starts_no_file_and_lists_the_finished_ones(signum, tmp_path):
    """Issue 17: Ctrl-C (or SIGTERM) to the process group of `compress` of 8 images with --jobs 2.
    The workers had files queued and went on with them after the interrupt (photo5 and photo6
    done, photo3 and photo4 missing), and nothing said which files had finished."""
    out = tmp_path / "out"
    names = [f"photo{k}" for k in range(8)]
    process = start(["compress", photos(tmp_path / "in", count=8), "-o", out, "--jobs", "2"],
                    start_new_session=True)
    try:
        wait_for(lambda: any(out.glob("*_metrics.json")), timeout=120, what="the first finished file")
        os.killpg(process.pid, signum)
        finished_then = {path.name.removesuffix("_metrics.json") for path in out.glob("*_metrics.json")}
        stdout, stderr = process.communicate(timeout=90)
    finally:
        process.kill()
    assert process.returncode == 1
    assert "Traceback" not in stderr
    done = sorted({name.split("_")[0] for name in output_names(out)})
    # Each file's outputs are complete, or absent; nothing half-written.
    assert temporaries(out) == []
    for name in done:
        assert sorted(p.name.removeprefix(f"{name}_") for p in out.glob(f"{name}_*")) == list(COMPRESS_OUTPUTS)
    # Files are started in input order, at most one per worker ahead of those finished:
    # none past that was started after the interrupt.
    assert set(done) <= set(names[:len(finished_then) + 2]), (done, finished_then)
    assert set(finished_then) <= set(done)
    listed = [line for line in stderr.splitlines() if line.startswith("Note: interrupted")]
    assert listed == [
        f"Note: interrupted; {len(done)} of 8 files finished, their outputs complete: "
        f"{', '.join(str(tmp_path / 'in' / f'{name}.png') for name in done)}; the others left none "
        "(--skip-existing resumes the run)"
    ], stderr
    assert stderr.splitlines()[-1] == "Aborted!"
