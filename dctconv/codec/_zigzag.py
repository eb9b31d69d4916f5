"""Which frequencies a block keeps: the JPEG zigzag order, the mask of the K lowest, and the
checks of the encoder's keep, step and threshold settings.

The zonal mode of :func:`dctconv.encode` (``keep``) reads the zigzag from here, and so
does the coefficient maps picture; the order itself is :func:`dctconv.kernels.zigzag_order`,
in the transform core, since ``channel_order="zigzag"`` of the transform uses it too.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InvalidCompressionError
from ..limits import DEFAULT_BLOCK_SIZE
from .._validation import check_block_size
from ..kernels import zigzag_order  # noqa: F401 (the order is the transform's; the codec's modules read it here)


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
    >>> from dctconv.codec._zigzag import keep_mask
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
