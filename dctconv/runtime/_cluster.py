"""Per-file work on a dask.distributed cluster: the backend of ``--scheduler``.

:func:`map_on_cluster` has the contract of :func:`dctconv.runtime._parallel.map_in_processes`:
it yields ``(index, result, exception)`` for each item as its task finishes, so the
command's progress bar, error lines and report are the same whichever runs the work.

The workers read the inputs and write the outputs at the paths they are given, so
the cluster needs a file system shared with the client, with the same paths (give
absolute ones). Outputs are written to temporaries and renamed into place
(:mod:`dctconv.io._atomic`), so a task that dask reruns after its worker died starts
again from nothing and cannot leave half a file; the temporaries of killed workers
are removed when the run ends and when the next one starts. The client reads each
output back and compares it with the size and CRC-32 the worker saw, so a worker on
another file system is an error, not a file reported that the client does not have.
A run ends, one way or another: the connection and handshake are bounded, and so is
the time without any worker.

dask.distributed is an optional dependency (``pip install "dctconv[distributed]"``);
this module imports it only when called.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
import zlib
from pathlib import Path

from ..errors import ClusterError, exception_reason

#: Seconds to wait for the scheduler to answer when connecting: an unreachable
#: address fails within this, not dask's default of 30 s.
CONNECT_TIMEOUT = 5

#: Seconds more for the handshake, once a connection is open. dask bounds only the
#: connection, then waits for the scheduler's first message without a limit: an
#: address where something else listens (a web server, a silent socket) held the
#: command, silent, for ten minutes and more.
HANDSHAKE_TIMEOUT = 5

#: Seconds a run waits while the scheduler has no worker at all (none came, or all
#: were lost) before it ends with a ClusterError; ``--worker-timeout``.
WORKER_TIMEOUT = 60

INSTALL_HINT = 'pip install "dctconv[distributed]"'


def scheduler_address(scheduler_file) -> str:
    """The address in a scheduler file (``dask scheduler --scheduler-file FILE``), or ClusterError.

    The file is read here rather than by dask, which would wait for a missing file
    to appear and report a damaged one with a traceback.
    """
    try:
        with open(scheduler_file, encoding="utf-8") as f:
            text = f.read(1 << 20)
    except OSError as exc:
        raise ClusterError(f"{scheduler_file}: cannot read the scheduler file: {exception_reason(exc)}") from None
    try:
        address = json.loads(text)["address"]
    except (ValueError, KeyError, TypeError):
        address = None
    if not isinstance(address, str) or not address:
        raise ClusterError(
            f"{scheduler_file}: not a dask scheduler file (JSON with the scheduler's \"address\"); "
            "dask scheduler --scheduler-file FILE writes one"
        )
    return address


def connect(address=None, *, scheduler_file=None, timeout: float = CONNECT_TIMEOUT):
    """A ``distributed.Client`` connected to the scheduler at ``address`` or in ``scheduler_file``.

    Raises ClusterError, in one line, if dask.distributed is not installed, if
    nothing accepts a connection at the address within ``timeout`` seconds, or if
    what does is not a dask scheduler that answers within :data:`HANDSHAKE_TIMEOUT`
    more: the whole connection takes at most ``timeout + HANDSHAKE_TIMEOUT`` seconds.
    """
    if (address is None) == (scheduler_file is None):
        raise ClusterError("give either a scheduler address or a scheduler file")
    try:
        import distributed
    except ImportError:
        raise ClusterError(f"running on a dask cluster needs dask.distributed: {INSTALL_HINT}") from None
    if scheduler_file is not None:
        address = scheduler_address(scheduler_file)
    try:
        # Not the default client: nothing else in the process (dask arrays a caller
        # computes) is sent to this cluster by accident.
        client_class = _client_class(distributed.Client, deadline=timeout + HANDSHAKE_TIMEOUT)
        return client_class(address, timeout=timeout, set_as_default=False)
    except Exception as exc:  # OSError, TimeoutError, ValueError for a malformed address
        where = f"{address} (from {scheduler_file})" if scheduler_file is not None else address
        raise ClusterError(f"cannot reach the dask scheduler at {where}: {_reason(exc, address)}") from None


def map_on_cluster(items, work, *, address=None, scheduler_file=None, client=None, label: str = "dctconv",
                   worker_timeout: float = WORKER_TIMEOUT, output_dirs=()):
    """Yield ``(index, result, exception)`` for each item as ``work(item)`` finishes on a dask cluster.

    One of ``result`` and ``exception`` is None. Each item is one task, submitted
    with a key of its own (``<label>-<run>-<index>``), so a second run of the same
    files computes again rather than reusing a result the scheduler may still hold.
    ``work`` and the items are pickled to the workers: ``work`` must be importable
    there (e.g. a ``functools.partial`` of a dctconv function), and paths must name
    the same files on every worker.

    A worker that dies takes its tasks with it; the scheduler gives them to other
    workers (up to dask's ``distributed.scheduler.allowed-failures`` times, then the
    item fails with a ClusterError). Ctrl-C, or closing this generator, cancels the
    tasks not yet finished. Losing the scheduler mid-run raises ClusterError; so does
    a scheduler without a single worker for ``worker_timeout`` seconds while tasks
    wait (none started, or all lost). Either message says which items were done and
    which not; the items already yielded are done.

    Each output a worker reports (``result.outputs``) is read back here, and must be
    the size and CRC32 the worker read: else the item fails with a ClusterError
    (the workers do not share the client's file system).

    Hidden temporaries that killed processes left (:func:`dctconv.io._atomic.remove_stale_temporaries`)
    are removed from ``output_dirs`` before the tasks are sent, and from those and the
    folders of the outputs when the run ends, however it ends: on this machine by
    this process, on each worker's machine by one of its workers.

    Connects with :func:`connect` unless ``client`` is given (then it is left open).
    """
    own_client = client is None
    if own_client:
        client = connect(address, scheduler_file=scheduler_file)
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    where = client.scheduler.address
    futures, done, failed = {}, [], []
    folders = {os.fspath(folder) for folder in output_dirs}
    reachable = True  # False once the scheduler is lost: no worker to ask then

    def progress() -> str:
        return _progress(items, done, failed)

    def lost() -> ClusterError:
        nonlocal reachable
        reachable = False
        return ClusterError(f"lost the connection to the dask scheduler at {where}; {progress()}")

    try:
        _remove_stale_temporaries(client, folders)
        run = uuid.uuid4().hex[:12]
        for index, item in enumerate(items):
            futures[client.submit(_run_and_describe, work, item, key=f"{label}-{run}-{index}", pure=False)] = index
        completed = as_completed(futures, loop=client.loop)
        watch = _WorkerWatch(client, worker_timeout)
        while not completed.is_empty():
            if not completed.has_ready():
                if watch.none_for_too_long():
                    raise ClusterError(
                        f"no dask worker at the scheduler {where} for {worker_timeout:g} s "
                        f"(--worker-timeout); {progress()}"
                    )
                time.sleep(_POLL)
                continue
            watch.saw_work()
            future = next(completed)
            index = futures[future]
            if future.status == "finished":
                try:
                    result, described, host = future.result()
                except Exception:  # the scheduler went away while sending it, or the worker holding it died
                    if _connected(client):
                        completed.add(future)  # the scheduler computes it again
                        continue
                    raise lost() from None
                folders.update(os.path.dirname(path) for path, _, _ in described)
                try:
                    _check_outputs(described, host)
                except ClusterError as exc:
                    failed.append(index)
                    yield index, None, exc
                    continue
                done.append(index)
                yield index, result, None
            elif future.status == "error":
                exc = future.exception()
                if isinstance(exc, KilledWorker):
                    exc = ClusterError("the workers that ran it died, too often to try again")
                failed.append(index)
                yield index, None, exc
            elif future.status != "cancelled" and _connected(client):
                # "lost" (or "pending" again): the worker that held the finished result died
                # before this client fetched it; the scheduler computes it again.
                completed.add(future)
            else:  # cancelled: only the client does that, or dask when the scheduler is gone
                raise lost()
    finally:
        pending = [f for f in futures if not f.done()]
        try:
            if pending and client.status == "running":
                client.cancel(pending, force=True)
            _remove_stale_temporaries(client if reachable else None, folders)
        finally:
            if own_client:
                client.close(timeout=CONNECT_TIMEOUT)


def _remove_stale_temporaries(client, folders) -> None:
    """Remove the temporaries killed processes left in ``folders``: here, and on each worker machine.

    Only a process on the machine that wrote a temporary can tell whether its writer
    still runs, so one worker per machine (by its host) looks too, unless ``client``
    is None. Best effort, and
    within seconds: a cluster that does not answer leaves its machines' temporaries
    to the next run.
    """
    from ..io._atomic import remove_stale_temporaries

    folders = sorted(folders)
    if not folders:
        return
    for folder in folders:
        remove_stale_temporaries(folder)
    with contextlib.suppress(Exception):
        if client is None or client.status != "running":
            return
        info = client.sync(client.scheduler.identity, n_workers=-1, callback_timeout=CONNECT_TIMEOUT)
        one_per_host = {}
        for address, worker in info["workers"].items():
            one_per_host.setdefault(worker.get("host"), address)
        if one_per_host:
            # callback_timeout bounds the call (dask's Client.sync takes it), not passed to the function
            client.run(_remove_stale_in, folders, workers=list(one_per_host.values()), on_error="ignore",
                       callback_timeout=CONNECT_TIMEOUT)


def _remove_stale_in(folders) -> int:
    """On a worker: :func:`dctconv.io._atomic.remove_stale_temporaries` in each folder; how many were removed."""
    from ..io._atomic import remove_stale_temporaries

    return sum(len(remove_stale_temporaries(folder)) for folder in folders)


def _connected(client) -> bool:
    """Whether the client still talks to its scheduler (dask's status; "connecting" after losing it)."""
    return client.status == "running"


def _run_and_describe(work, item):
    """On a worker: ``work(item)``, each of its outputs' path, size and CRC32 as this worker
    reads them, and this machine's name (for :func:`_check_outputs`, on the client)."""
    import socket

    result = work(item)
    outputs = getattr(result, "outputs", None)
    described = [(os.fspath(path), *_size_and_crc(path)) for path in (outputs if isinstance(outputs, list) else ())]
    return result, described, socket.gethostname()


def _size_and_crc(path) -> tuple[int, int]:
    size, crc = 0, 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            size += len(chunk)
            crc = zlib.crc32(chunk, crc)
    return size, crc


#: Seconds the client looks again for an output a worker wrote that it does not see:
#: an NFS client may take a name it looked up before the file existed as missing
#: until its cached view of the folder expires; listing the folder renews that view.
_SEE_AGAIN = 1.0


def _size_and_crc_seen(path) -> tuple[int, int]:
    deadline = time.monotonic() + _SEE_AGAIN
    while True:
        try:
            return _size_and_crc(path)
        except FileNotFoundError:
            if time.monotonic() > deadline:
                raise
        with contextlib.suppress(OSError):
            os.listdir(os.path.dirname(path) or ".")
        time.sleep(0.1)


#: What a worker's output that the client does not see, or sees otherwise, means.
_SHARE = "workers must share the file system with the client, at the same paths"


def _check_outputs(described, host: str) -> None:
    """Raise ClusterError unless each output a worker wrote is here, the same size and CRC32 as there.

    A worker whose output folder is another file system than the client's (a local
    disk, another mount at the same path) writes and succeeds, and the client would
    report files it does not have.
    """
    for path, size, crc in described:
        try:
            here = _size_and_crc_seen(path)
        except FileNotFoundError:
            raise ClusterError(
                f"the worker on {host} wrote {path} ({size:,} bytes), but this machine sees no such file; {_SHARE}"
            ) from None
        except OSError as exc:
            raise ClusterError(
                f"cannot read {path}, which the worker on {host} wrote: {exception_reason(exc)}; {_SHARE}"
            ) from None
        if here != (size, crc):
            raise ClusterError(
                f"{path} here is not the file the worker on {host} wrote ({here[0]:,} bytes, CRC32 {here[1]:08x} "
                f"here; {size:,} bytes, CRC32 {crc:08x} there); {_SHARE} (or another run wrote it since)"
            )


#: Seconds between two looks at the finished tasks while none is ready.
_POLL = 0.05

#: Seconds between two questions to the scheduler about its workers while no task finishes.
_WORKER_CHECK = 1.0


class _WorkerWatch:
    """Says when the scheduler has had no worker for ``timeout`` seconds in a row.

    The scheduler is asked (its worker count only) at most once a second, and only
    while no task finishes: a run that makes progress is not slowed down.
    """

    def __init__(self, client, timeout: float):
        self.client, self.timeout = client, timeout
        self.checked = float("-inf")
        self.none_since = None

    def saw_work(self) -> None:
        self.none_since = None

    def none_for_too_long(self) -> bool:
        now = time.monotonic()
        if now - self.checked >= min(_WORKER_CHECK, self.timeout / 4):
            self.checked = now
            count = _worker_count(self.client)
            if count is None or count > 0:  # None: the scheduler did not answer; losing it is told apart
                self.none_since = None
            elif self.none_since is None:
                self.none_since = now
        return self.none_since is not None and now - self.none_since >= self.timeout


def _worker_count(client) -> int | None:
    """How many workers the scheduler has now, or None if it does not say within seconds."""
    try:
        info = client.sync(client.scheduler.identity, n_workers=0, callback_timeout=CONNECT_TIMEOUT)
        return int(info["n_workers"])
    except Exception:
        return None


#: How many items the run's last line names in each of its lists.
_NAMED = 10


def _names(items, indices) -> str:
    names = ", ".join(str(items[i]) for i in sorted(indices)[:_NAMED])
    return names + (f" and {len(indices) - _NAMED} more" if len(indices) > _NAMED else "")


def _progress(items, done, failed) -> str:
    """Which items were done and which not, for the line that ends a run early."""
    finished = set(done) | set(failed)
    rest = [i for i in range(len(items)) if i not in finished]
    text = f"{len(done)} of {len(items)} files done"
    text += f": {_names(items, done)}" if done else ""
    text += f"; {len(failed)} failed (each reported above)" if failed else ""
    return text + (f"; not done: {_names(items, rest)}" if rest else "")


def silence_logging() -> None:
    """Silence dask's loggers in this process (the client), for the rest of its life.

    dask logs a lost scheduler as tracebacks on stderr, some from its event-loop
    thread seconds after the run has ended; the command line reports it in one line
    (ClusterError) and calls this first.
    """
    import logging

    try:
        import distributed  # noqa: F401  (its import configures its loggers: after that)
    except ImportError:
        return
    names = ["distributed", *(n for n in logging.root.manager.loggerDict if n.startswith("distributed."))]
    for name in names:
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


class _NoHandshake(Exception):
    """The connection was open but no dask scheduler answered on it within the deadline."""


def _client_class(base, *, deadline: float):
    """``distributed.Client``, but one whose start ends within ``deadline`` seconds, and that
    stops its event loop at once when it failed to connect.

    A plain Client whose connection failed closes itself when garbage-collected,
    which waited 10 s for the absent scheduler and then printed a traceback
    ("Exception ignored in Client.__del__"), even at interpreter exit.
    """
    import asyncio

    class Client(base):
        _failed = False

        async def _start(self, **kwargs):
            # The whole start, handshake included, is cancelled at the deadline.
            try:
                return await asyncio.wait_for(super()._start(**kwargs), deadline)
            except asyncio.TimeoutError as exc:
                if "Timed out trying to connect" in str(exc):  # dask's own, for the connection
                    raise
                raise _NoHandshake(deadline) from None

        def start(self, **kwargs):
            try:
                super().start(**kwargs)
            except BaseException:
                self._failed = True
                with contextlib.suppress(Exception):
                    self._loop_runner.stop()
                raise

        def __del__(self):
            if not self._failed:
                super().__del__()

    return Client


def _reason(exc: BaseException, address=None) -> str:
    if isinstance(exc, _NoHandshake):
        return (f"something accepts connections there but no dask scheduler answered within "
                f"{exc.args[0]:g} s; is it the address the scheduler printed (tcp://HOST:PORT)?")
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
