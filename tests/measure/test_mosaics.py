"""The pictures: raw grids against layouts built here with plain numpy, and labels that are there.

The raw mosaic is checked pixel for pixel against a reference that lays the tiles
out with ``np.pad`` and a reshape (not ``skimage.util.montage``, which the code
uses); the labeled pictures must hold the raw grids unchanged and put ink in the
margins where the labels go.
"""

import math

import numpy as np
import pytest

from dctconv.measure import _mosaics as pictures
from dctconv.kernels import dct_kernels
from dctconv.measure._mosaics import error_picture_with_legend, kernels_picture, maps_mosaic, maps_picture


def reference_mosaic(coefficients, mask=None):
    """The mosaic as the docstring describes it, laid out with np.pad and a reshape."""
    channels, rows, cols = coefficients.shape
    n = math.isqrt(channels)
    line = max(1, min(rows, cols) // 128)
    kept = np.ones(channels, bool) if mask is None else np.asarray(mask)
    ac = [np.log1p(np.abs(coefficients[c])) for c in range(1, channels) if kept[c]]
    ac_top = max((float(a.max()) for a in ac), default=0.0)
    tiles = np.empty((channels, rows, cols))
    for c in range(channels):
        if not kept[c]:
            tiles[c] = 0  # replaced below by the hatch
        elif c == 0:
            dc = coefficients[0] - coefficients[0].min()
            tiles[c] = dc * (255 / dc.max()) if dc.max() > 0 else 0
        else:
            tiles[c] = np.log1p(np.abs(coefficients[c])) * (255 / ac_top) if ac_top > 0 else 0
    tiles = np.rint(tiles).astype(np.uint8)
    for c in np.flatnonzero(~kept):
        tiles[c] = pictures._hatch(rows, cols)
    padded = np.pad(tiles.reshape(n, n, rows, cols), ((0, 0), (0, 0), (line, 0), (line, 0)), constant_values=255)
    laid = padded.transpose(0, 2, 1, 3).reshape(n * (rows + line), n * (cols + line))
    return np.pad(laid, ((0, line), (0, line)), constant_values=255)


@pytest.mark.parametrize(("n", "rows", "cols"), [(4, 6, 5), (2, 1, 7), (8, 3, 3), (2, 130, 129)])
def test_mosaic_matches_a_numpy_layout(n, rows, cols):
    rng = np.random.default_rng(n * rows)
    coefficients = rng.normal(0, 50, (n * n, rows, cols))
    coefficients[0] += 500
    np.testing.assert_array_equal(maps_mosaic(coefficients), reference_mosaic(coefficients))
    mask = rng.random(n * n) < 0.5
    mask[0] = True
    np.testing.assert_array_equal(maps_mosaic(coefficients, mask=mask), reference_mosaic(coefficients, mask))


def test_mosaic_layout_places_channel_x_n_plus_y_at_row_x_column_y():
    n, rows, cols = 4, 6, 5
    coefficients = np.zeros((n * n, rows, cols))
    coefficients[0] = np.arange(rows * cols).reshape(rows, cols)  # DC: a ramp
    coefficients[1 * n + 2] = 1000.0  # frequency (1, 2): the brightest AC tile
    picture = maps_mosaic(coefficients)
    line = 1
    assert picture.shape == (n * rows + (n + 1) * line, n * cols + (n + 1) * line)
    tile = lambda x, y: picture[line + x * (rows + line) :, line + y * (cols + line) :][:rows, :cols]  # noqa: E731
    # DC is shown linearly from its min (black) to its max (white).
    assert tile(0, 0)[0, 0] == 0 and tile(0, 0)[-1, -1] == 255
    assert (tile(1, 2) == 255).all()
    assert (tile(2, 1) == 0).all() and (tile(3, 3) == 0).all()
    # Separating lines are white.
    assert (picture[0] == 255).all() and (picture[:, 0] == 255).all()


def test_mosaic_shared_ac_scale_is_logarithmic():
    coefficients = np.zeros((4, 1, 1))
    coefficients[1] = np.e**2 - 1  # log1p = 2
    coefficients[2] = -(np.e - 1)  # |c|, log1p = 1: half the peak
    picture = maps_mosaic(coefficients)
    assert picture[1, 3] == 255 and picture[3, 1] == 128


def test_dropped_maps_are_hatched_not_a_flat_gray():
    mask = np.array([True, False, False, True])
    coefficients = np.ones((4, 24, 24))
    coefficients[1] = 1e6  # dropped: must not set the AC scale either
    picture = maps_mosaic(coefficients, mask=mask)
    dropped = picture[1:25, 26:50]
    # Diagonal stripes of the two hatch grays: constant along each anti-diagonal, both grays present.
    assert set(np.unique(dropped)) == set(pictures.HATCH_GRAYS)
    i, j = np.indices(dropped.shape)
    for d in range(0, 47):
        assert len(set(dropped[i + j == d])) == 1
    kept_ac = picture[26:50, 26:50]
    assert (kept_ac == 255).all()  # the only kept AC map is the brightest


def test_maps_picture_holds_the_mosaic_unchanged_with_labels_around_it():
    rng = np.random.default_rng(7)
    coefficients = rng.normal(0, 30, (16, 40, 50))
    coefficients[0] = rng.uniform(12, 1012, (40, 50))
    mask = np.arange(16) < 6
    picture, (top, left), caption = pictures._labeled_maps(coefficients, mask)
    np.testing.assert_array_equal(picture, maps_picture(coefficients, mask=mask))
    mosaic = maps_mosaic(coefficients, mask=mask)
    height, width = mosaic.shape
    np.testing.assert_array_equal(picture[top : top + height, left : left + width], mosaic)
    # Ink above every tile column (its y), left of every tile row (its x), and below (the caption).
    pitch_x, pitch_y = 40 + 1, 50 + 1
    for k in range(4):
        assert (picture[:top, left + 1 + k * pitch_y : left + (k + 1) * pitch_y] < 128).any()
        assert (picture[top + 1 + k * pitch_x : top + (k + 1) * pitch_x, :left] < 128).any()
    assert (picture[top + height :] < 128).sum() > 100
    dc = coefficients[0]
    assert caption[1] == f"(0, 0), DC: linear, {dc.min():.4g} black to {dc.max():.0f} white"  # whole from 1000 up
    peak = max(np.abs(coefficients[c]).max() for c in range(1, 6))
    assert caption[2] == f"others: log(1 + |c|), shared: 0 black, |c| = {peak:.4g} white"
    assert pictures._number(21045.3) == "21045" and pictures._number(6.372549) == "6.373"
    assert caption[3].startswith("hatched: dropped") and "6 of 16 maps kept" in caption[3]
    # Without a mask there is no hatch line.
    assert not any("hatched" in line for line in pictures._labeled_maps(coefficients, None)[2])


def test_labels_of_many_small_tiles_are_thinned_out_not_overlapping():
    # 256 tiles of 3 x 3 pixels: the row numbers cannot all fit in 4-pixel rows.
    picture, (top, left), _ = pictures._labeled_maps(np.ones((256, 3, 3)), None)
    numbers = picture[top : top + 16 * 4, :left] < 128
    inked_rows = np.flatnonzero(numbers.any(axis=1))
    gaps = np.diff(inked_rows)
    assert (gaps > 1).sum() >= 3  # several separate numbers, with paper between them


def test_kernels_picture_holds_the_kernels_and_labels():
    picture, (top, left) = pictures._labeled_kernels(2, 32)
    np.testing.assert_array_equal(picture, kernels_picture(2, tile=32))
    assert picture.ndim == 3 and picture.shape[2] == 3
    side, line = 32, 4
    grid = picture[top : top + 2 * side + 3 * line, left : left + 2 * side + 3 * line]
    assert (grid[:line] == pictures.KERNEL_GRID_RGB).all()
    # Kernel (0, 1) of n = 2 is +0.5 on the left column and -0.5 on the right one,
    # and 0.5 is max|K|: gray 128 +- 127.
    assert np.abs(dct_kernels(2)).max() == pytest.approx(0.5, rel=1e-12)
    kernel = grid[line : line + side, 2 * line + side : 2 * line + 2 * side]
    assert (kernel[:, : side // 2] == 255).all() and (kernel[:, side // 2 :] == 1).all()
    # Labels: ink above each kernel column and left of each kernel row, and a caption below.
    pitch = side + line
    for k in range(2):
        assert (picture[:top, left + line + k * pitch : left + (k + 1) * pitch] < 100).any()
        assert (picture[top + line + k * pitch : top + (k + 1) * pitch, :left] < 100).any()
    assert (picture[top + grid.shape[0] :] < 100).any()


@pytest.mark.parametrize("n", [4, 16])
def test_kernel_tiles_are_the_enlarged_kernels(n):
    picture, (top, left) = pictures._labeled_kernels(n, 64)
    scale, line = 64 // n, 4
    kernels = dct_kernels(n)
    expected = np.rint(128 + 127 * kernels / np.abs(kernels).max()).astype(np.uint8)
    for channel in (0, 1, n + 2, n * n - 1):
        x, y = divmod(channel, n)
        r, c = top + line + x * (n * scale + line), left + line + y * (n * scale + line)
        tile = picture[r : r + n * scale, c : c + n * scale, 1]
        np.testing.assert_array_equal(tile[::scale, ::scale], expected[channel])
        np.testing.assert_array_equal(tile, np.kron(expected[channel], np.ones((scale, scale), np.uint8)))


@pytest.mark.parametrize(("shape", "scale", "largest"), [((60, 80), 10.2, 82.0), ((8, 8), 1.0, 0.0),
                                                          ((300, 40), 31.9, 10.0)])
def test_error_legend_keeps_the_picture_and_maps_gray_to_error(shape, scale, largest):
    rng = np.random.default_rng(shape[0])
    error = rng.integers(0, 256, shape, dtype=np.uint8)
    framed = error_picture_with_legend(error, scale, largest_error=largest)
    height, width = shape
    np.testing.assert_array_equal(framed[:height, :width], error)
    legend = framed[height:]
    # The ramp: the row of the legend that runs from black to white, never decreasing.
    ramp_rows = [r for r in range(len(legend)) if _is_ramp(legend[r])]
    assert ramp_rows, "no gray ramp in the legend"
    ramp = _ramp(legend[ramp_rows[len(ramp_rows) // 2]])
    assert ramp[0] == 0 and ramp[-1] == 255 and (np.diff(ramp.astype(int)) >= 0).all()
    assert len(ramp) >= width - 12
    # Tick marks below the ramp sit where gray = value * scale, value on round numbers.
    below = legend[ramp_rows[-1] + 2]
    start = _ramp_start(legend[ramp_rows[len(ramp_rows) // 2]])
    ticks = pictures._nice_ticks(255 / scale)
    for value in ticks:
        x = start + round(value * scale / 255 * (len(ramp) - 1))
        assert below[x] == 0
        assert abs(int(ramp[x - start]) - value * scale) <= 1.5
    assert (legend[ramp_rows[-1] + 2 :] < 128).sum() > 50  # the words


def _ramp_start(row):
    return int(np.flatnonzero(row == 0)[1])  # after the frame's dark column


def _ramp(row):
    start = _ramp_start(row)
    end = int(np.flatnonzero(row == 0)[-1])  # the frame's right column
    return row[start:end]


def _is_ramp(row):
    dark = np.flatnonzero(row == 0)
    if len(dark) < 3:
        return False
    inner = _ramp(row)
    # Many grays, in order: a row of tick marks (paper between dark marks) is no ramp.
    return (len(np.unique(inner)) > 10 and inner[0] == 0 and inner[-1] == 255
            and (np.diff(inner.astype(int)) >= 0).all())


@pytest.mark.parametrize(("top", "expected"), [(25.0, [0, 5, 10, 15, 20, 25]), (6.37, [0, 2, 4, 6]),
                                               (255.0, [0, 50, 100, 150, 200, 250]), (0.8, [0, 0.2, 0.4, 0.6, 0.8])])
def test_nice_ticks(top, expected):
    np.testing.assert_allclose(pictures._nice_ticks(top), expected)
