"""Pictures for people: the coefficient maps as a mosaic, the kernels enlarged, the error with its scale.

Each picture a command writes is a raw pixel grid with labels in a margin around
it: the raw grid (:func:`maps_mosaic`, the kernels, the error picture) sits in it
pixel for pixel, so the labels never cover data. The labels are drawn with Pillow
in DejaVu Sans, the font matplotlib ships, found without importing matplotlib: a
``transform`` run writes its maps picture without paying matplotlib's start-up.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ..kernels import dct_kernels
from ..limits import DEFAULT_BLOCK_SIZE
from .._validation import check_block_size

GRID_VALUE = 255
#: Separator color of the kernels picture: blue, so it cannot be mistaken for a kernel value.
KERNEL_GRID_RGB = (40, 90, 200)
#: The two grays of the diagonal stripes that mark a dropped map: a pattern no map has.
HATCH_GRAYS = (200, 90)
PAPER, INK = 255, 0


def _grid_line(tile_side: int) -> int:
    """Width in pixels of the separating lines: thin, but visible on large tiles too."""
    return max(1, tile_side // 128)


def _hatch(rows: int, cols: int) -> np.ndarray:
    """Diagonal stripes, light with dark lines a third as wide, about 12 stripes across the tile."""
    period = max(3, min(rows, cols) // 12)
    i, j = np.ogrid[:rows, :cols]
    dark = (i + j) % period < max(1, period // 3)
    return np.where(dark, HATCH_GRAYS[1], HATCH_GRAYS[0]).astype(np.uint8)


def _mosaic(coefficients, mask, dc_range=None):
    """The raw mosaic, and the numbers its caption names: the DC range and the largest AC magnitude."""
    from skimage.util import montage

    channels, rows, cols = coefficients.shape
    n = math.isqrt(channels)
    line = _grid_line(min(rows, cols))
    # Largest AC magnitude, one channel at a time: never a full-size float copy of the maps.
    ac_peak = max(
        (float(np.abs(coefficients[c]).max()) for c in range(1, channels) if mask is None or mask[c]),
        default=0.0,
    )
    ac_scale = 255.0 / np.log1p(ac_peak) if ac_peak > 0 else 0.0
    window, dc_range = dc_range, None
    hatch = None  # one pattern for every dropped map
    tiles = np.empty((channels, rows, cols), np.uint8)
    for channel in range(channels):
        if mask is not None and not mask[channel]:
            hatch = _hatch(rows, cols) if hatch is None else hatch
            tiles[channel] = hatch
            continue
        if channel == 0:
            shown = np.array(coefficients[0], dtype=np.float64)
            if window is None:
                low = shown.min()
                peak = shown.max() - low
            else:
                low, peak = window[0], window[1] - window[0]
                np.clip(shown, window[0], window[1], out=shown)
            shown -= low
            dc_range = (float(low), float(low + peak))
            scale = 255.0 / peak if peak > 0 else 0.0
        else:
            shown = np.log1p(np.abs(coefficients[channel], dtype=np.float64))
            scale = ac_scale
        np.multiply(shown, scale, out=shown)
        np.rint(shown, out=tiles[channel], casting="unsafe")
    picture = montage(tiles, fill=GRID_VALUE, grid_shape=(n, n), padding_width=line)
    return picture, dc_range, ac_peak


def maps_mosaic(coefficients, *, mask=None) -> np.ndarray:
    """Lay the n*n coefficient maps out as an n x n mosaic, ready to save as an 8-bit picture.

    Tile (x, y) shows channel ``x*n + y``: the DC map at the top left, higher row
    frequencies downward, higher column frequencies rightward. The DC tile is a
    thumbnail of the image, scaled linearly from its minimum to its maximum; every
    other tile shows ``log(1 + |c|)`` on one scale shared by all of them (0 black,
    the largest AC magnitude white), so the tiles can be compared: the fading
    toward the bottom right is the energy compaction that compression relies on.
    Tiles are separated by white lines (``skimage.util.montage``). This is the raw
    grid without labels; :func:`maps_picture` frames it with them.

    Parameters
    ----------
    coefficients : ndarray, shape (n*n, rows, columns)
    mask : array_like of bool, shape (n*n,), optional
        Channels to show; the others (zeroed by compression) are drawn hatched with
        diagonal stripes of the two grays :data:`HATCH_GRAYS`, and left out of the
        shared AC scale.

    Returns
    -------
    picture : ndarray of uint8, shape (n*rows + (n+1)*line, n*columns + (n+1)*line)

    Examples
    --------
    >>> import numpy as np
    >>> maps_mosaic(np.ones((16, 5, 3))).shape  # 4 x 4 tiles of 5 x 3, lines of 1
    (25, 17)
    """
    return _mosaic(coefficients, mask)[0]


@functools.lru_cache(maxsize=16)
def _font(size: int):
    """DejaVu Sans from matplotlib's data (it has −, →, ↓, ≥), or Pillow's own font if that is missing."""
    import importlib.util
    from pathlib import Path

    from PIL import ImageFont

    spec = importlib.util.find_spec("matplotlib")  # finds the package without importing it
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        if path.is_file():
            return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size)


def _number(value: float) -> str:
    """Four significant digits, and whole numbers from 1000 up, never 1.2e+04 for a 16-bit error."""
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _font_size(height: int, width: int) -> int:
    """Text grows with the picture, so that it stays readable when a viewer fits the picture to a screen."""
    return max(12, round(math.sqrt(height * width) / 36))


def _text_width(font, text: str) -> int:
    left, _, right, _ = font.getbbox(text)
    return int(math.ceil(right - left))


def _line_height(font) -> int:
    ascent, descent = font.getmetrics()
    return ascent + descent


def _strip(height: int, width: int, channels: int, texts, font):
    """A blank strip of paper with ``(x, y, text, anchor)`` texts drawn in ink, as an array.

    Drawn once per process for the same arguments (kept, read only): the tile numbers and
    axis titles of the maps pictures of a batch are the same for every file of one
    size, and drawing their text was a tenth of a small file's time.
    """
    return _kept_strip(height, width, channels, tuple(map(tuple, texts)), font)


@functools.lru_cache(maxsize=256)
def _kept_strip(height: int, width: int, channels: int, texts, font) -> np.ndarray:
    strip = np.asarray(_draw_strip(height, width, channels, texts, font))
    strip.flags.writeable = False
    return strip


def _draw_strip(height: int, width: int, channels: int, texts, font):
    from PIL import Image, ImageDraw

    mode = "L" if channels == 1 else "RGB"
    paper, ink = (PAPER, INK) if channels == 1 else ((PAPER,) * 3, (INK,) * 3)
    strip = Image.new(mode, (max(1, width), max(1, height)), paper)
    draw = ImageDraw.Draw(strip)
    for x, y, text, anchor in texts:
        draw.text((x, y), text, fill=ink, font=font, anchor=anchor)
    return strip


def _every(count: int, pitch: float, needed: float) -> range:
    """Indices of the tiles to label: all when labels fit, else every k-th so that they do not touch."""
    return range(0, count, max(1, math.ceil(needed / pitch)))


def _framed(raw, *, row_centers, col_centers, caption, font_size=None):
    """``raw`` in a margin: column numbers above, row numbers left, axis names, caption lines below.

    ``row_centers`` and ``col_centers`` are the tiles' centers in ``raw``'s pixels.
    Returns the framed picture and the (top, left) corner at which ``raw`` sits unchanged.
    """
    raw = np.asarray(raw)
    height, width = raw.shape[:2]
    channels = 1 if raw.ndim == 2 else raw.shape[2]
    font = _font(font_size or _font_size(height, width))
    line = _line_height(font)
    gap = max(2, line // 3)
    n = len(row_centers)

    # Tile numbers, every k-th when the tiles are narrower than the numbers.
    number_width = _text_width(font, str(n - 1))
    cols_shown = _every(n, col_centers[1] - col_centers[0] if n > 1 else width, number_width + gap)
    rows_shown = _every(n, row_centers[1] - row_centers[0] if n > 1 else height, line)

    x_title, y_title, corner = "row frequency x →", "column frequency y →", "x \\ y"
    # The x title runs downward beside the row numbers, as a plot's y label does, when
    # the picture is tall enough for it; the corner's "x \\ y" names the rows anyway.
    title = np.rot90(_strip(line, _text_width(font, x_title) + 2, channels, [(0, 0, x_title, "la")], font), -1)
    title_fits = title.shape[0] <= height
    numbers_left = gap + (line + gap if title_fits else 0)
    left = max(numbers_left + number_width, gap + _text_width(font, corner) + number_width // 2) + gap
    top = gap + 2 * line + gap  # title, numbers
    y_title_width = _text_width(font, y_title)
    caption_width = max((_text_width(font, text) for text in caption), default=0)
    total_width = max(left + max(width, y_title_width) + gap, gap + caption_width + gap)
    caption_top = top + height + line // 2 + gap  # the last row's number may reach below the picture
    total_height = caption_top + len(caption) * line + gap

    canvas = np.empty((total_height, total_width) + ((channels,) if channels > 1 else ()), np.uint8)
    canvas[...] = PAPER
    canvas[top : top + height, left : left + width] = raw

    above = [(left + max(width, y_title_width) / 2, gap, y_title, "mt"),
             (left - gap - number_width / 2, gap + 2 * line, corner, "rd")]
    above += [(left + col_centers[y], gap + 2 * line, str(y), "md") for y in cols_shown]
    canvas[:top] = np.asarray(_strip(top, total_width, channels, above, font))
    beside = [(left - gap, row_centers[x], str(x), "rm") for x in rows_shown]
    canvas[top:caption_top, :left] = np.asarray(_strip(caption_top - top, left, channels, beside, font))
    if title_fits:
        title_top = top + (height - title.shape[0]) // 2
        canvas[title_top : title_top + title.shape[0], gap : gap + title.shape[1]] = title
    below = [(gap, i * line, text, "la") for i, text in enumerate(caption)]
    canvas[caption_top : caption_top + len(caption) * line] = np.asarray(
        _strip(len(caption) * line, total_width, channels, below, font))
    return canvas, (top, left)


def maps_picture(coefficients, *, mask=None, dc_range=None, partition=None) -> np.ndarray:
    """:func:`maps_mosaic` with its labels: what ``<stem>_maps.png`` holds.

    Above the mosaic, each tile column's frequency y; left of it, each tile row's
    frequency x (every k-th when the tiles are narrower than the numbers); below
    it, how the grays read: the DC tile linear between the DC map's minimum and
    maximum (both given), the others ``log(1 + |c|)`` from 0 to the largest AC
    magnitude (given), and, with a mask, that hatched tiles are the dropped maps.
    The mosaic sits in it unchanged, pixel for pixel.

    Parameters
    ----------
    coefficients : ndarray, shape (n*n, rows, columns)
        Or any object with that ``shape`` whose ``coefficients[c]`` is channel c's map
        (``compress`` decodes one channel at a time).
    mask : array_like of bool, shape (n*n,), optional
        As for :func:`maps_mosaic`.
    dc_range : (float, float), optional
        DC values drawn black and white (``compress``: n times the data range, the DC
        of blocks at its low and high ends); default the DC map's minimum and maximum.
    partition : ndarray of int, shape (4 R, 4 C), optional
        Block sizes chosen per region (:attr:`dctconv.codec._partition.Partition.sizes`):
        drawn right of the mosaic, one square per 4 x 4 cell, 16 x 16 blocks white, 8 x 8
        gray, 4 x 4 dark (:data:`PARTITION_GRAYS`); the maps are then the 16 x 16 blocks'.

    Returns
    -------
    picture : ndarray of uint8, shape (H, W), gray

    Examples
    --------
    >>> import numpy as np
    >>> maps = np.ones((16, 32, 32))
    >>> picture = maps_picture(maps)  # the 133 x 133 mosaic, and a margin for the labels
    >>> picture.dtype, picture.shape[0] > 133, picture.shape[1] > 133
    (dtype('uint8'), True, True)
    """
    picture = _labeled_maps(coefficients, mask, dc_range, partition is not None)[0]
    return picture if partition is None else _with_partition_panel(picture, partition)


#: Grays of the partition panel of :func:`maps_picture`: block side -> gray.
PARTITION_GRAYS = {16: 235, 8: 150, 4: 55}


def _with_partition_panel(picture: np.ndarray, partition) -> np.ndarray:
    """``picture`` with the partition drawn right of it, as large as fits its height, on white."""
    sizes = np.asarray(partition)
    grays = np.zeros(sizes.shape, np.uint8)
    for side, value in PARTITION_GRAYS.items():
        grays[sizes == side] = value
    scale = max(1, (picture.shape[0] - 16) // sizes.shape[0])
    panel = grays.repeat(scale, axis=0).repeat(scale, axis=1)
    height = max(picture.shape[0], panel.shape[0] + 16)
    out = np.full((height, picture.shape[1] + 16 + panel.shape[1] + 8), 255, np.uint8)
    out[: picture.shape[0], : picture.shape[1]] = picture
    top = (height - panel.shape[0]) // 2
    out[top : top + panel.shape[0], picture.shape[1] + 16 : picture.shape[1] + 16 + panel.shape[1]] = panel
    return out


def _labeled_maps(coefficients, mask, dc_range=None, partitioned: bool = False):
    """:func:`maps_picture`'s picture, the (top, left) corner of the mosaic in it, and its caption lines."""
    picture, dc_range, ac_peak = _mosaic(coefficients, mask, dc_range)
    channels, rows, cols = coefficients.shape
    n = math.isqrt(channels)
    line = _grid_line(min(rows, cols))
    caption = ["tile (x, y): the map of frequency x down, y across; one pixel per block"]
    if dc_range is not None:
        caption.append(f"(0, 0), DC: linear, {_number(dc_range[0])} black to {_number(dc_range[1])} white")
    if ac_peak > 0:
        caption.append(f"others: log(1 + |c|), shared: 0 black, |c| = {_number(ac_peak)} white")
    else:
        caption.append("others: all 0 (black)")
    if mask is not None:
        kept = int(np.count_nonzero(mask))
        caption.append(f"hatched: dropped (zeroed) by compression; {kept} of {channels} maps kept")
    if partitioned:
        caption.append("these are the 16 x 16 blocks' maps (0 elsewhere); right: the block sizes chosen per "
                       "region, white 16 x 16, gray 8 x 8, dark 4 x 4")
    framed, origin = _framed(
        picture,
        row_centers=[line + x * (rows + line) + rows / 2 for x in range(n)],
        col_centers=[line + y * (cols + line) + cols / 2 for y in range(n)],
        caption=caption,
    )
    return framed, origin, caption


def kernels_picture(block_size: int = DEFAULT_BLOCK_SIZE, *, tile: int = 64) -> np.ndarray:
    """Draw the n*n kernels enlarged, in the same n x n layout as :func:`maps_mosaic`, labeled.

    Each kernel value v is shown as gray ``128 + 127 v / max|K|``: zero is mid-gray,
    positive values light, negative dark. Each kernel pixel becomes a square of
    about ``tile / n`` screen pixels. The kernels are separated by blue lines
    (``skimage.util.montage``), and framed as :func:`maps_picture` is: each kernel's
    frequency (x, y) in the margin, and below, how the grays read.

    Returns
    -------
    picture : ndarray of uint8, shape (H, W, 3), RGB

    Examples
    --------
    >>> kernels_picture(4).shape[2]
    3
    """
    return _labeled_kernels(block_size, tile)[0]


def _kernels_grid(block_size: int, tile: int) -> tuple[np.ndarray, int, int]:
    """The raw grid of enlarged kernels, the side of one kernel and the line width."""
    from skimage.util import montage

    n = check_block_size(block_size)
    kernels = dct_kernels(n)
    scale = max(1, tile // n)
    line = 4
    peak = np.abs(kernels).max()
    gray = np.rint(128 + 127 * kernels / peak).astype(np.uint8)
    enlarged = gray.repeat(scale, axis=1).repeat(scale, axis=2)
    rgb = np.repeat(enlarged[..., None], 3, axis=3)
    grid = montage(rgb, fill=KERNEL_GRID_RGB, grid_shape=(n, n), padding_width=line, channel_axis=-1)
    return grid, n * scale, line


def _labeled_kernels(block_size: int, tile: int):
    """:func:`kernels_picture`'s picture and the (top, left) corner of the kernel grid in it."""
    grid, side, line = _kernels_grid(block_size, tile)
    n = check_block_size(block_size)
    peak = float(np.abs(dct_kernels(n)).max())
    centers = [line + i * (side + line) + side / 2 for i in range(n)]
    caption = [
        f"kernel (x, y) of the {n} x {n} block DCT; the blue lines part the kernels",
        f"gray: value; 0 mid-gray, +{peak:.3g} white, −{peak:.3g} black",
    ]
    return _framed(grid, row_centers=centers, col_centers=centers, caption=caption)


def _nice_ticks(top: float) -> list[float]:
    """Round values from 0 to ``top``, 3 to 7 of them: 1, 2 or 5 times a power of ten apart."""
    if top <= 0:
        return [0.0]
    power = 10.0 ** math.floor(math.log10(top / 4))
    step = next(power * m for m in (1, 2, 5, 10) if top / (power * m) <= 6)
    return [i * step for i in range(int(top / step + 1e-9) + 1)]


def error_picture_with_legend(picture, error_scale: float, *, largest_error: float, data_range=None) -> np.ndarray:
    """The error picture with a legend strip below it that turns gray levels back into errors.

    The strip holds a gray ramp from 0 to 255 with ticks at round error values
    (gray = ``min(255, rint(|e| * error_scale))``, as
    :func:`dctconv.measure._metrics.error_picture` draws), and lines naming the white point
    and the largest error. The picture keeps its pixels at the top left corner.

    Parameters
    ----------
    picture : ndarray of uint8, shape (H, W)
        :func:`dctconv.measure._metrics.error_picture`'s picture.
    error_scale : float
        Gray values per unit of error, from the same call.
    largest_error : float
        The largest |error|, named in the legend (the ramp ends at 255 / error_scale).
    data_range : (float, float), optional
        The data range (low, high), named in the legend with the white point and the
        largest error as shares of it.

    Returns
    -------
    picture : ndarray of uint8, shape (H + legend, max(W, legend width)), gray

    Examples
    --------
    >>> import numpy as np
    >>> error = np.zeros((40, 60), np.uint8)
    >>> framed = error_picture_with_legend(error, 10.0, largest_error=30.0)
    >>> bool((framed[:40, :60] == error).all()), framed.shape[0] > 40
    (True, True)
    """
    picture = np.asarray(picture, dtype=np.uint8)
    height, width = picture.shape
    font = _font(_font_size(height, width))
    line = _line_height(font)
    gap = max(2, line // 3)
    white = 255.0 / error_scale
    at_least = "≥ " if largest_error > white else ""
    texts = [
        f"|original − reconstruction| in pixel values: gray = |error| × {error_scale:.4g}",
        f"white: {at_least}{_number(white)}" + (" (the top 1 % of errors)" if at_least else "")
        + f"; largest error {_number(largest_error)}",
    ]
    if data_range is not None:
        width_of_range = float(data_range[1]) - float(data_range[0])
        texts.append(f"data range {_number(data_range[0])} .. {_number(data_range[1])}: white is "
                     f"{100 * white / width_of_range:.3g} % of it, the largest error "
                     f"{100 * largest_error / width_of_range:.3g} %")
    ramp_width = max(width - 2 * gap, 20 * line)
    total_width = max(width, 2 * gap + ramp_width, 2 * gap + max(_text_width(font, t) for t in texts))
    ramp_width = total_width - 2 * gap
    ramp_height = line
    legend_height = gap + ramp_height + line + gap + len(texts) * line + gap

    canvas = np.full((height + legend_height, total_width), PAPER, np.uint8)
    canvas[:height, :width] = picture
    ticks = _nice_ticks(white)
    # The white end is labeled with the white point itself; round ticks that would run
    # into it, into each other or off the strip go unlabeled.
    label_top = gap + ramp_height + 2
    end = f"{at_least}{_number(white)}"
    end_left = gap + ramp_width - _text_width(font, end)
    shown, right_edge = [(gap + ramp_width, label_top, end, "rt")], -math.inf
    for value in ticks:
        x, text = gap + value * error_scale / 255 * (ramp_width - 1), f"{value:g}"
        half = _text_width(font, text) / 2
        if x - half > right_edge + gap and x + half < end_left - gap:
            shown.append((x, label_top, text, "mt"))
            right_edge = x + half
    shown += [(gap, gap + ramp_height + line + gap + i * line, text, "la") for i, text in enumerate(texts)]
    canvas[height:] = np.asarray(_strip(legend_height, total_width, 1, shown, font))
    ramp = np.rint(np.linspace(0, 255, ramp_width)).astype(np.uint8)
    canvas[height + gap : height + gap + ramp_height, gap : gap + ramp_width] = ramp
    # A thin dark frame, so that the ramp's white end stands out from the paper.
    frame_rows = slice(height + gap - 1, height + gap + ramp_height + 1)
    canvas[frame_rows, gap - 1] = canvas[frame_rows, gap + ramp_width] = INK
    canvas[height + gap - 1, gap - 1 : gap + ramp_width + 1] = INK
    canvas[height + gap + ramp_height, gap - 1 : gap + ramp_width + 1] = INK
    for value in ticks:
        x = gap + round(value * error_scale / 255 * (ramp_width - 1))
        canvas[height + gap + ramp_height : height + gap + ramp_height + 3, x] = INK
    return canvas
