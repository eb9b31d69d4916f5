"""The zigzag order and the kept channels against tables written out by hand (the issue's
4 x 4 order, libjpeg's 8 x 8 jpeg_natural_order) and the rule they follow."""

from __future__ import annotations

import math

import numpy as np
import pytest

import dctconv
from dctconv.codec._dctz import read_header
from dctconv.codec._zigzag import check_step, check_threshold, keep_mask, zigzag_order
from dctconv.errors import InvalidBlockSizeError, InvalidCompressionError

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


def test_bad_block_size_is_refused():
    with pytest.raises(InvalidBlockSizeError):
        zigzag_order(1)


def test_negative_zero_step_and_threshold_are_zero():
    """-0.0 passes "not negative", so `compress --step -0.0` was accepted and printed as "-0"."""
    for check in (check_step, check_threshold):
        value = check(-0.0)
        assert value == 0.0 and math.copysign(1.0, value) == 1.0
    header = read_header(dctconv.encode(np.arange(16, dtype=np.uint8).reshape(4, 4), step=-0.0, threshold=-0.0))
    assert math.copysign(1.0, header.step) == math.copysign(1.0, header.threshold) == 1.0
