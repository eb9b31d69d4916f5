"""The summary picture: images much larger than their panel are averaged down first.

References: block means written here as a literal numpy reshape (the code uses
scikit-image's ``block_reduce``), and plain numpy on the full-size error.
"""

import numpy as np
import pytest
from PIL import Image

from references import tolerance
from dctconv.measure import _summary as plots


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


def block_means(picture, factor):
    """Means of whole factor x factor squares; the last partial rows and columns dropped."""
    rows, cols = picture.shape[0] // factor, picture.shape[1] // factor
    squares = picture[: rows * factor, : cols * factor].astype(np.float64).reshape(rows, factor, cols, factor)
    return squares.sum(axis=(1, 3)) / factor**2


@pytest.mark.parametrize("factor", [1, 2, 3, 5, 53])
@pytest.mark.parametrize("dtype", [np.uint8, np.float64])
def test_mean_pool_is_the_mean_of_whole_squares(factor, dtype):
    rng = np.random.default_rng(factor)
    picture = (rng.random((53, 41)) * 255).astype(dtype)
    got = plots.mean_pool(picture, factor)
    assert got.dtype == np.float64
    assert got.shape == (53 // factor, 41 // factor)
    np.testing.assert_allclose(got, block_means(picture, factor), rtol=0, atol=tolerance(np.float64, 255))
    # Partial squares are dropped, not padded with zeros: the mean of a constant stays the constant.
    assert (plots.mean_pool(np.full((7, 7), 9, np.uint8), 2) == 9).all()


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
    assert shown.shape == (rows // factor, 37 // factor)
    np.testing.assert_allclose(shown, block_means(error, factor), rtol=0, atol=tolerance(np.float64, 255))
    assert largest == 255.0


def test_summary_of_a_large_image_has_the_size_of_a_small_one(tmp_path):
    # A panel's size depends on the image's size only below PANEL pixels: 600 is averaged
    # down to 420 pixels, 2000 pooled by 2 first.
    sizes = []
    for side in (600, 2000):
        image = np.tile(np.arange(side, dtype=np.uint8), (side, 1))
        path = tmp_path / f"summary_{side}.png"
        plots.save_summary(path, image, image // 2 * 2, channel_mask=np.arange(16) < 3, error_scale=255.0,
                           value_range=(0, 255), title="t")
        with Image.open(path) as im:
            sizes.append(im.size)
    assert sizes[0] == sizes[1]
