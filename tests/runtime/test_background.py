"""The thread beside compress's: tasks run there, or in the caller when it asks first."""

from __future__ import annotations

import threading

import pytest

from dctconv import transform
from dctconv.runtime._background import Background


@pytest.fixture
def two_cpus(monkeypatch):
    monkeypatch.setattr(transform, "default_workers", lambda: 2)


def test_a_task_not_started_runs_in_the_thread_that_asks_for_it(two_cpus):
    # The caller would only wait behind the task the thread is busy with: it does the work itself.
    release, started = threading.Event(), threading.Event()

    def busy():
        started.set()
        release.wait(10)
        return threading.current_thread().name

    with Background() as background:
        first = background.submit(busy)
        second = background.submit(lambda: threading.current_thread().name)
        assert started.wait(10)
        assert second() == threading.current_thread().name
        release.set()
        assert first() == "dctconv-encode"


def test_a_task_started_is_waited_for_and_its_error_raised(two_cpus):
    def fails():
        raise ValueError("in the thread")

    with Background() as background:
        task = background.submit(fails)
        with pytest.raises(ValueError, match="in the thread"):
            task()


def test_with_one_cpu_each_task_runs_at_once(monkeypatch):
    monkeypatch.setattr(transform, "default_workers", lambda: 1)
    ran = []
    with Background() as background:
        task = background.submit(lambda: ran.append(threading.current_thread().name) or 5)
        assert ran == [threading.current_thread().name]
        assert task() == 5
