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


from ..errors import OutputCollisionError, WorkerLostError, WorkerStartError


def default_jobs() -> int:
    """Number of files processed at once by default: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def run_each(items, work, *, label: str, on_failure, jobs: int | None = 1, output_name=None, preload=(),
             backend=None, progress=None):
    """Call ``work(item)`` for each item; report failures through ``on_failure`` and go on.

    Returns the list of results of the items that worked, in the order of ``items``,
    and whether any failed. ``on_failure(item, exception)`` is called once for each
    item that failed, as it happens. With ``jobs`` > 1 (None: :func:`default_jobs`)
    the items are processed that many at a time by ``backend`` (default
    :func:`map_in_processes`); ``work`` must then be picklable, e.g. a
    ``functools.partial`` of a module-level function. ``progress(length, label)``, when
    given, makes the progress bar that counts finished items when there is more than one
    (a context manager with ``update(n)``: the command line passes click's, so that only
    the command line imports click).

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
    counted = progress is not None and len(items) > 1
    bar = progress(len(items), f"{label} {len(items)} files") if counted else contextlib.nullcontext()

    def take(outcome):
        nonlocal failed
        index, result, exc = outcome
        if exc is None:
            if index in results:  # handed back again after Ctrl-C (map_in_processes)
                return
            results[index] = result
        else:
            failed = True
            on_failure(items[index], exc)
        if counted:
            bar.update(1)

    outcomes = backend(items, work, jobs=jobs, preload=preload)
    with bar:
        try:
            for outcome in outcomes:
                take(outcome)
        except KeyboardInterrupt:
            # The backend stops what runs and starts nothing more; it may still hand
            # back items that finished meanwhile, which count as done.
            with contextlib.suppress(KeyboardInterrupt, StopIteration):
                outcome = outcomes.throw(KeyboardInterrupt())
                while True:
                    take(outcome)
                    outcome = next(outcomes)
            raise Interrupted([items[index] for index in sorted(results)], len(items)) from None
    return [results[index] for index in sorted(results)], failed


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped :func:`run_each`: ``finished`` lists the items whose work was done
    (their outputs complete), in input order, out of ``total``."""

    def __init__(self, finished, total: int):
        super().__init__()
        self.finished = finished
        self.total = total


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

    The workers import from this process's ``sys.path``, whatever the current folder.
    They never write to this process's stdout or stderr (their stdout is /dev/null,
    their stderr an unlinked temporary file): what goes wrong in them comes back as
    the item's exception, so no traceback of theirs reaches the user, and a caller
    reading this process's pipes sees them close when it ends. A worker that dies
    fails its items with :class:`WorkerLostError`, which gives the last words it
    wrote (a fatal error) or, when there are none (the system's out-of-memory
    killer), says memory; workers that cannot start raise :class:`WorkerStartError`
    before any item. Workers and the fork server exit within seconds when this
    process is gone, even after a SIGKILL.
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
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    # A fresh interpreter per worker (forkserver, or spawn where there is none): no
    # fork of a process that already runs BLAS threads.
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        _start_forkserver(context, preload)
    said = _worker_stderr.tell() if _worker_stderr is not None else 0
    pool = ProcessPoolExecutor(
        max_workers=min(jobs, len(items)),
        mp_context=context,
        initializer=_start_worker,
        initargs=(min(jobs, len(items)), {name: os.environ.get(name) for name in _PATH_VARIABLES}),
    )
    # SIGTERM stops the run as Ctrl-C does: the files in progress are finished, the rest
    # cancelled, and the workers exit. Left to Python's default, the process would die
    # at once and leave its workers waiting.
    with sigterm_as_ctrl_c():
        # Items are handed to the pool one per free worker, not all at once: the pool
        # queues what it is given ahead of its workers, beyond the reach of a cancel,
        # and after Ctrl-C its workers went on to start those files.
        waiting = iter(enumerate(items))
        running, unstarted = {}, []
        broken = None
        quiet = None

        def start_next() -> None:
            for index, item in waiting:
                try:
                    running[pool.submit(_call_in_worker, work, item)] = index
                except BrokenProcessPool:  # a worker died; its future says so soon
                    unstarted.append(index)
                return

        try:
            for _ in range(min(jobs, len(items))):
                start_next()
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    index = running[future]
                    exc = future.exception()
                    if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                        raise exc
                    if isinstance(exc, BrokenProcessPool):
                        exc = broken = broken or WorkerLostError(_why_lost(said))
                    yield index, (None if exc else future.result()), exc
                    # Only now: Ctrl-C while the caller took it hands it back again below.
                    del running[future]
                    if broken is None:
                        start_next()
            # A broken pool runs nothing more: the items it did not start fail with its loss.
            for index in [*unstarted, *(index for index, _ in waiting)]:
                yield index, None, broken or WorkerLostError(_why_lost(said))
        except (KeyboardInterrupt, GeneratorExit):
            # The signal that stops a run reaches this process and its workers at once (a
            # process group's SIGTERM, a terminal's Ctrl-C): a worker's interrupted file can come
            # back as a KeyboardInterrupt before this process handles its own signal, which then
            # broke off the wait below, and the files that had finished went unlisted. The run
            # is stopping already: a signal from here on changes nothing.
            quiet = _signals_ignored()
            pool.shutdown(wait=True, cancel_futures=True)
            finished = [(index, future.result()) for future, index in running.items()
                        if future.done() and not future.cancelled() and future.exception() is None]
            running.clear()
            if not isinstance(sys.exc_info()[1], GeneratorExit):
                for index, result in sorted(finished):  # finished while the others stopped
                    yield index, result, None
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            if quiet is not None:
                quiet()


def _signals_ignored():
    """Make SIGINT and SIGTERM do nothing in this process (main thread only); return what restores
    their handlers, or None where they cannot be changed."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)

    return restore


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


#: Set for the fork server so that it imports from where this process did (below).
_PATH_VARIABLES = ("PYTHONSAFEPATH", "PYTHONPATH")


def _forkserver_environment() -> dict[str, str]:
    """The environment variables the fork server starts with: :data:`_FORKSERVER_ENVIRONMENT`, and
    this process's ``sys.path``.

    The fork server is a fresh ``python -c`` whose ``sys.path`` starts with its current
    folder, and Python does not give it this process's ``sys.path`` (it passes it, and
    the fork server ignores it). From the folder that holds a clone named ``dctconv``,
    that folder's ``dctconv/`` is a namespace package that hides an editable install (whose
    finder comes after the current folder), and every worker failed. PYTHONSAFEPATH
    (Python 3.11 and later) keeps the current folder out; PYTHONPATH puts this process's
    ``sys.path`` first, so that the workers import every module from where this process did.
    """
    path = [entry or os.getcwd() for entry in sys.path]
    return {**_FORKSERVER_ENVIRONMENT, "PYTHONSAFEPATH": "1", "PYTHONPATH": os.pathsep.join(path)}


#: The file the fork server's and the workers' stderr goes to (unlinked, read back by
#: :func:`_why_lost`), once the fork server is started.
_worker_stderr = None


def _start_forkserver(context, preload) -> None:
    """Start the fork server (if not yet running) with ``preload`` imported in it.

    Workers that each import numpy, scipy, scikit-image and matplotlib at the same
    time slow each other down; with the modules imported once in the server, which
    the workers are forked from, each worker's first file of ``compress`` finished
    about a second sooner on a 2-core machine. A module that fails to import there is
    skipped (multiprocessing says nothing) and imported by the workers when needed.

    A worker is then started and waited for: if it cannot start (the fork server
    failed, the workers cannot import dctconv), :class:`WorkerStartError` says why,
    once, before any file.
    """
    from multiprocessing import forkserver

    context.set_forkserver_preload(["__main__", *preload])
    environment = _forkserver_environment()
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    try:
        with _standard_streams_to_log():
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
    said = _worker_stderr.tell() if _worker_stderr is not None else 0
    try:
        waiter = context.Process(target=_nothing, daemon=True)
        waiter.start()
        waiter.join()
    except (OSError, EOFError) as exc:  # the fork server is gone
        raise WorkerStartError(_cannot_start(said, exc)) from None
    if waiter.exitcode != 0:
        raise WorkerStartError(_cannot_start(said, f"exit status {waiter.exitcode}"))


def _cannot_start(said: int, fallback) -> str:
    cause = _last_error(said) or str(fallback) or type(fallback).__name__
    return f"worker processes for --jobs cannot start ({cause}); --jobs 1 runs the files in this process"


def _why_lost(said: int) -> str:
    """Why a worker ended abruptly: the error it printed, else it was killed (most often for memory)."""
    cause = _last_error(said)
    if cause is None:
        return ("not enough memory to process it, or its worker process crashed (it ended "
                "abruptly); retry with fewer --jobs")
    return f"its worker process failed ({cause}); --jobs 1 runs the files in this process"


def _worker_output(said: int) -> str:
    """What the fork server and the workers wrote to stderr since offset ``said``."""
    if _worker_stderr is None:
        return ""
    _worker_stderr.flush()
    return os.pread(_worker_stderr.fileno(), 1 << 20, said).decode(errors="replace")


def _last_error(said: int) -> str | None:
    """The last line of the first traceback (or fatal error) the workers wrote since ``said``, if any.

    Workers stopped on purpose (Ctrl-C, SIGTERM: ``KeyboardInterrupt``) do not count.
    """
    for block in _worker_output(said).split("Traceback (most recent call last):")[1:]:
        # The exception is the first line after the frames, which are indented.
        error = next((line.strip() for line in block.splitlines() if line.strip() and not line[0].isspace()), None)
        if error is not None and not error.startswith("KeyboardInterrupt"):
            return error
    for line in _worker_output(said).splitlines():
        if line.startswith("Fatal Python error"):
            return line.strip()
    return None


@contextlib.contextmanager
def _standard_streams_to_log():
    """Point file descriptor 1 at /dev/null and 2 at :data:`_worker_stderr` for the block:
    for processes started in it.

    The fork server (and the resource tracker it starts) would otherwise inherit this
    process's stdout and stderr, and so would every worker forked from it: a
    KeyboardInterrupt or MemoryError while the server imports, or while a worker
    starts, printed a traceback to the user; and after a SIGKILL of this process
    those processes kept a calling script's pipes open, so that it hung. Their stderr
    is an unlinked temporary file instead, which this process reads back to say why
    a worker failed (:func:`_why_lost`).
    """
    import tempfile

    global _worker_stderr
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    if _worker_stderr is None:
        _worker_stderr = tempfile.TemporaryFile(prefix="dctconv-workers-")
    null = os.open(os.devnull, os.O_WRONLY)
    saved = [os.dup(fd) for fd in (1, 2)]
    try:
        os.dup2(null, 1)
        os.dup2(_worker_stderr.fileno(), 2)
        yield
    finally:
        for fd, copy in zip((1, 2), saved):
            os.dup2(copy, fd)
            os.close(copy)
        os.close(null)


def _start_worker(jobs: int, environment: dict[str, str | None]) -> None:
    """Worker-process initializer: signals as the main process has them, an exit when it is gone.

    SIGTERM (sent to the whole group by a service manager) interrupts the file in
    progress as Ctrl-C does, so that its temporaries are removed; either signal that
    arrives between files (while a result goes back, or while the worker waits for
    the next file), or once the file's outputs are being put in place
    (:data:`dctconv.io._atomic.on_commit`), is kept, and the worker starts no file after
    it (:func:`_call_in_worker`). A thread waits on
    the main process's sentinel (multiprocessing closes it when that process ends,
    however it ends), then interrupts this one and, if it is still there after a
    grace period, exits: a worker would otherwise wait forever for work from a
    process that was SIGKILLed.
    """
    import faulthandler
    import signal
    import threading

    signal.signal(signal.SIGTERM, _interrupt_work)
    signal.signal(signal.SIGINT, _interrupt_work)
    # The fork server's search path (:data:`_PATH_VARIABLES`) is not for the programs
    # the workers start: they see this process's.
    for name, value in environment.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    # A crash (a segmentation fault in a compiled library) then leaves its cause in
    # the workers' log for :func:`_why_lost`, where it would otherwise say nothing.
    faulthandler.enable()
    threading.Thread(target=_exit_with_parent, name="dctconv-parent-watch", daemon=True).start()
    _share_cores(jobs)
    from ..io import _atomic

    _atomic.on_commit = _finishing


#: In a worker process: whether a file is being processed, and whether Ctrl-C or SIGTERM
#: came while none was.
_working = False
_stopped = False


def _interrupt_work(signum, frame):
    """A worker's handler of SIGINT and SIGTERM: interrupt the file in progress, else remember."""
    global _stopped
    _stopped = True
    if _working:
        raise KeyboardInterrupt


def _finishing() -> None:
    """The file's outputs are being put in place: a signal from now on stops the worker after it."""
    global _working
    _working = False


def _call_in_worker(work, item):
    """``work(item)`` in a worker process, unless Ctrl-C or SIGTERM came first.

    Outside this call a signal only stops the worker from starting another file: raised
    there, it would have killed the worker while it sent back the result of a file whose
    outputs were complete, and the main process could not have listed that file as done.
    """
    global _working
    if _stopped:
        raise KeyboardInterrupt
    _working = True
    try:
        return work(item)
    finally:
        _working = False


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
