"""The entropy model's vectorized helpers against literal numpy (the codec's round trips are in test_codec)."""

import numpy as np
import pytest

from dctconv.entropy_model import CONTEXT_EDGES, DC_EDGES, _bin, _Checkerboard, _neighbour_mean, _runs


@pytest.mark.parametrize("grid", [(1, 1), (1, 6), (5, 1), (4, 6), (5, 7), (6, 9)])
@pytest.mark.parametrize("parity", [0, 1])
def test_checkerboard_takes_and_puts_the_blocks_of_one_parity_in_raster_order(grid, parity, rng):
    maps = rng.integers(-50, 50, (3,) + grid)
    rows, cols = np.indices(grid)
    chosen = ((rows + cols) % 2 == parity).reshape(-1)  # raster order, literally
    board = _Checkerboard(grid, parity)
    assert np.array_equal(board.take(maps), maps.reshape(3, -1)[:, chosen])
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
