"""Figures for people, drawn with matplotlib: the rate-distortion sweep, and the summary's titles.

The summary picture itself is drawn with Pillow (:mod:`dctconv.measure._summary`).

matplotlib is imported inside the functions, and figures are drawn on their own
Agg canvas (``matplotlib.figure.Figure``, no pyplot), so importing this module is
cheap and plotting never touches a global backend or opens a window.
"""

from __future__ import annotations

import math
import textwrap

import numpy as np

#: Figures are written at this resolution; the sizes below are in inches.
DPI = 110


def _pixels(fig) -> np.ndarray:
    """Draw ``fig`` once on an Agg canvas: its pixels, RGB (H, W, 3) uint8.

    ``Figure.savefig`` draws a figure with a layout engine twice (once without
    rendering, to lay it out) and writes RGBA with zlib's default search; one draw,
    no alpha (the figures are opaque) and the PNG options of the other pictures
    (:data:`dctconv.io._images.PNG_OPTIONS`, :func:`dctconv.io._images.save_picture`) give
    the same pixels in about two thirds of the time (docs/performance.md).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.array(np.asarray(canvas.buffer_rgba())[..., :3])


#: Colour, marker and point labels of each sweep curve. Labels sit on opposite sides
#: of the curves that run close together (dctconv above left, JPEG below right: at
#: n = 8 they share their quantization tables), so they do not collide.
_SWEEP_STYLE = {
    "dctconv": dict(color="#2b7bba", marker="o", labels=(10, 25, 50, 75, 90), offset=(-5, 7), ha="right"),
    "zonal": dict(color="#7a7a7a", marker="^", labels=None, offset=(6, 2), ha="left"),
    "jpeg": dict(color="#d95f02", marker="s", labels=(10, 25, 50, 75, 90), offset=(6, -12), ha="left"),
    "webp": dict(color="#1b9e77", marker="D", labels=(), offset=(0, 0), ha="left"),
    "avif": dict(color="#7570b3", marker="v", labels=(), offset=(0, 0), ha="left"),
    "dctconv_bound": dict(color="#08306b", marker="*", labels=(), offset=(0, 0), ha="left"),
    "sz3": dict(color="#e7298a", marker="P", labels=(), offset=(0, 0), ha="left"),
    "zfp": dict(color="#a6761d", marker="X", labels=(), offset=(0, 0), ha="left"),
    "jpegls": dict(color="#66a61e", marker="h", labels=(), offset=(0, 0), ha="left"),
    "jpeg2k": dict(color="#e6ab02", marker="<", labels=(), offset=(0, 0), ha="left"),
    "jpegxl": dict(color="#17becf", marker=">", labels=(), offset=(0, 0), ha="left"),
    "png": dict(color="#000000", marker="p", labels=(), offset=(0, 0), ha="left"),
}

#: The panels save_sweep can draw: the key of a point, the axis name, the panel title
#: and the BD-rate key of the legend.
_VIEWS = {
    "psnr_db": ("PSNR (dB)", "PSNR: higher is better", "psnr_percent", "PSNR"),
    "ssim": ("SSIM", "SSIM: higher is better (1 = identical)", "ssim_percent", "SSIM"),
    "max_abs_error": ("largest error (data units; 0 = lossless)", "largest error: lower is better",
                      "max_error_percent", "largest error"),
}


def save_sweep(path, points, *, title: str, labels=None, bd_rates=None, this_file=None,
               views=("psnr_db", "ssim"), notes=()) -> None:
    """Write one PNG: PSNR and SSIM (or the largest error) against bits per pixel, one line per curve.

    Bits per pixel are on a log axis (the BD-rate compares log rates). A few points
    of the dctconv and JPEG curves carry their quality (``q50``), a few of the zonal
    curve their K; points that coincide share one label (``K4–K16``), and a label
    that would overlap another is left out. The legend, below the two panels, gives
    each other curve the BD-rates of dctconv against it.

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
    views : pair of str
        The two panels: ``psnr_db``, ``ssim`` or ``max_abs_error`` (the largest error in
        the data's units, on a symmetric log axis that is linear below the smallest
        nonzero error, so that lossless points sit at 0).
    notes : sequence of str, optional
        Lines written under the title (such as the sweep's notes about its source).
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
    wanted = []  # per axis and curve, the points whose tags may be written
    for ax, key in zip(axes, views):
        name = _VIEWS[key][0]
        drawn = False
        for method in methods:
            style = _SWEEP_STYLE.get(method, dict(color="black", marker=".", labels=(), offset=(0, 0), ha="left"))
            rows = sorted((p for p in points if p["method"] == method and p.get(key) is not None),
                          key=lambda p: (p["keep"] or 0, p["quality"] or 0, p["bits_per_pixel"]))
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
            wanted.append((ax, method, style, xs, ys,
                           [p["keep"] if method == "zonal" else p["quality"] for p in rows], shown))
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
        if key == "max_abs_error":
            errors = [p[key] for p in points if p.get(key)]
            if errors:
                ax.set_yscale("symlog", linthresh=min(errors), linscale=0.5)
                ax.set_ylim(bottom=0)
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
            rates = ["n/a" if bd_rates[method].get(_VIEWS[k][2]) is None else f"{bd_rates[method][_VIEWS[k][2]]:+.1f} %"
                     for k in views]
            text += f"\nBD-rate of dctconv: " + ", ".join(f"{r} ({_VIEWS[k][3]})" for r, k in zip(rates, views))
        texts.append(text)
    if handles:
        fig.legend(list(handles.values()), texts, loc="outside lower center", ncols=3, fontsize=9,
                   frameon=False)
    for ax, key in zip(axes, views):
        ax.set_title(_VIEWS[key][1], fontsize=11)
    # The notes wrapped to the figure's width (13 inches hold about 150 characters at 11 points).
    lines = [line for note in notes for line in textwrap.wrap(note, 150)]
    fig.suptitle("\n".join([title, *lines]), fontsize=13 if not lines else 11)
    _place_point_labels(fig, wanted)
    from ..io._images import save_picture

    save_picture(path, _pixels(fig))


#: Markers closer than this on the page (in points) are one place: their tags are
#: merged into one label ("K4–K16").
_SAME_PLACE = 3.0


def _place_point_labels(fig, wanted) -> None:
    """Write the tags of the sweep's points (``q50``, ``K4``) so that no two labels overlap.

    Points that fall on one place (files of the same size and quality: at a high K
    every frequency a quality keeps is kept already) get one label naming the first
    and last of them; a label that would overlap one already written, the previous
    curves' first, is left out. Done after the figure is laid out (the labels are
    kept out of the layout, so placing them moves nothing), on its own canvas.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    fig.get_layout_engine().execute(fig)
    renderer = canvas.get_renderer()
    placed = {}
    for ax, method, style, xs, ys, tags, shown in wanted:
        page = ax.transData.transform(np.column_stack([xs, ys]))
        prefix = "K" if method == "zonal" else "q"
        groups = []
        for index, (x, y) in enumerate(page):
            group = groups[-1] if groups else None
            if group and math.dist(page[group[0]], (x, y)) * 72 / fig.dpi <= _SAME_PLACE:
                group.append(index)
            else:
                groups.append([index])
        for group in groups:
            if not any(tags[i] in shown for i in group):
                continue
            first, last = tags[group[0]], tags[group[-1]]
            text = f"{prefix}{first}" if first == last else f"{prefix}{first}–{prefix}{last}"
            label = ax.annotate(text, (xs[group[0]], ys[group[0]]), textcoords="offset points",
                                xytext=style["offset"], ha=style["ha"], fontsize=7.5, color=style["color"],
                                in_layout=False)
            box = label.get_window_extent(renderer)
            if any(box.overlaps(other) for other in placed.setdefault(ax, [])):
                label.remove()
            else:
                placed[ax].append(box)


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


def error_map_top() -> str:
    """The name of the colour the summary's error map draws at its white point (the top of its colours)."""
    from ._summary import ERROR_COLOURS, colour_name

    return colour_name(ERROR_COLOURS()[-1])


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
    blocks_text = ("16×16, 8×8 and 4×4 blocks chosen per region (edges drawn; frequencies: the 16×16 ones)"
                   if getattr(header, "partitioned", False) else f"{n}×{n} blocks")
    subtitle = (f"{blocks_text}, {_settings_text(header)}, {keep_text}{threshold_text}, "
                f"{100 * nonzero_fraction:.1f} % nonzero;  "
                f"largest error {quality.max_abs_error:g}{bound_text}, error map {error_map_top()} = {255 / error_scale:.3g}")
    return title, subtitle
