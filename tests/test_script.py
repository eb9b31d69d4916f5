"""The installed `dctconv` console script, run as a user runs it."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from references import SAMPLES

SCRIPT = shutil.which("dctconv") or str(Path(sys.executable).parent / "dctconv")


def run(*args):
    return subprocess.run([SCRIPT, *map(str, args)], capture_output=True, text=True, timeout=120)


def test_installed_script_round_trips_a_sample(tmp_path):
    result = run("transform", SAMPLES / "coins.png", "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    result = run("transform", "--inverse", tmp_path / "coins_coefficients.npz", "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(
        np.asarray(Image.open(tmp_path / "coins_reconstruction.png")), np.asarray(Image.open(SAMPLES / "coins.png"))
    )


def test_help_imports_no_numerical_library():
    code = (
        "import sys; from dctconv.cli import cli\n"
        "try:\n    cli(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('numpy', 'scipy', 'PIL', 'matplotlib', 'skimage', 'numba', 'llvmlite') if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out


def test_bad_input_gives_one_line_and_no_traceback(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    result = run("transform", bad, "-o", tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {bad}: ")
