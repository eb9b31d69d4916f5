"""Figures for people, drawn with matplotlib: the compression summary and the rate-distortion sweep.

matplotlib is imported inside the functions, and figures are drawn on their own
Agg canvas (``matplotlib.figure.Figure``, no pyplot), so importing this module is
cheap and plotting never touches a global backend or opens a window.
"""

from __future__ import annotations

import math

import numpy as np

#: Figures are written at this resolution; the sizes below are in inches.
DPI = 110


def _pixels(fig) -> np.ndarray:
    """Draw ``fig`` once on an Agg canvas: its pixels, RGB (H, W, 3) uint8.

    ``Figure.savefig`` draws a figure with a layout engine twice (once without
    rendering, to lay it out) and writes RGBA with zlib's default search; one draw,
    no alpha (the figures are opaque) and the PNG options of the other pictures
    (:data:`dctconv.io._images.PNG_OPTIONS`, :func:`dctconv.io._images.save_picture`) give
    the same pixels in about two thirds of the time: most of the summary's cost for
    a small image (docs/performance.md).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.array(np.asarray(canvas.buffer_rgba())[..., :3])


def save_summary(path, original, reconstruction, **options) -> None:
    """Write :func:`summary_picture` as a PNG (``options`` are its keyword arguments)."""
    from ..io._images import save_picture

    save_picture(path, summary_picture(original, reconstruction, **options))


def _zigzag_ranks(block_size: int) -> np.ndarray:
    from ..codec._zigzag import zigzag_order

    ranks = np.empty(block_size * block_size, dtype=np.int64)
    ranks[zigzag_order(block_size)] = np.arange(block_size * block_size)
    return ranks.reshape(block_size, block_size)


def pool_factor(shape, panel_pixels: float) -> int:
    """Largest whole factor that leaves the image at least twice ``panel_pixels`` along its longer side."""
    return max(1, int(max(shape) // (2 * panel_pixels)))


def mean_pool(picture, factor: int) -> np.ndarray:
    """Means of ``factor`` x ``factor`` pixel squares, in float64 (the last partial rows and columns dropped).

    ``skimage.measure.block_reduce`` does the work; it would pad a partial square
    with zeros and average them in, so the partial rows and columns are cut first.
    """
    from skimage.measure import block_reduce

    picture = np.asarray(picture)
    if factor == 1:
        return picture.astype(np.float64)
    rows, cols = picture.shape[0] // factor * factor, picture.shape[1] // factor * factor
    return block_reduce(picture[:rows, :cols], (factor, factor), np.mean, func_kwargs={"dtype": np.float64})


def _shown_error(original, reconstruction, factor: int) -> tuple[np.ndarray, float]:
    """|original - reconstruction| mean-pooled by ``factor``, and its largest value before pooling.

    Computed a band of rows at a time, so that no full-size float copy is made.
    """
    height, width = original.shape
    band = factor * max(1, 512 // factor)
    shown = np.empty((height // factor, width // factor) if factor > 1 else (height, width))
    largest = 0.0
    for top in range(0, height, band):
        error = np.abs(original[top : top + band].astype(np.float64) - reconstruction[top : top + band])
        largest = max(largest, float(error.max()))
        pooled = mean_pool(error, factor)
        shown[top // factor : top // factor + len(pooled)] = pooled
    return shown, largest


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
) -> np.ndarray:
    """Draw the summary figure: original, reconstruction, error map and kept-frequency mask.

    The three pictures sit side by side, or one above the other for images more
    than 1.5 times wider than tall, so that each stays large enough to see. An
    image more than twice as large as its panel is shown averaged over squares of
    k x k pixels (:func:`pool_factor`, :func:`mean_pool`), the error panel as the
    mean |error| of each square; the colorbar's arrow still tells whether any one
    pixel's error is above the white point.

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
        white point, 255 / error_scale, and has a colorbar in pixel units.
    value_range : (float, float)
        Pixel values drawn black and white in the two image panels (the data range),
        written under their titles.
    title, subtitle : str
        First and second line of the figure title: the key numbers.
    channel_share : array_like of float, shape (n*n,), optional
        Share of the blocks in which each channel holds a nonzero level; when
        given, the grid is shaded by it (with a colorbar) instead of kept/dropped.

    Returns
    -------
    picture : ndarray of uint8, shape (H, W, 3)
        The figure's pixels (RGB), the same for any image size: the figure is laid
        out in inches at :data:`DPI`.
    """
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure

    original, reconstruction = np.asarray(original), np.asarray(reconstruction)
    height, width = original.shape
    n = math.isqrt(len(channel_mask))

    # Equal image panels with the image's aspect; the error colorbar gets its own
    # narrow column so that it does not shrink the error panel.
    if width > 1.5 * height:
        panel_w = 8.0
        panel_h = max(panel_w * height / width, 1.0)
        fig = Figure(figsize=(panel_w + 5.0, 3 * panel_h + 2.0), dpi=DPI, layout="constrained")
        grid = fig.add_gridspec(3, 3, width_ratios=[panel_w, 0.2, 3.6])
        cells = [grid[0, 0], grid[1, 0], grid[2, 0]]
        bar_cell, mask_cell = grid[2, 1], grid[:, 2]
    else:
        panel_h = 4.2
        panel_w = min(max(panel_h * width / height, 2.2), 9.0)
        fig = Figure(figsize=(3 * panel_w + 4.6, panel_h + 1.5), dpi=DPI, layout="constrained")
        grid = fig.add_gridspec(1, 5, width_ratios=[panel_w, panel_w, panel_w, 0.18, 3.0])
        cells = [grid[0, 0], grid[0, 1], grid[0, 2]]
        bar_cell, mask_cell = grid[0, 3], grid[0, 4]
    # An image much larger than its panel is averaged down before matplotlib sees it:
    # its own antialiasing averages too, but on full-size float copies (seconds and
    # hundreds of MiB for a 4096 x 4096 image).
    factor = pool_factor(original.shape, max(panel_w, panel_h) * DPI)
    error, largest_error = _shown_error(original, reconstruction, factor)
    low, high = value_range
    show = dict(cmap="gray", vmin=low, vmax=high, interpolation="antialiased")
    white = 255.0 / error_scale if error_scale > 0 else 1.0
    window = f"\n(black {low:.6g}, white {high:.6g})"
    panels = [
        (mean_pool(original, factor), show, "original" + window),
        (mean_pool(reconstruction, factor), show, "reconstruction" + window),
        (error, dict(cmap="inferno", vmin=0, vmax=white, interpolation="antialiased"),
         "|original − reconstruction|"),
    ]
    for cell, (picture, options, name) in zip(cells, panels):
        ax = fig.add_subplot(cell)
        drawn = ax.imshow(picture, **options)
        ax.set_title(name, fontsize=12)
        ax.set_xticks([])
        ax.set_yticks([])
    bar = fig.colorbar(drawn, cax=fig.add_subplot(bar_cell), extend="max" if largest_error > white else "neither")
    bar.set_label("error (pixel values)", fontsize=10)

    ax = fig.add_subplot(mask_cell)
    kept = np.asarray(channel_mask, dtype=bool).reshape(n, n)
    if channel_share is None:
        shade = kept.astype(float)
        ax.imshow(shade, cmap=ListedColormap(["#e4e4e4", "#2b7bba"]), vmin=0, vmax=1)
        ax.set_title(f"kept frequencies: {int(kept.sum())} of {n * n}", fontsize=12)
    else:
        shade = np.asarray(channel_share, dtype=float).reshape(n, n)
        drawn = ax.imshow(shade, cmap="Blues", vmin=0, vmax=1)
        ax.set_title("nonzero frequencies\n(share of blocks where each is nonzero)", fontsize=11)
        share_bar = fig.colorbar(drawn, ax=ax, orientation="horizontal", shrink=0.8, pad=0.02, aspect=25)
        share_bar.set_label("share of blocks", fontsize=9)
    if n <= 8:
        ranks = _zigzag_ranks(n)
        for x in range(n):
            for y in range(n):
                ax.text(y, x, str(ranks[x, y] + 1), ha="center", va="center",
                        fontsize=11 if n <= 4 else 8, color="white" if shade[x, y] > 0.5 else "#777777")
    ticks = np.arange(n) if n <= 8 else np.arange(0, n, max(1, n // 4))
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set_xticks(np.arange(-0.5, n), minor=True)
    ax.set_yticks(np.arange(-0.5, n), minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5 if n <= 16 else 0)
    ax.tick_params(which="minor", length=0)
    ax.set_ylabel("row frequency x", fontsize=10)
    ax.set_xlabel("column frequency y" + ("\n(numbers: zigzag order)" if n <= 8 else ""), fontsize=10)
    if channel_share is not None:
        # The share colorbar sits below the grid: move the axis labels to the top.
        ax.xaxis.set_label_position("top")
        ax.xaxis.tick_top()

    fig.suptitle(title + ("\n" + subtitle if subtitle else ""), fontsize=13)
    return _pixels(fig)


#: Colour, marker and point labels of each sweep curve. Labels sit on opposite sides
#: of the curves that run close together (dctconv above left, JPEG below right: at
#: n = 8 they share their quantization tables), so they do not collide.
_SWEEP_STYLE = {
    "dctconv": dict(color="#2b7bba", marker="o", labels=(10, 25, 50, 75, 90), offset=(-5, 7), ha="right"),
    "zonal": dict(color="#7a7a7a", marker="^", labels=None, offset=(6, 2), ha="left"),
    "jpeg": dict(color="#d95f02", marker="s", labels=(10, 25, 50, 75, 90), offset=(6, -12), ha="left"),
    "webp": dict(color="#1b9e77", marker="D", labels=(), offset=(0, 0), ha="left"),
    "avif": dict(color="#7570b3", marker="v", labels=(), offset=(0, 0), ha="left"),
}


def save_sweep(path, points, *, title: str, labels=None, bd_rates=None, this_file=None) -> None:
    """Write one PNG: PSNR and SSIM against bits per pixel, one line per curve of the sweep.

    Bits per pixel are on a log axis (the BD-rate compares log rates). A few points
    of the dctconv and JPEG curves carry their quality (``q50``), a few of the zonal
    curve their K; the legend, below the two panels, gives each other curve the
    BD-rates of dctconv against it.

    Parameters
    ----------
    path : str or Path
        PNG to write.
    points : sequence of dict
        Rows of the sweep (:meth:`dctconv.measure._sweep.SweepPoint.as_dict`): ``method``,
        ``keep``, ``quality``, ``bits_per_pixel``, ``psnr_db`` and ``ssim`` (None:
        not drawn).
    title : str
        Figure title.
    labels : mapping of str to str, optional
        Legend text of each method (default: the method's name).
    bd_rates : mapping of str to dict, optional
        Per other method, ``psnr_percent`` and ``ssim_percent`` (None: not computable).
    this_file : dict, optional
        ``bits_per_pixel``, ``psnr_db`` and ``ssim`` of the file the command wrote,
        drawn as a black ring.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    labels = dict(labels or {})
    bd_rates = dict(bd_rates or {})
    methods = [m for m in _SWEEP_STYLE if any(p["method"] == m for p in points)]
    methods += [m for m in dict.fromkeys(p["method"] for p in points) if m not in methods]
    fig = Figure(figsize=(13, 7.2), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, 2)
    handles = {}
    for ax, key, name in zip(axes, ("psnr_db", "ssim"), ("PSNR (dB)", "SSIM")):
        drawn = False
        for method in methods:
            style = _SWEEP_STYLE.get(method, dict(color="black", marker=".", labels=(), offset=(0, 0), ha="left"))
            rows = sorted((p for p in points if p["method"] == method and p[key] is not None),
                          key=lambda p: (p["keep"] or 0, p["quality"] or 0))
            if not rows:
                continue
            xs = [p["bits_per_pixel"] for p in rows]
            ys = [p[key] for p in rows]
            (line,) = ax.plot(xs, ys, color=style["color"], marker=style["marker"], markersize=4.5,
                              linewidth=1.6)
            handles.setdefault(method, line)
            drawn = True
            shown = style["labels"]
            if shown is None:  # the zonal curve: K at a few points
                shown = _few(max(p["keep"] for p in rows))
            for x, y, p in zip(xs, ys, rows):
                tag = p["keep"] if method == "zonal" else p["quality"]
                if tag in shown:
                    ax.annotate(f"K{tag}" if method == "zonal" else f"q{tag}", (x, y),
                                textcoords="offset points", xytext=style["offset"], ha=style["ha"],
                                fontsize=7.5, color=style["color"])
        if this_file is not None and this_file.get(key) is not None:
            (ring,) = ax.plot([this_file["bits_per_pixel"]], [this_file[key]], marker="o", markersize=13,
                              fillstyle="none", color="black", linewidth=0)
            handles.setdefault("this file", ring)
        ax.set_xscale("log")
        # Plain numbers at 1-2-5 steps: the log axis's own labels (3 x 10^-1) are hard to read.
        ax.xaxis.set_major_locator(FixedLocator([m * 10.0**e for e in range(-3, 3) for m in (1, 2, 5)]))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("bits per pixel (file size × 8 / pixels, log scale)", fontsize=11)
        ax.set_ylabel(name, fontsize=11)
        ax.grid(True, which="both", color="#e4e4e4")
        if not drawn:
            ax.text(0.5, 0.5, f"no {name} to draw\n(identical images, or too small)", ha="center",
                    va="center", transform=ax.transAxes, fontsize=11, color="#777777")
    texts = []
    for method in handles:
        if method == "this file":
            texts.append("the file written")
            continue
        text = labels.get(method, method)
        if method in bd_rates:
            rates = [bd_rates[method].get(k) for k in ("psnr_percent", "ssim_percent")]
            psnr, ssim = ("n/a" if value is None else f"{value:+.1f} %" for value in rates)
            text += f"\nBD-rate of dctconv: {psnr} (PSNR), {ssim} (SSIM)"
        texts.append(text)
    if handles:
        fig.legend(list(handles.values()), texts, loc="outside lower center", ncols=3, fontsize=9,
                   frameon=False)
    axes[0].set_title("PSNR: higher is better", fontsize=11)
    axes[1].set_title("SSIM: higher is better (1 = identical)", fontsize=11)
    fig.suptitle(title, fontsize=13)
    from ..io._images import save_picture

    save_picture(path, _pixels(fig))


def _few(count: int) -> set[int]:
    """A handful of K values worth labelling on the zonal curve: the first three, then spread out."""
    every = max(1, count // 4)
    return {1, 2, 3, count} | set(range(every, count + 1, every))


# ---------------------------------------------------------------- figure titles


def _format_bytes(size: int) -> str:
    return f"{size / 1024:.1f} kB" if size >= 1024 else f"{size} bytes"


def _settings_text(header) -> str:
    """The quantization of a compressed file's header in words: "quality 75", "step 2", "unquantized"."""
    if header.quantization == "quality":
        return f"quality {header.quality}"
    return "unquantized" if header.quantization == "none" else f"step {header.step:g}"


def sweep_title(name: str, header) -> str:
    """The sweep figure's title: the image and the block size and settings of the file written.

    ``header`` is the :class:`dctconv.codec._dctz.CodecHeader` of the compressed file.
    """
    n = header.block_size
    return f"{name}: quality against size, dctconv {n}×{n} blocks and other codecs"


def summary_titles(name: str, header, quality, *, compressed_bytes: int, bits_per_pixel: float,
                   error_scale: float, nonzero_fraction: float, data_range=None) -> tuple[str, str]:
    """The summary figure's two title lines: the key numbers, then the settings.

    ``header`` is the :class:`dctconv.codec._dctz.CodecHeader` of the compressed file,
    ``quality`` the :class:`dctconv.measure._metrics.Quality` of its reconstruction,
    ``error_scale`` the gray values per unit of error of the error picture and
    ``nonzero_fraction`` the share of coefficients stored as nonzero levels and
    ``data_range`` (low, high) the range PSNR is computed over, named in the title.
    """
    n = header.block_size
    psnr_text = "identical (PSNR ∞)" if quality.psnr_db is None else f"PSNR {quality.psnr_db:.2f} dB"
    ssim_text = "" if quality.ssim is None else f"   SSIM {quality.ssim:.4f}"
    threshold_text = f", threshold {header.threshold:g}" if header.threshold > 0 else ""
    keep_text = ("all frequencies" if header.keep == n * n
                 else f"the {header.keep} of {n * n} lowest zigzag frequencies")
    range_text = "" if data_range is None else f" over {data_range[0]:.6g} .. {data_range[1]:.6g}"
    bound = getattr(header, "max_error", None)
    bound_text = "" if bound is None else f" (bound {bound:.6g})"
    title = (f"{name}: {psnr_text}{range_text}{ssim_text}   {bits_per_pixel:.3f} bits/pixel "
             f"({_format_bytes(compressed_bytes)})")
    subtitle = (f"{n}×{n} blocks, {_settings_text(header)}, {keep_text}{threshold_text}, "
                f"{100 * nonzero_fraction:.1f} % nonzero;  "
                f"largest error {quality.max_abs_error:g}{bound_text}, error map white = {255 / error_scale:.3g}")
    return title, subtitle
