"""The entropy model's vectorized helpers against literal numpy, its parametric token laws against a direct
computation, both model versions, damaged model sections (the codec's round trips are in test_codec)."""

import math

import numpy as np
import pytest

from dctconv.codec._entropy import (
    CONTEXT_EDGES,
    DC_EDGES,
    DIRECT_TOKENS,
    PARAMETRIC_RATIO_EXPONENT,
    PARAMETRIC_ZERO,
    TOKENS,
    CodedLevels,
    context_count,
    decode_levels,
    encode_levels,
    _bin,
    _Checkerboard,
    _neighbour_mean,
    _runs,
    parametric_probabilities,
)
from dctconv.errors import CodecFileError


@pytest.mark.parametrize("grid", [(1, 1), (1, 6), (5, 1), (4, 6), (5, 7), (6, 9)])
@pytest.mark.parametrize("parity", [0, 1])
def test_checkerboard_takes_and_puts_the_blocks_of_one_parity_in_raster_order(grid, parity, rng):
    maps = rng.integers(-50, 50, (3,) + grid)
    rows, cols = np.indices(grid)
    chosen = ((rows + cols) % 2 == parity).reshape(-1)  # raster order, literally
    board = _Checkerboard(grid, parity)
    assert np.array_equal(board.take(maps), maps.reshape(3, -1)[:, chosen])
    assert np.array_equal(board.flat_index(np.arange(board.size)), np.flatnonzero(chosen))
    values = rng.integers(-50, 50, (3, int(chosen.sum())))
    board.put(maps, values)
    assert np.array_equal(maps.reshape(3, -1)[:, chosen], values)


@pytest.mark.parametrize("edges", [CONTEXT_EDGES, DC_EDGES])
def test_bin_counts_the_edges_each_value_reaches(edges, rng):
    floats = np.concatenate([edges, np.nextafter(edges, 0), rng.uniform(0, 100, 500)]).astype(np.float32)
    integers = np.concatenate([np.floor(edges), np.ceil(edges), rng.integers(0, 2**40, 50)]).astype(np.int64)
    for values in (floats, integers):
        expected = (values[:, None] >= edges.astype(values.dtype)[None, :]).sum(axis=1)
        if values.dtype.kind == "i":
            expected = (values[:, None] >= np.ceil(edges)[None, :]).sum(axis=1)
        assert np.array_equal(_bin(values, edges), expected)


def test_runs_give_a_stable_order_and_the_extent_of_each_id(rng):
    for ids in (rng.integers(100, 120, 1000).astype(np.int16), rng.integers(0, 400, 1000).astype(np.int16)):
        order, runs = _runs(ids)
        assert np.array_equal(order, np.argsort(ids, kind="stable"))
        assert [r[0] for r in runs] == sorted(set(ids.tolist()))
        for value, start, end in runs:
            assert (ids[order[start:end]] == value).all() and end - start == (ids == value).sum()


def test_neighbour_mean_is_the_mean_of_the_four_neighbours_with_edges_repeated(rng):
    maps = rng.uniform(0, 10, (2, 4, 5)).astype(np.float32)
    padded = np.pad(maps, ((0, 0), (1, 1), (1, 1)), mode="edge")
    expected = (padded[:, :-2, 1:-1] + padded[:, 2:, 1:-1] + padded[:, 1:-1, :-2] + padded[:, 1:-1, 2:]) / 4
    assert np.array_equal(_neighbour_mean(maps), expected)



def geometric_token_law(p0: float, ratio: float) -> list[float]:
    """P(token) summed magnitude by magnitude: P(0) = p0, P(m) = (1 - p0)(1 - r) r**(m - 1)."""
    law = [p0] + [(1 - p0) * (1 - ratio) * ratio ** (m - 1) for m in range(1, DIRECT_TOKENS)]
    for token in range(DIRECT_TOKENS, TOKENS):
        bits = token - DIRECT_TOKENS + 5  # the size class of magnitudes with this bit length
        low, high = 2 ** (bits - 1), 2**bits
        law.append((1 - p0) * (ratio ** (low - 1) - ratio ** (high - 1)))
    return law


@pytest.mark.parametrize("zero, ratio", [(0, 0), (5, 9), (16, 16), (31, 20), (12, 31)])
def test_parametric_probabilities_follow_the_documented_geometric_law(zero, ratio):
    p0 = 1 / (1 + math.exp(-(-4 + 14 * zero / 31)))
    r = 1 - 2 ** -(0.05 * 480 ** (ratio / 31))
    assert PARAMETRIC_ZERO[zero] == pytest.approx(p0) and 1 - 2.0 ** -PARAMETRIC_RATIO_EXPONENT[ratio] == pytest.approx(r)
    units = parametric_probabilities(zero, ratio)
    assert units.shape == (TOKENS,) and np.array_equal(units, np.rint(units)) and units.min() >= 1
    expected = np.maximum(np.rint(np.array(geometric_token_law(p0, r)) * 2**24), 1)
    # Whole units of 2**-24, so only a value that sits on a rounding boundary may differ by one.
    assert np.abs(units - expected).max() <= 1


def sample_levels(rng, n=4, grid=(9, 11)):
    levels = np.zeros((n * n, *grid), np.int64)
    scale = 40 / (1 + np.add.outer(np.arange(n), np.arange(n)).reshape(-1)) ** 2
    levels[:] = np.rint(rng.laplace(0, 1, levels.shape) * scale[:, None, None])
    levels[-3:] = 0  # channels that only ever hold 0
    return levels


@pytest.mark.parametrize("version", [1, 2, 3])
def test_round_trip_of_both_model_versions(version, rng):
    levels = sample_levels(rng)
    channels = np.arange(16)
    coded = encode_levels(levels, channels, 4, version=version)
    assert np.array_equal(decode_levels(coded, levels.shape, channels, 4, version=version), levels)


def test_parameters_cost_less_than_tables(rng):
    levels = sample_levels(rng, n=8, grid=(24, 30))
    channels = np.arange(64)
    old, new = (encode_levels(levels, channels, 8, version=v) for v in (1, 2))
    assert len(new.model) < len(old.model) / 2
    assert len(new.model) + 4 * new.words.size < len(old.model) + 4 * old.words.size


def test_damaged_version_2_model_sections_raise_codec_file_error(rng):
    levels = sample_levels(rng)
    channels = np.arange(16)
    coded = encode_levels(levels, channels, 4, version=2)

    def decode_with(model: bytes):
        with pytest.raises(CodecFileError) as info:
            decode_levels(CodedLevels(model, coded.words, coded.raw_bits), levels.shape, channels, 4, version=2)
        return str(info.value)

    assert decode_with(coded.model[:3]) == "model section ends before its last context"
    assert decode_with(coded.model + b"\0") == "model section has 1 bytes after its last context"
    assert decode_with(b"\xff\xff" + coded.model[2:]) == "model section gives a table of 127 tokens, not from 1 to 73"
    every_context_unused = bytes(math.ceil(2 * context_count(4) / 8))  # 2 bits of kind 0 each
    assert decode_with(every_context_unused) == "channel 0 uses a model the file does not define"


def reference_edge_prediction(levels, steps, n, channel, row, col, known) -> float:
    """The documented prediction, from pixels: scipy's idctn of the blocks, then each boundary row's (column's) DCT."""
    from scipy.fft import dct, idctn

    rows, cols = levels.shape[1:]
    vertical = channel < n
    k = channel if vertical else channel // n

    def block(r, c, keep_edge):
        coefficients = (levels[:, r, c] * steps).reshape(n, n).copy()
        if not keep_edge:
            coefficients[(0, k) if vertical else (k, 0)] = 0.0
        pixels = idctn(coefficients, norm="ortho")
        return pixels if vertical else pixels.T  # boundary rows of a vertical pair, columns otherwise

    def amplitude(pixels, line):  # frequency k of one boundary line of pixels
        return dct(pixels[line], norm="ortho")[k]

    own = block(row, col, False)
    estimates = []
    before = (row - 1, col) if vertical else (row, col - 1)
    after = (row + 1, col) if vertical else (row, col + 1)
    if before[0] >= 0 and before[1] >= 0:
        estimates.append(amplitude(block(*before, known[before]), n - 1) - amplitude(own, 0))
    if after[0] < rows and after[1] < cols:
        estimates.append(amplitude(block(*after, known[after]), 0) - amplitude(own, n - 1))
    return float(np.mean(estimates) * np.sqrt(n)) if estimates else 0.0


@pytest.mark.parametrize("n, grid", [(4, (3, 5)), (8, (4, 2)), (2, (1, 6)), (4, (1, 1))])
def test_edge_predictions_equal_the_boundary_rule_computed_from_pixels(n, grid, rng):
    from dctconv.codec._entropy import _edge_channels, _edge_predictions

    levels = rng.integers(-6, 7, (n * n, *grid))
    steps = rng.uniform(0.5, 20, n * n)
    known = rng.random(grid) < 0.5
    edges = _edge_channels(np.arange(n * n), n)
    channels = np.repeat(edges, grid[0] * grid[1])
    blocks = np.tile(np.arange(grid[0] * grid[1]), edges.size)
    predicted = _edge_predictions(levels, steps, n, channels, blocks, known)
    expected = [reference_edge_prediction(levels, steps, n, c, *divmod(b, grid[1]), known)
                for c, b in zip(channels, blocks)]
    assert np.allclose(predicted, expected, rtol=1e-9, atol=1e-9)


def test_coded_edge_signs_cost_fewer_bits_than_raw_ones_on_a_photo():
    from references import SAMPLES
    from dctconv.codec._core import quantize_image, settings_header
    from dctconv.codec._zigzag import zigzag_order
    from dctconv.io._images import read_image

    image = read_image(SAMPLES / "camera.png")[0][:256, 128:384]
    header = settings_header(image.shape, "L", block_size=8, quality=50)
    quantized = quantize_image(image, header)
    channels = zigzag_order(8)
    sizes = {}
    for version in (2, 3):
        coded = encode_levels(quantized.levels, channels, 8, quantized.steps, version=version)
        decoded = decode_levels(coded, quantized.levels.shape, channels, 8, quantized.steps, version=version)
        assert np.array_equal(decoded, quantized.levels)
        sizes[version] = (len(coded.model) + 4 * coded.words.size, len(coded.raw_bits))
    edge_signs = sum(int((quantized.levels[c] != 0).sum()) for c in (1, 2, 3, 4, 5, 6, 7, 8, 16, 24, 32, 40, 48, 56))
    assert sizes[2][1] - sizes[3][1] == pytest.approx(edge_signs / 8, abs=1)  # those raw bits are gone
    assert sum(sizes[3]) < sum(sizes[2]) - edge_signs / 8 * 0.05  # and coded in less than 95 % of them
    # The sign models are the last fields of the model section: cut, they are missing.
    with pytest.raises(CodecFileError) as info:
        decode_levels(CodedLevels(coded.model[:-2], coded.words, coded.raw_bits), quantized.levels.shape, channels, 8,
                      quantized.steps, version=3)
    assert str(info.value) == "model section ends before its last context"


def test_on_a_tiny_image_the_edge_signs_stay_raw_bits(rng):
    levels = sample_levels(rng, grid=(2, 3))
    channels = np.arange(16)
    old, new = (encode_levels(levels, channels, 4, version=v) for v in (2, 3))
    # The same raw bits, signs included (version 3's range-coded words differ anyway:
    # its parametric models have short alphabets).
    assert new.raw_bits == old.raw_bits
    assert len(new.model) - len(old.model) <= 1  # the one bit that says so
    assert np.array_equal(decode_levels(new, levels.shape, channels, 4, version=3), levels)


@pytest.mark.parametrize("zero, ratio", [(0, 0), (5, 9), (16, 16), (31, 20), (12, 31)])
def test_short_parametric_models_drop_only_the_tokens_at_the_floor(zero, ratio):
    full = parametric_probabilities(zero, ratio)
    short = parametric_probabilities(zero, ratio, short=True)
    assert np.array_equal(short, full[: short.size]) and short.size >= 2
    assert (full[short.size :] == 1).all() and (short.size == 2 or short[-1] > 1)


def test_a_context_with_a_token_beyond_every_short_model_still_round_trips(rng):
    levels = sample_levels(rng)
    levels[5, 3, 4] = 1 << 40  # a lone huge level among small ones: a size class far in the tail
    channels = np.arange(16)
    coded = encode_levels(levels, channels, 4)
    assert np.array_equal(decode_levels(coded, levels.shape, channels, 4), levels)


def test_version_3_models_are_short_unless_a_context_has_far_outliers():
    from dctconv.codec._entropy import model_section, read_models

    counts = np.zeros((3, TOKENS), np.int64)
    counts[0, :4] = [5000, 2000, 300, 20]  # small magnitudes only: a short alphabet covers them
    counts[1, :4] = [5000, 4000, 300, 20]
    counts[1, DIRECT_TOKENS + 2] = 1  # one magnitude of 64 to 127 among them
    counts[2, 0] = 10  # only zeros
    tables, _ = read_models(model_section(counts, 3), 3, 3)
    short = parametric_probabilities(0, 0, short=True)  # any short model: far shorter than TOKENS
    assert tables[0].size < TOKENS // 2 and short.size < TOKENS // 2
    assert tables[1].size == TOKENS and tables[1].size > np.flatnonzero(counts[1])[-1]
    assert tables[2].size == 1
