"""dctconv.limits: the shared constants, importable without numpy."""

import subprocess
import sys

from PIL import Image

from dctconv import limits


def test_limits_import_nothing_heavy():
    code = "import sys, dctconv.limits; print(sorted(m for m in ('numpy', 'PIL', 'scipy') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_default_max_pixels_is_pillows_own_limit():
    assert limits.DEFAULT_MAX_PIXELS == Image.MAX_IMAGE_PIXELS


def test_block_size_range_in_words():
    assert limits.BLOCK_SIZE_RANGE == f"from {limits.MIN_BLOCK_SIZE} to {limits.MAX_BLOCK_SIZE}"
    assert limits.MIN_BLOCK_SIZE <= limits.DEFAULT_BLOCK_SIZE <= limits.MAX_BLOCK_SIZE
