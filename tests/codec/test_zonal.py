"""Zonal compression against an independent computation written here with scipy.fft.

The reference below uses no dctconv code: edge padding with numpy, the block DCT with
``scipy.fft.dctn`` over each block's two axes, the zigzag mask from the issue's own
description, quantization with ``numpy.rint``, the inverse with ``scipy.fft.idctn``.
"""

from __future__ import annotations

import io
import math
from functools import lru_cache

import numpy as np
import pytest
import scipy.fft
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from references import SAMPLES, pad_edge, reference_blockwise_dct, reference_blockwise_idct, tolerance
from dctconv.io._npz import load_coefficients
from dctconv.codec._zonal import (
    compress,
    default_keep,
    keep_mask,
    quantize,
    smallest_integer_dtype,
    threshold_coefficients,
    zigzag_order,
)
from dctconv.errors import InvalidBlockSizeError, InvalidCompressionError
from dctconv.io._images import read_image, to_pixels
from dctconv.measure._metrics import compare

# The issue's zigzag for n = 4 as (row frequency x, column frequency y): its first seven
# cells are quoted in the issue, the rest follow its rule (even diagonal from (s, 0) up to
# (0, s), odd diagonal from (0, s) down to (s, 0)), written out by hand.
ZIGZAG_4 = [(0, 0), (0, 1), (1, 0), (2, 0), (1, 1), (0, 2), (0, 3), (1, 2),
            (2, 1), (3, 0), (3, 1), (2, 2), (1, 3), (2, 3), (3, 2), (3, 3)]

# The 8 x 8 zigzag of JPEG as row-major positions row*8 + col: libjpeg's
# jpeg_natural_order table (jutils.c), ITU-T T.81 Figure A.6.
JPEG_NATURAL_ORDER_8 = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
    12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
    35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
    58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
]


def reference_zigzag(n: int) -> list[tuple[int, int]]:
    """Cells (x, y) sorted by diagonal s = x + y, then along it as the issue says.

    On an even s the walk goes from (s, 0) to (0, s): y increases. On an odd s it goes
    from (0, s) to (s, 0): x increases.
    """
    cells = [(x, y) for x in range(n) for y in range(n)]
    return sorted(cells, key=lambda c: (c[0] + c[1], c[1] if (c[0] + c[1]) % 2 == 0 else c[0]))


def reference_mask(n: int, keep: int) -> np.ndarray:
    order = ZIGZAG_4 if n == 4 else reference_zigzag(n)
    mask = np.zeros((n, n), bool)
    for x, y in order[:keep]:
        mask[x, y] = True
    return mask


def reference_dct_blocks(image: np.ndarray, n: int) -> np.ndarray:
    """(rows, n, cols, n): per-block orthonormal DCT-II by scipy.fft.dctn on the block axes."""
    padded = pad_edge(np.asarray(image, dtype=np.float64), n)
    blocks = padded.reshape(padded.shape[0] // n, n, padded.shape[1] // n, n)
    return scipy.fft.dctn(blocks, axes=(1, 3), norm="ortho")


def reference_idct_blocks(blocks: np.ndarray, shape) -> np.ndarray:
    rows, n, cols, _ = blocks.shape
    image = scipy.fft.idctn(blocks, axes=(1, 3), norm="ortho").reshape(rows * n, cols * n)
    return image[: shape[0], : shape[1]]


@lru_cache(maxsize=None)
def sample(name: str):
    image, info = read_image(SAMPLES / name)
    image.setflags(write=False)
    return image, info


@lru_cache(maxsize=None)
def sample_dct(name: str, n: int) -> np.ndarray:
    blocks = reference_dct_blocks(sample(name)[0], n)
    blocks.setflags(write=False)
    return blocks


def near_half(values: np.ndarray, magnitude: float) -> np.ndarray:
    """Where rint could go either way: within rounding noise of a half-integer."""
    return np.abs(np.abs(values - np.floor(values)) - 0.5) <= tolerance(np.float64, magnitude)


def test_reference_dct_matches_the_one_block_at_a_time_reference():
    # Guard the vectorised reference with references.py's loop over blocks.
    image = sample("coins.png")[0][:37, :45]
    for n in (4, 5):
        blocks = reference_dct_blocks(image, n)
        maps = blocks.transpose(1, 3, 0, 2).reshape(n * n, *blocks[:, 0, :, 0].shape)
        np.testing.assert_allclose(maps, reference_blockwise_dct(image, n), rtol=0, atol=tolerance(np.float64, 4e3))
        np.testing.assert_allclose(reference_idct_blocks(blocks, image.shape),
                                   reference_blockwise_idct(maps, image.shape), rtol=0,
                                   atol=tolerance(np.float64, 255))


# ---------------------------------------------------------------- zigzag and mask


def test_zigzag_4_is_the_issues_order():
    assert [divmod(int(c), 4) for c in zigzag_order(4)] == ZIGZAG_4


def test_zigzag_8_is_jpegs():
    # Channel x*8 + y is frequency (row x, column y): the same numbering as the table.
    assert zigzag_order(8).tolist() == JPEG_NATURAL_ORDER_8


@pytest.mark.parametrize("n", range(2, 65))
def test_zigzag_follows_the_rule_for_every_block_size(n):
    assert [divmod(int(c), n) for c in zigzag_order(n)] == reference_zigzag(n)


def test_keep_4_takes_the_column_not_the_row():
    # K = 4 ends inside the third diagonal, where zigzag and its transpose differ:
    # zigzag takes (2, 0) (row frequency 2), a transposed zigzag would take (0, 2).
    mask = keep_mask(4, 4).reshape(4, 4)
    assert mask[2, 0] and not mask[0, 2]
    assert sorted(zip(*np.nonzero(mask))) == [(0, 0), (0, 1), (1, 0), (2, 0)]


@pytest.mark.parametrize("n", [2, 3, 4, 5, 8, 16])
def test_keep_mask_matches_reference_for_every_k(n):
    for keep in range(1, n * n + 1):
        np.testing.assert_array_equal(keep_mask(n, keep).reshape(n, n), reference_mask(n, keep))


@pytest.mark.parametrize("keep", [0, 17, -1, 2.5, True, None])
def test_keep_out_of_range_is_refused(keep):
    with pytest.raises(InvalidCompressionError, match="from 1 to 16 for block size 4"):
        keep_mask(4, keep)


def test_default_keep():
    assert default_keep(4) == 6  # the issue: the three lowest diagonals of a 4 x 4 block
    for n in range(2, 65):
        # Whole diagonals, counted here by brute force; the count nearest to 3/8 of n*n.
        counts = [sum(1 for x in range(n) for y in range(n) if x + y < d) for d in range(1, 2 * n)]
        best = min(abs(c - 3 * n * n / 8) for c in counts)
        assert default_keep(n) in counts
        assert abs(default_keep(n) - 3 * n * n / 8) == best


def test_bad_block_size_is_refused():
    with pytest.raises(InvalidBlockSizeError):
        zigzag_order(1)


# ---------------------------------------------------------------- quantization and threshold


def smallest_by_search(low: int, high: int) -> int:
    """Fewest bytes of any numpy integer type holding low..high, found by trying them all."""
    fits = [np.dtype(t).itemsize for t in (np.int8, np.uint8, np.int16, np.uint16, np.int32,
                                           np.uint32, np.int64, np.uint64)
            if np.iinfo(t).min <= low and high <= np.iinfo(t).max]
    return min(fits)


@settings(max_examples=60, deadline=None)
@given(
    values=arrays(np.float64, st.integers(1, 40),
                  elements=st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)),
    step=st.sampled_from([0.01, 0.5, 1.0, 3.0, 17.5, 1000.0]),
)
def test_quantize_is_rint_in_the_smallest_integer_type(values, step):
    levels = quantize(values, step)
    assert levels.dtype.kind in "iu"
    np.testing.assert_array_equal(levels, np.rint(values / step))
    assert levels.dtype.itemsize == smallest_by_search(int(levels.min()), int(levels.max()))
    # Decoding is off by at most half a step.
    assert np.all(np.abs(levels * step - values) <= step / 2 * (1 + 1e-12))


def test_quantize_known_values():
    # numpy.rint rounds ties to even: 0.5 -> 0, 1.5 -> 2, -2.5 -> -2.
    levels = quantize(np.array([0.5, 1.5, -2.5, 300.2]), 1.0)
    assert levels.tolist() == [0, 2, -2, 300] and levels.dtype == np.int16
    assert quantize(np.array([0.0, 255.0]), 1.0).dtype == np.uint8
    assert quantize(np.array([-1.0, 127.0]), 1.0).dtype == np.int8


def test_step_zero_keeps_float64():
    values = np.array([1.25, -3.5e-7], dtype=np.float32)
    levels = quantize(values, 0)
    assert levels.dtype == np.float64
    np.testing.assert_array_equal(levels, values.astype(np.float64))


@pytest.mark.parametrize("step", [-1.0, float("nan"), float("inf"), "a"])
def test_bad_step_is_refused(step):
    with pytest.raises(InvalidCompressionError, match="step"):
        quantize(np.ones(3), step)


def test_levels_beyond_64_bits_are_refused():
    with pytest.raises(InvalidCompressionError, match="larger step"):
        quantize(np.array([1.0e6]), 1e-300)
    assert smallest_integer_dtype(0, 2**64 - 1) == np.uint64
    with pytest.raises(InvalidCompressionError):
        smallest_integer_dtype(-1, 2**63)


def test_threshold_keeps_dc_and_large_values():
    c = np.array([[[0.1, -9.0]], [[-2.0, 2.5]], [[0.0, -2.5]]])
    out, survivors = threshold_coefficients(c, 2.5)
    # |c| < 2.5 goes, |c| == 2.5 stays, channel 0 (DC) stays whatever its size.
    np.testing.assert_array_equal(out, [[[0.1, -9.0]], [[0.0, 2.5]], [[0.0, -2.5]]])
    assert survivors.tolist() == [2, 1, 1]
    with pytest.raises(InvalidCompressionError, match="threshold"):
        threshold_coefficients(c, -1)


# ---------------------------------------------------------------- compress against the reference

CASES = [
    # (image, n, K, step, threshold): several block sizes, K = 4 (part of a diagonal),
    # whole-diagonal K, all K, unquantized, coarse steps, thresholds, padded edges.
    ("camera.png", 4, 4, 1.0, 0.0),
    ("camera.png", 4, 6, 0.0, 0.0),
    ("coins.png", 4, 4, 10.0, 0.0),    # 303 rows: padded
    ("coins.png", 8, 21, 4.0, 8.0),
    ("text.png", 8, 10, 2.5, 0.0),
    ("text.png", 4, 16, 1.0, 0.0),
    ("astronaut.png", 2, 3, 1.0, 0.0),  # color, read as luma
    ("camera.png", 5, 7, 3.0, 0.0),    # 512 is not a multiple of 5: padded
    ("coins.png", 16, 40, 0.5, 3.0),
]


def reference_compress(name, n, keep, step, threshold):
    """Reference levels, tie positions and float reconstruction for one case."""
    image = sample(name)[0]
    blocks = sample_dct(name, n)  # (rows, x, cols, y)
    mask = reference_mask(n, keep)
    kept = blocks * mask[None, :, None, :]
    unthresholded = kept
    # |c| == T up to rounding noise: keeping or zeroing c are both right.
    ties = np.zeros(kept.shape, bool)
    if threshold > 0:
        small = np.abs(kept) < threshold
        small[:, 0, :, 0] = False  # the DC coefficient always stays
        kept = np.where(small, 0.0, kept)
        ties |= np.abs(np.abs(unthresholded) - threshold) <= tolerance(np.float64, 255 * n)
    if step > 0:
        ratio = kept / step
        levels = np.rint(ratio)
        ties |= near_half(ratio, np.abs(ratio).max()) & mask[None, :, None, :]
    else:
        levels = kept
    return image, mask, levels, ties


def to_maps(blocks: np.ndarray) -> np.ndarray:
    """(rows, n, cols, n) -> (n*n, rows, cols), channel x*n + y."""
    rows, n, cols, _ = blocks.shape
    return blocks.transpose(1, 3, 0, 2).reshape(n * n, rows, cols)


def from_maps(maps: np.ndarray) -> np.ndarray:
    nn, rows, cols = maps.shape
    n = math.isqrt(nn)
    return maps.reshape(n, n, rows, cols).transpose(2, 0, 3, 1)


@pytest.mark.parametrize("name, n, keep, step, threshold", CASES)
def test_compress_matches_independent_computation(name, n, keep, step, threshold):
    image, mask, ref_levels, ties = reference_compress(name, n, keep, step, threshold)
    result = compress(image, block_size=n, keep=keep, step=step, threshold=threshold)

    np.testing.assert_array_equal(result.channel_mask, mask.reshape(-1))
    ours = np.zeros((n * n, *result.levels.shape[1:]))
    ours[result.channel_mask] = result.levels
    ours = from_maps(ours)
    if step > 0:
        # Exact levels, except where c / step is a half-integer up to rounding noise:
        # there either neighbour is a correct rint of the exact value.
        assert result.levels.dtype.kind in "iu"
        assert result.levels.dtype.itemsize == smallest_by_search(int(ref_levels.min()), int(ref_levels.max()))
        np.testing.assert_array_equal(ours[~ties], ref_levels[~ties])
        unthresholded = np.rint(sample_dct(name, n) / step)
        assert np.all((np.abs(ours[ties] - ref_levels[ties]) <= 1) | (ours[ties] == 0)
                      | (np.abs(ours[ties] - unthresholded[ties]) <= 1))
        decoded = ours * step
    else:
        assert result.levels.dtype == np.float64
        np.testing.assert_allclose(ours, ref_levels, rtol=0, atol=tolerance(np.float64, 4 * 255 * n))
        decoded = ref_levels
    magnitude = 255 * n
    np.testing.assert_allclose(to_maps(decoded), result.coefficients, rtol=0, atol=tolerance(np.float64, magnitude))
    ref_float = reference_idct_blocks(decoded, image.shape)
    np.testing.assert_allclose(result.reconstruction, ref_float, rtol=0, atol=tolerance(np.float64, magnitude))

    # Pixels as written: rounded and clipped to uint8. A pixel may differ by one only
    # where the reference value is a half-integer up to rounding noise.
    ours_px = to_pixels(result.reconstruction, "L")
    ref_px = np.clip(np.rint(ref_float), 0, 255).astype(np.uint8)
    px_ties = near_half(ref_float, magnitude)
    np.testing.assert_array_equal(ours_px[~px_ties], ref_px[~px_ties])
    assert np.all(np.abs(ours_px[px_ties].astype(int) - ref_px[px_ties]) <= 1)
    ref_px[px_ties] = ours_px[px_ties]

    # Metrics of the written pixels, recomputed here with scikit-image and numpy.
    quality = compare(image, ours_px, data_range=255)
    difference = image.astype(float) - ref_px
    assert quality.mse == pytest.approx(np.mean(difference**2), rel=1e-12)
    assert quality.max_abs_error == np.abs(difference).max()
    assert quality.psnr_db == pytest.approx(peak_signal_noise_ratio(image, ref_px, data_range=255), rel=1e-12)
    assert quality.ssim == pytest.approx(structural_similarity(image, ref_px, data_range=255), rel=1e-9)

    # Survivors of the threshold, counted here; |c| == T up to rounding noise may go either way.
    blocks = sample_dct(name, n)
    dc = (np.arange(n)[:, None] + np.arange(n)[None, :] == 0)[None, :, None, :]
    noise = tolerance(np.float64, 255 * n) if threshold > 0 else 0.0
    sure = int((((np.abs(blocks) >= threshold + noise) | dc) & mask[None, :, None, :]).sum())
    possible = int((((np.abs(blocks) >= threshold - noise) | dc) & mask[None, :, None, :]).sum())
    assert possible - sure < 10
    assert sure <= int(result.survivors.sum()) <= possible
    assert sure / blocks.size <= result.surviving_fraction <= possible / blocks.size


def test_threshold_alone_keeps_every_frequency():
    image = sample("text.png")[0]
    assert compress(image, block_size=4).keep == 6
    assert compress(image, block_size=8).keep == 21
    assert compress(image, block_size=4, threshold=5.0).keep == 16
    assert compress(image, block_size=4, threshold=5.0, keep=3).keep == 3


def test_all_coefficients_unquantized_give_back_the_image():
    image = sample("coins.png")[0]
    result = compress(image, block_size=4, keep=16, step=0)
    np.testing.assert_array_equal(to_pixels(result.reconstruction, "L"), image)
    assert compare(image, to_pixels(result.reconstruction, "L"), data_range=255).psnr_db is None


# ---------------------------------------------------------------- the compressed file


@pytest.mark.parametrize("step", [1.0, 0.0, 6.0])
def test_file_decodes_to_the_same_coefficients(tmp_path, step):
    image = sample("coins.png")[0]
    result = compress(image, block_size=4, keep=5, step=step)
    path = tmp_path / "coins_compressed.npz"
    result.save(path, "L", "coins.png")
    assert path.stat().st_size == result.file_size("L", "coins.png")
    coefficients, header = load_coefficients(path)
    assert header.kind == "compressed" and header.step == step and header.image_shape == image.shape
    # Bit for bit: the decoder forms the same product levels * step.
    np.testing.assert_array_equal(coefficients, result.coefficients)
    with np.load(path, allow_pickle=False) as archive:
        assert archive["kept"].dtype == result.levels.dtype
        assert archive["kept"].shape == (5, 76, 96)
        assert set(archive.files) >= {"kept", "channel_mask", "step", "block_size", "image_shape"}
        assert "coefficients" not in archive.files


def kept_sizes(name: str, n: int, step: float, keeps) -> list[int]:
    image = sample(name)[0]
    return [compress(image, block_size=n, keep=k, step=step).file_size("L", name) for k in keeps]


def test_fewer_coefficients_give_a_smaller_file():
    # The issue: "Fewer kept coefficients must give a smaller file". Checked for every
    # consecutive K at the default settings on camera, and for K far apart at n = 8.
    sizes = kept_sizes("camera.png", 4, 1.0, range(1, 17))
    assert all(a < b for a, b in zip(sizes, sizes[1:])), sizes
    sizes = kept_sizes("coins.png", 8, 4.0, [1, 8, 21, 40, 64])
    assert all(a < b for a, b in zip(sizes, sizes[1:])), sizes


def test_compressed_file_is_smaller_than_the_raw_pixels():
    image = sample("camera.png")[0]
    size = compress(image, block_size=8, step=8.0).file_size("L")
    assert size < image.size / 4


def test_file_size_is_measured_not_estimated():
    result = compress(sample("text.png")[0], block_size=4, keep=2)
    buffer = io.BytesIO()
    result.save(buffer, "L", "text.png")
    assert result.file_size("L", "text.png") == len(buffer.getvalue())
    # The recorded source name is in the file, so its length changes the size.
    assert result.file_size("L", "x" * 100) > result.file_size("L", "")


def test_sixteen_bit_image_scales_linearly():
    # 257 * an 8-bit image is its 16-bit version; with the step scaled by 257 too the
    # levels are the same (stored in the same type) and decode to 257 times the values.
    image = sample("camera.png")[0]
    eight = compress(image, block_size=4, keep=6, step=2.0)
    sixteen = compress(image.astype(np.uint16) * 257, block_size=4, keep=6, step=2.0 * 257)
    assert sixteen.levels.dtype == eight.levels.dtype == np.int16
    # Equal levels except where c / step is a half-integer up to rounding noise.
    ratio = to_maps(sample_dct("camera.png", 4))[keep_mask(4, 6)] / 2.0
    differ = sixteen.levels != eight.levels
    assert np.all(near_half(ratio, 4 * 255)[differ]) and near_half(ratio, 4 * 255).mean() < 0.1
    assert np.all(np.abs(sixteen.levels.astype(int) - eight.levels) <= 1)
    same = ~differ
    np.testing.assert_allclose(sixteen.coefficients[keep_mask(4, 6)][same],
                               257 * eight.coefficients[keep_mask(4, 6)][same], rtol=1e-15, atol=0)
    wide = compress(image.astype(np.uint16) * 257, block_size=4, keep=6, step=1.0)
    assert wide.levels.dtype == np.int32  # DC reaches 4 * 65535, beyond 16 bits


def test_negative_zero_step_and_threshold_are_zero():
    """-0.0 passes "not negative", so `compress --step -0.0` was accepted and printed as "-0"."""
    from dctconv.codec._zonal import check_step, check_threshold

    for check in (check_step, check_threshold):
        value = check(-0.0)
        assert value == 0.0 and math.copysign(1.0, value) == 1.0
    result = compress(np.arange(16.0).reshape(4, 4), step=-0.0, threshold=-0.0)
    assert math.copysign(1.0, result.step) == math.copysign(1.0, result.threshold) == 1.0
