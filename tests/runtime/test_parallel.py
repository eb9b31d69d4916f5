"""dctconv.runtime._parallel: work over many items in this process or in worker processes.

The command-line side of --jobs (identical outputs, error lines, Ctrl-C and SIGTERM)
is in test_cli_jobs.py.
"""

import importlib
import json
import multiprocessing
import os
import subprocess
import sys

import pytest

from dctconv import transform

from dctconv.runtime import _parallel as parallel

from dctconv.runtime import _jobs as pipeline
from dctconv.errors import OutputCollisionError
from dctconv.runtime._parallel import map_in_processes, run_each


def test_run_each_in_one_process_keeps_order_and_reports_failures():
    # jobs=1 runs here, so a local function is fine; the pool path is covered above.
    def work(item):
        if item == "b":
            raise ValueError("boom")
        return item.upper()

    failures = []
    results, failed = run_each(["a", "b", "c"], work, label="test", jobs=1,
                               on_failure=lambda item, exc: failures.append((item, repr(exc))))
    assert results == ["A", "C"] and failed
    assert failures == [("b", "ValueError('boom')")]


def test_map_in_processes_runs_each_item_once_in_workers():
    outcomes = sorted(map_in_processes([3, -4, 5], abs, jobs=2))
    assert outcomes == [(0, 3, None), (1, 4, None), (2, 5, None)]


def test_every_library_error_survives_the_trip_back_from_a_worker_process():
    # --jobs pickles exceptions raised in worker processes; one that cannot be
    # unpickled breaks the whole pool (BrokenProcessPool) instead of one file.
    import inspect
    import pickle

    import dctconv.errors as errors

    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, errors.DctconvError)]
    assert len(classes) > 10
    for cls in classes:
        if issubclass(cls, errors.TooManyPixelsError):
            exc = cls("too big", pixels=10, limit=5)
        else:
            exc = cls("something is wrong")
        back = pickle.loads(pickle.dumps(exc))
        assert type(back) is cls and str(back) == str(exc)
        if isinstance(exc, errors.TooManyPixelsError):
            assert (back.pixels, back.limit) == (10, 5)


@pytest.mark.parametrize("name", sorted(set(pipeline.TRANSFORM_IMPORTS + pipeline.COMPRESS_IMPORTS)))
def test_every_module_the_workers_preload_exists(name):
    # The fork server skips a module that fails to import without a word; a renamed
    # module would quietly bring back the slow start of every worker.
    importlib.import_module(name)


_PROBE = '''
import os, sys
def probe(_):
    return "matplotlib.figure" in sys.modules, os.environ.get("OPENBLAS_NUM_THREADS")
'''

_PARENT = '''
import json, os, sys
from dctconv.runtime._parallel import map_in_processes
from probe import probe
outcomes = list(map_in_processes([1, 2, 3], probe, jobs=2, preload=("dctconv.measure._figures", "matplotlib.figure")))
print(json.dumps({"results": [r for _, r, _ in outcomes], "errors": [repr(e) for _, _, e in outcomes if e],
                  "environ": os.environ.get("OPENBLAS_NUM_THREADS")}))
'''


@pytest.mark.skipif("forkserver" not in multiprocessing.get_all_start_methods(), reason="needs a fork server")
def test_workers_start_with_the_preloaded_modules_and_one_blas_thread(tmp_path):
    # A fresh interpreter: the fork server of this test process may already be running,
    # started by another test with other modules.
    (tmp_path / "probe.py").write_text(_PROBE)
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-c", _PARENT], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["errors"] == []
    # Loaded before the work began; and the fork server (whose environment the workers
    # inherit) imported numpy and scipy with one BLAS thread. Its thread count cannot be
    # seen from a worker: OpenBLAS itself stops its threads before every fork.
    assert report["results"] == [[True, "1"]] * 3
    assert report["environ"] is None  # the parent's environment is left as it was


_ENGINE_PARENT = '''
import json
from dctconv.runtime._jobs import COMPRESS_DATA_IMPORTS
from dctconv.runtime._parallel import map_in_processes
from probe import probe
print(json.dumps([r for _, r, _ in map_in_processes([1, 2], probe, jobs=2, preload=COMPRESS_DATA_IMPORTS)]))
'''

_ENGINE_PROBE = '''
def probe(_):
    from dctconv.codec import _engine, _rdoq
    from dctconv.measure import _ssim
    # Compiled (or loaded from numba's cache) before this worker's first file.
    # The map coders of a bound's residual (ADRS, ADRP) too: every 16-bit image's default has one.
    return min(len(_engine._code_levels.signatures), len(_rdoq._decide.signatures),
               len(_ssim._ssim_rows.signatures), len(_engine._code_map.signatures),
               len(_engine._code_pmap.signatures))
'''


@pytest.mark.skipif("forkserver" not in multiprocessing.get_all_start_methods(), reason="needs a fork server")
def test_compress_workers_start_with_the_codec_engine_and_the_ssim_loaded(tmp_path):
    # Each worker loaded numba's compiled loops at its first file (0.7 s); the fork server
    # now runs them once (dctconv.runtime._warm) and the workers are forked with them.
    (tmp_path / "probe.py").write_text(_ENGINE_PROBE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", _ENGINE_PARENT], capture_output=True, text=True, env=env,
                          timeout=180)
    assert done.returncode == 0, done.stderr
    assert all(count >= 1 for count in json.loads(done.stdout)), done.stdout


def test_run_each_takes_another_backend_and_reports_its_failures_in_input_order():
    # A backend yields (index, result, exception) in any order, as a cluster would.
    def backend(items, work, *, jobs, preload):
        assert (jobs, preload) == (4, ("x",))
        for index in reversed(range(len(items))):
            try:
                yield index, work(items[index]), None
            except ValueError as exc:
                yield index, None, exc

    def work(item):
        if item < 0:
            raise ValueError(item)
        return 10 * item

    failures = []
    results, failed = run_each([1, -2, 3], work, label="test", jobs=4, preload=("x",), backend=backend,
                               on_failure=lambda item, exc: failures.append(item))
    assert results == [10, 30] and failed and failures == [-2]


def test_run_each_refuses_colliding_names_before_any_work(tmp_path):
    a, b = tmp_path / "a" / "photo.png", tmp_path / "b" / "photo.png"
    done, failures = [], []
    # As click gives them: a separate object for each argument, even the same path twice.
    results, failed = run_each([a, b, tmp_path / "a" / "photo.png"], done.append, label="test", output_name=lambda p: p.stem,
                               on_failure=lambda item, exc: failures.append((item, exc)))
    assert done == [a] and failed
    assert [item for item, _ in failures] == [b, a]
    assert all(isinstance(exc, OutputCollisionError) for _, exc in failures)
    assert str(failures[0][1]) == (f"its outputs would overwrite those of {a} (same name 'photo'); "
                                   "rename one of the inputs or give each its own -o DIR")
    assert str(failures[1][1]) == "given more than once; processed once"


def test_worker_processes_share_the_cores_through_the_transform_setter(monkeypatch):
    monkeypatch.setattr(transform, "DEFAULT_WORKERS", None)
    cores = transform.default_workers()
    parallel._share_cores(2)
    assert transform.default_workers() == max(1, cores // 2)
    transform.set_default_workers(None)
    assert transform.default_workers() == cores


def test_a_worker_that_crashes_says_why_and_one_that_is_killed_blames_memory():
    """Issue 17: only a worker that was killed (the out-of-memory killer's SIGKILL) is reported
    as out of memory; one that crashed gives its own last words."""
    import ctypes
    import signal

    from dctconv.errors import WorkerLostError

    outcomes = list(map_in_processes([1, 1], ctypes.string_at, jobs=2))  # reads address 1
    assert len(outcomes) == 2
    for _, result, exc in outcomes:
        assert result is None and isinstance(exc, WorkerLostError)
        assert str(exc) == ("its worker process failed (Fatal Python error: Segmentation fault); "
                            "--jobs 1 runs the files in this process")

    outcomes = list(map_in_processes([signal.SIGKILL] * 2, signal.raise_signal, jobs=2))
    assert [str(exc) for _, _, exc in outcomes] == [
        "not enough memory to process it, or its worker process crashed (it ended abruptly); "
        "retry with fewer --jobs"] * 2


_LATE_SIGNAL_PROBE = '''
import os, signal, threading, time

def work(item):
    main, index = item
    if index == 0:
        time.sleep(1.5)
        return "finished"
    # This worker's file is interrupted at once, and the run's own SIGTERM reaches the main
    # process only later, while it waits for the file in progress (index 0) to finish.
    threading.Timer(0.5, os.kill, (main, signal.SIGTERM)).start()
    raise KeyboardInterrupt
'''

_LATE_SIGNAL_PARENT = '''
import json, os
from dctconv.runtime._parallel import Interrupted, run_each
from probe import work
try:
    run_each([(os.getpid(), 0), (os.getpid(), 1)], work, label="t", on_failure=lambda item, exc: None, jobs=2)
    print(json.dumps("not interrupted"))
except Interrupted as stop:
    print(json.dumps([index for _, index in stop.finished]))
'''


def test_a_signal_that_comes_after_a_workers_interrupt_still_lists_the_finished_files(tmp_path):
    # A fresh-clone CI run said "interrupted before any of the 8 files finished" with one file's
    # outputs complete: the main process's own SIGTERM broke off its wait for that file.
    (tmp_path / "probe.py").write_text(_LATE_SIGNAL_PROBE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", _LATE_SIGNAL_PARENT], capture_output=True, text=True, env=env,
                          timeout=60)  # before the fix the main process hung there
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [0], done.stdout
