"""Quantization steps of the codec: libjpeg's quality scaling over a table per block size.

Each of the n*n frequencies of a block has its own step. ``quality`` picks them as
libjpeg does for JPEG: a base table scaled by a percentage that depends on the
quality, rounded and clamped to 1 .. 255. For 8 x 8 blocks the base table is JPEG's
luminance table, so the steps are exactly the ones libjpeg (and Pillow) write into a
JPEG of the same quality. A flat ``step`` gives every frequency the same step, as the
old zonal ``_compressed.npz`` files have it.
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidCompressionError
from .._validation import check_block_size

#: ITU-T T.81 (JPEG) Annex K, Table K.1: the luminance quantization table, rows are
#: vertical frequencies, columns horizontal ones (natural order, not zigzag).
JPEG_LUMINANCE = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    dtype=np.int64,
)

#: Default quality of :func:`dctconv.encode` when neither quality nor step is given.
DEFAULT_QUALITY = 75

#: Exponent of the flattening of JPEG's table for block sizes other than 8 (see
#: :func:`base_table`). 1 would keep JPEG's perceptual weighting, 0 makes every
#: frequency's step the DC step (best for PSNR at high rates). Tuned for BD-rate
#: (PSNR) on scikit-image's bundled photos, not on sample_images/ (docs/codec.md).
FLATTENING = 0.25

#: Dead zone of the AC rounding with ``quality``, in 1/256 of a step: levels are
#: ``floor(|c|/step + 1/2 - DEAD_ZONE/256)``. Tuned with the fitted reconstruction
#: offsets on scikit-image's photos (docs/codec.md); 0 would be plain rounding.
DEAD_ZONE = 13

#: Lambda of the rate-distortion optimized quantization (:mod:`dctconv.codec._rdoq`) in
#: squared DC steps per bit: one lambda for every channel (the same slope everywhere is
#: what minimizes the summed error), ``RDOQ_LAMBDA * step[0]**2``; 0 turns RDOQ off.
#: Tuned for BD-rate (PSNR) at n = 4 on scikit-image's photos, not on sample_images/
#: (docs/codec.md).
RDOQ_LAMBDA = 0.15

#: At n = 8 (JPEG's tables) the lambda is searched (:func:`dctconv.codec._rdoq.rdoq_within`):
#: this is its largest c, in the same units.
RDOQ_LAMBDA_N8 = 2.0


def rdoq_lambda(steps, block_size: int):
    """Lambda per channel of :func:`dctconv.codec._rdoq.rdoq` for these steps (at n = 8 the largest
    one tried), or None (no RDOQ)."""
    if RDOQ_LAMBDA <= 0:
        return None
    steps = np.asarray(steps, np.float64)
    return np.full(steps.shape, (RDOQ_LAMBDA_N8 if block_size == 8 else RDOQ_LAMBDA) * steps[0] ** 2)


#: The pixel range the steps of ``quality`` are written for: 8-bit images.
REFERENCE_RANGE = 255.0


def check_quality(quality) -> int:
    """Return ``quality`` as an int from 1 to 100, or raise InvalidCompressionError."""
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 100:
        raise InvalidCompressionError(f"quality must be a whole number from 1 to 100, got {quality!r}")
    return int(quality)


def quality_scale(quality: int) -> int:
    """libjpeg's scaling percentage: 5000 / Q below 50, else 200 - 2Q (``jpeg_quality_scaling``).

    Examples
    --------
    >>> from dctconv.codec._quantize import quality_scale
    >>> quality_scale(10), quality_scale(50), quality_scale(75), quality_scale(100)
    (500, 100, 50, 0)
    """
    quality = check_quality(quality)
    return 5000 // quality if quality < 50 else 200 - 2 * quality


def scale_table(base, quality: int) -> np.ndarray:
    """``(base * scale + 50) // 100`` clamped to 1 .. 255, as libjpeg's baseline tables are.

    Parameters
    ----------
    base : array_like of int
        Base table (any shape), values from 1 to 255.
    quality : int
        1 to 100.

    Returns
    -------
    table : ndarray of int64, shape as ``base``

    References
    ----------
    .. [1] Independent JPEG Group, libjpeg 6b, ``jcparam.c``: ``jpeg_add_quant_table``
       with ``force_baseline`` TRUE.

    Examples
    --------
    >>> from dctconv.codec._quantize import JPEG_LUMINANCE, scale_table
    >>> scale_table(JPEG_LUMINANCE, 50)[0, :4].tolist()
    [16, 11, 10, 16]
    >>> scale_table(JPEG_LUMINANCE, 90)[0, :4].tolist()
    [3, 2, 2, 3]
    """
    base = np.asarray(base, dtype=np.int64)
    return np.clip((base * quality_scale(quality) + 50) // 100, 1, 255)


def base_table(block_size: int, *, flattened: bool = False) -> np.ndarray:
    r"""The base step table of n x n blocks (quality 50), in natural order (row x, column y).

    For n = 8 it is :data:`JPEG_LUMINANCE`. For other n, frequency (x, y) of an n x n
    block is :math:`(x / 2n, y / 2n)` cycles per pixel; JPEG's table is read at the
    same spatial frequency (its entry (u, v) sits at (u / 16, v / 16) cycles per
    pixel), bilinearly interpolated and held constant beyond its highest frequency
    7/16, and then flattened towards its DC entry:

    .. math::

        b_n(x, y) = \mathrm{round}\left(16 \left(\frac{T(8x/n,\ 8y/n)}{16}\right)^{\alpha}\right),
        \qquad \alpha = \mathtt{FLATTENING}

    JPEG's table weights errors by how visible they are; PSNR counts every frequency
    alike, and on the tuning images a flatter table won at equal PSNR. With ``flattened``
    (block sizes chosen per region: every size's steps by one rule) n = 8 takes this
    rule too instead of JPEG's table.

    Parameters
    ----------
    block_size : int
        n, from 2 to 64.

    Returns
    -------
    table : ndarray of int64, shape (n, n)

    Examples
    --------
    >>> from dctconv.codec._quantize import base_table
    >>> base_table(8)[0, :3].tolist()
    [16, 11, 10]
    >>> base_table(2).tolist()
    [[16, 18], [16, 23]]
    """
    n = check_block_size(block_size)
    if n == 8 and not flattened:
        return JPEG_LUMINANCE.copy()
    position = np.minimum(np.arange(n) * 8.0 / n, 7.0)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, 7)
    frac = position - low
    table = JPEG_LUMINANCE.astype(np.float64)
    # Bilinear interpolation: first along rows (x), then along columns (y).
    rows = table[low] * (1 - frac)[:, None] + table[high] * frac[:, None]
    sampled = rows[:, low] * (1 - frac)[None, :] + rows[:, high] * frac[None, :]
    dc = JPEG_LUMINANCE[0, 0]
    return np.clip(np.rint(dc * (sampled / dc) ** FLATTENING), 1, 255).astype(np.int64)


def range_factor(dtype) -> float:
    """How much larger the steps of ``quality`` are for pixels of ``dtype`` than for 8-bit ones.

    The data range of the pixel type over 255: 1 for uint8, 65535/255 for uint16,
    (2**32 - 1)/255 for int32 and 1/255 for float (whose range is taken as 0 .. 1,
    as for PSNR). A quality then means the same relative error for every type.
    """
    dtype = np.dtype(dtype)
    ranges = {
        np.dtype(np.uint8): 255.0,
        np.dtype(np.uint16): 65535.0,
        np.dtype(np.int32): float(2**32 - 1),
        np.dtype(np.float32): 1.0,
    }
    if dtype not in ranges:
        raise InvalidCompressionError(f"no data range for pixels of type {dtype}")
    return ranges[dtype] / REFERENCE_RANGE


def step_table(block_size: int, *, quality: int | None = None, step: float | None = None, dtype=np.uint8,
               data_range=None, flattened: bool = False) -> np.ndarray:
    """Steps of the n*n channels (channel ``x*n + y`` is frequency (x, y)), as float64.

    Exactly one of ``quality`` and ``step`` is given. ``quality``:
    ``scale_table(base_table(n), quality) * factor`` where ``factor`` is
    ``(high - low) / 255`` for a ``data_range`` (low, high), else ``range_factor(dtype)``
    (the container's range: files before version 4), ``flattened`` as in :func:`base_table`; ``step``: the same
    step for every channel, in coefficient units whatever the dtype (``step == 0``
    means no quantization; the table is then all zeros).

    Examples
    --------
    >>> import numpy as np
    >>> from dctconv.codec._quantize import step_table
    >>> step_table(8, quality=75)[:4].tolist()
    [8.0, 6.0, 5.0, 8.0]
    >>> step_table(8, quality=75, dtype=np.uint16)[0]
    np.float64(2056.0)
    >>> step_table(2, step=3.0).tolist()
    [3.0, 3.0, 3.0, 3.0]
    >>> step_table(8, quality=75, data_range=(0, 510))[0]
    np.float64(16.0)
    """
    n = check_block_size(block_size)
    if (quality is None) == (step is None):
        raise InvalidCompressionError("give either quality or step, not both and not neither")
    if step is not None:
        return np.full(n * n, float(step))
    table = scale_table(base_table(n, flattened=flattened), check_quality(quality)).astype(np.float64)
    if data_range is not None:
        low, high = data_range
        return table.reshape(-1) * ((float(high) - float(low)) / REFERENCE_RANGE)
    return table.reshape(-1) * range_factor(dtype)
