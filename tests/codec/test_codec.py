"""encode/decode against an independent computation: per-block scipy.fft, documented steps.

The reference quantizes ``reference_blockwise_dct`` (scipy.fft.dctn on every block) by
the steps of the documented rule (Pillow's own JPEG table at n = 8, see
test_quantization.py), rounds as documented (numpy.rint; with a quality, AC values
with the dead zone, floor(|x| + 1/2 - 13/256)), fits the reconstruction offsets as
documented, and reconstructs with scipy.fft.idctn. Floating-point sums in a different
order may move a value that sits exactly on a rounding boundary to the other side, so
a difference of one is accepted there and only there.
"""

from __future__ import annotations

import numpy as np
import pytest

import dctconv
from references import SAMPLES, reference_blockwise_dct, reference_blockwise_idct
from dctconv.codec._core import decode_levels, encode_image
from dctconv.codec._zigzag import zigzag_order
from dctconv.io._npz import read_coefficient_file
from dctconv.errors import InvalidCompressionError, InvalidImageError
from dctconv.io._images import read_image
from dctconv.codec._quantize import step_table

DATA = SAMPLES.parent / "tests" / "data"
RANGES = {np.uint8: 255, np.uint16: 65535, np.int32: 2**32 - 1, np.float32: 1.0}


def make_image(dtype, shape, rng) -> np.ndarray:
    """A smooth ramp plus noise over the dtype's range (int32 spans its negative half too)."""
    h, w = shape
    ramp = np.add.outer(np.linspace(0, 0.6, h), np.linspace(0, 0.3, w))
    values = np.clip(ramp + rng.normal(0, 0.05, shape), 0, 1)
    if dtype is np.float32:
        return values.astype(np.float32)
    if dtype is np.int32:
        return np.rint(values * (2**32 - 1) - 2**31).astype(np.int32)
    return np.rint(values * RANGES[dtype]).astype(dtype)


DEAD_ZONE = 13 / 256  # the documented dead zone of quality mode


def near_tie(values: np.ndarray, dead_zone: float = 0.0) -> np.ndarray:
    """Values within 1e-6 of a rounding boundary (|x| + 1/2 - dead zone an integer)."""
    shifted = np.abs(values) + 0.5 - dead_zone
    return np.abs(shifted - np.rint(shifted)) < 1e-6


def reference_levels(image, n, steps, keep=None, threshold=0.0, dead_zone=0.0):
    coefficients = reference_blockwise_dct(image, n)
    if keep is not None:
        coefficients[[c for c in range(n * n) if c not in zigzag_order(n)[:keep]]] = 0
    small = np.abs(coefficients) < threshold
    small[0] = False
    coefficients[small] = 0
    scaled = coefficients / steps[:, None, None]
    levels = np.rint(scaled)
    levels[1:] = np.sign(scaled[1:]) * np.floor(np.abs(scaled[1:]) + 0.5 - dead_zone)
    return levels, scaled


def assert_levels_match(levels, reference, scaled, dead_zone=0.0):
    differ = levels != reference
    boundary = near_tie(scaled, dead_zone)
    boundary[0] = near_tie(scaled[0])
    assert np.all(boundary[differ] & (np.abs(levels - reference)[differ] == 1))


def assert_levels_within_rounding(levels, scaled):
    """DC rounded; each AC level 0 or from two below the rounding of |x| to it, with x's sign
    (either neighbour of a tie within float rounding)."""
    high, low = np.floor(np.abs(scaled) + 0.5 + 1e-9), np.floor(np.abs(scaled) + 0.5 - 1e-9)
    magnitude = np.abs(levels)
    assert np.all((low[0] <= magnitude[0]) & (magnitude[0] <= high[0]))
    assert np.all(magnitude[1:] <= high[1:])
    assert np.all((magnitude[1:] == 0) | (magnitude[1:] >= low[1:] - 2))
    assert np.all((levels == 0) | (np.sign(levels) == np.sign(scaled)))


def reference_offsets(levels, scaled, n):
    """Per channel: mean of |q| - |x| over |q| = 1 and over |q| >= 2 in the channel's class.

    The class of frequency (x, y) is floor(4 log2(1 + x + y)); the mean is clipped to
    0 .. 127/256 and rounded to 1/256.
    """
    diagonal = np.add.outer(np.arange(n), np.arange(n)).reshape(-1)
    raw_class = np.floor(4 * np.log2(1 + diagonal) + 1e-9)
    offsets = np.zeros((2, n * n))
    for row, select in enumerate((lambda m: m == 1, lambda m: m >= 2)):
        for value in np.unique(raw_class):
            channels = raw_class == value
            cells = select(np.abs(levels[channels]))
            if cells.any():
                error = (np.abs(levels[channels]) - np.abs(scaled[channels]))[cells].mean()
                offsets[row, channels] = np.clip(np.rint(error * 256), 0, 127) / 256
    return offsets


def dequantize(levels, steps, offsets):
    magnitude = np.abs(levels)
    magnitude = magnitude - np.where(magnitude == 1, offsets[0][:, None, None], 0)
    magnitude = magnitude - np.where(np.abs(levels) >= 2, offsets[1][:, None, None], 0)
    return np.sign(levels) * magnitude * steps[:, None, None]


def reference_pixels(levels, steps, shape, dtype, offsets=None):
    offsets = np.zeros((2, len(steps))) if offsets is None else offsets
    values = reference_blockwise_idct(dequantize(levels, steps, offsets), shape)
    if np.dtype(dtype).kind == "f":
        return values.astype(dtype), np.zeros(shape, bool)
    info = np.iinfo(dtype)
    return np.clip(np.rint(values), info.min, info.max).astype(dtype), near_tie(values)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.float32])
@pytest.mark.parametrize("n", [2, 3, 4, 5, 8, 16, 64])
def test_round_trip_every_mode_and_block_size(dtype, n, rng):
    shape = (n + 7, 2 * n + 3) if n > 8 else (3 * n + 1, 4 * n + 2)
    image = make_image(dtype, shape, rng)
    quality = {2: 20, 3: 40, 4: 75, 5: 90, 8: 50, 16: 60, 64: 95}[n]
    data = dctconv.encode(image, block_size=n, quality=quality)
    # 8-bit images keep 0 .. 255; the others scale the steps to the range of their values.
    low, high = (0, 255) if dtype == np.uint8 else (float(image.min()), float(image.max()))
    steps = step_table(n, quality=quality) * (high - low) / 255
    expected, scaled = reference_levels(image, n, steps, dead_zone=DEAD_ZONE)
    decoded = decode_levels(data)
    if dtype == np.uint8:
        # 8-bit levels are chosen by rate-distortion cost (test_rdoq.py): each AC level is 0 or
        # up to two below the rounding, never above; at n = 8 the offsets may be none.
        assert_levels_within_rounding(decoded.levels, scaled)
        fitted = reference_offsets(decoded.levels, scaled, n)
        assert (np.allclose(decoded.offsets, fitted, rtol=0, atol=1 / 256 + 1e-12)
                or (n == 8 and not decoded.offsets.any()))
    else:
        assert_levels_match(decoded.levels, expected, scaled, DEAD_ZONE)
        assert np.allclose(decoded.offsets, reference_offsets(decoded.levels, scaled, n), rtol=0, atol=1 / 256 + 1e-12)
    assert np.allclose(decoded.steps, steps, rtol=1e-15, atol=0)
    pixels = dctconv.decode(data)
    assert pixels.dtype == np.dtype(dtype) and pixels.shape == shape
    want, tie = reference_pixels(decoded.levels, steps, shape, dtype, decoded.offsets)
    want = np.clip(want, low, high).astype(dtype)  # decoded pixels stay in the data range
    if np.dtype(dtype).kind == "f":
        assert np.allclose(pixels, want, rtol=0, atol=1e-6)
    else:
        assert np.array_equal(pixels[~tie], want[~tie])
        assert np.all(np.abs(pixels[tie].astype(np.int64) - want[tie]) <= 1)


def test_decode_gives_what_encode_quantized(rng):
    image = read_image(SAMPLES / "camera.png")[0][100:228, 50:250]
    for n, settings in [(8, {"quality": 50}), (4, {"quality": 90}), (4, {"step": 3.0, "keep": 6}), (16, {"quality": 10})]:
        data, levels = encode_image(image, block_size=n, **settings)
        assert np.array_equal(decode_levels(data).levels, levels.levels)
        pixels = np.clip(np.rint(reference_blockwise_idct(levels.coefficients, image.shape)), 0, 255)
        tie = near_tie(reference_blockwise_idct(levels.coefficients, image.shape))
        assert np.array_equal(dctconv.decode(data)[~tie], pixels[~tie])


def test_large_levels_use_size_classes(rng):
    # step 0.01 on 16-bit noise: levels up to millions, coded as size class plus raw bits.
    image = rng.integers(0, 65536, (12, 10)).astype(np.uint16)
    data, levels = encode_image(image, block_size=2, step=0.01)
    assert np.abs(levels.levels).max() > 10**6
    assert np.array_equal(decode_levels(data).levels, levels.levels)
    expected, scaled = reference_levels(image, 2, np.full(4, 0.01))
    assert_levels_match(levels.levels, expected, scaled)


def test_keep_6_step_1_follows_the_reference(rng):
    image = read_image(SAMPLES / "coins.png")[0][:64, :96]
    levels = decode_levels(dctconv.encode(image, block_size=4, step=1.0, keep=6)).levels
    expected, scaled = reference_levels(image, 4, np.ones(16), keep=6)
    assert_levels_match(levels, expected, scaled)


def test_keep_step_and_threshold_give_the_levels_of_an_old_zonal_file():
    # --keep/--step/--threshold once wrote _compressed.npz; through the codec they quantize
    # the same: the levels of the recorded old file, divided back by its step.
    data = DATA / "zonal_n4_keep6_step2_t3_compressed.npz"
    old = read_coefficient_file(data)
    source = read_image(DATA / "codec_v1_source.png")[0]
    levels = decode_levels(dctconv.encode(source, block_size=4, keep=6, step=2.0, threshold=3.0)).levels
    assert np.array_equal(levels * 2.0, old.coefficients)
    assert np.array_equal(levels[~old.channel_mask], np.zeros_like(levels[~old.channel_mask]))


def test_threshold_zeroes_small_ac_coefficients(rng):
    image = make_image(np.uint8, (24, 20), rng)
    levels = decode_levels(dctconv.encode(image, block_size=4, step=0.5, threshold=6.1)).levels
    expected, scaled = reference_levels(image, 4, np.full(16, 0.5), threshold=6.1)
    assert_levels_match(levels, expected, scaled)


def test_step_zero_stores_the_coefficients(rng):
    image = make_image(np.float32, (13, 11), rng)
    data = dctconv.encode(image, block_size=4, step=0, keep=10)
    coefficients = decode_levels(data).levels
    reference = reference_blockwise_dct(image, 4)
    kept = np.isin(np.arange(16), zigzag_order(4)[:10])
    assert np.allclose(coefficients[kept], reference[kept], rtol=0, atol=1e-12)
    assert not coefficients[~kept].any()
    # Decoded pixels are clipped to the data range, here the image's own.
    expected = np.clip(reference_blockwise_idct(coefficients, image.shape), image.min(), image.max())
    assert np.allclose(dctconv.decode(data), expected, atol=1e-6)


def test_smaller_than_pillows_jpeg_on_a_photo():
    # Not a target test (benchmarks/bench_codec.py measures those); a sanity check that
    # the model codes JPEG's own levels in fewer bytes than Pillow's optimized Huffman code.
    import io

    from PIL import Image

    image = read_image(SAMPLES / "astronaut.png")[0]
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=50, optimize=True)
    assert len(dctconv.encode(image, block_size=8, quality=50)) < buffer.tell()


def test_bad_settings_and_images(rng):
    image = make_image(np.uint8, (8, 8), rng)
    with pytest.raises(InvalidCompressionError, match="give quality or step, not both"):
        dctconv.encode(image, quality=50, step=1.0)
    with pytest.raises(InvalidCompressionError, match="quality must be a whole number from 1 to 100"):
        dctconv.encode(image, quality=0)
    with pytest.raises(InvalidCompressionError, match="keep must be an integer from 1 to 16"):
        dctconv.encode(image, keep=17)
    with pytest.raises(InvalidImageError, match="must be uint8, uint16, int32 or float32"):
        dctconv.encode(image.astype(np.float64))
    infinite = np.zeros((4, 4), np.float32)
    infinite[0, :3] = [np.inf, -np.inf, np.inf]
    with pytest.raises(InvalidImageError, match="image contains 3 infinite values"):
        dctconv.encode(infinite)
    with pytest.raises(InvalidCompressionError, match="beyond the codec's limit"):
        dctconv.encode(np.full((4, 4), 2**31 - 1, np.int32), step=1e-12)
