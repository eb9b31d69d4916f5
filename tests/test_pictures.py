import numpy as np

from dctconv.pictures import kernels_picture, maps_mosaic


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


def test_mosaic_masked_channels_are_mid_gray():
    mask = np.array([True, False, False, True])
    picture = maps_mosaic(np.ones((4, 2, 2)), mask=mask)
    assert (picture[1:3, 4:6] == 128).all()


def test_kernels_picture_shows_zero_as_mid_gray():
    picture = kernels_picture(2, tile=8)
    assert picture.shape == (2 * 8 + 3 * 4, 2 * 8 + 3 * 4, 3)
    # Kernel (0, 1) of n = 2 is +0.5 on the left column and -0.5 on the right one.
    left = picture[4 : 4 + 8, 4 + 8 + 4 : 4 + 8 + 4 + 4, 0]
    right = picture[4 : 4 + 8, 4 + 8 + 4 + 4 : 4 + 8 + 4 + 8, 0]
    assert (left == 255).all() and (right == 1).all()
