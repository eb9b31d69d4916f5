"""Running one function over many files: in this process, or in a pool of worker processes.

:func:`run_each` is what the commands call: it refuses inputs whose outputs would
collide, runs the work through a *backend*, reports each failure through a callback
as it happens and shows a progress bar. A backend is a function
``backend(items, work, *, jobs, preload)`` that yields ``(index, result, exception)``
for each item as it finishes (one of ``result`` and ``exception`` None);
:func:`map_in_processes` is the default one. The numbers are computed by the
library; this module only decides where.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import click

from ..errors import OutputCollisionError, WorkerLostError


def default_jobs() -> int:
    """Number of files processed at once by default: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def run_each(items, work, *, label: str, on_failure, jobs: int | None = 1, output_name=None, preload=(),
             backend=None):
    """Call ``work(item)`` for each item; report failures through ``on_failure`` and go on.

    Returns the list of results of the items that worked, in the order of ``items``,
    and whether any failed. ``on_failure(item, exception)`` is called once for each
    item that failed, as it happens. With ``jobs`` > 1 (None: :func:`default_jobs`)
    the items are processed that many at a time by ``backend`` (default
    :func:`map_in_processes`); ``work`` must then be picklable, e.g. a
    ``functools.partial`` of a module-level function. A progress bar (click's) on
    stderr counts finished items when there is more than one.

    ``output_name(item)`` gives the name the item's outputs are made from (its stem).
    An item whose name an earlier item already has would overwrite that one's
    outputs, so it is refused up front (an :class:`OutputCollisionError` to
    ``on_failure``), before any work starts in any process. ``preload`` names the
    modules ``work`` imports, for the worker processes.
    """
    jobs = default_jobs() if jobs is None else jobs
    backend = map_in_processes if backend is None else backend
    results, failed = {}, False
    if output_name is not None:
        items, refused = refuse_same_output_names(items, output_name)
        for item, exc in refused:
            failed = True
            on_failure(item, exc)
    bar = (
        click.progressbar(length=len(items), label=f"{label} {len(items)} files", file=sys.stderr)
        if len(items) > 1 else contextlib.nullcontext()
    )
    with bar:
        for index, result, exc in backend(items, work, jobs=jobs, preload=preload):
            if exc is None:
                results[index] = result
            else:
                failed = True
                on_failure(items[index], exc)
            if len(items) > 1:
                bar.update(1)
    return [results[index] for index in sorted(results)], failed


def refuse_same_output_names(items, output_name):
    """Split ``items`` into those to process and (item, error) for later ones whose outputs collide."""
    first, kept, refused = {}, [], []
    for item in items:
        name = output_name(item)
        earlier = first.setdefault(name, item)
        if earlier is item:
            kept.append(item)
        elif Path(earlier).resolve() == Path(item).resolve():
            refused.append((item, OutputCollisionError("given more than once; processed once")))
        else:
            refused.append((item, OutputCollisionError(
                f"its outputs would overwrite those of {earlier} (same name {name!r}); "
                "rename one of the inputs or give each its own -o DIR"
            )))
    return kept, refused


def map_in_processes(items, work, *, jobs: int, preload=()):
    """Yield ``(index, result, exception)`` for each item as ``work(item)`` finishes.

    One of ``result`` and ``exception`` is None. With ``jobs`` <= 1, or a single item,
    the work runs here, in order. Otherwise it runs in a pool of ``jobs`` worker
    processes and items come back in the order they finish; each worker uses its
    share of the CPUs for its threads (see :func:`_share_cores`), and the results are
    the same as in one process. Ctrl-C cancels the items not yet started.

    ``preload`` names modules that ``work`` imports. Where the workers are forked
    from a server process (Linux), that process imports them once and every worker
    starts with them loaded; otherwise each worker imports what it needs itself.

    Worker processes never write to this process's stdout or stderr (theirs are
    /dev/null): what goes wrong in them comes back as the item's exception, so no
    traceback of theirs reaches the user, and a caller reading this process's
    pipes sees them close when it ends. A worker that dies (the system's out-of-
    memory killer, a crash) fails its items with :class:`WorkerLostError`. Workers
    and the fork server exit within seconds when this process is gone, even
    after a SIGKILL.
    """
    if jobs <= 1 or len(items) <= 1:
        for index, item in enumerate(items):
            try:
                yield index, work(item), None
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:
                yield index, None, exc
        return

    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    # A fresh interpreter per worker (forkserver, or spawn where there is none): no
    # fork of a process that already runs BLAS threads.
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        _start_forkserver(context, preload)
    pool = ProcessPoolExecutor(
        max_workers=min(jobs, len(items)),
        mp_context=context,
        initializer=_start_worker,
        initargs=(min(jobs, len(items)),),
    )
    # SIGTERM stops the run as Ctrl-C does: the files in progress are finished, the rest
    # cancelled, and the workers exit. Left to Python's default, the process would die
    # at once and leave its workers waiting.
    with sigterm_as_ctrl_c():
        try:
            futures = {pool.submit(work, item): index for index, item in enumerate(items)}
            for future in as_completed(futures):
                exc = future.exception()
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise exc
                if isinstance(exc, BrokenProcessPool):
                    exc = WorkerLostError(
                        "not enough memory to process it, or its worker process crashed (it ended "
                        "abruptly); retry with fewer --jobs"
                    )
                yield futures[future], (None if exc else future.result()), exc
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def sigterm_as_ctrl_c():
    """Within the block, SIGTERM (kill, timeout, a service manager) raises KeyboardInterrupt.

    Python's default for SIGTERM is to die at once, leaving hidden temporaries behind
    and worker processes waiting; as a KeyboardInterrupt it unwinds like Ctrl-C, and
    every ``atomic_outputs`` block removes its temporaries. Only in the main thread
    (where Python runs signal handlers); elsewhere the block runs unchanged.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _nothing() -> None:
    """A process that does nothing: its start waits until the fork server can fork."""


#: Set for the fork server only: numpy and scipy start no BLAS threads there, so the
#: server forks a single-threaded process. The workers' BLAS calls are single-threaded
#: anyway (``transform.PRODUCT_MACS``); their thread pools are the transform's own.
_FORKSERVER_ENVIRONMENT = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _start_forkserver(context, preload) -> None:
    """Start the fork server (if not yet running) with ``preload`` imported in it.

    Workers that each import numpy, scipy, scikit-image and matplotlib at the same
    time slow each other down; with the modules imported once in the server, which
    the workers are forked from, each worker's first file of ``compress`` finished
    about a second sooner on a 2-core machine. A module that fails to import there is
    skipped (multiprocessing says nothing) and imported by the workers when needed.
    """
    from multiprocessing import forkserver

    context.set_forkserver_preload(["__main__", *preload])
    saved = {name: os.environ.get(name) for name in _FORKSERVER_ENVIRONMENT}
    os.environ.update(_FORKSERVER_ENVIRONMENT)
    try:
        with _standard_streams_to_null():
            forkserver.ensure_running()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    # Wait here until the imports are done. A pool whose workers wait for the server
    # instead, stopped by Ctrl-C in those seconds, left a half-started worker that
    # printed a traceback; a process that does nothing can be abandoned safely.
    waiter = context.Process(target=_nothing, daemon=True)
    waiter.start()
    waiter.join()


@contextlib.contextmanager
def _standard_streams_to_null():
    """Point file descriptors 1 and 2 at /dev/null for the block: for processes started in it.

    The fork server (and the resource tracker it starts) would otherwise inherit this
    process's stdout and stderr, and so would every worker forked from it: a
    KeyboardInterrupt or MemoryError while the server imports, or while a worker
    starts, printed a traceback to the user; and after a SIGKILL of this process
    those processes kept a calling script's pipes open, so that it hung.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    null = os.open(os.devnull, os.O_WRONLY)
    saved = [os.dup(fd) for fd in (1, 2)]
    try:
        for fd in (1, 2):
            os.dup2(null, fd)
        yield
    finally:
        for fd, copy in zip((1, 2), saved):
            os.dup2(copy, fd)
            os.close(copy)
        os.close(null)


def _start_worker(jobs: int) -> None:
    """Worker-process initializer: signals as the main process has them, an exit when it is gone.

    SIGTERM (sent to the whole group by a service manager) interrupts the file in
    progress as Ctrl-C does, so that its temporaries are removed. A thread waits on
    the main process's sentinel (multiprocessing closes it when that process ends,
    however it ends), then interrupts this one and, if it is still there after a
    grace period, exits: a worker would otherwise wait forever for work from a
    process that was SIGKILLed.
    """
    import signal
    import threading

    signal.signal(signal.SIGTERM, _interrupt)
    threading.Thread(target=_exit_with_parent, name="dctconv-parent-watch", daemon=True).start()
    _share_cores(jobs)


#: Seconds a worker whose main process is gone has to remove its temporaries.
_ORPHAN_GRACE = 2.0


def _exit_with_parent() -> None:
    import multiprocessing
    import signal
    import time

    parent = multiprocessing.parent_process()
    if parent is None:
        return
    parent.join()  # returns when the main process has ended
    os.kill(os.getpid(), signal.SIGTERM)  # the main thread: KeyboardInterrupt, temporaries removed
    time.sleep(_ORPHAN_GRACE)
    os._exit(1)


def _share_cores(jobs: int) -> None:
    """Worker-process initializer: give each of ``jobs`` processes its share of the CPUs.

    The transform's thread pool otherwise starts one thread per CPU in every process.
    """
    from .. import transform

    transform.set_default_workers(max(1, transform.default_workers() // jobs))
