import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from references import (
    pad_edge,
    reference_blockwise_dct,
    reference_blockwise_idct,
    reference_strided_correlation,
    tolerance,
)
from dctconv import forward, inverse
from dctconv.errors import InvalidBlockSizeError, InvalidCoefficientsError, InvalidImageError


def random_image(rng, shape, dtype):
    if np.dtype(dtype).kind == "f":
        return (rng.standard_normal(shape) * 50).astype(dtype)
    return rng.integers(0, np.iinfo(dtype).max, size=shape, endpoint=True).astype(dtype)


@settings(max_examples=60, deadline=None)
@given(
    height=st.integers(1, 40),
    width=st.integers(1, 40),
    n=st.integers(2, 12),
    dtype=st.sampled_from([np.float64, np.float32, np.uint8, np.uint16, np.int32]),
    seed=st.integers(0, 2**32 - 1),
)
def test_forward_matches_blockwise_dctn_and_round_trips(height, width, n, dtype, seed):
    image = random_image(np.random.default_rng(seed), (height, width), dtype)
    coefficients = forward(image, n)
    work = np.float32 if dtype == np.float32 else np.float64
    assert coefficients.dtype == work
    assert coefficients.shape == (n * n, -(-height // n), -(-width // n))
    magnitude = n * float(np.abs(image.astype(np.float64)).max())
    expected = reference_blockwise_dct(image, n)
    np.testing.assert_allclose(coefficients, expected, rtol=0, atol=tolerance(work, magnitude))
    restored = inverse(coefficients, image.shape)
    assert restored.shape == image.shape and restored.dtype == work
    np.testing.assert_allclose(restored, image.astype(np.float64), rtol=0, atol=tolerance(work, magnitude))
    np.testing.assert_allclose(
        restored, reference_blockwise_idct(expected, image.shape), rtol=0, atol=tolerance(work, magnitude)
    )


@settings(max_examples=25, deadline=None)
@given(
    height=st.integers(1, 24),
    width=st.integers(1, 24),
    n=st.integers(2, 8),
    seed=st.integers(0, 2**32 - 1),
)
def test_forward_is_the_literal_strided_correlation(height, width, n, seed):
    image = np.random.default_rng(seed).random((height, width))
    np.testing.assert_allclose(
        forward(image, n), reference_strided_correlation(image, n), rtol=0, atol=tolerance(np.float64, n)
    )


@settings(max_examples=30, deadline=None)
@given(height=st.integers(1, 30), width=st.integers(1, 30), n=st.integers(2, 9), seed=st.integers(0, 2**32 - 1))
def test_parseval_energy_of_padded_image(height, width, n, seed):
    image = np.random.default_rng(seed).standard_normal((height, width))
    energy = np.sum(pad_edge(image, n) ** 2)
    assert abs(np.sum(forward(image, n) ** 2) - energy) <= tolerance(np.float64, energy)


def test_round_trip_to_1e_10_on_a_photo_sized_image(rng):
    # The contract: inverse(forward(x), x.shape) returns x to within 1e-10 (float64).
    image = rng.random((301, 517)) * 255
    for n in (2, 4, 8, 16, 64):
        assert np.abs(inverse(forward(image, n), image.shape) - image).max() < 1e-10


def test_large_block_size_64_matches_reference(rng):
    image = rng.random((130, 70))
    np.testing.assert_allclose(forward(image, 64), reference_blockwise_dct(image, 64), atol=1e-11)


def test_strips_do_not_change_the_result(rng, monkeypatch):
    # Force one block row per strip, so every strip boundary is exercised.
    import dctconv.transform as transform

    image = rng.random((45, 38))
    whole = forward(image, 4)
    monkeypatch.setattr(transform, "STRIP_BYTES", 1)
    np.testing.assert_array_equal(forward(image, 4), whole)
    np.testing.assert_allclose(inverse(whole, image.shape), image, atol=1e-12)


def test_known_values_of_a_constant_and_a_ramp():
    # A constant patch c has only a DC coefficient, equal to n * c (a(0)^2 * n^2 * c).
    coefficients = forward(np.full((8, 8), 3.0), 4)
    np.testing.assert_allclose(coefficients[0], np.full((2, 2), 12.0))
    np.testing.assert_allclose(coefficients[1:], 0, atol=1e-14)
    # A horizontal ramp u(i, j) = j puts energy only in the first row of frequencies (x = 0).
    ramp = np.tile(np.arange(4.0), (4, 1))
    c = forward(ramp, 4)[:, 0, 0].reshape(4, 4)
    np.testing.assert_allclose(c[1:, :], 0, atol=1e-14)
    # Value from the 1-D DCT of [0, 1, 2, 3]: sqrt(1/4)*6 * sqrt(4) (the 4 equal rows) = 6.
    assert c[0, 0] == pytest.approx(6.0)


def test_float32_stays_float32_and_ints_compute_in_float64(rng):
    assert forward(rng.random((8, 8)).astype(np.float32)).dtype == np.float32
    assert forward(np.ones((8, 8), np.uint8)).dtype == np.float64
    assert forward(np.ones((8, 8), np.float16)).dtype == np.float64
    assert inverse(np.zeros((16, 2, 2), np.float32)).dtype == np.float32


def test_padding_repeats_edge_pixels():
    image = np.arange(15.0).reshape(3, 5)
    restored = inverse(forward(image, 4))
    np.testing.assert_array_almost_equal(restored, pad_edge(image, 4), decimal=12)


def test_inverse_without_shape_returns_full_grid(rng):
    c = rng.standard_normal((9, 2, 3))
    assert inverse(c).shape == (6, 9)


@pytest.mark.parametrize(
    "bad",
    [np.zeros(5), np.zeros((2, 0, 4, 4)), np.zeros((0, 4)), np.zeros((3, 3), complex), np.array([["a"]]),
     np.zeros((0, 4, 4)), np.zeros((2, 0, 4)), np.zeros((2, 3, 3), complex)],
)
def test_forward_rejects_non_images(bad):
    with pytest.raises(InvalidImageError):
        forward(bad)


def test_forward_rejects_bad_block_size():
    with pytest.raises(InvalidBlockSizeError):
        forward(np.zeros((4, 4)), 1)


@pytest.mark.parametrize(
    "bad, shape",
    [
        (np.zeros((16, 2)), None),  # not 3-D
        (np.zeros((2, 0, 16, 2, 2)), None),  # a batch with an empty leading dimension
        (np.zeros((0, 16, 2, 2)), None),  # an empty stack
        (np.zeros((3, 15, 2, 2)), None),  # a stack of maps whose 15 channels are not n*n
        (np.zeros((3, 16, 2, 2)), (9, 8)),
        (np.zeros((15, 2, 2)), None),  # 15 is not n*n
        (np.zeros((1, 2, 2)), None),  # n = 1
        (np.zeros((16, 2, 2)), (9, 8)),  # 9 rows need 3 block rows
        (np.zeros((16, 2, 2)), (4, 8)),  # 4 rows need only 1
        (np.zeros((16, 2, 2)), (0, 8)),
        (np.zeros((16, 2, 2)), "8x8"),
    ],
)
def test_inverse_rejects_bad_coefficients_or_shape(bad, shape):
    with pytest.raises(InvalidCoefficientsError):
        inverse(bad, shape)


# ---------------------------------------------------------------- stacks (N, H, W) and batches (..., H, W)


@pytest.mark.parametrize("leading", [(2, 3), (1, 2, 2)])
@pytest.mark.parametrize("layout", ["channels_first", "channels_last"])
def test_leading_batch_and_channel_dimensions_are_kept(rng, leading, layout):
    n, height, width = 4, 10, 7
    batch = rng.standard_normal(leading + (height, width))
    coefficients = forward(batch, n, layout=layout)
    grid = (-(-height // n), -(-width // n))
    expected_shape = leading + ((n * n,) + grid if layout == "channels_first" else grid + (n * n,))
    assert coefficients.shape == expected_shape
    for index in np.ndindex(*leading):
        reference = reference_blockwise_dct(batch[index], n)
        maps = coefficients[index] if layout == "channels_first" else np.moveaxis(coefficients[index], -1, 0)
        np.testing.assert_allclose(maps, reference, rtol=0, atol=tolerance(np.float64, 40))
    restored = inverse(coefficients, (height, width), layout=layout)
    assert restored.shape == batch.shape
    np.testing.assert_allclose(restored, batch, rtol=0, atol=tolerance(np.float64, 40))




@settings(max_examples=30, deadline=None)
@given(
    count=st.integers(1, 4),
    height=st.integers(1, 30),
    width=st.integers(1, 30),
    n=st.integers(2, 12),
    dtype=st.sampled_from([np.float64, np.float32, np.uint8, np.uint16]),
    seed=st.integers(0, 2**32 - 1),
)
def test_a_stack_gives_what_its_images_give_one_at_a_time(count, height, width, n, dtype, seed):
    stack = random_image(np.random.default_rng(seed), (count, height, width), dtype)
    coefficients = forward(stack, n)
    work = np.float32 if dtype == np.float32 else np.float64
    assert coefficients.shape == (count, n * n, -(-height // n), -(-width // n))
    assert coefficients.dtype == work
    # Bit for bit what one call per image gives ...
    np.testing.assert_array_equal(coefficients, np.stack([forward(image, n) for image in stack]))
    # ... and what scipy.fft.dctn gives block by block.
    magnitude = n * float(np.abs(stack.astype(np.float64)).max())
    for image, maps in zip(stack, coefficients):
        np.testing.assert_allclose(maps, reference_blockwise_dct(image, n), rtol=0,
                                   atol=tolerance(work, magnitude))
    restored = inverse(coefficients, (height, width))
    assert restored.shape == stack.shape and restored.dtype == work
    np.testing.assert_array_equal(
        restored, np.stack([inverse(maps, (height, width)) for maps in coefficients])
    )
    for maps, image in zip(coefficients, restored):
        np.testing.assert_allclose(
            image, reference_blockwise_idct(maps.astype(np.float64), (height, width)),
            rtol=0, atol=tolerance(work, magnitude),
        )


def test_a_large_stack_is_the_same_on_one_thread_and_on_several(rng):
    # 6 x 256 x 256 pixels is enough work for _threads to start helper threads.
    stack = rng.integers(0, 256, (6, 256, 250), dtype=np.uint8)
    one = forward(stack, 8, workers=1)
    np.testing.assert_array_equal(forward(stack, 8, workers=3), one)
    np.testing.assert_array_equal(one[4], forward(stack[4], 8, workers=1))
    np.testing.assert_array_equal(inverse(one, stack.shape[1:], workers=3),
                                  inverse(one, stack.shape[1:], workers=1))


def test_a_strided_stack_is_read_in_place(rng):
    # A view with gaps (every other image, every other column) needs no copy first.
    base = rng.standard_normal((5, 20, 34))
    stack = base[::2, :, ::2]
    coefficients = forward(stack, 4)
    np.testing.assert_array_equal(coefficients, np.stack([forward(np.ascontiguousarray(im), 4) for im in stack]))
    for image, maps in zip(stack, coefficients):
        np.testing.assert_allclose(maps, reference_blockwise_dct(image, 4), rtol=0, atol=tolerance(np.float64, 40))
    inverted = inverse(coefficients[:, :, ::1, :], (20, 17))
    np.testing.assert_allclose(inverted, stack, rtol=0, atol=tolerance(np.float64, 40))


def test_a_stack_keeps_the_requested_precision(rng):
    stack = rng.integers(0, 65536, (3, 9, 9)).astype(np.uint16)
    c32 = forward(stack, 4, dtype=np.float32)
    assert c32.dtype == np.float32
    np.testing.assert_array_equal(c32[1], forward(stack[1], 4, dtype=np.float32))
    assert inverse(c32, (9, 9)).dtype == np.float32
