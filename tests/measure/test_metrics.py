"""PSNR, SSIM, MSE, largest error and the error picture, against numpy formulas and scikit-image."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from references import SAMPLES
from dctconv.measure import _metrics as metrics
from dctconv.errors import InvalidImageError
from dctconv.io._images import read_image
from dctconv.measure._metrics import compare, error_picture, max_abs_error, measure, mse, psnr, ssim


def noisy(image: np.ndarray, rng, spread: int) -> np.ndarray:
    """The image plus integer noise in [-spread, spread], clipped to its dtype."""
    info = np.iinfo(image.dtype)
    noise = rng.integers(-spread, spread + 1, image.shape)
    return np.clip(image.astype(np.int64) + noise, info.min, info.max).astype(image.dtype)


def test_known_psnr_values():
    # MSE 1 at 8 bits: 10 log10(255^2) = 48.1308 dB; at 16 bits 10 log10(65535^2) = 96.3296 dB.
    a = np.zeros((8, 8), np.uint8)
    b = a.copy()
    b[0, 0] = 8  # MSE = 64 / 64 = 1
    assert psnr(a, b, data_range=255) == pytest.approx(20 * math.log10(255), abs=1e-12)
    assert psnr(a.astype(np.uint16), b.astype(np.uint16), data_range=65535) == pytest.approx(
        20 * math.log10(65535), abs=1e-12
    )
    assert mse(a, b) == 1.0
    assert max_abs_error(a, b) == 8.0


def test_identical_images_have_no_psnr_and_ssim_one():
    image, _ = read_image(SAMPLES / "text.png")
    assert psnr(image, image.copy(), data_range=255) is None
    assert ssim(image, image.copy(), data_range=255) == 1.0
    quality = compare(image, image, data_range=255)
    assert (quality.psnr_db, quality.ssim, quality.mse, quality.max_abs_error) == (None, 1.0, 0.0, 0.0)


@pytest.mark.parametrize("name", ["camera.png", "coins.png", "text.png"])
def test_metrics_agree_with_numpy_and_scikit_image(name, rng):
    image, info = read_image(SAMPLES / name)
    other = noisy(image, rng, 6)
    difference = image.astype(np.float64) - other
    expected_mse = np.mean(difference**2)
    quality = compare(image, other, data_range=info.data_range)
    assert quality.mse == pytest.approx(expected_mse, rel=1e-12)
    assert quality.max_abs_error == np.abs(difference).max()
    # PSNR by its formula, then by scikit-image.
    assert quality.psnr_db == pytest.approx(10 * math.log10(255**2 / expected_mse), rel=1e-12)
    assert quality.psnr_db == pytest.approx(peak_signal_noise_ratio(image, other, data_range=255), rel=1e-12)
    assert quality.ssim == pytest.approx(structural_similarity(image, other, data_range=255), rel=1e-12)


def test_sixteen_bit_uses_the_full_sixteen_bit_range(rng):
    image = read_image(SAMPLES / "coins.png")[0].astype(np.uint16) * 100  # uses 0 .. 25500 only
    other = noisy(image, rng, 300)
    quality = compare(image, other, data_range=65535)
    assert quality.psnr_db == pytest.approx(peak_signal_noise_ratio(image, other, data_range=65535), rel=1e-12)
    assert quality.ssim == pytest.approx(structural_similarity(image, other, data_range=65535), rel=1e-12)
    # The range the image happens to use would give another number: data_range matters.
    used = float(image.max()) - float(image.min())
    assert quality.psnr_db != pytest.approx(peak_signal_noise_ratio(image, other, data_range=used), rel=1e-3)


def test_small_images_use_a_smaller_ssim_window(rng):
    image = rng.integers(0, 256, (5, 40)).astype(np.uint8)
    other = noisy(image, rng, 20)
    assert ssim(image, other, data_range=255) == pytest.approx(
        structural_similarity(image, other, data_range=255, win_size=5), rel=1e-12
    )
    image = rng.integers(0, 256, (4, 9)).astype(np.uint8)
    other = noisy(image, rng, 20)
    assert ssim(image, other, data_range=255) == pytest.approx(
        structural_similarity(image, other, data_range=255, win_size=3), rel=1e-12
    )
    # A 2-pixel side leaves no window of 3: no SSIM, but the other numbers exist.
    quality = compare(image[:2], other[:2], data_range=255)
    assert quality.ssim is None and quality.mse > 0


def test_shapes_must_match():
    with pytest.raises(InvalidImageError, match="original is 4 x 4 but the reconstruction is 5 x 4"):
        compare(np.zeros((4, 4)), np.zeros((4, 5)), data_range=255)


def test_error_picture_scale():
    original = np.zeros((20, 50), np.uint8)
    reconstruction = (np.arange(1000) % 5).reshape(20, 50).astype(np.uint8)  # errors 0 .. 4
    reconstruction[0, 0] = 200  # one outlier, above the 99th percentile
    picture, scale = error_picture(original, reconstruction)
    error = np.abs(original.astype(float) - reconstruction)
    white = np.percentile(error, 99)
    assert white == 4.0
    assert scale == 255 / 4
    np.testing.assert_array_equal(picture, np.minimum(np.rint(error * 255 / 4), 255))
    assert picture[0, 0] == 255 and picture[0, 1] == 64  # 1 * 63.75 rounds to 64
    # Reading the picture back: gray / scale is the error, to within half a gray level.
    below = error <= white
    assert np.all(np.abs(picture[below] / scale - error[below]) <= 0.5 / scale)


def test_error_picture_of_rare_errors_and_of_identical_images():
    original = np.zeros((20, 20), np.uint16)
    reconstruction = original.copy()
    reconstruction[3, 4] = 7  # one pixel in 400: the 99th percentile is 0, the maximum is used
    picture, scale = error_picture(original, reconstruction)
    assert scale == 255 / 7 and picture[3, 4] == 255 and picture.sum() == 255
    picture, scale = error_picture(original, original)
    assert scale == 1.0 and not picture.any()


def test_float32_images_are_measured_in_float64():
    """Found by the fuzz test of compress: scikit-image computes in float32 for float32 (F)
    images, so the PSNR was 1e-9 off, and for large pixels the squared error overflowed:
    PSNR -inf, written to the metrics file as -Infinity, which is not JSON."""
    a = np.zeros((8, 8), np.float32)
    b = a.copy()
    b[0, 0] = 3e38  # squared: 9e76, beyond float32, fine in float64
    # 10 log10(R^2 / MSE), R = 1 (the range of float images), MSE = (3e38)^2 / 64.
    expected = 10 * math.log10(1.0 / (float(np.float32(3e38)) ** 2 / 64))
    assert psnr(a, b, data_range=1.0) == pytest.approx(expected, rel=1e-12)
    assert math.isfinite(ssim(a, b, data_range=1.0))

    rng = np.random.default_rng(3)
    x = rng.random((9, 9)).astype(np.float32)
    y = (x + rng.normal(0, 1e-3, x.shape)).astype(np.float32)
    difference = x.astype(np.float64) - y.astype(np.float64)
    assert psnr(x, y, data_range=1.0) == pytest.approx(
        10 * math.log10(1.0 / np.mean(difference**2)), rel=1e-12
    )
    assert ssim(x, y, data_range=1.0) == pytest.approx(
        structural_similarity(x.astype(np.float64), y.astype(np.float64), data_range=1.0), rel=1e-12
    )


def test_measure_gives_the_four_numbers_and_the_error_picture_at_once(rng):
    image, info = read_image(SAMPLES / "coins.png")
    other = noisy(image, rng, 6)
    quality, picture, scale = measure(image, other, data_range=info.data_range)
    error = np.abs(image.astype(np.float64) - other)
    assert quality.mse == pytest.approx(np.mean(error**2), rel=1e-12)
    assert quality.max_abs_error == error.max()
    assert quality.psnr_db == pytest.approx(peak_signal_noise_ratio(image, other, data_range=255), rel=1e-12)
    assert quality.ssim == pytest.approx(structural_similarity(image, other, data_range=255), rel=1e-12)
    white = np.percentile(error, 99)
    assert scale == 255 / white
    np.testing.assert_array_equal(picture, np.minimum(np.rint(error * 255 / white), 255))
    with pytest.raises(InvalidImageError, match="original is 4 x 4 but the reconstruction is 5 x 4"):
        measure(np.zeros((4, 4)), np.zeros((4, 5)), data_range=255)


@pytest.mark.parametrize("band_pixels", [1, 37, 200, 10_000])
@pytest.mark.parametrize("dtype, data_range, spread", [(np.uint8, 255, 9), (np.uint16, 65535, 700)])
def test_bands_give_scikit_image_values_of_the_whole_image(monkeypatch, rng, band_pixels, dtype, data_range, spread):
    """SSIM and the errors are computed in bands of rows (metrics.BAND_PIXELS); with bands
    from one row to the whole image, on a shape whose last band is short, every number
    is scikit-image's (or numpy's) over the whole image, and the picture is the same."""
    monkeypatch.setattr(metrics, "BAND_PIXELS", band_pixels)
    image = (rng.integers(0, 200, (53, 29)) * (data_range // 255)).astype(dtype)
    other = noisy(image, rng, spread)
    quality, picture, scale = measure(image, other, data_range=data_range)
    whole = structural_similarity(image.astype(np.float64), other.astype(np.float64), data_range=data_range)
    assert quality.ssim == pytest.approx(whole, rel=1e-12, abs=0)
    assert quality.psnr_db == pytest.approx(peak_signal_noise_ratio(image, other, data_range=data_range), rel=1e-12)
    error = np.abs(image.astype(np.float64) - other)
    assert quality.mse == pytest.approx(np.mean(error**2), rel=1e-12)
    assert quality.max_abs_error == error.max()
    assert scale == 255 / np.percentile(error, 99)
    np.testing.assert_array_equal(picture, np.minimum(np.rint(error * scale), 255))
    for window in (3, 5):  # images under 7 pixels on a side: a smaller window, banded the same way
        small, small_other = image[:window, :20], other[:window, :20]
        assert ssim(small, small_other, data_range=data_range) == pytest.approx(
            structural_similarity(small, small_other, data_range=data_range, win_size=window), rel=1e-12)


def test_bands_of_a_float_image(monkeypatch, rng):
    monkeypatch.setattr(metrics, "BAND_PIXELS", 64)
    x = rng.random((31, 18)).astype(np.float32)
    y = (x + rng.normal(0, 1e-2, x.shape)).astype(np.float32)
    quality = compare(x, y, data_range=1.0)
    reference = structural_similarity(x.astype(np.float64), y.astype(np.float64), data_range=1.0)
    assert quality.ssim == pytest.approx(reference, rel=1e-12)
    difference = x.astype(np.float64) - y.astype(np.float64)
    assert quality.mse == pytest.approx(np.mean(difference**2), rel=1e-12)


def test_measure_hands_over_the_error_picture_before_psnr_and_ssim(monkeypatch, rng):
    image, info = read_image(SAMPLES / "coins.png")
    other = noisy(image, rng, 6)
    order = []
    real_ssim = metrics._ssim
    monkeypatch.setattr(metrics, "_ssim", lambda *args: order.append("ssim") or real_ssim(*args))
    quality, picture, scale = measure(image, other, data_range=255,
                                      on_error_picture=lambda *given: order.append(given))
    handed, then = order
    assert then == "ssim"
    assert handed[0] is picture and handed[1] == scale and handed[2] == quality.max_abs_error


def test_psnr_computed_elsewhere_is_the_same(rng):
    # A float image's PSNR is scikit-image's computation, handed to another thread.
    image, _ = read_image(SAMPLES / "camera.png")
    image = image.astype(np.float32) / 255
    other = (image + rng.normal(0, 0.01, image.shape)).astype(np.float32)
    handed = []

    def submit(function, *args):
        handed.append(function)
        result = function(*args)
        return lambda: result

    quality = measure(image, other, data_range=1.0, submit=submit)[0]
    assert len(handed) == 1
    assert quality.psnr_db == peak_signal_noise_ratio(image.astype(np.float64), other.astype(np.float64),
                                                      data_range=1.0)
    assert quality == measure(image, other, data_range=1.0)[0]


@pytest.mark.parametrize(("dtype", "data_range", "spread"), [(np.uint8, 255, 4), (np.uint16, 65535, 900),
                                                             (np.int32, 2**20, 3000)])
def test_the_psnr_of_integer_images_is_scikit_images_from_the_summed_errors(dtype, data_range, spread, rng):
    # Whole errors: their squares and every partial sum are exact in float64, so the PSNR
    # from the sum of squared errors is scikit-image's to the last bit, and nothing is
    # handed to another thread (scikit-image's computation makes four float64 images).
    image = rng.integers(0, min(data_range, 60000), (150, 97)).astype(dtype)
    other = noisy(image, rng, spread)
    handed = []
    quality = measure(image, other, data_range=data_range, submit=lambda *task: handed.append(task))[0]
    assert handed == []
    assert quality.psnr_db == peak_signal_noise_ratio(image, other, data_range=data_range)
    assert compare(image, other, data_range=data_range).psnr_db == quality.psnr_db


def test_int32_errors_too_large_to_sum_exactly_take_scikit_images_way(rng):
    # Squares of errors near 2**31 are not whole float64 numbers: scikit-image's mean of
    # the squares is computed as it computes it (here on the other thread).
    image = rng.integers(-(2**31), 2**31 - 1, (40, 30), dtype=np.int64).astype(np.int32)
    other = rng.integers(-(2**31), 2**31 - 1, (40, 30), dtype=np.int64).astype(np.int32)
    handed = []

    def submit(function, *args):
        handed.append(function)
        result = function(*args)
        return lambda: result

    quality = measure(image, other, data_range=2.0**32, submit=submit)[0]
    assert len(handed) == 1
    assert quality.psnr_db == peak_signal_noise_ratio(image.astype(np.float64), other.astype(np.float64),
                                                      data_range=2.0**32)


@pytest.mark.parametrize(("dtype", "data_range", "window"), [
    (np.uint8, 255, 7), (np.uint16, 65535, 7), (np.float32, 3.5, 5), (np.float64, 1.0, 3)])
def test_psnr_and_ssim_map_are_scikit_images_to_the_last_bit(dtype, data_range, window, rng):
    # Computed without importing scikit-image's metrics (they import scipy.stats): the
    # same operations in the same order, so the same float64 numbers, not merely close ones.
    if np.dtype(dtype).kind == "f":
        image = (rng.random((45, 38)) * data_range).astype(dtype)
        other = (image + rng.normal(0, data_range / 50, image.shape)).astype(dtype)
    else:
        image = rng.integers(0, data_range + 1, (45, 38)).astype(dtype)
        other = noisy(image, rng, 9)
    a, b = image.astype(np.float64), other.astype(np.float64)
    assert metrics._psnr(image, other, data_range, False) == peak_signal_noise_ratio(a, b, data_range=data_range)
    _, expected = structural_similarity(a, b, data_range=data_range, win_size=window, full=True)
    assert np.array_equal(metrics._ssim_map(a, b, data_range, window), expected)
    valid = np.ones(image.shape, bool)
    valid[::3] = False
    assert metrics.over_valid(metrics.compare(image, other, data_range=data_range), image, other, valid,
                              data_range=data_range).psnr_db == peak_signal_noise_ratio(
        a[valid], b[valid], data_range=data_range)


@pytest.mark.parametrize("window", [3, 5, 7])
def test_the_ssim_map_row_by_row_is_scikit_images_to_the_last_bit(window, rng):
    # scipy.ndimage.uniform_filter's running sums (reflected edges), kept row by row: down to
    # lines exactly as long as the window, where both edges reflect into one window, and
    # values far from 1.
    from dctconv.measure import _ssim

    for shape in [(window, window), (window, 40), (33, window + 1), (70, 45)]:
        scale = 10.0 ** rng.integers(-3, 8)
        x = rng.normal(0, 1, shape) * scale
        y = x + rng.normal(0, 0.1, shape) * scale
        _, expected = structural_similarity(x, y, data_range=4 * scale, win_size=window, full=True)
        assert np.array_equal(_ssim.ssim_map(x, y, 4 * scale, window, 0.01, 0.03), expected), shape
        # Rows of a band: the same numbers, and each row's sum over the columns scikit-image averages.
        pad = (window - 1) // 2
        sums, rows = _ssim.ssim_rows(x, y, 4 * scale, window, 0.01, 0.03, pad, shape[0] - pad, full=True)
        assert np.array_equal(rows, expected[pad : shape[0] - pad])
        inner = expected[pad : shape[0] - pad, pad : shape[1] - pad]
        np.testing.assert_allclose(sums, inner.sum(axis=1), rtol=0, atol=1e-14 * np.abs(inner).max() * shape[1])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.float32])
def test_the_ssim_reads_pixels_in_their_own_type(dtype, rng):
    # No float64 copy of the images: the compiled loop reads each pixel type as it is.
    image = rng.integers(0, 250, (37, 41)).astype(dtype)
    if np.dtype(dtype).kind == "f":
        other = (image + rng.normal(0, 3, image.shape)).astype(dtype)
    else:
        other = noisy(image, rng, 5)
    a, b = image.astype(np.float64), other.astype(np.float64)
    _, expected = structural_similarity(a, b, data_range=255, full=True)
    assert np.array_equal(metrics._ssim_map(image, other, 255, 7), expected)
    assert ssim(image, other, data_range=255) == pytest.approx(structural_similarity(a, b, data_range=255),
                                                               rel=1e-13)


def test_read_only_and_writable_images_share_one_compiled_ssim(rng):
    # An image read from a file is read-only, a decoded one writable: numba compiles (or loads)
    # a version for each combination it is given, so the loop is always given read-only views.
    from dctconv.measure import _ssim

    image = rng.integers(0, 256, (20, 20)).astype(np.uint8)
    other = noisy(image, rng, 3)
    expected = ssim(image, other, data_range=255)
    before = len(_ssim._ssim_rows.signatures)
    image.flags.writeable = False
    assert ssim(image, other, data_range=255) == expected
    ssim(other[::-1], image, data_range=255)
    assert len(_ssim._ssim_rows.signatures) == before


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_the_percentile_of_integer_errors_from_their_histogram_is_numpys(dtype, rng):
    # The error picture's white point: counted instead of partitioned, the same float64 number
    # as np.percentile (linear), for both halves of the interpolation weight and a few values only.
    for trial in range(300):
        size = int(rng.integers(1, 2000))
        top = int(rng.integers(0, 4)) if trial % 3 == 0 else int(rng.integers(0, np.iinfo(dtype).max))
        values = rng.integers(0, top + 1, size).astype(dtype)
        for q in (metrics.ERROR_PERCENTILE, 0.0, 50.0, 62.5, 100.0):
            assert metrics._percentile(values, q) == np.percentile(values, q), (size, top, q)
