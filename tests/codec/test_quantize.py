"""Quantization steps against Pillow's JPEG tables and an independent reading of the rule."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from scipy.interpolate import RegularGridInterpolator

from dctconv.errors import InvalidCompressionError
from dctconv.codec._quantize import FLATTENING, base_table, step_table

QUALITIES = [1, 10, 25, 50, 75, 90, 100]


def pillow_table(quality: int) -> np.ndarray:
    """The luminance table Pillow's libjpeg writes into a grayscale JPEG of ``quality``."""
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(buffer, "JPEG", quality=quality)
    with Image.open(io.BytesIO(buffer.getvalue())) as im:
        return np.array(im.quantization[0], dtype=float).reshape(8, 8)


@pytest.mark.parametrize("quality", QUALITIES)
def test_n8_steps_are_pillows_jpeg_table(quality):
    assert np.array_equal(step_table(8, quality=quality).reshape(8, 8), pillow_table(quality))


@pytest.mark.parametrize("dtype, factor", [(np.uint16, 65535 / 255), (np.int32, (2**32 - 1) / 255), (np.float32, 1 / 255)])
def test_steps_scale_with_the_data_range(dtype, factor):
    assert np.allclose(step_table(8, quality=60, dtype=dtype).reshape(8, 8), pillow_table(60) * factor, rtol=1e-12)


@pytest.mark.parametrize("n", [2, 3, 4, 5, 16, 64])
def test_other_block_sizes_follow_the_documented_rule(n):
    # JPEG's table as a function of frequency in cycles per pixel (entry u at u / 16),
    # linear between entries and constant past 7/16; frequency x of an n-block is x / 2n.
    jpeg = pillow_table(50)
    grid = np.arange(8) / 16
    interpolate = RegularGridInterpolator((grid, grid), jpeg)
    freq = np.minimum(np.arange(n) / (2 * n), 7 / 16)
    fx, fy = np.meshgrid(freq, freq, indexing="ij")
    sampled = interpolate(np.stack([fx.ravel(), fy.ravel()], axis=1)).reshape(n, n)
    expected = np.clip(np.rint(16 * (sampled / 16) ** FLATTENING), 1, 255)
    assert np.array_equal(base_table(n), expected)
    # And quality scales them as libjpeg scales its own: quality 75 is half, rounded.
    assert np.array_equal(step_table(n, quality=75), np.clip((expected.ravel() * 50 + 50) // 100, 1, 255))


def test_flat_step_and_bad_settings():
    assert np.array_equal(step_table(3, step=2.5), np.full(9, 2.5))
    for bad in (0, 101, 7.5, True, None):
        with pytest.raises(InvalidCompressionError, match="quality must be a whole number from 1 to 100"):
            step_table(4, quality=bad) if bad is not None else step_table(4, quality=0)
    with pytest.raises(InvalidCompressionError, match="not both"):
        step_table(4, quality=50, step=1.0)
