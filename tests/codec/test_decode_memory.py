"""Decoding a band of block rows at a time: the same pixels to the last bit, and memory errors in one line.

The pixels are checked against the recorded fixtures of every older format version
(tests/data, decoded by dctconv before banding existed), against a whole-image
reference computed here with scipy's per-block idctn of the dequantized levels, and
against the same decoder run as one band (the whole image at once, as it was done
before). Bands are made small (a few block rows) so that every image here has many,
and a last one shorter than the others.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import dctconv
from dctconv.codec import _core
from dctconv.codec._core import band_rows, channel_steps, decode_levels, offsets_size, settings_header
from dctconv.codec._dctz import FORMAT_VERSION, classic_sections, pack, read_header
from dctconv.codec._entropy import encode_levels
from dctconv.codec._zigzag import zigzag_order
from dctconv.errors import CodecFileError, DctconvError, OutOfMemoryError
from dctconv.io._images import read_image
from hostile import dequantized
from references import SAMPLES, reference_blockwise_idct

DATA = SAMPLES.parent / "tests" / "data"
FIXTURES = ["v1_n8_q50", "v1_n4_q75", "v1_n4_keep6_step1", "v2_n8_q50", "v3_n8_q50", "v3_n4_q75"]


def bits(array: np.ndarray) -> np.ndarray:
    """The bytes of an array, so that -0.0 and 0.0 (and NaN payloads) count as different."""
    return np.ascontiguousarray(array).view(np.uint8)


def decode_in_bands(data: bytes, monkeypatch, rows: int) -> np.ndarray:
    """dctconv.decode with bands of ``rows`` block rows (and of as many rows of pixels for the residual)."""
    header = read_header(data, max_pixels=None)
    monkeypatch.setattr(_core, "BAND_PIXELS", rows * header.block_size ** 2 * header.grid[1])
    monkeypatch.setattr(_core, "RESIDUAL_BAND_PIXELS", rows * header.block_size * header.image_shape[1])
    assert band_rows(header) == rows
    return dctconv.decode(data, max_pixels=None)


def photo(shape, dtype, rng) -> np.ndarray:
    """A crop of camera.png with a little noise, scaled to ``dtype``."""
    gray = read_image(SAMPLES / "camera.png")[0][: shape[0], : shape[1]].astype(np.float64) / 255
    gray = np.clip(gray + rng.normal(0, 0.01, shape), 0, 1)
    if dtype == np.float32:
        return (gray * 40 - 10).astype(np.float32)  # a range across 0: signed zeros would show
    top = {np.uint8: 255, np.uint16: 65535, np.int32: 2**20}[dtype]
    return np.rint(gray * top).astype(dtype)


@pytest.mark.parametrize("name", FIXTURES)
@pytest.mark.parametrize("rows", [1, 5])
def test_older_versions_decode_to_their_recorded_pixels_in_bands(name, rows, monkeypatch):
    data = (DATA / f"codec_{name}.dctz").read_bytes()
    header = read_header(data)
    assert header.grid[0] > rows  # several bands
    decoded = decode_in_bands(data, monkeypatch, rows)
    assert np.array_equal(decoded, read_image(DATA / f"codec_{name}.png")[0])


# Every mode and every kind of quantization of version 4, with and without a bound
# (RESD) and NaN pixels (NANM); heights that are not a multiple of the band.
CASES = [
    (np.uint8, (70, 45), dict(block_size=4, quality=75)),
    (np.uint8, (67, 50), dict(block_size=8, quality=30, max_error=2)),
    (np.uint8, (57, 38), dict(block_size=4, step=3.0, keep=6)),
    (np.uint8, (44, 33), dict(block_size=3, step=0)),
    (np.uint16, (66, 41), dict(block_size=4)),
    (np.int32, (53, 47), dict(block_size=5, quality=60)),
    (np.float32, (73, 52), dict(block_size=4)),
    (np.float32, (73, 52), dict(block_size=8, quality=90)),
    (np.float32, (51, 50), dict(block_size=2, step=0.01)),
]


@pytest.mark.parametrize("dtype, shape, settings", CASES)
def test_bands_give_the_pixels_of_the_whole_image(dtype, shape, settings, rng, monkeypatch):
    image = photo(shape, dtype, rng)
    if dtype == np.float32:
        image[5:9, 10:30] = np.nan
    data = dctconv.encode(image, **settings)
    header = read_header(data)
    assert header.grid[0] % 4 and image.shape[0] % header.block_size  # the last band is shorter, and cropped
    banded = decode_in_bands(data, monkeypatch, 4)
    whole = decode_in_bands(data, monkeypatch, header.grid[0])
    assert banded.dtype == image.dtype and banded.shape == image.shape
    assert np.array_equal(bits(banded), bits(whole))

    # Independently: scipy's idctn of every block of the dequantized levels, rounded to
    # the pixel type, clipped to the data range; then the bound's residual and the NaN mask.
    levels = decode_levels(data, max_pixels=None)
    coefficients = levels.levels if header.quantization == "none" else dequantized(levels.levels, levels.steps,
                                                                                     levels.offsets)
    values = reference_blockwise_idct(np.asarray(coefficients, np.float64), shape)
    low, high = header.data_range
    if dtype == np.float32:
        want = np.clip(values.astype(np.float32), np.float32(low), np.float32(high))
        close = np.abs(banded.astype(np.float64) - want)
        close[np.isnan(image)] = 0
        if header.max_error is None:
            assert close.max() <= 1e-5 * (high - low)
    else:
        want = np.clip(np.rint(values), math.ceil(low), math.floor(high))
        tie = np.abs(np.abs(values) % 1 - 0.5) < 1e-6
        if header.max_error is None:
            assert np.array_equal(banded[~tie], want[~tie])
    if header.max_error is not None:
        bound = header.max_error if dtype == np.float32 else math.floor(header.max_error)
        error = np.abs(banded.astype(np.float64) - image.astype(np.float64))
        assert np.array_equal(np.isnan(error), np.isnan(image))
        assert np.nanmax(error) <= bound


def test_an_all_zero_image_is_a_constant_fill_of_the_right_pixel(monkeypatch):
    # Zero levels reconstruct to 0.0 (never -0.0: every sum of the inverse DCT has a +0.0 term).
    for image in (np.zeros((37, 29), np.uint8), np.zeros((37, 29), np.float32)):
        data = dctconv.encode(image, block_size=4, step=1.0, data_range=(0, 255) if image.dtype == np.uint8 else (-1, 1))
        assert not decode_levels(data).levels.any()
        decoded = decode_in_bands(data, monkeypatch, 2)
        assert np.array_equal(bits(decoded), bits(np.full(image.shape, image.flat[0], image.dtype)))


def test_levels_are_kept_in_a_narrow_integer_type(rng):
    image = photo((64, 64), np.uint8, rng)
    assert decode_levels(dctconv.encode(image, quality=90)).levels.dtype == np.int16
    huge = dctconv.encode(image.astype(np.float32), block_size=4, step=1e-4)
    assert decode_levels(huge).levels.dtype == np.int32
    assert decode_levels(dctconv.encode(image, step=0)).levels.dtype == np.float64


def zero_claim(side: int) -> bytes:
    """A valid file of an all-zero image that claims ``side`` x ``side`` pixels: the range-coded
    sections (MODL, WORD, RAWB) of a 64 x 64 one, in which every context codes "only zeros",
    under a header of the claimed size (149 bytes)."""
    n = 4
    header = settings_header((side, side), "L", block_size=n, data_range=(0.0, 255.0))
    coded = encode_levels(np.zeros((n * n, 16, 16), np.int64), zigzag_order(n), n, channel_steps(header),
                          version=FORMAT_VERSION)
    offsets = bytes(offsets_size(header))
    return pack(header, classic_sections(offsets + coded.model, coded.words, coded.raw_bits))


def test_a_memory_error_while_decoding_is_one_dctconv_error(monkeypatch):
    data = zero_claim(300)
    assert not dctconv.decode(data, max_pixels=None).any()  # it is a valid file

    def no_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate 90.0 KiB for an array with shape (300, 300)")

    for where in ("_levels_of", "prediction_pixels"):  # the levels, then the pixels
        with monkeypatch.context() as patch:
            patch.setattr(_core, where, no_memory)
            with pytest.raises(OutOfMemoryError) as caught:
                dctconv.decode(data, max_pixels=None)
        message = str(caught.value)
        assert isinstance(caught.value, DctconvError) and isinstance(caught.value, MemoryError)
        assert "\n" not in message
        assert "300 x 300 = 90,000 pixels (it needs at least 270 kB)" in message
        assert caught.value.pixels == 90_000 and caught.value.needed == 300 * 300 * (2 + 1)  # int16 levels, uint8 pixels


def test_a_claim_larger_than_the_machine_is_refused_before_allocating(monkeypatch):
    data = zero_claim(2**31 - 1)

    def decoded(*args, **kwargs):
        raise AssertionError("decoding started")

    monkeypatch.setattr(_core, "_levels_of", decoded)
    with pytest.raises(OutOfMemoryError, match=r"2,147,483,647 x 2,147,483,647 = 4,611,686,014,132,420,609 pixels"):
        dctconv.decode(data, max_pixels=None)


def test_the_command_line_says_what_the_library_says(tmp_path):
    from click.testing import CliRunner

    from dctconv.cli import cli

    path = tmp_path / "huge.dctz"
    path.write_bytes(zero_claim(2**31 - 1))
    with pytest.raises(OutOfMemoryError) as caught:
        dctconv.decode(path.read_bytes(), max_pixels=None)
    result = CliRunner().invoke(cli, [str(a) for a in ["transform", "--inverse", path, "-o", tmp_path / "out",
                                                       "--max-pixels", 2**63]])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"Error: {path}: {caught.value}"]


def test_stored_coefficients_are_inflated_exactly_and_damage_is_named(rng):
    # Quantization "none" keeps float64 coefficients, zlib-compressed: a file of several
    # 64 KiB pieces of input decodes to the encoder's coefficients to the last bit.
    import zlib

    image = rng.random((298, 301)).astype(np.float32)  # full mantissas: zlib keeps most of the bytes
    data, encoded = _core.encode_image(image, block_size=4, step=0, keep=10)
    header = read_header(data)
    start, end = header.section_offsets()["RAWB"]
    assert end - start > 3 * 65536
    mask = zigzag_mask(4, 10)
    decoded = decode_levels(data).levels
    assert np.array_equal(bits(decoded[mask]), bits(encoded.levels[mask])) and not decoded[~mask].any()
    kept = np.ascontiguousarray(encoded.levels[mask]).astype("<f8").tobytes()

    def with_raw(raw: bytes) -> bytes:
        return pack(header, classic_sections(b"", np.zeros(0, np.uint32), raw))

    assert np.array_equal(dctconv.decode(with_raw(zlib.compress(kept, 1))), dctconv.decode(data))
    nan = bytearray(kept)
    nan[8 * 1000 : 8 * 1001] = np.array([np.nan], "<f8").tobytes()
    cases = {
        "coefficient data does not hold the kept channels exactly": [
            zlib.compress(kept[:-8]), zlib.compress(kept + bytes(8)), zlib.compress(kept) + b"\x00",
            zlib.compress(kept)[:-20], b""],
        "coefficient data damaged": [b"\x78\x9c" + bytes(range(200))],
        "coefficients contain NaN or infinity": [zlib.compress(bytes(nan))],
    }
    for message, raws in cases.items():
        for raw in raws:
            with pytest.raises(CodecFileError, match=message):
                dctconv.decode(with_raw(raw))


def zigzag_mask(n: int, keep: int) -> np.ndarray:
    mask = np.zeros(n * n, bool)
    mask[zigzag_order(n)[:keep]] = True
    return mask
