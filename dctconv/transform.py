"""The forward block DCT as a strided convolution, and its inverse as a transposed one."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .errors import InvalidCoefficientsError
from .kernels import blocks_shape, dct_matrix, kernel_matrix
from .limits import DEFAULT_BLOCK_SIZE
from . import _array_api
from ._validation import check_block_size, check_channel_order, check_coefficient_stack, check_float_dtype
from ._validation import check_image_stack, check_layout
from ._validation import check_workers as _check_workers

# Tuning constants of the tiling engine. Each was chosen by measurement
# (benchmarks/bench_transform.py, --tune for STRIP_BYTES); the measurements and the
# reasons are in docs/performance.md, "Tuning constants of the transform". Change one
# only with a new measurement recorded there; the result is bitwise the same for any
# STRIP_BYTES and thread count, but PRODUCT_MACS and SEPARABLE_FROM change rounding.

#: Bytes of float data in one tile's patch matrix.
STRIP_BYTES = 1 << 19

#: Multiply-adds of one matrix product, at most: below OpenBLAS's own threading threshold.
PRODUCT_MACS = 1 << 18

#: Pixels per thread, at least: less work is not worth starting a thread for.
THREAD_MIN_PIXELS = 1 << 18

#: Threads at most, whatever the CPU count (a bound on a memory-bound loop, not measured).
MAX_WORKERS = 8

#: Block sizes from which forward and inverse multiply by the (n, n) DCT matrix along
#: rows, then columns (2n multiply-adds a pixel), instead of by the (n*n, n*n) kernel
#: matrix (n*n multiply-adds a pixel, but faster BLAS products for small n).
SEPARABLE_FROM = {
    ("forward", np.dtype(np.float32)): 8,
    ("forward", np.dtype(np.float64)): 8,
    ("inverse", np.dtype(np.float32)): 8,
    ("inverse", np.dtype(np.float64)): 4,
}

#: Threads :func:`forward` and :func:`inverse` use when ``workers`` is not given;
#: None means the CPU count. Set it with :func:`set_default_workers` only.
DEFAULT_WORKERS: int | None = None


def work_dtype(dtype) -> np.dtype:
    """Return float32 for float32 input and float64 for anything else."""
    return np.dtype(np.float32) if np.dtype(dtype) == np.float32 else np.dtype(np.float64)


def default_workers() -> int:
    """Number of threads used by default: the CPUs this process may run on, at most MAX_WORKERS."""
    if DEFAULT_WORKERS is not None:
        return DEFAULT_WORKERS
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(MAX_WORKERS, cpus))


def set_default_workers(workers: int | None) -> None:
    """Set the threads :func:`forward` and :func:`inverse` use when ``workers`` is not given.

    For a process that shares the CPUs with others (``dctconv.runtime._parallel`` gives each
    worker process its share); None goes back to :func:`default_workers`'s own count.
    """
    global DEFAULT_WORKERS
    DEFAULT_WORKERS = None if workers is None else check_workers(workers)


def check_workers(workers) -> int:
    """Return ``workers`` (None: :func:`default_workers`) as an int >= 1, or raise InvalidOptionError."""
    return _check_workers(workers, default=default_workers)


def _tiles(rows: int, cols: int, n: int, itemsize: int):
    """Cut the grid of rows x cols blocks into tiles, the units of work of the threads.

    Returns the tiles as (top, bottom, left, right) block ranges and the number of
    patch-matrix elements of the largest. A tile is ``count`` block rows of ``span``
    blocks, and each of its block rows is one matrix product of ``span`` patches.
    ``span`` depends only on n and the width, never on STRIP_BYTES or the number of
    threads: BLAS may round differently for products of different widths, and this
    way every product, hence the result, is bitwise the same however the rows are
    grouped and whichever thread computes them.
    """
    span = PRODUCT_MACS // n**4
    # For n >= 12 even 16 patches pass the threshold; rather than run tiny products,
    # let BLAS have whole block rows.
    span = min(cols, span) if span >= 16 else cols
    count = min(rows, max(1, STRIP_BYTES // (n * n * span * itemsize)))
    tiles = [
        (top, min(rows, top + count), left, min(cols, left + span))
        for top in range(0, rows, count)
        for left in range(0, cols, span)
    ]
    return tiles, count * n * n * span


def _threads(workers: int, pixels: int) -> int:
    """Threads worth starting for ``pixels`` of work: at most ``workers``."""
    return max(1, min(workers, pixels // THREAD_MIN_PIXELS))


def _aligned_empty(size: int, dtype: np.dtype, alignment: int = 64) -> np.ndarray:
    """An uninitialized 1-D array of ``size`` items that starts on a cache-line boundary.

    Each thread has its own tile buffer; aligning them all alike means a tile sees the
    same addresses modulo 64 whichever thread computes it, so no library can take a
    different (alignment-dependent) path for it.
    """
    raw = np.empty(size * dtype.itemsize + alignment, np.uint8)
    offset = (-raw.ctypes.data) % alignment
    return raw[offset : offset + size * dtype.itemsize].view(dtype)


def _run_tiles(tiles, compute, buffer_size: int, dtype: np.dtype, workers: int) -> None:
    """Call ``compute(buffer, *tile)`` for every tile, on up to ``workers`` threads.

    Threads take the next tile from a shared list as they finish one, so a slow core
    does not hold the others back; each thread reuses one buffer of ``buffer_size``
    items of ``dtype``. numpy releases the GIL inside the copies and the matrix
    products, which is where the time goes. The calling thread works too.
    """
    pending = iter(tiles)
    lock = threading.Lock()
    failed = threading.Event()

    def drain():
        buffer = _aligned_empty(buffer_size, dtype)
        try:
            # An overflow (float32 near its largest value) gives inf, as documented,
            # not a RuntimeWarning from inside the library. The state is per thread.
            with np.errstate(over="ignore", invalid="ignore"):
                while not failed.is_set():
                    with lock:
                        tile = next(pending, None)
                    if tile is None:
                        return
                    compute(buffer, *tile)
        except BaseException:
            failed.set()  # an error or Ctrl-C: the other threads stop at their next tile
            raise

    threads = min(workers, len(tiles))
    if threads <= 1:
        drain()
        return
    with ThreadPoolExecutor(threads - 1, thread_name_prefix="dctconv") as pool:
        helpers = [pool.submit(drain) for _ in range(threads - 1)]
        drain()
    for helper in helpers:
        helper.result()


def forward(image, block_size: int = DEFAULT_BLOCK_SIZE, *, dtype=None, workers=None,
            layout: str = "channels_first", channel_order: str = "frequency"):
    r"""Block DCT-II of an image (or a stack of images), as a stride-n convolution with n*n kernels.

    The image is cut into non-overlapping n x n patches. For the patch whose top-left
    pixel is (n r, n s) the output holds, in channel ``x*n + y``,

    .. math::

        c_{x,y}(r, s) = \sum_{i=0}^{n-1}\sum_{j=0}^{n-1} K_{x,y}(i, j)\, u(n r + i, n s + j)

    with :math:`K_{x,y}` from :func:`dct_kernels`. That is a correlation with stride n (a
    convolutional layer with n*n output channels, kernel size n, stride n, no bias), and
    it equals ``scipy.fft.dctn(patch, norm="ortho")[x, y]`` for every patch.

    Because the stride equals the kernel size, the patches do not overlap and im2col is
    a reshape: the layer is a single matrix product of the (n*n, n*n) kernel matrix with
    the (n*n, patches) patch matrix. It is computed tile by tile (a few block rows, cut
    to stay in cache): each tile's pixels are converted to float and gathered into its
    patch matrix, and the product is written straight into its place in the
    channel-first output, so no full-size temporary is made. Tiles run on a pool of
    threads; the tiling does not depend on ``workers``, so neither does the result,
    to the last bit.

    A batch of equal-sized images, (..., H, W) with any number of leading (batch,
    channel) dimensions, as a data loader batches them, is transformed in one call:
    (..., H, W) gives (..., n*n, ceil(H/n), ceil(W/n)). The tiles of all its images
    share the thread pool, and each image is cut into the same tiles as when it is
    transformed alone, so ``forward(stack)[k]`` equals ``forward(stack[k])`` to the
    last bit.

    An array of another library that follows the Python array API standard
    (PyTorch, JAX, CuPy, dask.array, array-api-strict; through array-api-compat) is
    transformed by that library itself, as reshapes and one product with the kernel
    matrix: the coefficients are an array of the same library, on the same device,
    and its autograd differentiates them (the vector-Jacobian product of ``forward``
    is :func:`inverse`, docs/layers.md), with the same leading dimensions. numpy
    input keeps the tiled engine above, and its results.

    Parameters
    ----------
    image : array_like or array-API array, shape (H, W) or (..., H, W)
        Grayscale image, or a batch of them over any leading dimensions. Sides that are not multiples of n
        are first padded at the bottom and right by repeating the edge pixels, as
        JPEG encoders do.
    block_size : int, optional
        n, the patch side, from 2 to 64. Default 4.
    dtype : {None, float32, float64}, optional
        Precision of the computation and of the coefficients. Default (None): float32
        for a float32 image, float64 for any other dtype. Asking float32 for an 8- or
        16-bit image converts it tile by tile instead of making a float copy first.
        For another library's array, the default is its own float32 or float64, and
        that library's default floating dtype for any other (float32 in PyTorch and JAX).
    workers : int, optional
        Number of threads. Default: :func:`default_workers` (the CPUs this process may
        use, at most 8). The result is bitwise the same for every value. numpy only:
        another library schedules its own work.
    layout : {"channels_first", "channels_last"}, optional
        Where the n*n channels go: before the block grid, (..., n*n, rows, columns)
        as PyTorch's NCHW (the default), or after it, (..., rows, columns, n*n) as
        TensorFlow's NHWC and jpeg2dct.
    channel_order : {"frequency", "zigzag"}, optional
        Which frequency each channel holds: (x, y) in channel ``x*n + y`` (the
        default), or the JPEG zigzag order, lowest frequencies first (channel k holds
        frequency ``dctconv.codec._zigzag.zigzag_order(n)[k]``).

    Returns
    -------
    coefficients : ndarray, shape (n*n, ceil(H/n), ceil(W/n)), or (..., n*n, ceil(H/n), ceil(W/n))
        Channel ``x*n + y`` is the map of frequency (row x, column y), of ``dtype``;
        for a batch, ``coefficients[k]`` holds the maps of image k. With
        ``layout="channels_last"`` the channel axis is the last one. An array-API
        input gives an array of its library, (..., n*n, rows, columns).
        NaN or infinity in the image, or a float32 overflow, spreads to the
        coefficients of its patch, without a warning.

    Raises
    ------
    InvalidImageError
        If ``image`` is not a non-empty 2-D array of real numbers, or a non-empty
        batch (..., H, W) of them.
    InvalidBlockSizeError
        If ``block_size`` is not an integer from 2 to 64.
    InvalidOptionError
        If ``dtype`` is not float32 or float64, ``workers`` is not an integer >= 1, or
        ``layout`` or ``channel_order`` is not one of its values.

    See Also
    --------
    inverse : the transposed convolution that undoes this one.

    Notes
    -----
    The kernels are orthonormal, so the transform keeps energy (Parseval): the sum of
    squared coefficients equals the sum of squared pixels of the padded image.

    References
    ----------
    .. [1] K. R. Rao, P. Yip, "Discrete Cosine Transform: Algorithms, Advantages,
       Applications", Academic Press, 1990, ch. 2 (the orthonormal DCT-II).
    .. [2] V. Dumoulin, F. Visin, "A guide to convolution arithmetic for deep
       learning", arXiv:1603.07285, 2016 (strided and transposed convolution).

    Examples
    --------
    >>> import numpy as np
    >>> from dctconv import forward
    >>> image = np.arange(64.0).reshape(8, 8)
    >>> c = forward(image, block_size=4)
    >>> c.shape
    (16, 2, 2)
    >>> float(c[0, 0, 0])       # DC = n * mean of the top-left patch
    54.0
    >>> stack = np.stack([image, 2 * image, image.T])
    >>> forward(stack, block_size=4).shape
    (3, 16, 2, 2)
    >>> forward(stack, block_size=4, layout="channels_last").shape
    (3, 2, 2, 16)
    >>> forward(np.stack([stack, stack]), block_size=4).shape   # batch x channels x H x W
    (2, 3, 16, 2, 2)
    """
    n = check_block_size(block_size)
    layout, channel_order = check_layout(layout), check_channel_order(channel_order)
    if not isinstance(image, np.ndarray) and (xp := _array_api.namespace(image)) is not None:
        check_workers(workers)
        return _array_api.forward(xp, image, n, dtype=dtype, layout=layout, channel_order=channel_order)
    images, leading = check_image_stack(image)
    dtype = work_dtype(images.dtype) if dtype is None else check_float_dtype(dtype)
    workers = check_workers(workers)
    rows, cols = blocks_shape(images.shape[1:], n)
    out = np.empty((len(images), n * n, rows, cols), dtype)
    separable = n >= SEPARABLE_FROM["forward", dtype]
    weights = (dct_matrix(n) if separable else kernel_matrix(n)).astype(dtype)
    # out_rows[k, r] is the (n*n, cols) matrix of block row r of image k: the output of one product.
    out_rows = out.transpose(0, 2, 1, 3)
    # frequencies[k, x, y, r] is block row r of image k's map of frequency (x, y): cols values.
    frequencies = out.reshape(len(images), n, n, rows, cols)

    def compute(buffer, k, top, bottom, left, right):
        count, span = bottom - top, right - left
        size = count * n * n * span
        source = images[k, top * n : bottom * n, left * n : right * n]
        if source.shape != (count * n, span * n):  # the last block row or column
            missing = ((0, count * n - source.shape[0]), (0, span * n - source.shape[1]))
            source = np.pad(source, missing, mode="edge")
        # Block row r, pixel row i of every patch, patch s, column j.
        pixels = source.reshape(count, n, span, n)
        if separable:
            if pixels.dtype != dtype:  # BLAS needs the tile in float
                converted = buffer[size : 2 * size].reshape(count, n, span, n)
                np.copyto(converted, pixels, casting="unsafe")
                pixels = converted
            # Along the patch rows: half[r, i, y, s] = sum_j C[y, j] u(nr + i, ns + j).
            half = buffer[:size].reshape(count, n, n, span)
            np.matmul(weights, pixels.transpose(0, 1, 3, 2), out=half)
            # Down the columns, straight into the output: c[x, y, r, s] = sum_i C[x, i] half[r, i, y, s].
            np.matmul(weights, half.transpose(0, 2, 1, 3),
                      out=frequencies[k, :, :, top:bottom, left:right].transpose(2, 1, 0, 3))
            return
        patches = buffer[:size].reshape(count, n * n, span)
        # im2col with stride == kernel size: bring the two offsets (i, j) together as
        # the n*n patch-vector axis; the copy also converts the pixels to float.
        np.copyto(patches.reshape(count, n, n, span), pixels.transpose(0, 1, 3, 2), casting="unsafe")
        # The convolution: one (n*n, n*n) x (n*n, span) product per block row.
        np.matmul(weights, patches, out=out_rows[k, top:bottom, :, left:right])

    tiles, buffer_size = _tiles(rows, cols, n, dtype.itemsize)
    # The separable form keeps the converted tile beside the half-transformed one.
    _run_tiles(_every_image(len(images), tiles), compute, 2 * buffer_size if separable else buffer_size,
               dtype, _threads(workers, out.size))
    if channel_order == "zigzag":
        out = np.take(out, _array_api.zigzag_order(n), axis=1)
    if layout == "channels_last":
        out = np.ascontiguousarray(np.moveaxis(out, 1, -1))
    return out.reshape(leading + out.shape[1:])


def inverse(coefficients, image_shape=None, *, workers=None, layout: str = "channels_first",
            channel_order: str = "frequency"):
    r"""Image (or a stack of images) from its block DCT coefficients: the transposed strided convolution.

    Each patch is the sum of the kernels weighted by its coefficients,

    .. math::

        u(n r + i, n s + j) = \sum_{x=0}^{n-1}\sum_{y=0}^{n-1} c_{x,y}(r, s)\, K_{x,y}(i, j),

    which is a transposed convolution (stride n, kernel size n) with the same kernels as
    :func:`forward`; since they are orthonormal it is the exact inverse, and it equals
    ``scipy.fft.idctn(block, norm="ortho")`` on every block. As in :func:`forward` it
    is one matrix product per block row of a tile, the (n*n, n*n) transposed kernel
    matrix times the coefficient vectors, scattered (col2im) straight into the image.
    A batch (..., n*n, rows, columns) with any leading dimensions gives (..., H, W)
    in one call, each image the same to the last bit as when inverted alone.

    An array of another array-API library is inverted by that library, as in
    :func:`forward`: (..., n*n, rows, columns) gives (..., H, W), an array of the
    same library and device, differentiable by its autograd (the vector-Jacobian
    product of ``inverse`` is :func:`forward`).

    Parameters
    ----------
    coefficients : array_like or array-API array, shape (n*n, rows, columns) or (..., n*n, rows, columns)
        Coefficient maps as returned by :func:`forward`, or a batch of them over any
        leading dimensions; n is deduced from the number of channels.
    image_shape : tuple of int (H, W), optional
        Crop the result (every image of a stack) to this shape, undoing the edge padding of :func:`forward`.
        It must round up to the coefficient grid: ``ceil(H/n) == rows`` and
        ``ceil(W/n) == columns``. Default: the full ``(n*rows, n*columns)``.
    workers : int, optional
        Number of threads, as in :func:`forward`; the result is bitwise the same for
        every value. numpy only.
    layout : {"channels_first", "channels_last"}, optional
        The layout :func:`forward` gave: (..., n*n, rows, columns) (the default) or
        (..., rows, columns, n*n).
    channel_order : {"frequency", "zigzag"}, optional
        The channel order :func:`forward` gave: ``x*n + y`` (the default) or zigzag.

    Returns
    -------
    image : ndarray, shape image_shape, or (..., H, W) for a batch
        float32 for float32 coefficients, float64 otherwise (another library: its
        float32 or float64, else its default floating dtype).
        ``inverse(forward(x), x.shape)`` returns ``x`` to within 1e-10 in float64.

    Raises
    ------
    InvalidCoefficientsError
        If the array is not (n*n, rows, columns) with n from 2 to 64, nor a non-empty
        batch of them, or ``image_shape`` does not fit the coefficient grid.
    InvalidOptionError
        If ``workers`` is not an integer >= 1, or ``layout`` or ``channel_order`` is
        not one of its values.

    Examples
    --------
    >>> import numpy as np
    >>> from dctconv import forward, inverse
    >>> image = np.random.default_rng(0).random((5, 7))
    >>> restored = inverse(forward(image), image.shape)
    >>> bool(np.allclose(restored, image, rtol=0, atol=1e-12))
    True
    >>> inverse(forward(np.stack([image, image])), image.shape).shape
    (2, 5, 7)
    >>> zigzag = forward(image, layout="channels_last", channel_order="zigzag")
    >>> bool(np.allclose(inverse(zigzag, image.shape, layout="channels_last", channel_order="zigzag"),
    ...                  image, rtol=0, atol=1e-12))
    True
    """
    layout, channel_order = check_layout(layout), check_channel_order(channel_order)
    if not isinstance(coefficients, np.ndarray) and (xp := _array_api.namespace(coefficients)) is not None:
        check_workers(workers)
        return _array_api.inverse(xp, coefficients, image_shape, layout=layout, channel_order=channel_order,
                                  check_image_shape=_check_image_shape)
    if layout == "channels_last":
        coefficients = _channels_first(coefficients)
    coefficients, n, leading = check_coefficient_stack(coefficients)
    if channel_order == "zigzag":
        # Channel k holds frequency order[k]: frequency f is channel argsort(order)[f].
        coefficients = np.take(coefficients, np.argsort(_array_api.zigzag_order(n)), axis=1)
    workers = check_workers(workers)
    _, _, rows, cols = coefficients.shape
    if image_shape is None:
        image_shape = (rows * n, cols * n)
    height, width = _check_image_shape(image_shape, (rows, cols), n)
    dtype = work_dtype(coefficients.dtype)
    separable = n >= SEPARABLE_FROM["inverse", dtype]
    weights = (dct_matrix(n) if separable else kernel_matrix(n)).astype(dtype)
    out = np.empty((len(coefficients), height, width), dtype)
    # coefficient_rows[k, r] is the (n*n, cols) matrix of block row r of image k: one product's input.
    coefficient_rows = coefficients.transpose(0, 2, 1, 3)
    # A patch row of 4, 8 or 16 bytes moves as one number (numpy copies those sizes
    # fast): float32 at n = 4 went from 31 to 26 ms at 4096². Other sizes as void
    # items were slower than the copies per column offset.
    patch_row = {4: np.float32, 8: np.float64, 16: np.complex128}.get(n * dtype.itemsize)

    def compute(buffer, k, top, bottom, left, right):
        count, span = bottom - top, right - left
        vectors = coefficient_rows[k, top:bottom, :, left:right].astype(dtype, copy=False)
        target = out[k, top * n : bottom * n, left * n : right * n]
        whole = target.shape == (count * n, span * n)
        pixel_tile = target if whole else np.empty((count * n, span * n), dtype)
        if separable:
            # Down the columns: half[r, y, i, s] = sum_x C[x, i] c[x, y, r, s].
            half = buffer[: count * n * n * span].reshape(count, n, n, span)
            np.matmul(weights.T, vectors.reshape(count, n, n, span).transpose(0, 2, 1, 3), out=half)
            # Along the rows, straight into image rows (r, i) as (s, j): no col2im.
            np.matmul(half.transpose(0, 2, 3, 1), weights, out=pixel_tile.reshape(count, n, span, n))
        else:
            if patch_row is not None:
                # The transposed product: each patch row (n pixels) lies in one item.
                patches = buffer[: count * span * n * n].reshape(count, span, n * n)
                np.matmul(vectors.transpose(0, 2, 1), weights, out=patches)
                # col2im: patch rows (r, s, i) -> image rows (r, i), columns s.
                rows_out = pixel_tile.view(patch_row).reshape(count, n, span)
                rows_out[...] = patches.view(patch_row).reshape(count, span, n).transpose(0, 2, 1)
            else:
                pixels = buffer[: count * n * n * span].reshape(count, n * n, span)
                np.matmul(weights.T, vectors, out=pixels)
                # col2im is the reverse reshape: (r, i, j, s) -> rows (r, i), columns (s, j).
                patches = pixels.reshape(count, n, n, span)
                blocks = pixel_tile.reshape(count, n, span, n)
                # One copy per column offset j, so that numpy's inner loop runs along
                # the patches; a single transposing copy ran it along j, n values at a
                # time, and was 3 to 4 times slower.
                for j in range(n):
                    blocks[:, :, :, j] = patches[:, :, j, :]
        if not whole:  # the last block row or column: drop the padding
            target[...] = pixel_tile[: target.shape[0], : target.shape[1]]

    tiles, buffer_size = _tiles(rows, cols, n, dtype.itemsize)
    _run_tiles(_every_image(len(coefficients), tiles), compute, buffer_size, dtype,
               _threads(workers, coefficients.size))
    return out.reshape(leading + out.shape[1:])


def _channels_first(coefficients) -> np.ndarray:
    """A view of channels-last maps, (..., rows, columns, n*n), with the channels first."""
    coefficients = np.asarray(coefficients)
    if coefficients.ndim < 3:
        raise InvalidCoefficientsError(
            "channels-last coefficients must be 3-D (block rows, block columns, n*n), or (..., block rows, "
            f"block columns, n*n) with leading batch and channel dimensions, got an array of shape {coefficients.shape}"
        )
    return np.moveaxis(coefficients, -1, -3)


def _every_image(count: int, tiles):
    """The tiles of one image, for each of ``count`` images: (k, top, bottom, left, right)."""
    return [(k, *tile) for k in range(count) for tile in tiles]


def _check_image_shape(image_shape, grid, n) -> tuple[int, int]:
    """Return ``image_shape`` as (H, W) if it rounds up to ``grid`` at block size n."""
    try:
        height, width = (int(side) for side in image_shape)
    except (TypeError, ValueError):
        raise InvalidCoefficientsError(
            f"image_shape must be two integers (H, W), got {image_shape!r}"
        ) from None
    if height < 1 or width < 1 or blocks_shape((height, width), n) != tuple(grid):
        raise InvalidCoefficientsError(
            f"image_shape ({height}, {width}), an image of {width} x {height}, does not fit a grid of "
            f"{grid[1]} x {grid[0]} blocks of {n} x {n}"
        )
    return height, width
