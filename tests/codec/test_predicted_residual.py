"""The residual of a bound predicted pixel by pixel (section ADRP), and the encoder's candidate
with no DCT levels at all.

Lossless files are compared with the original by numpy equality, bounded ones pixel by pixel
with numpy; the pixels of ADRP files are also those of tests/reference_decoder.py (written
from docs/formats.md), and the same map coded in ADRS (the coding of files written before
ADRP) decodes to the same pixels.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dctconv
from dctconv.codec import _core
from dctconv.codec._core import decode_levels
from dctconv.codec._dctz import pack, read_header, section
from dctconv.codec._engine import (LEVEL_LIMIT, decode_map, decode_predicted_map, encode_map,
                                   encode_predicted_map)
from dctconv.errors import CodecFileError
from dctconv.io._images import read_image
from hostile import reseal
from reference_decoder import Damaged
from reference_decoder import decode as reference_decode
from science_images import micrograph, mr_slice, terrain, with_holes

fuzz = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def tags(data: bytes) -> list[str]:
    return [tag for tag, _, _ in read_header(data).section_table]


def largest_error(image, decoded) -> float:
    valid = ~np.isnan(image) if image.dtype.kind == "f" else np.ones(image.shape, bool)
    return float(np.max(np.abs(image[valid].astype(np.float64) - decoded[valid].astype(np.float64)), initial=0))


# ---------------------------------------------------------------- the coder


@fuzz
@given(st.data())
def test_random_maps_round_trip(data):
    rows, cols = data.draw(st.integers(1, 24)), data.draw(st.integers(1, 24))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    scale = data.draw(st.sampled_from([0.0, 0.3, 3.0, 5e4, 1e16]))
    kind = data.draw(st.sampled_from(["noise", "ramp", "walk"]))
    values = rng.laplace(0, scale, (rows, cols))
    if kind == "ramp":
        values += np.add.outer(np.arange(rows), np.arange(cols)) * scale
    elif kind == "walk":
        values = np.cumsum(np.cumsum(values, axis=0), axis=1)
    # Clipped as integers: LEVEL_LIMIT - 1 as a float64 is 2**59 itself, beyond the coder's range.
    values = np.clip(np.rint(np.clip(values, -2.0**60, 2.0**60)).astype(np.int64), -(LEVEL_LIMIT - 1), LEVEL_LIMIT - 1)
    shift = data.draw(st.one_of(st.none(), st.integers(0, 62)))
    coded = encode_predicted_map(values, shift=shift)
    assert np.array_equal(decode_predicted_map(coded, values.shape), values)


def test_the_largest_values_round_trip():
    # Neighbours at +-(2**59 - 1) side by side: the median, the gradients and the errors
    # reach 2**61 and must not overflow.
    values = np.full((6, 7), LEVEL_LIMIT - 1, np.int64)
    values[::2, 1::2] = -(LEVEL_LIMIT - 1)
    values[3, 3] = 0
    for shift in (0, 30, 62):
        coded = encode_predicted_map(values, shift=shift)
        assert np.array_equal(decode_predicted_map(coded, values.shape), values)


def test_a_smooth_map_costs_far_less_predicted_than_as_it_is():
    # A plane of slope 3: ADRS codes each value's magnitude, ADRP the median's error (0 inside).
    values = np.add.outer(3 * np.arange(64), 3 * np.arange(64)).astype(np.int64)
    assert len(encode_predicted_map(values)) * 20 < len(encode_map(values[None]))


def test_damaged_bytes_are_one_line_errors_or_values_within_the_limit():
    rng = np.random.default_rng(7)
    for _ in range(200):
        data = rng.integers(0, 63, 1, dtype=np.uint8).tobytes() + rng.integers(
            0, 256, int(rng.integers(0, 300)), dtype=np.uint8).tobytes()
        try:
            values = decode_predicted_map(data, (9, 11))
        except CodecFileError as exc:
            assert str(exc).startswith("section ADRP") and "\n" not in str(exc)
        else:
            assert int(np.abs(values).max()) < LEVEL_LIMIT


def test_a_damaged_section_names_what_is_wrong():
    values = np.cumsum(np.random.default_rng(3).integers(-9, 10, (20, 30)), axis=1)
    coded = encode_predicted_map(values)
    cases = {
        b"": "^section ADRP is empty$",
        bytes([63]) + coded[1:]: "^section ADRP is damaged: its gradient shift 63 is beyond 62$",
        coded[: len(coded) // 2]: "^section ADRP ends early",
        coded + b"xy": "^section ADRP has 2 bytes left over after its last symbol$",
    }
    for data, message in cases.items():
        with pytest.raises(CodecFileError, match=message):
            decode_predicted_map(data, values.shape)
    with pytest.raises(Damaged):
        reference_decode(pack(read_header(FILES["16-bit lossless"]), {
            "ADPT": section(FILES["16-bit lossless"], read_header(FILES["16-bit lossless"]), "ADPT"),
            "ADRP": coded[: len(coded) // 2]}))


# ---------------------------------------------------------------- files


def photo_like(shape, dtype, seed):
    """Terrain plus noise (a texture the median predicts), scaled to ``dtype``."""
    rng = np.random.default_rng(seed)
    field = terrain(shape, low=0, high=1, dtype=np.float64, seed=seed) + rng.normal(0, 0.01, shape)
    if dtype == np.float32:
        return (field * 300 - 40).astype(np.float32)
    top = {np.uint8: 255, np.uint16: 65535, np.int32: 2**31 - 1}[dtype]
    low = -(2**31) if dtype == np.int32 else 0
    return np.clip(np.rint(low + field * (top - low)), low, top).astype(dtype)


MICRO = micrograph((96, 80), seed=5)
FILES = {
    "16-bit lossless": dctconv.encode(MICRO, max_error=0),
}


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32])
@pytest.mark.parametrize("block_size", [4, 8])
def test_lossless_is_bit_exact(dtype, block_size):
    image = photo_like((70, 53), dtype, seed=11)
    image[0, 0], image[-1, -1] = np.iinfo(dtype).min, np.iinfo(dtype).max  # the whole container
    data = dctconv.encode(image, block_size=block_size, max_error=0)
    decoded = dctconv.decode(data)
    assert decoded.dtype == image.dtype and np.array_equal(decoded, image)
    assert "ADRP" in tags(data)
    assert np.array_equal(reference_decode(data), image)


@pytest.mark.parametrize("image, bound", [
    (photo_like((61, 70), np.uint8, 1), 1),
    (photo_like((61, 70), np.uint8, 2), 7.9),
    (MICRO, 3),
    (photo_like((50, 77), np.int32, 3), 1000),
    (photo_like((64, 64), np.float32, 4), 0.01),
    (with_holes(photo_like((64, 64), np.float32, 5), count=4, radius=7), 0.2),
    (with_holes(terrain((57, 66), low=-2.5, high=31, dtype=np.float32), count=3, radius=9), 0.0335),
], ids=["uint8 E=1", "uint8 E=7.9", "uint16 micrograph E=3", "int32 E=1000", "float E=0.01", "float NaN E=0.2",
        "float NaN field E=0.0335"])
def test_every_pixel_is_within_the_bound(image, bound):
    data = dctconv.encode(image, max_error=bound)
    decoded = dctconv.decode(data)
    limit = bound if image.dtype.kind == "f" else math.floor(bound)
    assert largest_error(image, decoded) <= limit
    if image.dtype.kind == "f":
        assert np.array_equal(np.isnan(decoded), np.isnan(image))
    expected = reference_decode(data)
    assert np.array_equal(np.isnan(expected), np.isnan(decoded)) if image.dtype.kind == "f" else True
    assert np.array_equal(np.nan_to_num(expected), np.nan_to_num(decoded))


def test_the_same_map_in_adrs_and_adrp_decodes_to_the_same_pixels(monkeypatch):
    # Levels under the residual (quality 40): the map q is that of the ADRS file today's
    # encoder writes for it; coded in ADRP instead, the pixels are the same, bit for bit.
    image = photo_like((45, 58), np.uint16, 6)
    data = dctconv.encode(image, block_size=4, quality=40, max_error=2)
    header = read_header(data)
    assert tags(data) == ["ADPT", "ADRS"]
    q = decode_map(section(data, header, "ADRS"), (1, *header.image_shape))
    predicted = pack(header, {"ADPT": section(data, header, "ADPT"), "ADRP": encode_predicted_map(q[0])})
    assert np.array_equal(dctconv.decode(predicted), dctconv.decode(data))
    assert np.array_equal(reference_decode(predicted), dctconv.decode(data))
    assert largest_error(image, dctconv.decode(predicted)) <= 2
    both = pack(header, {"ADPT": section(data, header, "ADPT"), "ADRS": section(data, header, "ADRS"),
                         "ADRP": encode_predicted_map(q[0])})
    with pytest.raises(CodecFileError, match="^sections ADRS and ADRP both hold a residual; a file has one of them$"):
        dctconv.decode(both)


@pytest.mark.parametrize("rows", [1, 3])
def test_adrp_files_decode_in_bands_to_the_whole_images_pixels(rows, monkeypatch):
    image = with_holes(terrain((75, 41), low=-2.5, high=31, dtype=np.float32, seed=8), count=3, radius=5)
    data = dctconv.encode(image, block_size=4, max_error=0.0335)
    assert tags(data) == ["ADPT", "ADRP", "NANM"]
    header = read_header(data)
    whole = dctconv.decode(data)
    monkeypatch.setattr(_core, "BAND_PIXELS", rows * header.block_size ** 2 * header.grid[1])
    monkeypatch.setattr(_core, "RESIDUAL_BAND_PIXELS", rows * header.block_size * header.image_shape[1])
    banded = dctconv.decode(data)
    assert np.array_equal(banded.view(np.uint8), whole.view(np.uint8))


def test_mutated_adrp_files_are_one_line_errors():
    rng = np.random.default_rng(12)
    data = FILES["16-bit lossless"]
    start, end = read_header(data).section_offsets()["ADRP"]
    for _ in range(60):
        damaged = bytearray(data)
        for _ in range(int(rng.integers(1, 4))):
            pos = int(rng.integers(start, end))
            damaged[pos] = int(rng.integers(0, 256))
        try:
            decoded = dctconv.decode(reseal(bytes(damaged)))
        except CodecFileError as exc:
            assert "\n" not in str(exc) and str(exc).startswith("section ADRP")
        else:
            assert decoded.shape == MICRO.shape and decoded.dtype == MICRO.dtype


def test_mutated_adrp_files_through_the_command_line_end_in_one_line(tmp_path):
    from click.testing import CliRunner

    from dctconv.cli import cli

    rng = np.random.default_rng(13)
    data = FILES["16-bit lossless"]
    start, end = read_header(data).section_offsets()["ADRP"]
    failed = 0
    for k in range(12):
        damaged = bytearray(data)
        pos = int(rng.integers(start, end))
        damaged[pos] ^= 1 << int(rng.integers(0, 8))
        path = tmp_path / f"m{k}_compressed.dctz"
        path.write_bytes(reseal(bytes(damaged)) if k % 3 else bytes(damaged))
        result = CliRunner().invoke(cli, ["transform", "--inverse", str(path), "-o", str(tmp_path / f"out{k}")])
        assert result.exit_code in (0, 1) and "Traceback" not in result.output
        if result.exit_code == 1:
            failed += 1
            assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(f"Error: {path}: ")
    assert failed >= 4  # at least the ones with their CRC left as it was


DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.mark.parametrize("name, original, bound", [
    ("dem16_bound2", lambda: terrain((45, 38), low=0, high=840, seed=7, dtype=np.uint16), 2),
    ("field_bound005", lambda: with_holes(terrain((37, 44), low=-2.5, high=31, dtype=np.float32, seed=9), count=2,
                                          radius=5), 0.05),
])
def test_adrs_files_written_before_adrp_decode_to_their_recorded_pixels(name, original, bound, monkeypatch):
    # Written and decoded by dctconv at 9a04262 (before ADRP): ADPT, ADRS (and NANM).
    data = (DATA / f"codec_v4_adrs_{name}.dctz").read_bytes()
    assert "ADRS" in tags(data)
    if name.startswith("dem16"):
        recorded = read_image(DATA / f"codec_v4_adrs_{name}.png")[0]
    else:
        recorded = np.load(DATA / f"codec_v4_adrs_{name}.npy", allow_pickle=False)
    decoded = dctconv.decode(data)
    assert decoded.dtype == recorded.dtype and np.array_equal(decoded.view(np.uint8), recorded.view(np.uint8))
    header = read_header(data)
    monkeypatch.setattr(_core, "BAND_PIXELS", header.block_size ** 2 * header.grid[1])
    monkeypatch.setattr(_core, "RESIDUAL_BAND_PIXELS", header.block_size * header.image_shape[1])
    assert np.array_equal(dctconv.decode(data).view(np.uint8), recorded.view(np.uint8))
    assert largest_error(original(), decoded) <= bound


# ---------------------------------------------------------------- the encoder's choice


def test_a_noisy_image_losslessly_is_coded_with_no_levels():
    # Photon noise: no DCT step leaves a residual the median predicts as well as the image.
    data = FILES["16-bit lossless"]
    assert tags(data) == ["ADPT", "ADRP"]
    assert not decode_levels(data).levels.any()
    assert np.array_equal(dctconv.decode(data), MICRO)
    # ... and it is smaller than the best file with levels the encoder could have chosen.
    with_levels = min(len(dctconv.encode(MICRO, quality=q, max_error=0)) for q in (50, 75, 90, 95))
    assert len(data) < with_levels


def test_a_smooth_field_at_a_wide_bound_keeps_its_levels():
    image = terrain((128, 128), low=0, high=840, seed=22)
    data = dctconv.encode(image, max_error=30)  # 3.6 % of the range
    assert decode_levels(data).levels.any()
    assert largest_error(image, dctconv.decode(data)) <= 30


def test_a_constant_32_bit_image_and_an_all_nan_field():
    image = np.full((20, 30), -(2**31), np.int32)
    assert np.array_equal(dctconv.decode(dctconv.encode(image, max_error=0)), image)
    field = np.full((20, 30), np.nan, np.float32)
    assert np.isnan(dctconv.decode(dctconv.encode(field, max_error=0.5, data_range=(0, 1)))).all()
    mr = mr_slice((33, 47)).astype(np.int32) * 9999 - 2**30
    assert np.array_equal(dctconv.decode(dctconv.encode(mr, max_error=0)), mr)


@pytest.mark.parametrize("coder", ["ADRS", "ADRP"])
def test_maps_beyond_the_decoders_range_are_refused_when_encoding(coder):
    # 2**59 decodes as a damaged section: the encoder must not write it (it did).
    values = np.zeros((3, 4), np.int64)
    values[1, 2] = LEVEL_LIMIT
    encode = (lambda v: encode_map(v[None])) if coder == "ADRS" else encode_predicted_map
    with pytest.raises(ValueError, match="below 2\\*\\*59"):
        encode(values)
    values[1, 2] = -LEVEL_LIMIT
    with pytest.raises(ValueError, match="below 2\\*\\*59"):
        encode(values)
    values[1, 2] = LEVEL_LIMIT - 1
    assert np.array_equal(decode_predicted_map(encode_predicted_map(values), values.shape), values)


def test_a_float_bound_a_hair_above_float32s_resolution_gets_one_line():
    # E - u (the residual's half step) is then about 1e-17: levels beyond any coder's range.
    image = (np.random.default_rng(0).random((32, 32)) * 1e6).astype(np.float32)
    with pytest.raises(dctconv.errors.InvalidCompressionError, match="too close to the resolution of float32"):
        dctconv.encode(image, max_error=np.nextafter(0.0625, 1.0))
