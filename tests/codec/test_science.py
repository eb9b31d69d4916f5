"""Scientific images: the data's own range, the error bound, NaN pixels (issue 18).

Every bound is checked here on the decoded pixels with numpy, not by the encoder's own
check; PSNR against scikit-image with the data range stated.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio

import dctconv
from dctconv.codec._dctz import read_header, section
from dctconv.codec._quantize import step_table
from dctconv.errors import CodecFileError, InvalidCompressionError, InvalidImageError
from science_images import mr_slice, terrain, with_holes


def largest_error(image, decoded) -> float:
    valid = ~np.isnan(image) if image.dtype.kind == "f" else np.ones(image.shape, bool)
    return float(np.max(np.abs(image[valid].astype(np.float64) - decoded[valid].astype(np.float64))))


def test_mr_slice_using_part_of_its_container_keeps_its_levels():
    # The case: 16-bit, values 0..215. With the container's range (versions 1 to 3)
    # quality 75 decoded it to one value; now its steps follow its own range.
    image = mr_slice((64, 64))
    assert (image.min(), image.max()) == (0, 215)
    data = dctconv.encode(image)
    decoded = dctconv.decode(data)
    header = read_header(data)
    assert header.data_range == (0.0, 215.0)
    assert np.allclose(decoded_steps(data), step_table(4, quality=75) * 215 / 255, rtol=1e-15)
    assert len(np.unique(decoded)) >= 0.75 * len(np.unique(image))
    assert largest_error(image, decoded) <= math.floor(0.01 * 215)  # the default bound
    assert peak_signal_noise_ratio(image, decoded, data_range=215) > 40


def decoded_steps(data):
    from dctconv.codec._core import decode_levels

    return decode_levels(data).steps


@pytest.mark.parametrize("image, low, high", [
    (terrain((48, 40)), 0, 840),
    (terrain((48, 40), low=236, high=1076, dtype=np.float32), 236, 1076),
], ids=["dem16", "float-metres"])
def test_elevation_maps_default_to_one_percent_of_their_range(image, low, high):
    data = dctconv.encode(image)
    decoded = dctconv.decode(data)
    assert read_header(data).data_range == (low, high)
    assert largest_error(image, decoded) <= 0.01 * (high - low)
    assert decoded.min() >= low and decoded.max() <= high


def test_eight_bit_images_keep_0_to_255():
    image = (np.add.outer(np.arange(32), np.arange(32)) * 2 + 40).astype(np.uint8)  # 40 .. 164
    data = dctconv.encode(image, quality=50)
    assert read_header(data).data_range == (0.0, 255.0)
    assert read_header(data).max_error is None
    assert np.array_equal(decoded_steps(data), step_table(4, quality=50))


def test_data_range_override_scales_steps_and_clips():
    image = terrain((32, 32), high=700)
    data = dctconv.encode(image, quality=20, data_range=(0, 4095))
    assert read_header(data).data_range == (0.0, 4095.0)
    assert np.allclose(decoded_steps(data), step_table(4, quality=20) * 4095 / 255, rtol=1e-15)
    decoded = dctconv.decode(dctconv.encode(image, quality=5, data_range=(0, 1000)))
    assert decoded.max() <= 1000


@pytest.mark.parametrize("bad, message", [
    ((0, 100), "data range 0:100 does not contain the image's values (0 .. 840)"),
    ((5, 5), "not two finite numbers with low < high"),
    ((0, math.inf), "not two finite numbers"),
])
def test_bad_data_range(bad, message):
    with pytest.raises(InvalidCompressionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        dctconv.encode(terrain((16, 16)), data_range=bad)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.float32])
@pytest.mark.parametrize("share", [0.0, 0.001, 0.005, 0.02])
def test_bound_holds_on_every_pixel(dtype, share):
    if dtype == np.float32 and share == 0:
        pytest.skip("a bound of 0 on floats is refused (below float32's resolution)")
    high = {np.uint8: 255, np.uint16: 4000, np.int32: 300000, np.float32: 1076}[dtype]
    low = -200000 if dtype == np.int32 else (236 if dtype == np.float32 else 0)
    image = terrain((37, 29), low=low, high=high, beta=2.5, seed=4, dtype=dtype)
    bound = share * (high - low)
    # The steps chosen by the encoder (the bound alone) on two of them: it tries seven.
    settings = {} if (dtype in (np.uint16, np.float32) and share in (0.0, 0.02)) else {"quality": 90}
    decoded = dctconv.decode(dctconv.encode(image, max_error=bound, block_size=4, **settings))
    assert decoded.dtype == image.dtype
    limit = bound if dtype == np.float32 else math.floor(bound)
    assert largest_error(image, decoded) <= limit
    if bound == 0:
        assert np.array_equal(decoded, image)  # lossless, bit for bit


@pytest.mark.parametrize("settings", [{"quality": 90}, {"step": 50.0, "block_size": 8}, {"quality": 10, "keep": 3}])
def test_bound_with_given_steps(settings):
    image = mr_slice((40, 56))
    decoded = dctconv.decode(dctconv.encode(image, max_error=1, **settings))
    assert largest_error(image, decoded) <= 1


def test_lossless_mr_slice_is_bit_exact():
    image = mr_slice((48, 48))
    assert np.array_equal(dctconv.decode(dctconv.encode(image, max_error=0, quality=95)), image)


def test_nan_pixels_decode_as_nan_and_cost_about_their_mask():
    field = terrain((64, 64), low=236, high=1076, dtype=np.float32)
    holes = with_holes(field, count=4, radius=6)
    mask = np.isnan(holes)
    assert mask.any()
    data = dctconv.encode(holes, max_error=2.0, quality=75)
    decoded = dctconv.decode(data)
    assert np.array_equal(np.isnan(decoded), mask)
    assert largest_error(holes, decoded) <= 2.0
    # The mask costs no more than zlib's best on its packed bits (plus the kind byte)...
    nanm = section(data, read_header(data), "NANM")
    assert len(nanm) <= len(zlib.compress(np.packbits(mask).tobytes(), 9)) + 1
    # ... and the holes cost little else: the file with holes is not much larger than
    # the full field's (their pixels' levels are replaced by a smooth fill).
    full = dctconv.encode(field, max_error=2.0, quality=75)
    assert len(data) <= len(full) + len(nanm) + 0.02 * len(full)


def test_nan_mask_kinds():
    from dctconv.codec._bound import decode_mask, encode_mask
    from dctconv.codec._entropy import encode_integer_map

    rng = np.random.default_rng(4)
    scattered = rng.random((30, 41)) < 0.3  # runs too short for the run lengths: the engine's kind 2
    data = encode_mask(scattered)
    assert data[0] == 2 and np.array_equal(decode_mask(data, scattered.shape), scattered)
    blob = np.zeros((30, 41), bool)
    blob[5:9, 7:20] = True
    assert encode_mask(blob)[0] == 0 and np.array_equal(decode_mask(encode_mask(blob), blob.shape), blob)
    # Kind 1 (the constriction coder's integer map) is no longer written but still read.
    old = b"\x01" + encode_integer_map(scattered[None].astype(np.int64))
    assert np.array_equal(decode_mask(old, scattered.shape), scattered)
    with pytest.raises(CodecFileError, match="^section NANM has 1 byte left over after its last symbol$"):
        decode_mask(data + b"\x00", scattered.shape)


def test_nan_without_bound_and_all_nan():
    holes = with_holes(terrain((24, 24), low=0, high=1, dtype=np.float32), count=2, radius=4)
    decoded = dctconv.decode(dctconv.encode(holes, quality=80))
    assert np.array_equal(np.isnan(decoded), np.isnan(holes))
    empty = np.full((5, 6), np.nan, np.float32)
    assert np.isnan(dctconv.decode(dctconv.encode(empty))).all()


def test_bad_bounds_and_infinities():
    image = terrain((16, 16), low=0, high=1, dtype=np.float32)
    with pytest.raises(InvalidCompressionError, match="max error must be a finite number >= 0, got -1"):
        dctconv.encode(image, max_error=-1)
    with pytest.raises(InvalidCompressionError, match="below the resolution of float32"):
        dctconv.encode(image, max_error=0)
    image[0, :2] = [np.inf, -np.inf]
    with pytest.raises(InvalidImageError, match="image contains 2 infinite values"):
        dctconv.encode(image)


def test_the_file_records_the_bound_and_its_sections():
    image = mr_slice((32, 32))
    header = read_header(dctconv.encode(image, max_error=1, quality=50))
    assert header.max_error == 1.0
    assert [tag for tag, _, _ in header.section_table] == ["ADPT", "ADRS"]


@pytest.mark.parametrize("value", [0.0, 1.0, -7.5, 8388609.0, 9.007199e15, -3.0e38, 3.0e38, 3.402823e38,
                                   -3.4028235e38, 3.4028235e38])
def test_a_constant_float_image_of_any_magnitude_round_trips(value):
    # Found by the fuzz test: at 2**53 a range of width 1 vanished (low + 1 == low) and
    # every quality step was 0; next to float32's largest number the bound's float32
    # spacing was inf (np.spacing of that number), and compress refused its own default.
    image = np.full((3, 5), value, np.float32)
    with np.errstate(divide="raise", invalid="raise", over="raise"):  # no step of 0, no 0/0, no inf
        decoded = dctconv.decode(dctconv.encode(image))
    low, high = read_header(dctconv.encode(image)).data_range
    # The documented rule: a width w = max(1, |v| / 2**23) above the value, or below it
    # where above would pass float32's largest number.
    v, w = float(image[0, 0]), max(1.0, abs(float(image[0, 0])) / 2**23)
    assert (low, high) == ((v - w, v) if v + w > float(np.finfo(np.float32).max) else (v, v + w))
    # The default quality's promise on a range of that width: within 1 % of it (and float32's
    # own spacing, where that is larger).
    error = np.abs(decoded.astype(np.float64) - image)
    assert np.all(np.isfinite(decoded)) and np.all(
        error <= 0.01 * (high - low) + np.spacing(np.nextafter(np.abs(image), np.float32(0))))


@pytest.mark.parametrize("dtype, low, high, bound", [(np.uint16, 0, 840, 16.0), (np.float32, 236.0, 1076.0, 16.8)])
def test_a_bound_alone_finds_steps_between_the_grids_qualities(dtype, low, high, bound):
    """Under a bound alone the encoder searches the quality around the grid's best: on an
    elevation map smaller than the trial crop (so the trial is the image) its file is smaller
    than every candidate of the grid, each encoded here with its steps given."""
    from dctconv.codec._bound import STEP_FACTORS, TRIAL_QUALITIES

    image = terrain((96, 96), low=low, high=high, dtype=dtype)
    chosen = dctconv.encode(image, max_error=bound)
    grid = [dctconv.encode(image, max_error=bound, quality=q) for q in TRIAL_QUALITIES]
    grid += [dctconv.encode(image, max_error=bound, step=bound * f) for f in STEP_FACTORS]
    assert len(chosen) < min(map(len, grid))
    decoded = dctconv.decode(chosen).astype(np.float64)
    assert np.abs(decoded - image).max() <= bound
