"""A thread beside the caller's, for the work of one file (encoding bytes, importing modules)."""

from __future__ import annotations


class Background:
    """Work for one thread beside the caller's, when this process has a CPU to spare.

    Encoding a PNG (zlib) and most numpy work release the GIL, so :func:`~dctconv.runtime._jobs.compress_file`
    imports what it will need while it encodes the image, and encodes its
    reconstruction and pictures into bytes while the main thread computes the
    metrics; the main thread writes every file, in the same order as ever (and
    matplotlib stays on the main thread). With one CPU (``--jobs`` gives each worker
    process its share) each task runs at once, in place. A task never writes a file, so
    leaving the block after an error or Ctrl-C cancels the tasks not started and does
    not wait for the one running.
    """

    def __init__(self):
        from ..transform import default_workers

        self._tasks = None
        self._futures = []
        if default_workers() > 1:
            import queue
            import threading

            self._tasks = queue.SimpleQueue()
            # A daemon thread: after Ctrl-C or SIGTERM the process exits without waiting
            # for the task it is running (concurrent.futures' threads are joined at exit,
            # and a SIGTERM while writing once left the process waiting there).
            threading.Thread(target=self._run, name="dctconv-encode", daemon=True).start()

    def _run(self) -> None:
        while (task := self._tasks.get()) is not None:
            future, function, args = task
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(function(*args))
                except BaseException as exc:  # handed to the caller, who raises it
                    future.set_exception(exc)

    def submit(self, function, *args):
        """Start ``function(*args)``; returns a callable that gives its result (or raises its error).

        A task the thread has not started when its result is asked for runs in the asking
        thread instead: the caller, which would only wait, does the work, while the thread
        goes on with the tasks before it.
        """
        if self._tasks is None:
            result = function(*args)
            return lambda: result
        from concurrent.futures import Future

        future = Future()
        self._futures.append(future)
        self._tasks.put((future, function, args))

        def result():
            if future.cancel():  # not started: the thread will skip it
                return function(*args)
            return future.result()

        return result

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if self._tasks is not None:
            # After an error nothing waits for the running task (an import, an encoding
            # into memory) and the ones not started are dropped: the error is reported at once.
            for future in self._futures:
                future.cancel()
            self._tasks.put(None)
