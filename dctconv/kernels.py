"""The n*n fixed kernels of the block DCT-II seen as a convolutional layer, and their zigzag order."""

from __future__ import annotations

import numpy as np

from .limits import DEFAULT_BLOCK_SIZE, MAX_BLOCK_SIZE, MIN_BLOCK_SIZE  # noqa: F401 (re-exported)
from ._validation import check_block_size, check_channel_order


def blocks_shape(image_shape, block_size: int) -> tuple[int, int]:
    """Return (block rows, block columns) of an image of ``image_shape``: its sides over n, rounded up."""
    height, width = image_shape
    return -(-height // block_size), -(-width // block_size)


def dct_matrix(block_size: int = DEFAULT_BLOCK_SIZE) -> np.ndarray:
    """Return the orthonormal 1-D DCT-II matrix C, with C[k, i] = a(k) cos(pi (i + 1/2) k / n).

    Parameters
    ----------
    block_size : int
        n, from 2 to 64.

    Returns
    -------
    C : ndarray of float64, shape (n, n)
        Row ``k`` is the k-th cosine basis vector; ``C @ C.T`` is the identity, so
        ``C @ v`` equals ``scipy.fft.dct(v, norm="ortho")``.
    """
    n = check_block_size(block_size)
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    scale = np.full((n, 1), np.sqrt(2.0 / n))
    scale[0] = np.sqrt(1.0 / n)
    return scale * np.cos(np.pi * (i + 0.5) * k / n)


def dct_kernels(block_size: int = DEFAULT_BLOCK_SIZE, *, like=None, channel_order: str = "frequency"):
    r"""Return the n*n convolution kernels of the orthonormal n x n block DCT-II.

    Kernel ``x*n + y`` is the basis image of frequency (row x, column y):

    .. math::

        K_{x,y}(i, j) = a(x)\,a(y)\cos\frac{\pi (i + 1/2) x}{n}\cos\frac{\pi (j + 1/2) y}{n},
        \qquad a(0) = \sqrt{1/n},\quad a(k > 0) = \sqrt{2/n}

    with ``i`` the row and ``j`` the column inside the patch. Correlating an image with
    kernel ``x*n + y`` at stride n gives the (x, y) DCT coefficient of every patch.

    Parameters
    ----------
    block_size : int, optional
        n, the patch side, from 2 to 64. Default 4.
    like : array, optional
        An array whose library, device and floating dtype the kernels are made in
        (a PyTorch tensor on a GPU gives the weights of a ``conv2d`` there): its
        float32 or float64, else that library's default floating dtype. Default:
        a float64 numpy array.
    channel_order : {"frequency", "zigzag"}, optional
        Kernel ``x*n + y`` in place ``x*n + y`` (the default), or the kernels in the
        zigzag order of :func:`dctconv.forward`'s ``channel_order="zigzag"``.

    Returns
    -------
    kernels : ndarray of float64, shape (n*n, n, n), or an array of ``like``'s library
        Orthonormal: ``kernels.reshape(n*n, n*n)`` is an orthogonal matrix, so the
        same kernels, transposed, give the inverse.

    Raises
    ------
    InvalidBlockSizeError
        If ``block_size`` is not an integer from 2 to 64.
    InvalidOptionError
        If ``channel_order`` is not "frequency" or "zigzag".

    References
    ----------
    .. [1] N. Ahmed, T. Natarajan, K. R. Rao, "Discrete Cosine Transform",
       IEEE Trans. Computers C-23(1), 1974, pp. 90-93.
    .. [2] G. K. Wallace, "The JPEG still picture compression standard",
       Comm. ACM 34(4), 1991 (the 8 x 8 case, with a(x) a(y) = C(u) C(v) / 4).

    Examples
    --------
    >>> import numpy as np
    >>> from dctconv import dct_kernels
    >>> K = dct_kernels(4)
    >>> K.shape
    (16, 4, 4)
    >>> bool(np.allclose(K[0], 0.25))     # DC kernel: the patch mean times n
    True
    >>> G = K.reshape(16, 16) @ K.reshape(16, 16).T
    >>> bool(np.allclose(G, np.eye(16)))
    True
    """
    n = check_block_size(block_size)
    channel_order = check_channel_order(channel_order)
    if like is not None or channel_order != "frequency":
        from . import _array_api

        xp = None if like is None or isinstance(like, np.ndarray) else _array_api.namespace(like)
        if xp is not None:
            return _array_api.kernels(xp, like, n, channel_order)
        dtype = np.float64 if like is None else _numpy_floating(np.asarray(like).dtype)
        return _array_api.ordered_kernel_matrix(n, channel_order).astype(dtype).reshape(n * n, n, n)
    c = dct_matrix(n)
    # Outer product of the row and column basis vectors: K[x, y, i, j] = C[x, i] C[y, j].
    return np.einsum("xi,yj->xyij", c, c).reshape(n * n, n, n)


def _numpy_floating(dtype) -> np.dtype:
    return np.dtype(np.float32) if dtype == np.float32 else np.dtype(np.float64)


def kernel_matrix(block_size: int = DEFAULT_BLOCK_SIZE) -> np.ndarray:
    """Return the kernels flattened to the (n*n, n*n) weight matrix of the layer."""
    n = check_block_size(block_size)
    return dct_kernels(n).reshape(n * n, n * n)


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
    >>> from dctconv.kernels import zigzag_order
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
