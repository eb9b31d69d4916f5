"""forward, inverse and dct_kernels on arrays of other array-API libraries, and the layouts.

The references are scipy.fft's per-block dctn/idctn (tests/references.py) and JPEG's zigzag
table as libjpeg writes it, never dctconv's own numpy path. array-api-strict is the strict
reference implementation of the standard: code that runs on it uses nothing outside it.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from references import reference_blockwise_dct, reference_blockwise_idct
from dctconv import dct_kernels, forward, inverse
from dctconv.errors import InvalidCoefficientsError, InvalidImageError, InvalidOptionError

xs = pytest.importorskip("array_api_strict")
StrictArray = type(xs.zeros(1))

#: libjpeg's jpeg_natural_order (jutils.c): the k-th coefficient of the zigzag scan is
#: natural (row-major) position JPEG_NATURAL[k] of the 8 x 8 block (ITU-T T.81 Figure 5).
JPEG_NATURAL = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7,
    14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39,
    46, 53, 60, 61, 54, 47, 55, 62, 63,
]


def reference_maps(images: np.ndarray, n: int) -> np.ndarray:
    """scipy's dctn per block of every image of a (..., H, W) array: (..., n*n, rows, columns)."""
    flat = images.reshape(-1, *images.shape[-2:])
    maps = np.stack([reference_blockwise_dct(image, n) for image in flat])
    return maps.reshape(*images.shape[:-2], *maps.shape[1:])


def as_layout(maps: np.ndarray, layout: str, order) -> np.ndarray:
    """Channels-first frequency-order maps rearranged by numpy indexing, for the references."""
    maps = maps[..., order, :, :]
    return np.moveaxis(maps, -3, -1) if layout == "channels_last" else maps


LAYOUTS = [("channels_first", "frequency"), ("channels_last", "frequency"),
           ("channels_first", "zigzag"), ("channels_last", "zigzag")]


@pytest.mark.parametrize("layout, channel_order", LAYOUTS)
@pytest.mark.parametrize("shape, n", [((13, 10), 4), ((2, 3, 9, 8), 2), ((1, 16, 17), 8)])
def test_array_api_forward_is_dctn_per_block_in_every_layout(shape, n, layout, channel_order, rng):
    images = 255 * rng.random(shape)
    order = JPEG_NATURAL if (channel_order, n) == ("zigzag", 8) else None
    if order is None:
        from dctconv.codec._zigzag import zigzag_order

        order = zigzag_order(n) if channel_order == "zigzag" else np.arange(n * n)
    expected = as_layout(reference_maps(images, n), layout, order)
    maps = forward(xs.asarray(images), n, layout=layout, channel_order=channel_order)
    assert isinstance(maps, StrictArray) and maps.dtype == xs.float64
    np.testing.assert_allclose(np.asarray(maps), expected, rtol=0, atol=1e-11)
    restored = inverse(maps, shape[-2:], layout=layout, channel_order=channel_order)
    assert isinstance(restored, StrictArray) and restored.shape == shape
    np.testing.assert_allclose(np.asarray(restored), images, rtol=0, atol=1e-11)


def test_array_api_inverse_is_idctn_per_block(rng):
    maps = rng.standard_normal((2, 16, 3, 2))
    images = inverse(xs.asarray(maps), (10, 7))
    expected = np.stack([reference_blockwise_idct(m, (10, 7)) for m in maps])
    np.testing.assert_allclose(np.asarray(images), expected, rtol=0, atol=1e-12)


def test_array_api_dtypes(rng):
    image = rng.integers(0, 256, (8, 8)).astype(np.uint8)
    # Integers compute in the library's default floating dtype (float64 in array-api-strict).
    assert forward(xs.asarray(image)).dtype == xs.float64
    assert forward(xs.asarray(image), dtype=np.float32).dtype == xs.float32
    assert forward(xs.asarray(image), dtype=xs.float32).dtype == xs.float32
    c32 = forward(xs.asarray(image.astype(np.float32)), 4)
    assert c32.dtype == xs.float32 and inverse(c32).dtype == xs.float32
    np.testing.assert_allclose(np.asarray(c32), reference_blockwise_dct(image, 4), rtol=0, atol=2e-4)
    assert inverse(xs.asarray(np.zeros((16, 1, 1), np.int16))).dtype == xs.float64
    with pytest.raises(InvalidOptionError):
        forward(xs.asarray(image), dtype=xs.int32)


@pytest.mark.parametrize("bad", [np.zeros(5), np.zeros((0, 4)), np.zeros((2, 3, 0, 4)), np.zeros((3, 3), complex)])
def test_array_api_forward_rejects_non_images(bad):
    with pytest.raises(InvalidImageError):
        forward(xs.asarray(bad))


@pytest.mark.parametrize(
    "bad, shape, layout",
    [(np.zeros((16, 2)), None, "channels_first"), (np.zeros((2, 15, 2, 2)), None, "channels_first"),
     (np.zeros((2, 2, 15)), None, "channels_last"), (np.zeros((16, 2, 2)), (9, 8), "channels_first"),
     (np.zeros((16, 0, 2)), None, "channels_first"), (np.zeros((16, 2, 2), complex), None, "channels_first")],
)
def test_array_api_inverse_rejects_bad_coefficients(bad, shape, layout):
    with pytest.raises(InvalidCoefficientsError):
        inverse(xs.asarray(bad), shape, layout=layout)


def test_options_are_checked_for_every_library():
    for image in (np.zeros((4, 4)), xs.zeros((4, 4))):
        with pytest.raises(InvalidOptionError):
            forward(image, layout="NHWC")
        with pytest.raises(InvalidOptionError):
            inverse(forward(image), channel_order="raster")
    with pytest.raises(InvalidOptionError):
        dct_kernels(4, channel_order="raster")


# ---------------------------------------------------------------- numpy keeps its engine


@pytest.mark.parametrize("layout, channel_order", LAYOUTS)
def test_numpy_layouts_rearrange_the_default_maps_exactly(layout, channel_order, rng):
    stack = rng.integers(0, 256, (2, 17, 16)).astype(np.uint8)
    order = JPEG_NATURAL if channel_order == "zigzag" else np.arange(64)
    default = forward(stack, 8)
    maps = forward(stack, 8, layout=layout, channel_order=channel_order)
    np.testing.assert_array_equal(maps, as_layout(default, layout, order))
    assert maps.flags.c_contiguous
    np.testing.assert_array_equal(forward(stack[1], 8, layout=layout, channel_order=channel_order), maps[1])
    restored = inverse(maps, stack.shape[1:], layout=layout, channel_order=channel_order)
    np.testing.assert_array_equal(restored, inverse(default, stack.shape[1:]))


def test_numpy_channels_last_inverse_checks_dimensions():
    with pytest.raises(InvalidCoefficientsError, match="channels-last"):
        inverse(np.zeros((2, 2)), layout="channels_last")


def test_dct_kernels_follow_like_and_channel_order(rng):
    kernels = dct_kernels(8)
    zigzag = dct_kernels(8, channel_order="zigzag")
    np.testing.assert_array_equal(zigzag, kernels[JPEG_NATURAL])
    assert dct_kernels(4, like=np.zeros(1, np.float32)).dtype == np.float32
    strict = dct_kernels(4, like=xs.zeros(1, dtype=xs.float32))
    assert isinstance(strict, StrictArray) and strict.dtype == xs.float32
    np.testing.assert_allclose(np.asarray(strict), dct_kernels(4), rtol=0, atol=1e-7)


def test_numpy_input_never_imports_array_api_compat():
    # The dispatch costs numpy input an isinstance check, not an import.
    code = ("import sys, numpy as np, dctconv; dctconv.forward(np.ones((8, 8))); dctconv.inverse(np.ones((4, 2, 2)));"
            "dctconv.forward([[1.0, 2.0], [3.0, 4.0]]); assert 'array_api_compat' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_dask_arrays_stay_lazy_dask_arrays(rng):
    da = pytest.importorskip("dask.array")
    images = rng.random((3, 12, 10))
    lazy = da.from_array(images, chunks=(1, 12, 10))
    maps = forward(lazy, 4, layout="channels_last")
    assert isinstance(maps, da.Array)
    np.testing.assert_allclose(maps.compute(), as_layout(reference_maps(images, 4), "channels_last", np.arange(16)),
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(inverse(maps, (12, 10), layout="channels_last").compute(), images, rtol=0, atol=1e-12)
