"""Checks of the arguments of the library's public functions, in one place.

Each ``check_*`` returns its argument in the form the library computes with, or
raises the library's own exception (:mod:`dctconv.errors`) with a message naming
what was wrong; the command line turns that into one line.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import InvalidBlockSizeError, InvalidCoefficientsError, InvalidImageError, InvalidOptionError
from .limits import BLOCK_SIZE_RANGE, MAX_BLOCK_SIZE, MIN_BLOCK_SIZE


def check_block_size(block_size) -> int:
    """Return ``block_size`` as an int, or raise InvalidBlockSizeError."""
    # bool is an int subclass; True as a block size is always a mistake.
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)):
        raise InvalidBlockSizeError(
            f"block size must be an integer, got {block_size!r}"
        )
    if not MIN_BLOCK_SIZE <= block_size <= MAX_BLOCK_SIZE:
        raise InvalidBlockSizeError(
            f"block size must be {BLOCK_SIZE_RANGE}, got {block_size}"
        )
    return int(block_size)


def check_image(image) -> np.ndarray:
    """Return ``image`` as a 2-D real ndarray, or raise InvalidImageError."""
    image = np.asarray(image)
    if image.ndim != 2:
        raise InvalidImageError(
            f"image must be 2-D (rows, columns), got an array of shape {image.shape}"
        )
    if image.size == 0:
        raise InvalidImageError(f"image is empty (shape {image.shape})")
    if not (np.issubdtype(image.dtype, np.number) or image.dtype == bool) or np.iscomplexobj(image):
        raise InvalidImageError(f"image must hold real numbers, got dtype {image.dtype}")
    return image


def check_coefficients(coefficients) -> tuple[np.ndarray, int]:
    """Return ``coefficients`` as an ndarray and its block size, or raise InvalidCoefficientsError."""
    coefficients = np.asarray(coefficients)
    if coefficients.ndim != 3:
        raise InvalidCoefficientsError(
            "coefficients must be 3-D (n*n, block rows, block columns), "
            f"got an array of shape {coefficients.shape}"
        )
    channels, rows, cols = coefficients.shape
    n = math.isqrt(channels)
    if n * n != channels or not MIN_BLOCK_SIZE <= n <= MAX_BLOCK_SIZE:
        raise InvalidCoefficientsError(
            f"coefficients have {channels} channels, which is not n*n for a block size n {BLOCK_SIZE_RANGE}"
        )
    if rows == 0 or cols == 0:
        raise InvalidCoefficientsError(f"coefficients are empty (shape {coefficients.shape})")
    if not np.issubdtype(coefficients.dtype, np.number) or np.iscomplexobj(coefficients):
        raise InvalidCoefficientsError(
            f"coefficients must hold real numbers, got dtype {coefficients.dtype}"
        )
    return coefficients, n


def check_image_stack(image) -> tuple[np.ndarray, tuple[int, ...]]:
    """Return ``image`` as an (N, H, W) array and its leading shape, or raise InvalidImageError.

    One image (H, W) has the leading shape ``()``; an array (..., H, W) is a batch of
    images over its leading (batch, channel) dimensions, flattened into N.
    """
    image = np.asarray(image)
    if image.ndim == 2:
        return check_image(image)[np.newaxis], ()
    if image.ndim < 2:
        raise InvalidImageError(
            "image must be 2-D (rows, columns), or (..., rows, columns) with leading batch and channel "
            f"dimensions, got an array of shape {image.shape}"
        )
    leading = image.shape[:-2]
    if 0 in leading:
        raise InvalidImageError(f"the stack holds no image (shape {image.shape})")
    images = image.reshape((math.prod(leading),) + image.shape[-2:])
    check_image(images[0])  # the sides and the dtype, which every image shares
    return images, leading


def check_coefficient_stack(coefficients) -> tuple[np.ndarray, int, tuple[int, ...]]:
    """Return ``coefficients`` as an (N, n*n, rows, columns) array, n, and their leading shape.

    The coefficients of one image (n*n, rows, columns) have the leading shape ``()``;
    (..., n*n, rows, columns) is a batch over its leading dimensions, flattened into N.
    """
    coefficients = np.asarray(coefficients)
    if coefficients.ndim == 3:
        coefficients, n = check_coefficients(coefficients)
        return coefficients[np.newaxis], n, ()
    if coefficients.ndim < 3:
        raise InvalidCoefficientsError(
            "coefficients must be 3-D (n*n, block rows, block columns), or (..., n*n, block rows, "
            f"block columns) with leading batch and channel dimensions, got an array of shape {coefficients.shape}"
        )
    leading = coefficients.shape[:-3]
    if 0 in leading:
        raise InvalidCoefficientsError(f"the stack holds no coefficients (shape {coefficients.shape})")
    flat = coefficients.reshape((math.prod(leading),) + coefficients.shape[-3:])
    _, n = check_coefficients(flat[0])
    return flat, n, leading


def check_float_dtype(dtype) -> np.dtype:
    """Return ``dtype`` as float32 or float64, or raise InvalidOptionError."""
    try:
        valid = np.dtype(dtype) in (np.float32, np.float64)
    except TypeError:
        valid = False
    if not valid:
        raise InvalidOptionError(f"dtype must be float32 or float64, got {dtype!r}")
    return np.dtype(dtype)


def check_workers(workers, *, default) -> int:
    """Return ``workers`` as an int >= 1 (None: ``default()``), or raise InvalidOptionError."""
    if workers is None:
        return default()
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise InvalidOptionError(f"workers must be a whole number >= 1, got {workers!r}")
    return int(workers)


#: Where the n*n channels go: before the block grid (PyTorch's NCHW) or after it (TensorFlow's NHWC).
LAYOUTS = ("channels_first", "channels_last")
#: Which frequency each channel holds: x*n + y, or the JPEG zigzag order (lowest frequencies first).
CHANNEL_ORDERS = ("frequency", "zigzag")


def check_layout(layout) -> str:
    """Return ``layout`` ("channels_first" or "channels_last"), or raise InvalidOptionError."""
    if layout not in LAYOUTS:
        raise InvalidOptionError(f"layout must be 'channels_first' or 'channels_last', got {layout!r}")
    return layout


def check_channel_order(channel_order) -> str:
    """Return ``channel_order`` ("frequency" or "zigzag"), or raise InvalidOptionError."""
    if channel_order not in CHANNEL_ORDERS:
        raise InvalidOptionError(f"channel_order must be 'frequency' or 'zigzag', got {channel_order!r}")
    return channel_order
