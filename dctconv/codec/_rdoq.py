"""Rate-distortion optimized quantization (RDOQ): the encoder's choice of each block's AC levels.

The decoder reads whatever levels it is given; which levels to give it is the
encoder's decision. Rounding each coefficient to its nearest level minimizes the
error, but a level of 1 that costs seven bits saves little error, and a block whose
last level is a lone 1 pays for its significance, magnitude, sign and last flags.
As in HEVC's RDOQ [1]_, :func:`rdoq` decides, block by block, for every nonzero AC
level ``q`` among ``q``, ``q`` moved one towards zero and 0, and then the block's
last position (or no AC level at all), minimizing ``D + lambda * R``:

* ``D`` is the squared error of the coefficient in coefficient units (the DCT is
  orthonormal: it is the error the pixels get), with the reconstruction offsets the
  decoder applies (:func:`dctconv.codec._core.fit_offsets`).
* ``R`` is the bits the engine (:mod:`dctconv.codec._engine`) spends on it, from its
  own binarization and contexts: a first pass walks the levels as the engine codes
  them and counts the bits of every context, whose cost is then ``-log2`` of the
  context's frequency (a static table per image: the engine's probabilities adapt,
  this table is their average). Signs cost one bit.

Decisions run in the engine's order (blocks in raster order, positions in zigzag
order), so every context a decision reads (the neighbouring blocks' levels and last
positions, the in-block neighbours earlier in zigzag order) is already decided; what a
decision changes for later contexts is not taken back (a greedy pass, as in HEVC).
DC levels and zero levels are never changed: a threshold or a zonal mask keeps holding.

References
----------
.. [1] M. Karczewicz, Y. Ye, I. Chong, "Rate distortion optimized quantization",
   ITU-T VCEG-AH21, 2008; HEVC test model HM, ``TComTrQuant::xRateDistOptQuant``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numba import njit

from ._engine import _EXP, _MANT, MAG_GRADES, SET_SIZE, SIG_CONTEXTS, _around, _inside, _last_position, _sig_and_mag

#: PSNR that :func:`rdoq_within` keeps above plain rounding's, in dB.
MARGIN_DB = 0.03

#: Bits of a context never seen in the first pass.
_UNSEEN = 1.0


@njit(cache=True)
def _layout(n_classes):
    cbf = 0
    sig = 3
    last = sig + n_classes * SIG_CONTEXTS
    mag = last + n_classes * 3
    total = mag + n_classes * MAG_GRADES * SET_SIZE
    return cbf, sig, last, mag, total


@njit(cache=True)
def _uint_bits(cost, base, value):
    """Bits of the engine's ``_enc_uint(value)`` in the set at ``base`` (``cost[ctx, bit]``)."""
    if value == 0:
        return cost[base, 0]
    bits = cost[base, 1]
    e = 0
    while (value >> (e + 1)) != 0:
        e += 1
    for i in range(e):
        bits += cost[base + _EXP + min(i, 9), 1]
    bits += cost[base + _EXP + min(e, 9), 0]
    for i in range(e - 1, -1, -1):
        bits += cost[base + _MANT + min(i, 9), (value >> i) & 1]
    return bits


@njit(cache=True)
def _uint_count(counts, base, value):
    if value == 0:
        counts[base, 0] += 1
        return
    counts[base, 1] += 1
    e = 0
    while (value >> (e + 1)) != 0:
        e += 1
    for i in range(e):
        counts[base + _EXP + min(i, 9), 1] += 1
    counts[base + _EXP + min(e, 9), 0] += 1
    for i in range(e - 1, -1, -1):
        counts[base + _MANT + min(i, 9), (value >> i) & 1] += 1


@njit(cache=True)
def _contexts(levels, r, c, i, ch, k, lc, uc, last_a, last_l, n_classes, sig_base, mag_base):
    """(significance context, magnitude set base) of position ``i`` of block (r, c): the engine's own functions."""
    return _sig_and_mag(k, i, _around(levels, ch, r, c), _inside(levels, ch, lc, uc, r, c), lc == 0 or uc == 0,
                        last_a, last_l, sig_base, mag_base)


@njit(cache=True)
def _count(levels, zz, cls, left_ch, up_ch, n_classes):
    """Bits of every AC context (cbf, significance, last, magnitude) when the engine codes ``levels``."""
    _, rows, cols = levels.shape
    keep = zz.size
    cbf_base, sig_base, last_base, mag_base, total = _layout(n_classes)
    counts = np.zeros((total, 2), np.float64)
    lastpos = np.zeros((rows, cols), np.int64)
    for r in range(rows):
        for c in range(cols):
            last_a = lastpos[r - 1, c] if r > 0 else 0
            last_l = lastpos[r, c - 1] if c > 0 else 0
            last = _last_position(levels, zz, r, c)
            cbf_ctx = cbf_base + (1 if last_a > 0 else 0) + (1 if last_l > 0 else 0)
            counts[cbf_ctx, 1 if last > 0 else 0] += 1
            lastpos[r, c] = last
            for i in range(1, last + 1):
                ch = zz[i]
                k = cls[i]
                sig_ctx, mag = _contexts(levels, r, c, i, ch, k, left_ch[i], up_ch[i], last_a, last_l,
                                         n_classes, sig_base, mag_base)
                value = abs(levels[ch, r, c])
                if i != keep - 1:
                    counts[sig_ctx, 1 if value != 0 else 0] += 1
                if value == 0:
                    continue
                _uint_count(counts, mag, value - 1)
                if i != keep - 1:
                    t = (1 if last_a > i else 0) + (1 if last_l > i else 0)
                    counts[last_base + k * 3 + t, 1 if i == last else 0] += 1
    return counts


@njit(cache=True)
def _bits_of(counts):
    """Static bit costs ``-log2 p`` of every context's two symbols from their counts."""
    cost = np.empty(counts.shape, np.float64)
    for j in range(counts.shape[0]):
        n0 = counts[j, 0]
        n1 = counts[j, 1]
        if n0 + n1 == 0:
            cost[j, 0] = _UNSEEN
            cost[j, 1] = _UNSEEN
        else:
            whole = n0 + n1 + 1.0
            cost[j, 0] = -np.log2((n0 + 0.5) / whole)
            cost[j, 1] = -np.log2((n1 + 0.5) / whole)
    return cost


@njit(cache=True)
def _decide(levels, coefficients, steps, offsets, lam, zz, cls, left_ch, up_ch, n_classes, cost):
    """Choose the AC levels of every block in place (module docstring); returns how many changed."""
    _, rows, cols = levels.shape
    keep = zz.size
    cbf_base, sig_base, last_base, mag_base, total = _layout(n_classes)
    lastpos = np.zeros((rows, cols), np.int64)
    zero_cost = np.zeros(keep)  # D + lambda R of a position left 0 (its significance flag coded)
    level_cost = np.zeros(keep)  # ... of its chosen nonzero level (flag, magnitude, sign), no last flag
    not_last = np.zeros(keep)  # lambda R of its last flag 0
    is_last = np.zeros(keep)  # ... and 1
    error = np.zeros(keep)  # D of the position left 0 and uncoded (after the last)
    original = np.zeros(keep, np.int64)
    changed = 0
    for r in range(rows):
        for c in range(cols):
            last_a = lastpos[r - 1, c] if r > 0 else 0
            last_l = lastpos[r, c - 1] if c > 0 else 0
            end = _last_position(levels, zz, r, c)
            if end == 0:
                continue
            cbf_ctx = cbf_base + (1 if last_a > 0 else 0) + (1 if last_l > 0 else 0)
            for i in range(1, end + 1):
                ch = zz[i]
                k = cls[i]
                q = levels[ch, r, c]
                original[i] = q
                x = abs(coefficients[ch, r, c])
                error[i] = x * x
                if q == 0:
                    level_cost[i] = np.inf
                    if i != keep - 1:
                        sig_ctx, mag = _contexts(levels, r, c, i, ch, k, left_ch[i], up_ch[i], last_a, last_l,
                                                 n_classes, sig_base, mag_base)
                        zero_cost[i] = error[i] + lam[ch] * cost[sig_ctx, 0]
                    else:
                        zero_cost[i] = error[i]
                    continue
                sig_ctx, mag = _contexts(levels, r, c, i, ch, k, left_ch[i], up_ch[i], last_a, last_l,
                                         n_classes, sig_base, mag_base)
                step = steps[ch]
                m = abs(q)
                best = np.inf
                best_m = m
                for candidate in range(m, max(m - 2, 0), -1):
                    offset = offsets[0, ch] if candidate == 1 else offsets[1, ch]
                    d = x - (candidate - offset) * step
                    bits = _uint_bits(cost, mag, candidate - 1) + 1.0
                    if i != keep - 1:
                        bits += cost[sig_ctx, 1]
                    value = d * d + lam[ch] * bits
                    if value < best:
                        best = value
                        best_m = candidate
                level_cost[i] = best
                zero_cost[i] = error[i] + (lam[ch] * cost[sig_ctx, 0] if i != keep - 1 else 0.0)
                if i != keep - 1:
                    t = (1 if last_a > i else 0) + (1 if last_l > i else 0)
                    last_ctx = last_base + k * 3 + t
                    not_last[i] = lam[ch] * cost[last_ctx, 0]
                    is_last[i] = lam[ch] * cost[last_ctx, 1]
                else:
                    not_last[i] = 0.0
                    is_last[i] = 0.0
                if i != end and zero_cost[i] < best + not_last[i]:
                    levels[ch, r, c] = 0
                else:
                    levels[ch, r, c] = best_m if q > 0 else -best_m
            # The last position: every nonzero position is a candidate; the block may code none.
            # The rate of the coded-block flag weighs with the DC-like channel 1's lambda.
            lam1 = lam[zz[1]]
            tail = 0.0
            for i in range(1, end + 1):
                tail += error[i]
            best_total = tail + lam1 * cost[cbf_ctx, 0]
            best_end = 0
            running = lam1 * cost[cbf_ctx, 1]
            for i in range(1, end + 1):
                tail -= error[i]
                if levels[zz[i], r, c] != 0:
                    candidate = running + level_cost[i] + is_last[i] + tail
                    if candidate < best_total:
                        best_total = candidate
                        best_end = i
                    running += level_cost[i] + not_last[i]
                else:
                    running += zero_cost[i]
            for i in range(best_end + 1, end + 1):
                levels[zz[i], r, c] = 0
            lastpos[r, c] = best_end
            for i in range(1, end + 1):
                if levels[zz[i], r, c] != original[i]:
                    changed += 1
    return changed


@njit(cache=True)
def offset_sums(levels, coefficients, steps, classes, count):
    """Per class and for |q| = 1 (row 0) and |q| >= 2 (row 1): the sum of ``|q| - |x| / step`` over
    the nonzero levels, and their number (``fit_offsets`` in one pass, with no temporaries), in flat order."""
    nch, rows, cols = levels.shape
    total = np.zeros(2 * count)
    number = np.zeros(2 * count, np.int64)
    for ch in range(nch):
        step = steps[ch]
        k = classes[ch]
        for r in range(rows):
            for c in range(cols):
                q = levels[ch, r, c]
                if q != 0:
                    m = abs(q)
                    key = k + count if m >= 2 else k
                    total[key] += m - abs(coefficients[ch, r, c] / step)
                    number[key] += 1
    return total, number


@lru_cache(maxsize=32)
def _tables(block_size: int, keep: int):
    """The engine's tables of the positions (zigzag channel, class, in-block neighbours, class count),
    once per block size and K: a small file's encode would otherwise spend as long on them as on RDOQ."""
    from ._engine import level_tables

    tables = level_tables(block_size, keep)[:5]
    for table in tables[:4]:
        table.flags.writeable = False
    return tables


def rdoq(levels: np.ndarray, coefficients: np.ndarray, steps: np.ndarray, block_size: int, lam, *,
         keep: int | None = None, offsets: np.ndarray | None = None, passes: int = 1) -> int:
    """Choose the AC levels of ``levels`` in place by rate-distortion cost (module docstring).

    Parameters
    ----------
    levels : ndarray of int64, shape (n*n, rows, columns)
        The rounded levels (:func:`dctconv.codec._core.quantize_image`); changed in place.
        Only nonzero AC levels move, each towards zero.
    coefficients : ndarray of float64, same shape
        The DCT coefficients the levels quantize.
    steps : ndarray of float64, shape (n*n,)
        The step of each channel.
    block_size : int
        n.
    lam : float or ndarray of float64, shape (n*n,)
        Lambda, in squared coefficient units per bit (per channel, or one for all).
    keep : int, optional
        The zigzag channels coded (default all).
    offsets : ndarray, shape (2, n*n), optional
        The reconstruction offsets of levels 1 and >= 2 (default 0).
    passes : int, optional
        Rounds of counting the contexts' bits and deciding again with them.

    Returns
    -------
    changed : int
        How many levels the last round changed.
    """
    n = int(block_size)
    keep = n * n if keep is None else int(keep)
    zz, cls, left_ch, up_ch, n_classes = _tables(n, keep)
    lam = np.broadcast_to(np.asarray(lam, np.float64), (n * n,)).copy()
    offsets = np.zeros((2, n * n)) if offsets is None else np.ascontiguousarray(offsets, np.float64)
    steps = np.ascontiguousarray(steps, np.float64)
    coefficients = np.ascontiguousarray(coefficients, np.float64)
    changed = 0
    source = levels.copy() if passes > 1 else levels
    for round_ in range(passes):
        cost = _bits_of(_count(levels, zz, cls, left_ch, up_ch, n_classes))
        if round_ > 0:
            levels[...] = source
        changed = _decide(levels, coefficients, steps, offsets, lam, zz, cls, left_ch, up_ch, n_classes, cost)
    return changed


def rdoq_within(plain: np.ndarray, coefficients: np.ndarray, steps: np.ndarray, block_size: int, lam, *, keep: int,
                fit, error, iterations: int = 6):
    """RDOQ whose error stays within that of ``plain`` decoded with no offsets: the largest lambda that keeps it.

    ``lam`` is the largest lambda tried; a bisection over its binary logarithm, down
    to ``lam / 2**8``, keeps the smallest file whose ``error(levels, offsets)`` (the
    decoded pixels' squared error) is at most ``error(plain, 0)``, less :data:`MARGIN_DB`
    (JPEG's integer DCT lands within a few hundredths of a dB of plain rounding's
    float one, on either side). Where no trial stays within it, ``plain`` is kept. Every trial takes
    the better of the fitted offsets (``fit(levels)``) and none (where clipping at the
    data range already corrects an overshoot, as at the edges of line art, shrinking
    the levels costs error instead of saving it).

    Returns
    -------
    levels, offsets : the chosen levels (a new array) and their (2, n*n) offsets
    """
    zero = np.zeros((2, steps.size))
    budget = error(plain, zero) * 10.0 ** (-MARGIN_DB / 10)
    best = (plain, zero)
    fitted = fit(plain)
    if error(plain, fitted) <= budget:
        best = (plain, fitted)
    lam = np.broadcast_to(np.asarray(lam, np.float64), steps.shape)
    low, high = -8.0, 0.0
    for _ in range(iterations):
        mid = 0.5 * (low + high)
        trial = plain.copy()
        rdoq(trial, coefficients, steps, block_size, lam * 2.0**mid, keep=keep, offsets=best[1])
        offsets = fit(trial)
        spent = error(trial, offsets)
        if spent > budget:
            offsets = zero
            spent = error(trial, zero)
        if spent <= budget:
            low, best = mid, (trial, offsets)
        else:
            high = mid
    return best
