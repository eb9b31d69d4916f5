"""scikit-image's SSIM map in compiled loops: the same float64 numbers, without scipy.ndimage.

:func:`ssim_map` is ``skimage.metrics.structural_similarity(x, y, win_size=w,
data_range=R, full=True)[1]`` (uniform window, K1 = 0.01, K2 = 0.03, sample
covariance), operation for operation: its five window means are
``scipy.ndimage.uniform_filter``'s (a running sum down the columns, then along the
rows, each edge reflected, ``sum += new - old`` and ``mean = sum / w`` in that
order), and the map is computed from them in scikit-image's order. The tests compare
it with scikit-image's function to the last bit.

The map is made one row at a time (:func:`ssim_rows`): the running sums down the
columns are kept for every column, and each row's means along it, its map and the
row's sum follow, so the memory is a few rows whatever the image, and the pixels are
read in their own type (no float64 copy of either image).

Why: numba is loaded anyway for the codec's engine, and scipy.ndimage took 0.4 s to
import in every ``--jobs`` run; the numpy expression makes fifteen temporaries as large
as the image, each of which costs its first touch of fresh memory (docs/performance.md).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _reflect(k, n):
    """Index ``k`` of a line of ``n`` reflected at its edges as scipy's 'reflect' mode does (d c b a | a b c d)."""
    period = 2 * n
    k %= period
    return period - 1 - k if k >= n else k


@njit(cache=True, nogil=True)
def _ssim_rows(x, y, size, c1, c2, first, last, sums, full):
    """Rows ``first`` to ``last`` of scikit-image's SSIM map of ``x`` and ``y``, one row at a time.

    The five window means are :func:`_window_mean`'s, computed row by row: running
    column sums kept for every column (the down pass), and each row's means along it
    (the across pass), in scipy's order, so that the map is the same to the last bit.
    ``sums[i - first]`` is the sum of row i of the map over the columns whose windows
    lie in the image (``pad .. cols - pad``), compensated (Kahan); when ``full`` has
    rows, row i of the map is written in ``full[i - first]``. Memory: a few rows.
    """
    rows, cols = x.shape
    before = size // 2
    after = size - before - 1
    pad = (size - 1) // 2
    points = size * size
    cov_norm = points / (points - 1)
    tx, ty, txx, tyy, txy = np.zeros(cols), np.zeros(cols), np.zeros(cols), np.zeros(cols), np.zeros(cols)
    dx, dy, dxx, dyy, dxy = np.empty(cols), np.empty(cols), np.empty(cols), np.empty(cols), np.empty(cols)
    write = full.shape[0] > 0
    for i in range(last):
        if i == 0:
            for k in range(-before, after + 1):
                r = _reflect(k, rows)
                for j in range(cols):
                    a, b = np.float64(x[r, j]), np.float64(y[r, j])
                    tx[j] += a
                    ty[j] += b
                    txx[j] += a * a
                    tyy[j] += b * b
                    txy[j] += a * b
        else:
            new = _reflect(i + after, rows)
            old = _reflect(i - before - 1, rows)
            for j in range(cols):
                a, b = np.float64(x[new, j]), np.float64(y[new, j])
                p, q = np.float64(x[old, j]), np.float64(y[old, j])
                tx[j] += a - p
                ty[j] += b - q
                txx[j] += a * a - p * p
                tyy[j] += b * b - q * q
                txy[j] += a * b - p * q
        if i < first:
            continue
        for j in range(cols):
            dx[j] = tx[j] / size
            dy[j] = ty[j] / size
            dxx[j] = txx[j] / size
            dyy[j] = tyy[j] / size
            dxy[j] = txy[j] / size
        total = 0.0
        carry = 0.0
        sx = sy = sxx = syy = sxy = 0.0
        for k in range(-before, after + 1):
            c = _reflect(k, cols)
            sx += dx[c]
            sy += dy[c]
            sxx += dxx[c]
            syy += dyy[c]
            sxy += dxy[c]
        for j in range(cols):
            if j > 0:
                new, old = j + after, j - before - 1
                if new >= cols or old < 0:
                    new, old = _reflect(new, cols), _reflect(old, cols)
                sx += dx[new] - dx[old]
                sy += dy[new] - dy[old]
                sxx += dxx[new] - dxx[old]
                syy += dyy[new] - dyy[old]
                sxy += dxy[new] - dxy[old]
            mx, my = sx / size, sy / size
            vx = cov_norm * (sxx / size - mx * mx)
            vy = cov_norm * (syy / size - my * my)
            vxy = cov_norm * (sxy / size - mx * my)
            a1 = 2 * mx * my + c1
            a2 = 2 * vxy + c2
            b1 = mx * mx + my * my + c1
            b2 = vx + vy + c2
            value = (a1 * a2) / (b1 * b2)
            if write:
                full[i - first, j] = value
            if pad <= j < cols - pad:
                term = value - carry
                step = total + term
                carry = (step - total) - term
                total = step
        sums[i - first] = total


def ssim_rows(x, y, data_range: float, window: int, k1: float, k2: float, first: int, last: int,
              *, full: bool = False):
    """Rows ``first`` to ``last`` of scikit-image's SSIM map of two images (uniform ``window`` x ``window``
    filter, edges reflected): the sum of each row over the columns whose windows lie in the image, and
    (with ``full``) the rows themselves, else None. Pixels of any gray dtype are read as float64."""
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    x, y = _pixels(x), _pixels(y)
    if x.dtype != y.dtype:
        x, y = x.astype(np.float64), y.astype(np.float64)
    sums = np.empty(last - first)
    rows = np.empty((last - first, x.shape[1]) if full else (0, 0))
    _ssim_rows(x, y, window, float(c1), float(c2), first, last, sums, rows)
    return sums, (rows if full else None)


#: The pixel types the compiled loop reads as they are; others are converted to float64.
_READ_AS_IS = (np.uint8, np.uint16, np.int32, np.float32, np.float64)


def _pixels(a) -> np.ndarray:
    """``a`` as the compiled loop reads it: C-contiguous, and read-only (a view), so that images read
    from files (read-only) and decoded ones (writable) share one compiled version per type."""
    a = np.asarray(a)
    a = np.ascontiguousarray(a if a.dtype in _READ_AS_IS else a.astype(np.float64)).view()
    a.flags.writeable = False
    return a


def ssim_map(x, y, data_range: float, window: int, k1: float, k2: float) -> np.ndarray:
    """scikit-image's SSIM map of two images (uniform ``window`` x ``window`` filter), whole."""
    return ssim_rows(x, y, data_range, window, k1, k2, 0, np.shape(x)[0], full=True)[1]
