"""Issue 17: commands run from the folder that holds a clone named ``dctconv``.

There the clone's top folder (it has no ``__init__.py``) is a namespace package named
``dctconv``: a fresh interpreter whose ``sys.path`` starts with the current folder (the
fork server of ``--jobs``, ``python -m``) imported it instead of the editable install,
and every worker failed with a message that blamed memory. These run the real console
script and interpreter of this environment from such a folder.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import dctconv
from _helpers import output_names

PROJECT = Path(dctconv.__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).with_name("dctconv")


@pytest.fixture
def clone_parent(tmp_path):
    """A folder holding ``dctconv/`` (a copy of the project, as a clone is) and two images."""
    clone = tmp_path / "dctconv"
    shutil.copytree(PROJECT / "dctconv", clone / "dctconv", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PROJECT / "pyproject.toml", clone)
    rng = np.random.default_rng(17)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 256, (16, 24), dtype=np.uint8)).save(tmp_path / name)
    return tmp_path


def run(args, cwd):
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=180)


def test_jobs_from_the_clones_parent_folder_work(clone_parent):
    result = run([SCRIPT, "transform", "a.png", "b.png", "-o", "out", "--jobs", "2"], clone_parent)
    assert result.returncode == 0, result.stderr
    assert "Error" not in result.stderr
    assert output_names(clone_parent / "out") == [
        "a_coefficients.npz", "a_maps.png", "b_coefficients.npz", "b_maps.png"]


def test_python_m_dctconv_from_the_clones_parent_folder_works(clone_parent):
    result = run([sys.executable, "-m", "dctconv", "--version"], clone_parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("dctconv, version ")
    result = run([sys.executable, "-m", "dctconv", "transform", "a.png", "b.png", "-o", "out", "--jobs", "2"],
                 clone_parent)
    assert result.returncode == 0, result.stderr
    assert (clone_parent / "out" / "b_maps.png").exists()


def test_workers_that_cannot_start_say_why_in_one_line(clone_parent):
    """Without the fork server's sys.path (the old start), the workers cannot import dctconv:
    one line with the import error, not a line per file blaming memory."""
    (clone_parent / "scripts").mkdir()
    script = clone_parent / "scripts" / "old_start.py"  # its folder, not the current one, starts sys.path
    script.write_text(
        "from dctconv.runtime import _parallel\n"
        "_parallel._forkserver_environment = lambda: dict(_parallel._FORKSERVER_ENVIRONMENT)\n"
        "from dctconv.cli import cli\n"
        "cli(prog_name='dctconv')\n"
    )
    result = run([sys.executable, script, "transform", "a.png", "b.png", "-o", "out", "--jobs", "2"], clone_parent)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert errors == [
        "Error: worker processes for --jobs cannot start (ImportError: cannot import name '__version__' "
        "from 'dctconv' (unknown location)); --jobs 1 runs the files in this process"
    ], result.stderr
    assert "Traceback" not in result.stderr and "memory" not in result.stderr
