"""scikit-image's SSIM map in compiled loops: the same float64 numbers, without scipy.ndimage.

:func:`ssim_map` is ``skimage.metrics.structural_similarity(x, y, win_size=w,
data_range=R, full=True)[1]`` (uniform window, K1 = 0.01, K2 = 0.03, sample
covariance), operation for operation: its five window means are
``scipy.ndimage.uniform_filter``'s (a running sum down the columns, then along the
rows, each edge reflected, ``sum += new - old`` and ``mean = sum / w`` in that
order), and the map is computed from them in scikit-image's order. The tests compare
both with scipy's and scikit-image's functions to the last bit.

Why: numba is loaded anyway for the codec's engine, and scipy.ndimage took 0.4 s to
import in every ``--jobs`` run; the five means and the map in one loop make none of
the fifteen full-size temporaries of the numpy expression (docs/performance.md).
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


@njit(cache=True)
def _mean_down(a, size, out):
    """scipy's uniform_filter1d(a, size, axis=0), column by column, for all columns at once."""
    rows, cols = a.shape
    before = size // 2
    after = size - before - 1
    total = np.zeros(cols)
    for k in range(-before, after + 1):
        r = _reflect(k, rows)
        for j in range(cols):
            total[j] += a[r, j]
    for j in range(cols):
        out[0, j] = total[j] / size
    for i in range(1, rows):
        new = _reflect(i + after, rows)
        old = _reflect(i - before - 1, rows)
        for j in range(cols):
            total[j] += a[new, j] - a[old, j]
            out[i, j] = total[j] / size


@njit(cache=True)
def _mean_across(a, size, out):
    """scipy's uniform_filter1d(a, size, axis=1), row by row."""
    rows, cols = a.shape
    before = size // 2
    after = size - before - 1
    for i in range(rows):
        total = 0.0
        for k in range(-before, after + 1):
            total += a[i, _reflect(k, cols)]
        out[i, 0] = total / size
        for j in range(1, cols):
            new, old = j + after, j - before - 1
            if new < cols and old >= 0:
                total += a[i, new] - a[i, old]
            else:
                total += a[i, _reflect(new, cols)] - a[i, _reflect(old, cols)]
            out[i, j] = total / size


@njit(cache=True)
def _window_mean(a, size, scratch, out):
    """scipy's uniform_filter(a, size): axis 0, then axis 1."""
    _mean_down(a, size, scratch)
    _mean_across(scratch, size, out)


@njit(cache=True, nogil=True)
def _ssim_map(x, y, size, c1, c2):
    rows, cols = x.shape
    scratch = np.empty((rows, cols))
    ux, uy = np.empty((rows, cols)), np.empty((rows, cols))
    uxx, uyy, uxy = np.empty((rows, cols)), np.empty((rows, cols)), np.empty((rows, cols))
    _window_mean(x, size, scratch, ux)
    _window_mean(y, size, scratch, uy)
    _window_mean(x * x, size, scratch, uxx)
    _window_mean(y * y, size, scratch, uyy)
    _window_mean(x * y, size, scratch, uxy)
    points = size * size
    cov_norm = points / (points - 1)
    out = np.empty((rows, cols))
    for i in range(rows):
        for j in range(cols):
            mx, my = ux[i, j], uy[i, j]
            vx = cov_norm * (uxx[i, j] - mx * mx)
            vy = cov_norm * (uyy[i, j] - my * my)
            vxy = cov_norm * (uxy[i, j] - mx * my)
            a1 = 2 * mx * my + c1
            a2 = 2 * vxy + c2
            b1 = mx * mx + my * my + c1
            b2 = vx + vy + c2
            out[i, j] = (a1 * a2) / (b1 * b2)
    return out


def ssim_map(x, y, data_range: float, window: int, k1: float, k2: float) -> np.ndarray:
    """scikit-image's SSIM map of two float64 images (uniform ``window`` x ``window`` filter)."""
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    return _ssim_map(np.ascontiguousarray(x, dtype=np.float64), np.ascontiguousarray(y, dtype=np.float64),
                     window, float(c1), float(c2))
