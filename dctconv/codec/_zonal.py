"""Zonal compression of the block DCT: keep the lowest frequencies, quantize, threshold.

Every n x n block keeps the same K coefficients, the first K of the JPEG zigzag
order; the kept ones are quantized to integer multiples of a step and may also be
zeroed below a threshold. The result is stored with
:func:`dctconv.io._npz.save_compressed` and decoded by
:func:`dctconv.io._npz.load_coefficients`.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np

from ..io._npz import CoefficientHeader, save_compressed
from ..errors import InvalidCompressionError
from ..kernels import blocks_shape
from ..limits import DEFAULT_BLOCK_SIZE
from ..transform import forward, inverse
from .._validation import check_block_size, check_image

#: Fraction of a block's coefficients the default K aims at: 6 of 16 for 4 x 4 blocks.
DEFAULT_KEEP_FRACTION = 3 / 8

_INTEGER_DTYPES = tuple(
    np.dtype(t) for t in (np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.uint64, np.int64)
)


def zigzag_order(block_size: int = DEFAULT_BLOCK_SIZE) -> np.ndarray:
    """Channel indices of an n x n block in JPEG zigzag order, lowest frequencies first.

    The zigzag visits the anti-diagonals ``s = x + y = 0, 1, ..., 2n - 2`` in turn,
    where (x, y) is (row frequency, column frequency). On an even diagonal it goes
    from (s, 0) up to (0, s), on an odd one from (0, s) down to (s, 0); cells
    outside the block are skipped. Frequency (x, y) is channel ``x*n + y`` of
    :func:`dctconv.forward`.

    Parameters
    ----------
    block_size : int, optional
        n, from 2 to 64. Default 4.

    Returns
    -------
    order : ndarray of int64, shape (n*n,)
        A permutation of ``0 .. n*n - 1``; ``order[k]`` is the k-th channel visited.

    References
    ----------
    .. [1] ITU-T T.81 (JPEG), 1992, Figure 5 and Figure A.6 (the 8 x 8 zigzag).

    Examples
    --------
    >>> from dctconv.codec._zonal import zigzag_order
    >>> [divmod(int(c), 4) for c in zigzag_order(4)[:7]]
    [(0, 0), (0, 1), (1, 0), (2, 0), (1, 1), (0, 2), (0, 3)]
    """
    n = check_block_size(block_size)
    order = []
    for s in range(2 * n - 1):
        rows = range(min(s, n - 1), max(0, s - n + 1) - 1, -1)  # x from high to low
        if s % 2:
            rows = reversed(rows)
        order.extend(x * n + (s - x) for x in rows)
    return np.array(order, dtype=np.int64)


def check_keep(block_size: int, keep) -> int:
    """Return ``keep`` as an int if it is from 1 to n*n, or raise InvalidCompressionError."""
    n = check_block_size(block_size)
    if isinstance(keep, bool) or not isinstance(keep, (int, np.integer)) or not 1 <= keep <= n * n:
        raise InvalidCompressionError(
            f"keep must be an integer from 1 to {n * n} for block size {n}, got {keep!r}"
        )
    return int(keep)


def keep_mask(block_size: int, keep: int) -> np.ndarray:
    """Boolean mask of the ``keep`` lowest-frequency channels in zigzag order.

    Parameters
    ----------
    block_size : int
        n, from 2 to 64.
    keep : int
        K, from 1 to n*n. The DC channel (0) is always among them.

    Returns
    -------
    mask : ndarray of bool, shape (n*n,)
        True for the first K channels of :func:`zigzag_order`.

    Examples
    --------
    >>> from dctconv.codec._zonal import keep_mask
    >>> keep_mask(4, 4).reshape(4, 4).astype(int)
    array([[1, 1, 0, 0],
           [1, 0, 0, 0],
           [1, 0, 0, 0],
           [0, 0, 0, 0]])
    """
    keep = check_keep(block_size, keep)
    mask = np.zeros(block_size * block_size, dtype=bool)
    mask[zigzag_order(block_size)[:keep]] = True
    return mask


def diagonal_counts(block_size: int) -> list[int]:
    """Number of coefficients in the lowest d anti-diagonals, for d = 1 .. 2n - 1."""
    n = check_block_size(block_size)
    sizes = [min(s, 2 * n - 2 - s) + 1 for s in range(2 * n - 1)]
    return [sum(sizes[: d + 1]) for d in range(2 * n - 1)]


def default_keep(block_size: int = DEFAULT_BLOCK_SIZE) -> int:
    """Default K: the whole lowest anti-diagonals whose count is nearest to 3/8 of n*n.

    For 4 x 4 blocks that is the three lowest diagonals, 1 + 2 + 3 = 6 of 16
    coefficients (the issue's default). For other sizes the same fraction is aimed
    at, rounded to whole diagonals so that rows and columns are treated alike (a
    tie goes to the larger count):

    ====  ==  ==  ==  ==  ==  ===  ===
    n     2   3   4   5   8   16   32
    K     1   3   6   10  21  91   378
    ====  ==  ==  ==  ==  ==  ===  ===

    Examples
    --------
    >>> from dctconv.codec._zonal import default_keep
    >>> default_keep(4), default_keep(8)
    (6, 21)
    """
    n = check_block_size(block_size)
    target = DEFAULT_KEEP_FRACTION * n * n
    return min(diagonal_counts(n), key=lambda count: (abs(count - target), -count))


def smallest_integer_dtype(low: int, high: int) -> np.dtype:
    """The integer dtype with the fewest bytes that holds every value from ``low`` to ``high``.

    Unsigned types come first at equal size, so non-negative values get uint8 rather
    than int16 when they fit.
    """
    for dtype in _INTEGER_DTYPES:
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return dtype
    raise InvalidCompressionError(
        f"quantization levels from {low} to {high} do not fit in 64-bit integers; use a larger step"
    )


def _check_finite_nonnegative(value, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidCompressionError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise InvalidCompressionError(f"{name} must be a finite number >= 0, got {value!r}")
    return number + 0.0  # -0.0 passes the test above; + 0.0 makes it 0.0, so it never shows as "-0"


def check_step(step) -> float:
    """Return ``step`` as a float if it is finite and >= 0, or raise InvalidCompressionError."""
    return _check_finite_nonnegative(step, "step")


def check_threshold(threshold) -> float:
    """Return ``threshold`` as a float if it is finite and >= 0, or raise InvalidCompressionError."""
    return _check_finite_nonnegative(threshold, "threshold")


def quantize(coefficients, step: float) -> np.ndarray:
    """Quantization levels ``rint(c / step)`` in the smallest integer dtype that holds them.

    ``step == 0`` means no quantization: the coefficients are returned as float64.
    Ties go to the even level, as :func:`numpy.rint` does. Decoding is
    ``levels * step`` (:func:`dequantize`), off by at most ``step / 2``.

    Parameters
    ----------
    coefficients : array_like of real numbers
    step : float
        Q >= 0, finite.

    Returns
    -------
    levels : ndarray
        Integers (see :func:`smallest_integer_dtype`) when ``step > 0``, float64 when 0.

    Raises
    ------
    InvalidCompressionError
        If ``step`` is negative or not finite, or a level does not fit in 64 bits.

    Examples
    --------
    >>> import numpy as np
    >>> from dctconv.codec._zonal import quantize
    >>> quantize(np.array([-3.2, 0.5, 1.5, 10.0]), 2.0)
    array([-2,  0,  1,  5], dtype=int8)
    """
    step = check_step(step)
    coefficients = np.asarray(coefficients, dtype=np.float64)
    if step == 0:
        return coefficients.copy()
    with np.errstate(over="ignore", invalid="ignore"):
        levels = np.rint(coefficients / step)
    if levels.size == 0:
        return levels.astype(np.int8)
    low, high = levels.min(), levels.max()
    # int64 limits are not exact in float64; 2**63 is the first float past them.
    if not (np.isfinite(low) and np.isfinite(high)) or low < -(2.0**63) or high >= 2.0**63:
        raise InvalidCompressionError(
            f"quantization levels reach {max(abs(low), abs(high)):g}, beyond 64-bit integers; "
            "use a larger step"
        )
    return levels.astype(smallest_integer_dtype(int(low), int(high)))


def dequantize(levels, step: float) -> np.ndarray:
    """Coefficients from levels: ``levels * step`` in float64 (``levels`` as is when step is 0).

    This is the same product :func:`dctconv.io._npz.load_coefficients` forms,
    so a file decodes to exactly these values.
    """
    step = check_step(step)
    levels = np.asarray(levels)
    if step > 0:
        return levels * step
    return levels.astype(np.float64)


def threshold_coefficients(coefficients, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Zero every coefficient with ``|c| < threshold``, except the DC channel.

    Parameters
    ----------
    coefficients : array_like, shape (n*n, rows, columns)
        Coefficient maps; channel 0 (DC, the block mean times n) is never zeroed,
        so every block keeps at least its mean.
    threshold : float
        T >= 0; 0 changes nothing.

    Returns
    -------
    thresholded : ndarray of float64, shape as ``coefficients``
    survivors : ndarray of int64, shape (channels,)
        Per channel, how many coefficients the threshold left alone: all of channel
        0, and in the others those with ``|c| >= T`` (all of them when ``T == 0``).

    Examples
    --------
    >>> import numpy as np
    >>> from dctconv.codec._zonal import threshold_coefficients
    >>> c = np.array([0.5, -3.0, 1.0, 2.0, -0.5]).reshape(5, 1, 1)
    >>> thresholded, survivors = threshold_coefficients(c, 1.0)
    >>> thresholded.ravel().tolist(), survivors.tolist()
    ([0.5, -3.0, 1.0, 2.0, 0.0], [1, 1, 1, 1, 0])
    """
    threshold = check_threshold(threshold)
    out = np.array(coefficients, dtype=np.float64)
    if out.ndim != 3:
        raise InvalidCompressionError(f"coefficients must be 3-D (channels, rows, columns), got {out.shape}")
    per_channel = out.shape[1] * out.shape[2]
    if threshold == 0:
        return out, np.full(out.shape[0], per_channel, dtype=np.int64)
    small = np.abs(out) < threshold
    small[0] = False
    out[small] = 0.0
    return out, per_channel - np.count_nonzero(small, axis=(1, 2)).astype(np.int64)


@dataclass(frozen=True)
class Compressed:
    """A compressed image: what the file stores, and what decoding it gives."""

    levels: np.ndarray
    """(K, rows, columns): the kept channels, as integers (``step > 0``) or float64 (``step == 0``)."""
    channel_mask: np.ndarray
    """(n*n,) bool: which channels are kept; ``levels`` holds them in increasing channel order."""
    block_size: int
    step: float
    threshold: float
    image_shape: tuple[int, int]
    coefficients: np.ndarray
    """(n*n, rows, columns) float64: the decoded coefficient maps (zeros where not kept)."""
    reconstruction: np.ndarray
    """(H, W) float64: the inverse transform of ``coefficients``, before rounding or clipping."""
    survivors: np.ndarray
    """(n*n,) int: per channel, the coefficients kept by the mask and not zeroed by the threshold."""

    @property
    def keep(self) -> int:
        """K, the number of channels kept per block."""
        return int(self.channel_mask.sum())

    @property
    def kept_fraction(self) -> float:
        """K / n*n."""
        return self.keep / self.channel_mask.size

    @property
    def surviving_fraction(self) -> float:
        """Survivors over all coefficients (n*n per block); equals ``kept_fraction`` when T = 0."""
        return int(self.survivors.sum()) / (self.channel_mask.size * self.levels.shape[1] * self.levels.shape[2])

    @property
    def nonzero_fraction(self) -> float:
        """Nonzero stored values over all coefficients: what is left after quantization too."""
        return int(np.count_nonzero(self.levels)) / (
            self.channel_mask.size * self.levels.shape[1] * self.levels.shape[2]
        )

    def header(self, image_mode: str, source: str = "") -> CoefficientHeader:
        """The coefficient-file header for this result."""
        return CoefficientHeader(
            block_size=self.block_size,
            image_shape=tuple(self.image_shape),
            image_mode=image_mode,
            source=source,
            kind="compressed",
            step=self.step,
            threshold=self.threshold,
        )

    def save(self, file, image_mode: str, source: str = "") -> None:
        """Write the compressed file (path or binary file object) with ``save_compressed``."""
        save_compressed(file, self.levels, self.channel_mask, self.header(image_mode, source))

    def file_size(self, image_mode: str, source: str = "") -> int:
        """Bytes the compressed file takes, measured by writing it to memory."""
        buffer = io.BytesIO()
        self.save(buffer, image_mode, source)
        return buffer.getbuffer().nbytes


def compress(
    image,
    *,
    block_size: int = DEFAULT_BLOCK_SIZE,
    keep: int | None = None,
    step: float = 1.0,
    threshold: float = 0.0,
    coefficients=None,
) -> Compressed:
    r"""Zonal block-DCT compression: keep K zigzag frequencies, threshold, quantize, decode.

    For every n x n block of the image (edge-padded as in :func:`dctconv.forward`):

    1. the orthonormal DCT-II coefficients :math:`c_{x,y}` are computed;
    2. all but the first K channels of :func:`zigzag_order` are set to 0;
    3. a kept coefficient with :math:`|c| < T` is set to 0, except DC;
    4. each kept coefficient becomes the level :math:`q = \mathrm{rint}(c / Q)`
       (stored as the smallest integer type that holds all of them), or stays the
       float64 value when Q = 0;
    5. decoding multiplies by Q and applies :func:`dctconv.inverse`:
       :math:`\hat c = qQ`, :math:`\hat u = \mathrm{inverse}(\hat c)`.

    Parameters
    ----------
    image : array_like, shape (H, W)
        Grayscale image; computed in float64 whatever its dtype.
    block_size : int, optional
        n, from 2 to 64. Default 4.
    keep : int, optional
        K, from 1 to n*n. Default: :func:`default_keep` (6 for n = 4) when
        ``threshold`` is 0; all n*n when a threshold is given, which then alone
        decides what is zeroed.
    step : float, optional
        Q >= 0. Default 1.0. 0 stores the kept coefficients unquantized (float64).
    threshold : float, optional
        T >= 0. Default 0 (no thresholding).
    coefficients : ndarray, shape (n*n, rows, columns), optional
        ``forward(image, block_size)`` in float64, when the caller already has it
        (a sweep over K computes it once).

    Returns
    -------
    Compressed

    Raises
    ------
    InvalidImageError, InvalidBlockSizeError
        For a bad image or block size.
    InvalidCompressionError
        For K, Q or T out of range, or levels beyond 64-bit integers.

    References
    ----------
    .. [1] G. K. Wallace, "The JPEG still picture compression standard",
       Comm. ACM 34(4), 1991 (zigzag order, uniform quantization).
    .. [2] A. K. Jain, "Fundamentals of Digital Image Processing", Prentice Hall,
       1989, sec. 11.5 (zonal and threshold coding of transform coefficients).

    Examples
    --------
    >>> import numpy as np
    >>> from dctconv.codec._zonal import compress
    >>> image = np.arange(64.0).reshape(8, 8)
    >>> result = compress(image, block_size=4, keep=3, step=1.0)
    >>> result.levels.shape, result.levels.dtype
    ((3, 2, 2), dtype('int16'))
    >>> result.levels[:, 0, 0]            # channels 0, 1, 4: DC, (0, 1), (1, 0)
    array([ 54,  -4, -36], dtype=int16)
    >>> round(float(np.abs(result.reconstruction - image).max()), 2)
    1.06
    """
    n = check_block_size(block_size)
    image = check_image(image)
    step = check_step(step)
    threshold = check_threshold(threshold)
    if keep is None:
        keep = default_keep(n) if threshold == 0 else n * n
    mask = keep_mask(n, check_keep(n, keep))
    if coefficients is None:
        coefficients = forward(image, n, dtype=np.float64)  # converted tile by tile: no float copy
    else:
        expected = (n * n, *blocks_shape(image.shape, n))
        if coefficients.shape != expected or coefficients.dtype != np.float64:
            raise InvalidCompressionError(
                f"coefficients must be float64 of shape {expected}, the forward transform of the "
                f"image; got {coefficients.dtype} {coefficients.shape}"
            )
    kept, kept_survivors = threshold_coefficients(coefficients[mask], threshold)
    survivors = np.zeros(n * n, dtype=np.int64)
    survivors[mask] = kept_survivors
    levels = quantize(kept, step)
    decoded = np.zeros(coefficients.shape, dtype=np.float64)
    decoded[mask] = dequantize(levels, step)
    reconstruction = inverse(decoded, image.shape)
    return Compressed(
        levels=levels,
        channel_mask=mask,
        block_size=n,
        step=step,
        threshold=threshold,
        image_shape=tuple(image.shape),
        coefficients=decoded,
        reconstruction=reconstruction,
        survivors=survivors,
    )
