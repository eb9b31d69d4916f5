"""Independent references, tolerances and sample paths for the test suite.

The references here are deliberately written without any dctconv code: a per-block
``scipy.fft.dctn``, a textbook O(N^2) loop over the cosine formula, and a literal
strided correlation built on ``scipy.signal.correlate2d``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import scipy.fft
import scipy.signal

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_images"
SAMPLE_NAMES = ["camera.png", "coins.png", "text.png", "astronaut.png"]

#: Absolute tolerance of a comparison, keyed by the dtype computed in, for values of
#: order 1 (scale it by the data's magnitude). float64: a few hundred ulps of 2.2e-16
#: after n*n-term sums; float32: the same for eps 1.2e-7.
TOLERANCE = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 5e-5}


def tolerance(dtype, magnitude: float = 1.0) -> float:
    """Absolute tolerance for results of ``dtype`` whose values reach ``magnitude``."""
    return TOLERANCE[np.dtype(dtype)] * max(1.0, float(magnitude))


def pad_edge(image: np.ndarray, n: int) -> np.ndarray:
    """Pad bottom/right by repeating edge pixels up to multiples of n."""
    h, w = image.shape
    return np.pad(image, ((0, (-h) % n), (0, (-w) % n)), mode="edge")


def reference_blockwise_dct(image: np.ndarray, n: int) -> np.ndarray:
    """(n*n, rows, cols) maps by calling scipy.fft.dctn on every block, one at a time."""
    padded = pad_edge(np.asarray(image, dtype=np.float64), n)
    rows, cols = padded.shape[0] // n, padded.shape[1] // n
    out = np.empty((n * n, rows, cols))
    for r in range(rows):
        for s in range(cols):
            block = scipy.fft.dctn(padded[r * n : (r + 1) * n, s * n : (s + 1) * n], norm="ortho")
            out[:, r, s] = block.reshape(-1)
    return out


def reference_blockwise_idct(coefficients: np.ndarray, shape) -> np.ndarray:
    """Image from maps by scipy.fft.idctn on every block, cropped to ``shape``."""
    nn, rows, cols = coefficients.shape
    n = math.isqrt(nn)
    out = np.empty((rows * n, cols * n))
    for r in range(rows):
        for s in range(cols):
            block = coefficients[:, r, s].reshape(n, n)
            out[r * n : (r + 1) * n, s * n : (s + 1) * n] = scipy.fft.idctn(block, norm="ortho")
    return out[: shape[0], : shape[1]]


def textbook_kernel(n: int, x: int, y: int) -> np.ndarray:
    """K[x,y](i,j) straight from the formula, with explicit loops."""
    a = lambda k: math.sqrt(1.0 / n) if k == 0 else math.sqrt(2.0 / n)  # noqa: E731
    k = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            k[i, j] = a(x) * a(y) * math.cos(math.pi * (i + 0.5) * x / n) * math.cos(
                math.pi * (j + 0.5) * y / n
            )
    return k


def reference_strided_correlation(image: np.ndarray, n: int) -> np.ndarray:
    """Slide each textbook kernel over the padded image (scipy.signal), keep every n-th output."""
    padded = pad_edge(np.asarray(image, dtype=np.float64), n)
    maps = []
    for x in range(n):
        for y in range(n):
            full = scipy.signal.correlate2d(padded, textbook_kernel(n, x, y), mode="valid")
            maps.append(full[::n, ::n])
    return np.stack(maps)


def reference_bd_rate(anchor, test) -> float:
    """BD-rate in percent of ``test`` against ``anchor``: each a list of (bits per pixel, quality)
    with both increasing. log10 rate interpolated against quality with scipy's Akima interpolator,
    the difference averaged over the common quality range by the trapezoid rule on a fine grid
    (not the ``bjontegaard`` package the library uses)."""
    import scipy.interpolate

    (ra, qa), (rt, qt) = (np.array(anchor, dtype=float).T, np.array(test, dtype=float).T)
    low, high = max(qa.min(), qt.min()), min(qa.max(), qt.max())
    grid = np.linspace(low, high, 200_001)
    log_anchor = scipy.interpolate.Akima1DInterpolator(qa, np.log10(ra))(grid)
    log_test = scipy.interpolate.Akima1DInterpolator(qt, np.log10(rt))(grid)
    mean_difference = np.trapezoid(log_test - log_anchor, grid) / (high - low)
    return float((10 ** mean_difference - 1) * 100)


def rate_envelope(points, measure: str) -> list[tuple[float, float]]:
    """(bits per pixel, quality) of the points no cheaper-or-equal point beats or equals in quality.

    ``points`` are dicts with ``bits_per_pixel`` and ``measure``; None values are left out.
    """
    best = []
    for point in sorted(points, key=lambda p: (p["bits_per_pixel"], -(p[measure] or 0))):
        value = point[measure]
        if value is None or (best and value <= best[-1][1]):
            continue
        if best and point["bits_per_pixel"] == best[-1][0]:
            best.pop()
        best.append((point["bits_per_pixel"], value))
    return best
