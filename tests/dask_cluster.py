"""A real dask cluster on 127.0.0.1 for the tests: ``dask scheduler`` and ``dask worker`` processes.

Each worker runs under a nanny (dask's default), which starts a new worker process
when one is killed, as on a real cluster; the tests kill worker processes on purpose.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent


class DaskCluster:
    """A scheduler and ``workers`` single-threaded workers, started as subprocesses in ``folder``.

    Without ``nanny`` each worker is one process (quicker to start), and stays dead when killed.

    The scheduler listens on a free port (``--port 0``) and writes its address to
    ``folder/scheduler.json``. Workers can import the test modules (PYTHONPATH), so
    tests may send them functions of their own.
    """

    def __init__(self, folder, workers: int = 2, *, nanny: bool = True):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.scheduler_file = self.folder / "scheduler.json"
        self.workers = workers
        self.nanny = nanny
        self.processes: list[subprocess.Popen] = []
        self.scheduler: subprocess.Popen | None = None
        self.client = None

    def _start(self, *args) -> subprocess.Popen:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])))
        process = subprocess.Popen(
            [sys.executable, "-m", "dask", *args], cwd=self.folder, env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(self.folder / f"{args[0]}-{len(self.processes)}.log", "wb"),
        )
        self.processes.append(process)
        return process

    def start(self, timeout: float = 90) -> "DaskCluster":
        from distributed import Client

        # --idle-timeout: a scheduler left behind by a killed test run goes away by itself;
        # --death-timeout: so does a worker whose scheduler is gone.
        self.scheduler = self._start(
            "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
            "--scheduler-file", str(self.scheduler_file), "--idle-timeout", "900",
        )
        deadline = time.monotonic() + timeout
        while not self.scheduler_file.exists():
            if self.scheduler.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the dask scheduler did not start; see {self.folder}")
            time.sleep(0.05)
        self.add_workers(self.workers, nanny=self.nanny, wait=False)
        self.client = Client(scheduler_file=str(self.scheduler_file), timeout=30, set_as_default=False)
        self.wait_for_workers(deadline - time.monotonic())
        return self

    def add_workers(self, count: int, *, nanny: bool = False, wait: bool = True) -> list[subprocess.Popen]:
        """Start ``count`` more workers (by default each one process, no nanny) and wait until they are there.

        Their processes are returned, for a test to kill; ``workers`` counts them.
        """
        started = [
            self._start(
                "worker", "--scheduler-file", str(self.scheduler_file), "--host", "127.0.0.1",
                "--nthreads", "1", "--nworkers", "1", "--no-dashboard", "--death-timeout", "120",
                "--local-directory", str(self.folder), *(() if nanny else ("--no-nanny",)),
            )
            for _ in range(count)
        ]
        if wait:
            self.workers += count
            self.wait_for_workers()
        return started

    def kill(self, processes) -> None:
        """SIGKILL ``processes`` (workers without a nanny) and wait until the scheduler has lost them."""
        for process in processes:
            process.kill()
        for process in processes:
            process.wait()  # reaped: its process id no longer answers (a zombie's would)
        self.workers -= len(processes)
        deadline = time.monotonic() + 30
        while len(self.worker_pids()) > self.workers and time.monotonic() < deadline:
            time.sleep(0.05)

    @property
    def address(self) -> str:
        return self.client.scheduler.address

    def wait_for_workers(self, timeout: float = 60) -> None:
        if self.workers:  # dask refuses to wait for none
            self.client.wait_for_workers(self.workers, timeout=timeout)

    def worker_pids(self) -> dict[str, int]:
        """Worker address -> process id of the worker (not of its nanny)."""
        return self.client.run(os.getpid)

    def stop(self) -> None:
        if self.client is not None:
            try:
                self.client.close(timeout=2)
            except Exception:  # the scheduler is gone already (a test killed it)
                pass
            self.client = None
        # Workers first (SIGTERM: each nanny stops its worker), then the scheduler.
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()


def slow_transform(path, *, out_dir, seconds):
    """transform_file after a pause: long enough for a test to kill a worker mid-run.

    It lives here, not in a test module, because the workers import it by name from
    this folder (their PYTHONPATH).
    """
    from dctconv.runtime._jobs import transform_file

    time.sleep(seconds)
    return transform_file(path, out_dir)


class NotAScheduler:
    """Something that accepts TCP connections on 127.0.0.1 but is not a dask scheduler.

    ``kind`` is ``"http"``: a real ``python -m http.server`` (it waits for a request
    line, then answers in HTTP), or ``"silent"``: a listening socket that accepts
    and never says a word. Use as a context manager; ``address`` is tcp://HOST:PORT.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self.process = self.socket = None

    def __enter__(self) -> "NotAScheduler":
        if self.kind == "http":
            self.process = subprocess.Popen(
                [sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.1", "0"],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            )
            line = self.process.stdout.readline()  # "Serving HTTP on 127.0.0.1 port N (...) ..."
            self.port = int(line.split(" port ")[1].split()[0])
        else:
            import socket

            self.socket = socket.socket()
            self.socket.bind(("127.0.0.1", 0))
            self.socket.listen()
            self.port = self.socket.getsockname()[1]
        return self

    @property
    def address(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def __exit__(self, *exc_info) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        if self.socket is not None:
            self.socket.close()


def hang_once_while_writing(path, *, out_dir, marker):
    """transform_file, except that the first call of all hangs with a temporary of its output
    written: a test kills its worker then (SIGKILL), and the task runs again elsewhere.

    ``marker`` (created by the first call) holds that worker's process id.
    """
    from dctconv.io._atomic import atomic_outputs
    from dctconv.runtime._jobs import transform_file

    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return transform_file(path, out_dir)
    with atomic_outputs() as outputs:
        outputs.path(Path(out_dir) / f"{Path(path).stem}_coefficients.npz").write_bytes(b"half a file")
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        time.sleep(300)
    raise AssertionError("not killed")
