"""Pictures for people: the coefficient maps as a mosaic, and the kernels enlarged."""

from __future__ import annotations

import math

import numpy as np

from .kernels import dct_kernels
from .limits import DEFAULT_BLOCK_SIZE
from .validation import check_block_size

GRID_VALUE = 255
#: Separator color of the kernels picture: blue, so it cannot be mistaken for a kernel value.
KERNEL_GRID_RGB = (40, 90, 200)


def _grid_line(tile_side: int) -> int:
    """Width in pixels of the separating lines: thin, but visible on large tiles too."""
    return max(1, tile_side // 128)


def maps_mosaic(coefficients, *, mask=None) -> np.ndarray:
    """Lay the n*n coefficient maps out as an n x n mosaic, ready to save as an 8-bit picture.

    Tile (x, y) shows channel ``x*n + y``: the DC map at the top left, higher row
    frequencies downward, higher column frequencies rightward. The DC tile is a
    thumbnail of the image, scaled linearly from its minimum to its maximum; every
    other tile shows ``log(1 + |c|)`` on one scale shared by all of them (0 black,
    the largest AC magnitude white), so the tiles can be compared: the fading
    toward the bottom right is the energy compaction that compression relies on.
    Tiles are separated by white lines.

    Parameters
    ----------
    coefficients : ndarray, shape (n*n, rows, columns)
    mask : array_like of bool, shape (n*n,), optional
        Channels to show; the others are drawn as mid-gray tiles (zeroed by compression).

    Returns
    -------
    picture : ndarray of uint8, shape (n*rows + (n+1)*line, n*columns + (n+1)*line)
    """
    channels, rows, cols = coefficients.shape
    n = math.isqrt(channels)
    line = _grid_line(min(rows, cols))
    picture = np.full((n * rows + (n + 1) * line, n * cols + (n + 1) * line), GRID_VALUE, np.uint8)
    # Largest AC magnitude, one channel at a time: never a full-size float copy of the maps.
    ac_peak = max(
        (float(np.abs(coefficients[c]).max()) for c in range(1, channels) if mask is None or mask[c]),
        default=0.0,
    )
    ac_scale = 255.0 / np.log1p(ac_peak) if ac_peak > 0 else 0.0
    for channel in range(channels):
        x, y = divmod(channel, n)
        top, left = line + x * (rows + line), line + y * (cols + line)
        tile = picture[top : top + rows, left : left + cols]
        if mask is not None and not mask[channel]:
            tile[...] = 128
            continue
        if channel == 0:
            shown = np.array(coefficients[0], dtype=np.float64)
            shown -= shown.min()
            peak = shown.max()
            scale = 255.0 / peak if peak > 0 else 0.0
        else:
            shown = np.log1p(np.abs(coefficients[channel], dtype=np.float64))
            scale = ac_scale
        np.multiply(shown, scale, out=shown)
        np.rint(shown, out=tile, casting="unsafe")
    return picture


def kernels_picture(block_size: int = DEFAULT_BLOCK_SIZE, *, tile: int = 64) -> np.ndarray:
    """Draw the n*n kernels enlarged, in the same n x n layout as :func:`maps_mosaic`.

    Each kernel value v is shown as gray ``128 + 127 v / max|K|``: zero is mid-gray,
    positive values light, negative dark. Each kernel pixel becomes a square of
    about ``tile / n`` screen pixels. The kernels are separated by blue lines.

    Returns
    -------
    picture : ndarray of uint8, shape (side, side, 3), RGB
    """
    n = check_block_size(block_size)
    kernels = dct_kernels(n)
    scale = max(1, tile // n)
    side = n * scale
    line = 4
    peak = np.abs(kernels).max()
    picture = np.empty((n * side + (n + 1) * line,) * 2 + (3,), np.uint8)
    picture[...] = KERNEL_GRID_RGB
    for channel in range(n * n):
        x, y = divmod(channel, n)
        gray = np.rint(128 + 127 * kernels[channel] / peak).astype(np.uint8)
        top, left = line + x * (side + line), line + y * (side + line)
        enlarged = np.kron(gray, np.ones((scale, scale), np.uint8))
        picture[top : top + side, left : left + side] = enlarged[:, :, None]
    return picture
