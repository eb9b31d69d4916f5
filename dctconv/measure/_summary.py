"""The compression summary picture, drawn with Pillow: original, reconstruction, error, frequencies.

Four panels under a two-line title of the key numbers: the original and the
reconstruction in gray over the data range (the range written under their titles),
the error in the inferno colours with a colour bar in pixel values (an arrow on top
when some pixel's error is above its white point), and an n x n grid of the
frequencies: kept or dropped, or shaded by the share of the blocks in which each one
is nonzero (with its own colour bar), each cell numbered with its zigzag rank for
n <= 8. The three image panels sit side by side, or one above the other for images
more than 1.5 times wider than tall.

The picture is laid out here in pixels and drawn with Pillow and numpy. matplotlib
drew it in 0.2 s for a 64 x 64 image (a figure, its constrained layout and every
tick laid out anew), most of what ``compress`` did per small file, and its import
was most of a ``--jobs`` worker's start; this takes a few milliseconds
(docs/performance.md). The colour maps are matplotlib's (inferno, and Blues from
ColorBrewer), tabulated here so that matplotlib is not imported; the text is in
DejaVu Sans, the font matplotlib ships, as in the other pictures
(:mod:`dctconv.measure._mosaics`).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ._mosaics import _font, _line_height, _nice_ticks, _text_width

#: Longest side, in pixels, of each of the three image panels.
PANEL = 420
#: Side of the frequency grid, in pixels (rounded down to whole cells).
GRID = 280
MARGIN, GAP = 16, 24
TITLE_SIZE, HEADING_SIZE, LABEL_SIZE = 20, 17, 15
INK, PAPER, MUTED = (0, 0, 0), (255, 255, 255), (0x77, 0x77, 0x77)
#: Dropped and kept frequencies, when the grid is not shaded by share.
DROPPED_RGB, KEPT_RGB = (0xE4, 0xE4, 0xE4), (0x2B, 0x7B, 0xBA)
#: Width of the colour bars, in pixels.
BAR = 18

#: matplotlib's inferno colour map at 256 levels, RGB rounded to 8 bits (the tests
#: compare it with matplotlib's own).
_INFERNO_HEX = (
    "00000401000501010601010802010a02020c02020e03021004031204031405041706041907051b08051d09061f0a0722"
    "0b07240c08260d08290e092b10092d110a30120a32140b34150b37160b39180c3c190c3e1b0c411c0c431e0c451f0c48"
    "210c4a230c4c240c4f260c51280b53290b552b0b572d0b592f0a5b310a5c320a5e340a5f3609613809623909633b0964"
    "3d09653e0966400a67420a68440a68450a69470b6a490b6a4a0c6b4c0c6b4d0d6c4f0d6c510e6c520e6d540f6d550f6d"
    "57106e59106e5a116e5c126e5d126e5f136e61136e62146e64156e65156e67166e69166e6a176e6c186e6d186e6f196e"
    "71196e721a6e741a6e751b6e771c6d781c6d7a1d6d7c1d6d7d1e6d7f1e6c801f6c82206c84206b85216b87216b88226a"
    "8a226a8c23698d23698f24699025689225689326679526679727669827669a28659b29649d29649f2a63a02a63a22b62"
    "a32c61a52c60a62d60a82e5fa92e5eab2f5ead305dae305cb0315bb1325ab3325ab43359b63458b73557b93556ba3655"
    "bc3754bd3853bf3952c03a51c13a50c33b4fc43c4ec63d4dc73e4cc83f4bca404acb4149cc4248ce4347cf4446d04545"
    "d24644d34743d44842d54a41d74b3fd84c3ed94d3dda4e3cdb503bdd513ade5238df5337e05536e15635e25734e35933"
    "e45a31e55c30e65d2fe75e2ee8602de9612bea632aeb6429eb6628ec6726ed6925ee6a24ef6c23ef6e21f06f20f1711f"
    "f1731df2741cf3761bf37819f47918f57b17f57d15f67e14f68013f78212f78410f8850ff8870ef8890cf98b0bf98c0a"
    "f98e09fa9008fa9207fa9407fb9606fb9706fb9906fb9b06fb9d07fc9f07fca108fca309fca50afca60cfca80dfcaa0f"
    "fcac11fcae12fcb014fcb216fcb418fbb61afbb81dfbba1ffbbc21fbbe23fac026fac228fac42afac62df9c72ff9c932"
    "f9cb35f8cd37f8cf3af7d13df7d340f6d543f6d746f5d949f5db4cf4dd4ff4df53f4e156f3e35af3e55df2e661f2e865"
    "f2ea69f1ec6df1ed71f1ef75f1f179f2f27df2f482f3f586f3f68af4f88ef5f992f6fa96f8fb9af9fc9dfafda1fcffa4"
)


def _table(text: str) -> np.ndarray:
    return np.frombuffer(bytes.fromhex(text), np.uint8).reshape(-1, 3)


#: ColorBrewer's nine Blues, which matplotlib's Blues interpolates linearly.
_BLUES_KNOTS = ("f7fbff", "deebf7", "c6dbef", "9ecae1", "6baed6", "4292c6", "2171b5", "08519c", "08306b")


@functools.cache
def blues() -> np.ndarray:
    """matplotlib's Blues at 256 levels: (256, 3) uint8."""
    knots = _table("".join(_BLUES_KNOTS)).astype(np.float64)
    at = np.linspace(0, 1, 256)
    return np.rint(np.stack([np.interp(at, np.linspace(0, 1, len(knots)), knots[:, c]) for c in range(3)],
                            axis=1)).astype(np.uint8)


@functools.cache
def inferno() -> np.ndarray:
    """matplotlib's inferno at 256 levels: (256, 3) uint8."""
    return _table(_INFERNO_HEX)


#: The colours of the error panel and its colour bar, 0 at the first, the white point at the last.
ERROR_COLOURS = inferno


def colour_name(rgb) -> str:
    """A word for an RGB colour (0..255), for text that refers to it ("yellow", "white").

    From its hue, saturation and value: nearly unsaturated colours are white, gray or
    black by their value, the others named by their hue (inferno's pale yellow top,
    (252, 255, 164), is "yellow").
    """
    import colorsys

    red, green, blue = (float(c) / 255 for c in rgb)
    hue, saturation, value = colorsys.rgb_to_hsv(red, green, blue)
    if value < 0.2:
        return "black"
    if saturation < 0.15:
        return "white" if value > 0.9 else "gray"
    names = ((15, "red"), (40, "orange"), (70, "yellow"), (160, "green"), (200, "cyan"), (260, "blue"),
             (300, "purple"), (340, "magenta"), (360, "red"))
    return next(name for end, name in names if 360 * hue < end)


@functools.cache
def gray() -> np.ndarray:
    return np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)


def colored(values, lut: np.ndarray, low: float, high: float) -> np.ndarray:
    """``values`` in the colours of ``lut`` (256 levels), ``low`` the first and ``high`` the last.

    As matplotlib maps them: level ``floor(256 (v - low) / (high - low))``, clipped to
    0..255 (values outside the range get the end colours; NaN the first).
    """
    span = float(high) - float(low)
    scaled = (np.asarray(values, dtype=np.float64) - float(low)) * (256.0 / span if span > 0 else 0.0)
    np.nan_to_num(scaled, copy=False, nan=0.0)
    return lut[np.clip(np.floor(scaled), 0, 255).astype(np.intp)]


def pool_factor(shape, panel_pixels: float) -> int:
    """Largest whole factor that leaves the image at least twice ``panel_pixels`` along its longer side."""
    return max(1, int(max(shape) // (2 * panel_pixels)))


def mean_pool(picture, factor: int) -> np.ndarray:
    """Means of ``factor`` x ``factor`` pixel squares, in float64 (the last partial rows and columns dropped).

    ``skimage.measure.block_reduce`` does the work; it would pad a partial square
    with zeros and average them in, so the partial rows and columns are cut first.
    Integer pixels are summed as integers, down each square's rows and then along
    them, and divided by ``factor**2``: every sum is a whole number below 2**53, so the
    means are the same float64 numbers, in a third of the time.
    """
    picture = np.asarray(picture)
    if factor == 1:
        return picture.astype(np.float64)
    rows, cols = picture.shape[0] // factor * factor, picture.shape[1] // factor * factor
    if picture.dtype.kind in "iu" and picture.dtype.itemsize <= 4 and factor * factor <= 1 << 20:
        squares = picture[:rows, :cols].reshape(rows // factor, factor, cols)
        down = squares.sum(axis=1, dtype=np.int64)
        return down.reshape(rows // factor, cols // factor, factor).sum(axis=2) / (factor * factor)
    from skimage.measure import block_reduce

    return block_reduce(picture[:rows, :cols], (factor, factor), np.mean, func_kwargs={"dtype": np.float64})


def _shown_error(original, reconstruction, factor: int) -> tuple[np.ndarray, float]:
    """|original - reconstruction| mean-pooled by ``factor``, and its largest value before pooling.

    Computed a band of rows at a time, so that no full-size float copy is made.
    """
    height, width = original.shape
    band = factor * max(1, 512 // factor)
    shown = np.empty((height // factor, width // factor) if factor > 1 else (height, width))
    largest = 0.0
    # 8- and 16-bit errors are whole numbers: taken in int32, pooled as integers (mean_pool).
    exact = original.dtype in (np.uint8, np.uint16) and reconstruction.dtype in (np.uint8, np.uint16)
    for top in range(0, height, band):
        if exact:
            error = np.abs(original[top : top + band].astype(np.int32) - reconstruction[top : top + band])
        else:
            error = np.abs(original[top : top + band].astype(np.float64) - reconstruction[top : top + band])
        largest = max(largest, float(error.max()))
        pooled = mean_pool(error, factor)
        shown[top // factor : top // factor + len(pooled)] = pooled
    return shown, largest


def panel_scale(shape, side: int = PANEL) -> tuple[int, tuple[int, int]]:
    """How an image of ``shape`` (after :func:`pool_factor`'s pooling) fills a panel of ``side`` pixels.

    Returns ``(k, (rows, columns))``: an image no longer than ``side`` is enlarged k
    times (each pixel a k x k square, k >= 1, the largest that fits); a longer one
    (k = 0) is averaged down to ``(rows, columns)`` with its longer side ``side``.
    """
    rows, cols = shape
    longest = max(rows, cols, 1)
    if longest <= side:
        k = side // longest
        return k, (rows * k, cols * k)
    return 0, (max(1, round(rows * side / longest)), max(1, round(cols * side / longest)))


def _panel(values, lut, low, high) -> np.ndarray:
    """``values`` coloured and brought to the panel's size (:func:`panel_scale`): RGB uint8."""
    k, (rows, cols) = panel_scale(values.shape)
    if k:
        return colored(values, lut, low, high).repeat(k, axis=0).repeat(k, axis=1)
    from PIL import Image

    # Averaged in value, then coloured, as matplotlib's antialiasing does.
    shrunk = Image.fromarray(np.asarray(values, dtype=np.float32)).resize((cols, rows), Image.Resampling.BOX)
    return colored(np.asarray(shrunk), lut, low, high)


#: Texts up to this long are rendered once per process and kept (tick labels, titles,
#: the zigzag numbers: the same on every picture of a batch); longer ones, such as the
#: title with a file's numbers, each time.
_KEPT_TEXT = 40


def _render(text: str, size: int, anchor: str) -> tuple[np.ndarray, int, int]:
    """``text``'s coverage (uint8, 255 = ink) and its top left corner relative to the anchor point."""
    from PIL import Image, ImageDraw

    font = _font(size)
    left, top, right, bottom = font.getbbox(text, anchor=anchor)
    strip = Image.new("L", (max(1, right - left), max(1, bottom - top)), 0)
    ImageDraw.Draw(strip).text((-left, -top), text, fill=255, font=font, anchor=anchor)
    return np.asarray(strip), left, top


_kept_render = functools.lru_cache(maxsize=2048)(_render)


def _glyphs(text: str, size: int, anchor: str) -> tuple[np.ndarray, int, int]:
    return (_kept_render if len(text) <= _KEPT_TEXT else _render)(text, size, anchor)


@functools.lru_cache(maxsize=2048)
def _turned_glyphs(text: str, size: int) -> np.ndarray:
    """``text``'s coverage turned to read bottom to top."""
    return np.ascontiguousarray(np.rot90(_render(text, size, "la")[0]))


@functools.lru_cache(maxsize=2048)
def _width(text: str, size: int) -> int:
    return _text_width(_font(size), text)


def _ink(page, top: int, left: int, coverage, fill) -> None:
    """Blend ``fill`` into ``page`` where ``coverage`` (its top left corner at ``top``, ``left``) says."""
    rows, cols = coverage.shape
    top_cut, left_cut = max(0, -top), max(0, -left)
    bottom, right = min(page.shape[0], top + rows), min(page.shape[1], left + cols)
    if bottom <= top + top_cut or right <= left + left_cut:
        return
    coverage = coverage[top_cut : bottom - top, left_cut : right - left, None].astype(np.uint16)
    region = page[top + top_cut : bottom, left + left_cut : right]
    blended = np.asarray(fill, np.uint16) * coverage + region * (255 - coverage) + 127
    region[...] = blended // 255


class _Drawing:
    """Blocks of pixels and texts placed on a white page, drawn once the page's size is known."""

    def __init__(self):
        self.blocks = []  # (top, left, RGB array, framed)
        self.texts = []  # (x, y, text, size, fill, anchor)
        self.turned = []  # (x, y, text, size): read bottom to top
        self.arrows = []  # (apex top, base row, left, right, fill)
        self.width = self.height = 0

    def _reach(self, bottom, right) -> None:
        self.height, self.width = max(self.height, math.ceil(bottom)), max(self.width, math.ceil(right))

    def block(self, top: int, left: int, pixels, *, frame: bool = False) -> None:
        self.blocks.append((top, left, pixels, frame))
        self._reach(top + pixels.shape[0] + 1, left + pixels.shape[1] + 1)

    def text(self, x, y, text: str, size: int, *, anchor: str = "la", fill=INK) -> tuple[float, float]:
        """Draw ``text``; returns its width and line height."""
        width, line = _width(text, size), _line_height(_font(size))
        self.texts.append((x, y, text, size, fill, anchor))
        left = x - (width if anchor[0] == "r" else width / 2 if anchor[0] == "m" else 0)
        self._reach(y + line, left + width)
        return width, line

    def turned_text(self, x, y, text: str, size: int) -> None:
        """``text`` read bottom to top, its middle at (x, y)."""
        self.turned.append((x, y, text, size))
        self._reach(y + _width(text, size) / 2, x + _line_height(_font(size)) / 2)

    def arrow(self, top: int, base: int, left: int, right: int, fill) -> None:
        """A triangle pointing up: its apex at row ``top``, its base row ``base`` from ``left`` to ``right``."""
        self.arrows.append((top, base, left, right, fill))

    def pixels(self) -> np.ndarray:
        page = np.full((self.height + MARGIN, self.width + MARGIN, 3), 255, np.uint8)
        for top, left, pixels, frame in self.blocks:
            rows, cols = pixels.shape[:2]
            page[top : top + rows, left : left + cols] = pixels
            if frame:  # one dark pixel around it, as a plot's axes have
                page[top - 1, left - 1 : left + cols + 1] = INK
                page[top + rows, left - 1 : left + cols + 1] = INK
                page[top - 1 : top + rows + 1, left - 1] = INK
                page[top - 1 : top + rows + 1, left + cols] = INK
        for top, base, left, right, fill in self.arrows:
            middle, half = (left + right) / 2, (right - left) / 2
            for row in range(top, base + 1):
                reach = half * (row - top) / max(1, base - top)
                first, last = round(middle - reach), round(middle + reach)
                page[row, first : last + 1] = fill
                page[row, [first, last]] = INK
            page[base, left : right + 1] = INK
        for x, y, text, size in self.turned:
            coverage = _turned_glyphs(text, size)
            _ink(page, round(y - coverage.shape[0] / 2), round(x - coverage.shape[1] / 2), coverage, INK)
        for x, y, text, size, fill, anchor in self.texts:
            coverage, left, top = _glyphs(text, size, anchor)
            _ink(page, round(y) + top, round(x) + left, coverage, fill)
        return page


def _error_bar(drawing: _Drawing, top: int, left: int, height: int, *, white: float, extend: bool) -> None:
    """The error panel's colour bar, 0 at the bottom to ``white`` at the top, with its ticks and label.

    The top ``BAR`` pixels hold the arrow, drawn when some error is above ``white``.
    """
    length = max(2, height - BAR)
    bar_top = top + BAR
    ramp = ERROR_COLOURS()[np.rint(np.linspace(255, 0, length)).astype(np.intp)]  # the white point at the top
    drawing.block(bar_top, left, np.repeat(ramp[:, None], BAR, axis=1), frame=True)
    if extend:
        drawing.arrow(top, bar_top - 2, left - 1, left + BAR, ERROR_COLOURS()[-1])
    label_font = _font(LABEL_SIZE)
    line = _line_height(label_font)
    widest, last = 0, math.inf
    for value in _nice_ticks(white):
        y = bar_top + (length - 1) * (1 - value / white)
        drawing.block(round(y), left + BAR + 1, np.zeros((1, 4, 3), np.uint8))
        if last - y >= line:  # labels that would run into the one below go unlabeled
            width, _ = drawing.text(left + BAR + 8, y, f"{value:g}", LABEL_SIZE, anchor="lm")
            widest, last = max(widest, width), y
    drawing.turned_text(left + BAR + 8 + widest + 6 + line / 2, bar_top + length / 2, "error (pixel values)",
                        LABEL_SIZE)


def _bar_width() -> int:
    """Room the error colour bar takes beside its panel, tick labels and label included."""
    font = _font(LABEL_SIZE)
    return 10 + BAR + 8 + _width("0.0000", LABEL_SIZE) + 6 + _line_height(font)


def _zigzag_ranks(block_size: int) -> np.ndarray:
    from ..codec._zigzag import zigzag_order

    ranks = np.empty(block_size * block_size, dtype=np.int64)
    ranks[zigzag_order(block_size)] = np.arange(block_size * block_size)
    return ranks.reshape(block_size, block_size)


def _frequency_grid(drawing: _Drawing, top: int, left: int, kept, share) -> None:
    """The n x n grid of frequencies with its title, axes, zigzag numbers and (with ``share``) colour bar."""
    n = kept.shape[0]
    cell = max(2, GRID // n)
    side = n * cell
    label, heading = _font(LABEL_SIZE), _font(HEADING_SIZE)
    line, heading_line = _line_height(label), _line_height(heading)
    if share is None:
        shade = kept.astype(float)
        colours = np.where(kept[..., None], np.array(KEPT_RGB, np.uint8), np.array(DROPPED_RGB, np.uint8))
        titles = [f"kept frequencies: {int(kept.sum())} of {n * n}"]
    else:
        shade = share
        colours = colored(share, blues(), 0.0, 1.0)
        titles = ["nonzero frequencies", "(share of blocks where each is nonzero)"]
    x_label = ["column frequency y"] + (["(numbers: zigzag order)"] if n <= 8 else [])
    ticks = range(n) if n <= 8 else range(0, n, max(1, n // 4))
    number_width = _width(str(n - 1), LABEL_SIZE)
    grid_left = left + line + 6 + number_width + 6
    center = grid_left + side / 2
    y = top
    for text in titles:
        drawing.text(center, y, text, HEADING_SIZE, anchor="ma")
        y += heading_line
    y += 6
    if share is not None:  # the share's colour bar goes below the grid: the x axis on top
        for text in x_label:
            drawing.text(center, y, text, LABEL_SIZE, anchor="ma")
            y += line
        for j in ticks:
            drawing.text(grid_left + (j + 0.5) * cell, y, str(j), LABEL_SIZE, anchor="ma")
        y += line + 4
    grid_top = y
    grid = colours.repeat(cell, axis=0).repeat(cell, axis=1)
    if n <= 16:  # white lines between the cells
        for k in range(1, n):
            grid[k * cell - 1 : k * cell + 1] = PAPER
            grid[:, k * cell - 1 : k * cell + 1] = PAPER
    drawing.block(grid_top, grid_left, grid, frame=True)
    if n <= 8:
        ranks = _zigzag_ranks(n)
        size = 17 if n <= 4 else 13
        for i in range(n):
            for j in range(n):
                drawing.text(grid_left + (j + 0.5) * cell, grid_top + (i + 0.5) * cell, str(ranks[i, j] + 1), size,
                             anchor="mm", fill=PAPER if shade[i, j] > 0.5 else MUTED)
    for i in ticks:
        drawing.text(grid_left - 6, grid_top + (i + 0.5) * cell, str(i), LABEL_SIZE, anchor="rm")
    drawing.turned_text(left + line / 2, grid_top + side / 2, "row frequency x", LABEL_SIZE)
    y = grid_top + side + 4
    if share is None:
        for j in ticks:
            drawing.text(grid_left + (j + 0.5) * cell, y, str(j), LABEL_SIZE, anchor="ma")
        y += line
        for text in x_label:
            drawing.text(center, y, text, LABEL_SIZE, anchor="ma")
            y += line
        return
    y += 10
    bar_length = round(0.8 * side)
    bar_left = round(center - bar_length / 2)
    ramp = blues()[np.rint(np.linspace(0, 255, bar_length)).astype(np.intp)]
    drawing.block(y, bar_left, np.repeat(ramp[None], 12, axis=0), frame=True)
    y += 12 + 1
    for value in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0):
        x = bar_left + value * (bar_length - 1)
        drawing.block(y, round(x), np.zeros((4, 1, 3), np.uint8))
        drawing.text(x, y + 5, f"{value:.1f}", LABEL_SIZE, anchor="ma")
    drawing.text(center, y + 5 + line, "share of blocks", LABEL_SIZE, anchor="ma")


def summary_picture(
    original,
    reconstruction,
    *,
    channel_mask,
    error_scale: float,
    value_range: tuple[float, float],
    title: str,
    subtitle: str = "",
    channel_share=None,
    partition=None,
) -> np.ndarray:
    """Draw the summary: original, reconstruction, error map and frequency grid, under a title.

    The three pictures sit side by side, or one above the other for images more
    than 1.5 times wider than tall. Each fills a panel of :data:`PANEL` pixels along
    its longer side: a smaller image is enlarged by a whole factor (each pixel a
    square), a larger one averaged down; an image more than twice as large as its
    panel is first averaged over squares of k x k pixels (:func:`pool_factor`,
    :func:`mean_pool`), the error panel as the mean |error| of each square; the
    colour bar's arrow still tells whether any one pixel's error is above the white
    point.

    Parameters
    ----------
    original, reconstruction : ndarray, shape (H, W)
        The source pixels and the reconstruction as written (rounded, clipped).
    channel_mask : ndarray of bool, shape (n*n,)
        Kept channels; drawn as an n x n grid (row frequency down, column
        frequency right) with each cell's zigzag rank written in it for n <= 8.
    error_scale : float
        Gray values per unit of error of the error picture
        (:func:`dctconv.measure._metrics.error_picture`); the error panel uses the same
        white point, 255 / error_scale, and has a colour bar in pixel units.
    value_range : (float, float)
        Pixel values drawn black and white in the two image panels (the data range),
        written under their titles.
    title, subtitle : str
        First and second line of the picture's title: the key numbers.
    channel_share : array_like of float, shape (n*n,), optional
        Share of the blocks in which each channel holds a nonzero level; when
        given, the grid is shaded by it (with a colour bar) instead of kept/dropped.
    partition : ndarray of int, shape (ceil(H/16) * 4, ceil(W/16) * 4), optional
        Block sizes chosen per region: the side of the block covering each 4 x 4 cell
        (:attr:`dctconv.codec._partition.Partition.sizes`); the blocks' edges are drawn
        over the reconstruction in :data:`PARTITION_COLOUR` (where the panel is smaller
        than the image, as the share of each panel pixel that is an edge).

    Returns
    -------
    picture : ndarray of uint8, shape (H, W, 3)
        RGB; its size depends on the image's shape (aspect and, below
        :data:`PANEL` pixels, size) and the text, not on a large image's size.
    """
    original, reconstruction = np.asarray(original), np.asarray(reconstruction)
    height, width = original.shape
    n = math.isqrt(len(channel_mask))
    factor = pool_factor(original.shape, PANEL)
    error, largest_error = _shown_error(original, reconstruction, factor)
    low, high = value_range
    white = 255.0 / error_scale if error_scale > 0 else 1.0
    window = f"(black {low:.6g}, white {high:.6g})"
    panels = [
        (_panel(mean_pool(original, factor), gray(), low, high), ["original", window]),
        (_with_partition(_panel(mean_pool(reconstruction, factor), gray(), low, high), partition, (height, width),
                         factor), ["reconstruction" if partition is None else "reconstruction and its blocks", window]),
        (_panel(error, ERROR_COLOURS(), 0.0, white), ["|original − reconstruction|"]),
    ]
    drawing = _Drawing()
    title_lines = [title] + ([subtitle] if subtitle else [])
    title_line = _line_height(_font(TITLE_SIZE))
    heading = _font(HEADING_SIZE)
    heading_line = _line_height(heading)
    top = MARGIN + len(title_lines) * title_line + GAP // 2
    titles_height = 2 * heading_line + 6
    bar = _bar_width()
    stacked = width > 1.5 * height
    x, y = MARGIN + 1, top
    for k, (pixels, names) in enumerate(panels):
        rows, cols = pixels.shape[:2]
        cell = max(cols, *(_width(name, HEADING_SIZE) for name in names))
        # Titles end where the panel starts; a one-line title sits on the second line.
        for i, name in enumerate(names):
            drawing.text(x + cell / 2, y + (2 - len(names) + i) * heading_line, name, HEADING_SIZE, anchor="ma")
        panel_top, panel_left = y + titles_height, x + (cell - cols) // 2
        rows_used = rows
        if k == 2:
            bar_height = max(rows, 6 * _line_height(_font(LABEL_SIZE)))
            _error_bar(drawing, panel_top, panel_left + cols + 10, bar_height, white=white,
                       extend=largest_error > white)
            rows_used = bar_height
        drawing.block(panel_top, panel_left, pixels, frame=True)
        if stacked:
            y = panel_top + rows_used + GAP
        else:
            x += cell + GAP
    grid_left = (drawing.width if stacked else x - GAP + bar) + GAP
    shade = None if channel_share is None else np.asarray(channel_share, dtype=float).reshape(n, n)
    _frequency_grid(drawing, top, grid_left, np.asarray(channel_mask, dtype=bool).reshape(n, n), shade)
    drawing.width = max(drawing.width, max(_width(t, TITLE_SIZE) for t in title_lines) + MARGIN)
    for i, text in enumerate(title_lines):
        drawing.text(drawing.width / 2 + MARGIN / 2, MARGIN + i * title_line, text, TITLE_SIZE, anchor="ma")
    return drawing.pixels()


#: The colour of the block edges drawn over the reconstruction (``partition``): orange, apart from every gray.
PARTITION_COLOUR = (255, 140, 0)


def _with_partition(panel: np.ndarray, partition, shape, factor: int) -> np.ndarray:
    """``panel`` (the reconstruction, RGB) with the edges of the partition's blocks drawn over it."""
    if partition is None:
        return panel
    height, width = shape
    sides = np.asarray(partition).repeat(4, axis=0).repeat(4, axis=1)[:height, :width]
    rows, cols = np.arange(height)[:, None], np.arange(width)[None, :]
    top = rows % sides == 0  # the first row of each block
    left = cols % sides == 0
    k, (panel_rows, panel_cols) = panel_scale(mean_pool(top, factor).shape)
    if k:
        # One panel pixel wide: the first of the k rows (columns) that an image row (column) becomes.
        edge = (top.repeat(k, 0).repeat(k, 1) & (np.arange(panel_rows) % k == 0)[:, None]) | (
            left.repeat(k, 0).repeat(k, 1) & (np.arange(panel_cols) % k == 0)[None, :])
        alpha = edge.astype(np.float32)
    else:
        from PIL import Image

        share = mean_pool((top | left).astype(np.float32), factor)
        alpha = np.asarray(Image.fromarray(share.astype(np.float32)).resize((panel_cols, panel_rows),
                                                                             Image.Resampling.BOX))
    alpha = (0.85 * np.clip(alpha, 0, 1))[..., None]
    return np.rint(panel * (1 - alpha) + np.array(PARTITION_COLOUR) * alpha).astype(np.uint8)


def save_summary(path, original, reconstruction, **options) -> None:
    """Write :func:`summary_picture` as a PNG (``options`` are its keyword arguments)."""
    from ..io._images import save_picture

    save_picture(path, summary_picture(original, reconstruction, **options))
