"""Issue 10, signals sent to the installed script: SIGTERM as Ctrl-C (item 3)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from references import SAMPLES

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
