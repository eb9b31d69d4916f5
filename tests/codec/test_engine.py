"""The compiled entropy engine (sections ADPT and ADRS): exact round trips, exact ends, hostile bytes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dctconv.codec._engine import LEVEL_LIMIT, decode_levels, decode_map, encode_levels, encode_map
from dctconv.codec._quantize import step_table
from dctconv.codec._zigzag import zigzag_order
from dctconv.errors import CodecFileError

fuzz = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def random_levels(rng, n, keep, rows, cols, scale):
    levels = np.rint(rng.laplace(0, scale, (n * n, rows, cols))).astype(np.int64)
    levels[0] = np.cumsum(rng.integers(-30, 31, (rows, cols)), axis=1)  # DC: a smooth-ish field
    levels[zigzag_order(n)[keep:]] = 0
    return levels


@pytest.mark.parametrize("n, keep", [(2, 4), (2, 1), (4, 16), (4, 2), (4, 7), (8, 64), (8, 10), (16, 256)])
def test_levels_round_trip_exactly(n, keep):
    rng = np.random.default_rng(n * 100 + keep)
    steps = step_table(n, quality=60)
    for rows, cols, scale in [(1, 1, 1.0), (5, 3, 0.4), (7, 9, 3.0), (3, 4, 200.0)]:
        levels = random_levels(rng, n, keep, rows, cols, scale)
        data = encode_levels(levels, keep, n, steps)
        assert np.array_equal(decode_levels(data, levels.shape, keep, n, steps), levels)


def test_the_largest_levels_round_trip():
    n = 4
    levels = np.zeros((16, 3, 3), np.int64)
    levels[:, 1, 1] = LEVEL_LIMIT - 1
    levels[::2, 0, 2] = -(LEVEL_LIMIT - 1)
    levels[0, 2, 0] = -(LEVEL_LIMIT - 1)  # the DC difference to its neighbour is then near 2**60
    data = encode_levels(levels, 16, n, step_table(n, quality=50))
    assert np.array_equal(decode_levels(data, levels.shape, 16, n, step_table(n, quality=50)), levels)


@fuzz
@given(st.data())
def test_random_level_arrays_round_trip(data):
    n = data.draw(st.sampled_from([2, 4, 8]))
    keep = data.draw(st.integers(1, n * n))
    rows, cols = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 6))
    seed = data.draw(st.integers(0, 2**32 - 1))
    scale = data.draw(st.sampled_from([0.0, 0.3, 2.0, 1e3, 1e15]))
    rng = np.random.default_rng(seed)
    levels = np.clip(random_levels(rng, n, keep, rows, cols, scale), -(LEVEL_LIMIT - 1), LEVEL_LIMIT - 1)
    steps = step_table(n, step=1.0) if data.draw(st.booleans()) else step_table(n, quality=data.draw(st.integers(1, 100)))
    coded = encode_levels(levels, keep, n, steps)
    assert np.array_equal(decode_levels(coded, levels.shape, keep, n, steps), levels)


def test_zero_levels_cost_almost_nothing():
    # An adaptive coder learns that every flag is 0: 4096 blocks of zeros in a few bytes.
    levels = np.zeros((16, 64, 64), np.int64)
    assert len(encode_levels(levels, 16, 4)) < 40
    # ... and flat noise costs about its entropy: levels -1, 0, 1 equally likely, log2(3) bits each.
    rng = np.random.default_rng(1)
    levels = rng.integers(-1, 2, (16, 64, 64))
    bits = 8 * len(encode_levels(levels, 16, 4))
    assert levels.size * np.log2(3) < bits < 1.1 * levels.size * np.log2(3)


@fuzz
@given(st.data())
def test_random_integer_maps_round_trip(data):
    count, rows, cols = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 20)), data.draw(st.integers(1, 20))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    scale = data.draw(st.sampled_from([0.0, 0.2, 3.0, 5e4, 1e16]))
    values = np.clip(np.rint(rng.laplace(0, scale, (count, rows, cols))), -(LEVEL_LIMIT - 1), LEVEL_LIMIT - 1)
    values = values.astype(np.int64)
    assert np.array_equal(decode_map(encode_map(values), values.shape), values)


def test_damaged_bytes_raise_or_decode_within_the_limits():
    rng = np.random.default_rng(5)
    n, shape = 4, (16, 6, 7)
    steps = step_table(n, quality=75)
    for _ in range(200):
        data = rng.integers(0, 256, int(rng.integers(0, 300)), dtype=np.uint8).tobytes()
        try:
            levels = decode_levels(data, shape, 16, n, steps)
        except CodecFileError as exc:
            assert str(exc).startswith("section ADPT") and "\n" not in str(exc)
        else:
            assert int(np.abs(levels).max()) < LEVEL_LIMIT
        try:
            decode_map(data, (1, 9, 5))
        except CodecFileError as exc:
            assert str(exc).startswith("section ADRS")


def test_a_truncated_stream_ends_early_and_extra_bytes_are_left_over():
    rng = np.random.default_rng(2)
    levels = random_levels(rng, 4, 16, 8, 8, 2.0)
    data = encode_levels(levels, 16, 4)
    with pytest.raises(CodecFileError, match="^section ADPT ends early"):
        decode_levels(data[: len(data) // 2], levels.shape, 16, 4)
    with pytest.raises(CodecFileError, match="^section ADPT has 3 bytes left over after its last symbol$"):
        decode_levels(data + b"abc", levels.shape, 16, 4)
