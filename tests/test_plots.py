"""The summary figure: images much larger than their panel are averaged down first.

References: scikit-image's ``block_reduce`` (its own implementation of block means)
and plain numpy on the full-size error.
"""

import numpy as np
import pytest
from PIL import Image
from skimage.measure import block_reduce

from references import tolerance
from dctconv import plots


@pytest.mark.parametrize(
    ("shape", "panel", "factor"),
    [
        ((1024, 1024), 462, 1),  # 1024 < 2 * 462: shown as it is
        ((4096, 4096), 462, 4),  # 4096 // 924 = 4: 1024 x 1024 reach matplotlib
        ((600, 5000), 880, 2),  # the longer side counts: 5000 // 1760 = 2
        ((3, 7), 462, 1),
    ],
)
def test_pool_factor(shape, panel, factor):
    assert plots.pool_factor(shape, panel) == factor


@pytest.mark.parametrize("factor", [1, 2, 3, 5])
def test_mean_pool_matches_block_reduce(factor):
    rng = np.random.default_rng(factor)
    picture = rng.integers(0, 256, (53, 41), dtype=np.uint8)
    rows, cols = 53 // factor * factor, 41 // factor * factor
    expected = block_reduce(picture[:rows, :cols].astype(np.float64), (factor, factor), np.mean)
    got = plots.mean_pool(picture, factor)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=0, atol=tolerance(np.float64, 255))


@pytest.mark.parametrize(("height", "factor"), [(1203, 3), (700, 1), (2050, 4)])
def test_shown_error_is_the_pooled_full_size_error_computed_in_bands(height, factor):
    # Heights that are not multiples of the 512-row band or of the factor.
    rng = np.random.default_rng(height)
    original = rng.integers(0, 256, (height, 37), dtype=np.uint8)
    reconstruction = rng.integers(0, 256, (height, 37), dtype=np.uint8)
    # The largest error sits in the last row, which pooling drops when the factor does
    # not divide the height: the colorbar arrow must still see it.
    original[-1, 0], reconstruction[-1, 0] = 255, 0
    error = np.abs(original.astype(np.float64) - reconstruction)
    rows = height // factor * factor
    shown, largest = plots._shown_error(original, reconstruction, factor)
    np.testing.assert_allclose(shown, block_reduce(error[:rows, : 37 // factor * factor], (factor, factor), np.mean),
                               rtol=0, atol=tolerance(np.float64, 255))
    assert largest == 255.0


def test_summary_of_a_large_image_has_the_size_of_a_small_one(tmp_path):
    # The figure is laid out in inches: averaging a large image down leaves it unchanged.
    sizes = []
    for side in (400, 2000):
        image = np.tile(np.arange(side, dtype=np.uint8), (side, 1))
        path = tmp_path / f"summary_{side}.png"
        plots.save_summary(path, image, image // 2 * 2, channel_mask=np.arange(16) < 3, error_scale=255.0,
                           value_range=(0, 255), title="t")
        with Image.open(path) as im:
            sizes.append(im.size)
    assert sizes[0] == sizes[1]
