"""Tiles, threads and dtype of forward/inverse: correctness only, never timings.

The tiling is forced down to single blocks (STRIP_BYTES, PRODUCT_MACS monkeypatched)
so that every tile boundary, including the padded last block row and column, is
crossed; results are compared with the independent references of references.py, and
the thread pool is compared bitwise with the single-threaded path.
"""

import threading
import time
import warnings

import numpy as np
import pytest

import dctconv.transform as transform
from references import reference_blockwise_dct, reference_blockwise_idct, tolerance
from dctconv import forward, inverse
from dctconv.errors import InvalidOptionError

# Odd shapes: neither side a multiple of n, a single row, a single column, a side
# shorter than one block, and a shape that is whole blocks.
SHAPES = [(45, 38), (37, 101), (1, 29), (30, 1), (3, 3), (64, 48)]


@pytest.fixture(autouse=True)
def threads_even_for_small_images(monkeypatch):
    """Small test images would otherwise run on one thread (THREAD_MIN_PIXELS)."""
    monkeypatch.setattr(transform, "THREAD_MIN_PIXELS", 1)


@pytest.fixture
def tiny_tiles(monkeypatch):
    """Call with n: tiles of one block row of 16 blocks, so small images have many tiles."""

    def set_for(n):
        monkeypatch.setattr(transform, "STRIP_BYTES", 1)
        monkeypatch.setattr(transform, "PRODUCT_MACS", 16 * n**4)

    return set_for


def image_of(rng, shape, dtype):
    if np.dtype(dtype).kind == "f":
        return (rng.standard_normal(shape) * 60).astype(dtype)
    return rng.integers(0, 256, size=shape).astype(dtype)


# Every code path of forward and inverse (transform.SEPARABLE_FROM and patch_row):
# the kernel matrix with patch rows moved whole (float32 at n = 2 and 4, float64 at
# n = 2) or by column offset (n = 3, 5 in float32), and the separable form (float64
# from n = 4, every dtype from n = 8).
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("n", [2, 3, 4, 5, 8, 16])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.uint8])
def test_tile_boundaries_match_blockwise_dctn(tiny_tiles, rng, shape, n, dtype):
    tiny_tiles(n)
    image = image_of(rng, shape, dtype)
    work = np.float32 if dtype == np.float32 else np.float64
    magnitude = n * float(np.abs(image.astype(np.float64)).max())
    expected = reference_blockwise_dct(image, n)
    coefficients = forward(image, n, workers=3)
    assert coefficients.dtype == work
    np.testing.assert_allclose(coefficients, expected, rtol=0, atol=tolerance(work, magnitude))
    restored = inverse(coefficients, shape, workers=3)
    np.testing.assert_allclose(
        restored, reference_blockwise_idct(expected, shape), rtol=0, atol=tolerance(work, magnitude)
    )


def test_products_split_along_a_block_row_match_the_reference(monkeypatch, rng):
    # PRODUCT_MACS down to 16 patches per product: a 101-block-wide row is cut in 7,
    # the last piece 5 blocks wide and padded on the right.
    monkeypatch.setattr(transform, "PRODUCT_MACS", 16 * 4**4)
    image = rng.random((9, 403))
    tiles, _ = transform._tiles(3, 101, 4, 8)
    assert {right - left for _, _, left, right in tiles} == {16, 5}
    np.testing.assert_allclose(forward(image), reference_blockwise_dct(image, 4), rtol=0, atol=tolerance(np.float64, 4))


@pytest.mark.parametrize("n", [2, 4, 8, 16])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_threads_give_bitwise_the_single_threaded_result(tiny_tiles, rng, n, dtype):
    tiny_tiles(n)
    image = image_of(rng, (131, 97), dtype)
    single = forward(image, n, workers=1)
    coefficients = rng.standard_normal(single.shape).astype(dtype)
    back = inverse(coefficients, (131, 97), workers=1)
    for workers in (2, 3, 8):
        np.testing.assert_array_equal(forward(image, n, workers=workers), single)
        np.testing.assert_array_equal(inverse(coefficients, (131, 97), workers=workers), back)


def test_helper_threads_really_run(tiny_tiles, rng, monkeypatch):
    tiny_tiles(4)
    started = []
    real = transform.ThreadPoolExecutor

    def spy(max_workers, **kwargs):
        started.append(max_workers)
        return real(max_workers, **kwargs)

    monkeypatch.setattr(transform, "ThreadPoolExecutor", spy)
    forward(rng.random((64, 64)), 4, workers=3)
    inverse(rng.random((16, 16, 16)), workers=3)
    assert started == [2, 2]  # two helpers besides the calling thread, each time


def test_small_images_run_on_the_calling_thread(monkeypatch):
    monkeypatch.setattr(transform, "THREAD_MIN_PIXELS", 1 << 18)
    assert transform._threads(8, 512 * 512) == 1
    assert transform._threads(8, 1024 * 1024) == 4
    assert transform._threads(2, 1024 * 1024) == 2


def test_default_tiles_give_bitwise_the_result_of_one_block_row_per_tile(rng, monkeypatch):
    # Grouping block rows into tiles never changes a product, so not a bit changes.
    image = rng.random((203, 150)) * 255
    coefficients = forward(image, 4)
    back = inverse(coefficients, image.shape)
    monkeypatch.setattr(transform, "STRIP_BYTES", 1)
    np.testing.assert_array_equal(forward(image, 4, workers=2), coefficients)
    np.testing.assert_array_equal(inverse(coefficients, image.shape, workers=2), back)


def test_strided_and_byte_swapped_images_give_the_result_of_a_contiguous_copy(rng):
    base = rng.random((90, 120)) * 255
    for view in (base[::2, ::3], base.T, base[5:-7, 3:-1], base.astype(">f8")):
        np.testing.assert_array_equal(forward(view, 4, workers=2), forward(np.array(view, dtype=np.float64), 4))


def test_inverse_accepts_non_float_and_strided_coefficients(rng):
    levels = rng.integers(-50, 50, size=(16, 7, 9)).astype(np.int16)
    expected = reference_blockwise_idct(levels.astype(np.float64), (27, 35))
    np.testing.assert_allclose(inverse(levels, (27, 35), workers=2), expected, rtol=0, atol=tolerance(np.float64, 200))
    wide = rng.standard_normal((16, 7, 18))
    np.testing.assert_array_equal(inverse(wide[:, :, ::2], workers=2), inverse(np.ascontiguousarray(wide[:, :, ::2])))


def test_float32_for_an_integer_image_converts_tile_by_tile_like_astype(rng):
    image = rng.integers(0, 2**31 - 1, size=(53, 61)).astype(np.int32)  # not all exact in float32
    coefficients = forward(image, 4, dtype=np.float32)
    assert coefficients.dtype == np.float32
    np.testing.assert_array_equal(coefficients, forward(image.astype(np.float32), 4))
    assert forward(image.astype(np.float32), 4, dtype="float64").dtype == np.float64


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_bad_workers_are_rejected(bad):
    with pytest.raises(InvalidOptionError, match="workers must be a whole number >= 1"):
        forward(np.zeros((8, 8)), workers=bad)
    with pytest.raises(InvalidOptionError, match="workers must be a whole number >= 1"):
        inverse(np.zeros((16, 2, 2)), workers=bad)


@pytest.mark.parametrize("bad", [np.int32, "float16", complex, "not a dtype"])
def test_bad_dtype_is_rejected(bad):
    with pytest.raises(InvalidOptionError, match="dtype must be float32 or float64"):
        forward(np.zeros((8, 8)), dtype=bad)


def test_default_workers_is_capped_and_can_be_set_for_a_process(monkeypatch):
    monkeypatch.setattr(transform, "DEFAULT_WORKERS", None)  # restored after the test
    assert 1 <= transform.default_workers() <= transform.MAX_WORKERS
    transform.set_default_workers(1)
    assert transform.check_workers(None) == 1
    with pytest.raises(InvalidOptionError, match="workers must be a whole number >= 1, got 0"):
        transform.set_default_workers(0)
    assert transform.check_workers(None) == 1


def test_an_error_in_a_helper_thread_reaches_the_caller_and_no_thread_is_left():
    def compute(buffer, top, bottom, left, right):
        time.sleep(0.002)  # lets the helper thread start and take tiles
        if threading.current_thread() is not threading.main_thread():
            raise MemoryError(f"tile {top}")

    before = threading.active_count()
    with pytest.raises(MemoryError, match="tile"):
        transform._run_tiles([(top, top + 1, 0, 1) for top in range(40)], compute, 4, np.dtype(np.float64), 2)
    assert threading.active_count() == before


@pytest.mark.parametrize("n", [4, 8])
def test_float32_overflow_gives_inf_without_a_warning(n):
    # The DC coefficient, n * 1e38, is above float32's largest value, 3.4e38.
    image = np.full((n, n), 1e38, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        coefficients = forward(image, n, workers=2)
        restored = inverse(coefficients, workers=2)
    assert np.isinf(coefficients[0, 0, 0])
    assert not np.isfinite(restored).any()
