"""The transform on arrays of any library that follows the Python array API standard.

:func:`dctconv.forward`, :func:`dctconv.inverse` and :func:`dctconv.dct_kernels` hand
an array of another library (PyTorch, JAX, CuPy, dask.array, array-api-strict) to
this module, which computes with that library's own functions (through
array-api-compat's namespaces), so that the result is the same kind of array, on the
same device, and that library's autograd differentiates it. numpy arrays never come
here: they keep the tiled, threaded engine of :mod:`dctconv.transform`.

The layer is written as reshapes, a transpose and one matrix product with the
(n*n, n*n) kernel matrix, operations every array library has and differentiates;
the kernel matrix is computed once per block size and channel order in float64 by
numpy (:func:`dctconv.kernels.kernel_matrix`) and converted into the library's array.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .errors import InvalidCoefficientsError, InvalidImageError, InvalidOptionError
from .kernels import kernel_matrix, zigzag_order
from .limits import BLOCK_SIZE_RANGE, MAX_BLOCK_SIZE, MIN_BLOCK_SIZE

# Python scalars and sequences are array_like for numpy: never worth importing array-api-compat for.
_NUMPY_INPUT = (np.ndarray, np.generic, list, tuple, int, float, bool, complex)


def namespace(x):
    """The array-API namespace of ``x`` if it is an array of a library other than numpy, else None.

    Anything else (a numpy array, a list, a memoryview) is numpy input, as it was
    before the array API.
    """
    if isinstance(x, _NUMPY_INPUT):
        return None
    import array_api_compat

    if not array_api_compat.is_array_api_obj(x) or array_api_compat.is_numpy_array(x):
        return None
    return array_api_compat.array_namespace(x)


@functools.lru_cache(maxsize=64)
def ordered_kernel_matrix(block_size: int, channel_order: str) -> np.ndarray:
    """The (n*n, n*n) float64 kernel matrix whose row k is the kernel of output channel k (read-only)."""
    weights = kernel_matrix(block_size)
    if channel_order == "zigzag":
        weights = weights[zigzag_order(block_size)]
    weights.setflags(write=False)
    return weights




def _device(x):
    import array_api_compat

    return array_api_compat.device(x)


def _is_real(xp, dtype) -> bool:
    return xp.isdtype(dtype, ("real floating", "integral", "bool"))


def _floating(xp, dtype, requested, device):
    """The dtype to compute in: ``requested`` (float32 or float64), else the input's own
    float32 or float64, else the library's default real floating dtype."""
    if requested is not None:
        if isinstance(requested, (str, np.dtype)) or (isinstance(requested, type) and issubclass(requested, np.generic)):
            try:
                name = np.dtype(requested).name
            except TypeError:
                name = None
        else:  # a dtype of the array's own library
            name = next((name for name in ("float32", "float64") if requested == getattr(xp, name)), None)
        if name not in ("float32", "float64"):
            raise InvalidOptionError(f"dtype must be float32 or float64, got {requested!r}")
        return getattr(xp, name)
    if dtype == xp.float32 or dtype == xp.float64:
        return dtype
    return xp.asarray(0.0, device=device).dtype


def _weights(xp, block_size, channel_order, dtype, device):
    # A copy: the cached numpy matrix is read-only, and a library sharing its memory (PyTorch) warns.
    return xp.asarray(ordered_kernel_matrix(block_size, channel_order), dtype=dtype, device=device, copy=True)


def _pad_edge(xp, x, n):
    """Pad the last two axes up to multiples of n by repeating the last row and column, as numpy's path does."""
    *lead, height, width = x.shape
    if height % n:
        edge = xp.broadcast_to(x[..., -1:, :], (*lead, -height % n, width))
        x = xp.concat([x, edge], axis=-2)
    if width % n:
        edge = xp.broadcast_to(x[..., :, -1:], (*x.shape[:-1], -width % n))
        x = xp.concat([x, edge], axis=-1)
    return x


def forward(xp, image, n, *, dtype, layout, channel_order):
    """:func:`dctconv.forward` of an array of namespace ``xp``: (..., H, W) -> maps of (..., H, W)."""
    if image.ndim < 2:
        raise InvalidImageError(
            f"image must have at least 2 dimensions (..., rows, columns), got an array of shape {tuple(image.shape)}"
        )
    if math.prod(image.shape) == 0:
        raise InvalidImageError(f"image is empty (shape {tuple(image.shape)})")
    if not _is_real(xp, image.dtype):
        raise InvalidImageError(f"image must hold real numbers, got dtype {image.dtype}")
    device = _device(image)
    dtype = _floating(xp, image.dtype, dtype, device)
    if image.dtype != dtype:
        image = xp.astype(image, dtype)
    weights = _weights(xp, n, channel_order, dtype, device)
    *lead, height, width = image.shape
    rows, cols = -(-height // n), -(-width // n)
    blocks = xp.reshape(_pad_edge(xp, image, n), (*lead, rows, n, cols, n))
    k = len(lead)
    lead_axes = tuple(range(k))
    if layout == "channels_last":
        # (..., r, s, i, j) -> patch vectors (..., r, s, i*n + j) times the kernels, transposed.
        patches = xp.reshape(xp.permute_dims(blocks, (*lead_axes, k, k + 2, k + 1, k + 3)), (*lead, rows, cols, n * n))
        return xp.matmul(patches, xp.matrix_transpose(weights))
    # (..., i, j, r, s) -> (..., i*n + j, r*cols + s): one (n*n, n*n) x (n*n, patches) product.
    patches = xp.reshape(xp.permute_dims(blocks, (*lead_axes, k + 1, k + 3, k, k + 2)), (*lead, n * n, rows * cols))
    return xp.reshape(xp.matmul(weights, patches), (*lead, n * n, rows, cols))


def block_size_of(channels: int) -> int:
    """n for ``channels`` = n*n, or raise InvalidCoefficientsError."""
    n = math.isqrt(channels)
    if n * n != channels or not MIN_BLOCK_SIZE <= n <= MAX_BLOCK_SIZE:
        raise InvalidCoefficientsError(
            f"coefficients have {channels} channels, which is not n*n for a block size n {BLOCK_SIZE_RANGE}"
        )
    return n


def inverse(xp, coefficients, image_shape, *, layout, channel_order, check_image_shape):
    """:func:`dctconv.inverse` of an array of namespace ``xp``: maps of (..., H, W) -> (..., H, W)."""
    last = layout == "channels_last"
    if coefficients.ndim < 3:
        expected = "(..., block rows, block columns, n*n)" if last else "(..., n*n, block rows, block columns)"
        raise InvalidCoefficientsError(
            f"coefficients must have at least 3 dimensions {expected}, got an array of shape "
            f"{tuple(coefficients.shape)}"
        )
    if last:
        *lead, rows, cols, channels = coefficients.shape
    else:
        *lead, channels, rows, cols = coefficients.shape
    n = block_size_of(channels)
    if math.prod(coefficients.shape) == 0:
        raise InvalidCoefficientsError(f"coefficients are empty (shape {tuple(coefficients.shape)})")
    if not _is_real(xp, coefficients.dtype):
        raise InvalidCoefficientsError(f"coefficients must hold real numbers, got dtype {coefficients.dtype}")
    if image_shape is None:
        image_shape = (rows * n, cols * n)
    height, width = check_image_shape(image_shape, (rows, cols), n)
    device = _device(coefficients)
    dtype = _floating(xp, coefficients.dtype, None, device)
    if coefficients.dtype != dtype:
        coefficients = xp.astype(coefficients, dtype)
    weights = _weights(xp, n, channel_order, dtype, device)
    k = len(lead)
    lead_axes = tuple(range(k))
    if last:
        # (..., r, s, channel) times the kernels: patch vectors (..., r, s, i*n + j).
        patches = xp.reshape(xp.matmul(coefficients, weights), (*lead, rows, cols, n, n))
        pixels = xp.permute_dims(patches, (*lead_axes, k, k + 2, k + 1, k + 3))
    else:
        flat = xp.reshape(coefficients, (*lead, n * n, rows * cols))
        patches = xp.reshape(xp.matmul(xp.matrix_transpose(weights), flat), (*lead, n, n, rows, cols))
        # (..., i, j, r, s) -> (..., r, i, s, j): the transposed convolution's col2im is this reshape.
        pixels = xp.permute_dims(patches, (*lead_axes, k + 2, k, k + 3, k + 1))
    image = xp.reshape(pixels, (*lead, rows * n, cols * n))
    if (height, width) != (rows * n, cols * n):
        image = image[..., :height, :width]
    return image


def kernels(xp, like, n, channel_order):
    """:func:`dctconv.dct_kernels` as an array of ``like``'s namespace, device and floating dtype."""
    device = _device(like)
    dtype = _floating(xp, like.dtype, None, device)
    return xp.reshape(_weights(xp, n, channel_order, dtype, device), (n * n, n, n))
