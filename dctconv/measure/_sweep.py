"""Rate-distortion sweep: dctconv's codec against itself, Pillow's JPEG, WebP and AVIF, and imagecodecs.

Each point is one compressed version of the same gray image: its size in bytes and
bits per pixel, and its PSNR and SSIM against the original (scikit-image, see
:mod:`dctconv.measure._metrics`) after decoding to the source's pixel type. The curves:

``dctconv``
    :func:`dctconv.encode` at ``quality`` 5, 10, ..., 95 and the block size, every
    frequency a candidate (no ``keep``, no ``threshold``).
``zonal``
    :func:`dctconv.encode` keeping the K lowest zigzag frequencies, K = 1 .. n², with
    the command's own quantization (its ``quality`` or ``step``, and ``threshold``).
``jpeg``, ``webp``, ``avif``
    Pillow's encoders at ``quality`` 5 .. 95: JPEG with ``optimize=True`` (optimal
    Huffman tables, the smallest file libjpeg makes at a quality), WebP with
    ``method=6`` (its slowest, best search), AVIF with Pillow's defaults (only where
    ``PIL.features.check("avif")``). These take 8-bit images only.
``dctconv_bound``
    For images other than 8-bit: :func:`dctconv.encode` with ``max_error`` E at
    :data:`dctconv.measure._anchors.ERROR_SHARES` of the data range (and 0, lossless,
    for integers), the steps chosen by the encoder.
``sz3``, ``zfp``, ``jpegls``, ``jpeg2k``, ``jpegxl``, ``png``
    The codecs of scientific imaging through imagecodecs (:mod:`dctconv.measure._anchors`),
    on images other than 8-bit; JPEG XL on 8-bit images too. Each point's file is
    decoded with imagecodecs and measured here. A codec that this imagecodecs lacks,
    or that cannot take the image (JPEG-LS and floats), is listed in ``left_out``.

Every point records its largest error in the data's units (``max_abs_error``), the
second view of the sweep's picture for images other than 8-bit.

The Bjontegaard delta rate (BD-rate, [1]_) of the ``dctconv`` curve against each
other curve says how many percent more (positive) or fewer (negative) bits dctconv
needs for the same quality, averaged over the quality range both curves cover. It
is computed by the ``bjontegaard`` package [2]_, with Akima interpolation of log10
bits against the quality (PSNR or SSIM). At equal largest error the quality is
-log10 of the largest error (points with an error of 0 left out), and the dctconv
curve is ``dctconv_bound`` where the sweep has it: the bound is what the two are
compared at.

References
----------
.. [1] G. Bjøntegaard, "Calculation of average PSNR differences between RD-curves",
   ITU-T SG16/Q6 VCEG-M33, 2001.
.. [2] https://github.com/FAU-LMS/bjontegaard
"""

from __future__ import annotations

import csv
import io
import math
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import InvalidImageError
from . import _anchors
from ._metrics import compare

#: Qualities of every quality-swept curve: 5, 10, ..., 95.
QUALITIES = tuple(range(5, 100, 5))

#: The curve the BD-rates are of; every other curve is an anchor.
TEST_CURVE = "dctconv"

#: Pillow's encoders, with the options each is run with besides ``quality``.
PILLOW_ENCODERS = {
    "jpeg": ("JPEG", {"optimize": True}),
    "webp": ("WEBP", {"method": 6}),
    "avif": ("AVIF", {}),
}

#: Short names of the curves, for notes and the printed BD-rates.
NAMES = {"dctconv": "dctconv", "zonal": "zonal", "jpeg": "JPEG", "webp": "WebP", "avif": "AVIF",
         "dctconv_bound": "dctconv --max-error", **_anchors.NAMES}

#: dctconv's own curves: never anchors of a BD-rate.
OWN_CURVES = ("dctconv", "zonal", "dctconv_bound")

#: What each curve is, for the JSON, the plot legend and the printed BD-rates.
CURVE_LABELS = {
    "dctconv": "dctconv, quality 5 .. 95",
    "zonal": "dctconv zonal, keep K = 1 .. n²",
    "jpeg": "Pillow JPEG (optimize), quality 5 .. 95",
    "webp": "Pillow WebP (method 6), quality 5 .. 95",
    "avif": "Pillow AVIF, quality 5 .. 95",
    "dctconv_bound": "dctconv --max-error, 0.01 % .. 10 % of the range",
    **_anchors.LABELS,
}

#: The note of a sweep whose source is a JPEG file: Pillow's JPEG then re-encodes
#: pixels that JPEG's own quantization made, and at the source's quality its
#: steps fall on the levels the source kept (a spike of its curve there).
JPEG_SOURCE_NOTE = ("the source is itself a JPEG file: the JPEG curve re-encodes JPEG's own output "
                    "(it jumps near the source's quality), and every curve measures against an already lossy image")

#: Interpolation of the BD-rate (``bjontegaard.bd_rate(method=...)``).
BD_METHOD = "akima"

#: Columns of the sweep CSV, in order.
COLUMNS = ("method", "keep", "quality", "bytes", "bits_per_pixel", "psnr_db", "ssim", "setting", "max_abs_error")

#: The quality measures the BD-rates are computed at: key of a point, name in the JSON.
BD_MEASURES = {"psnr_db": "psnr", "ssim": "ssim", "error_quality": "max_error"}


@dataclass(frozen=True)
class SweepPoint:
    """One point of a rate-distortion curve."""

    method: str
    """Name of the curve: "dctconv", "zonal", "jpeg", "webp" or "avif"."""
    keep: int | None
    """K of a "zonal" point; None otherwise."""
    quality: int | None
    """Quality of the encoder (None for "zonal" points with a flat ``step``)."""
    bytes: int
    """Size of the compressed file."""
    bits_per_pixel: float
    """8 * bytes / (H * W)."""
    psnr_db: float | None
    """PSNR against the original; None when identical."""
    ssim: float | None
    """SSIM against the original; None for images under 3 pixels on a side."""
    setting: float | None = None
    """The setting of an imagecodecs or ``dctconv_bound`` point (the bound, NEAR,
    tolerance, distance or level: :func:`dctconv.measure._anchors.settings`)."""
    max_abs_error: float | None = None
    """Largest |original - decoded| in the data's units (NaN pixels left out)."""

    @property
    def error_quality(self) -> float | None:
        """-log10 of the largest error: the quality of the BD-rate at equal largest error (None at 0)."""
        if self.max_abs_error is None or self.max_abs_error <= 0:
            return None
        return -math.log10(self.max_abs_error)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class BDRate:
    """BD-rate of the ``dctconv`` curve against one anchor curve, at equal PSNR and at equal SSIM."""

    anchor: str
    psnr: float | None
    """Percent bits at equal PSNR (negative: dctconv needs fewer); None when not computable."""
    ssim: float | None
    """The same at equal SSIM."""
    psnr_overlap: float
    """Share of the two curves' joint PSNR range that both cover (the range averaged over)."""
    ssim_overlap: float
    psnr_points: tuple[int, int] = (0, 0)
    """Points of the dctconv and anchor curves used (their rate-distortion envelopes)."""
    ssim_points: tuple[int, int] = (0, 0)
    max_error: float | None = None
    """The same at equal largest error (of ``dctconv_bound`` where the sweep has it)."""
    max_error_overlap: float = 0.0
    max_error_points: tuple[int, int] = (0, 0)

    def as_dict(self) -> dict:
        return {
            "anchor": self.anchor,
            "psnr_percent": self.psnr,
            "ssim_percent": self.ssim,
            "max_error_percent": self.max_error,
            "psnr_overlap": self.psnr_overlap,
            "ssim_overlap": self.ssim_overlap,
            "max_error_overlap": self.max_error_overlap,
            "psnr_points": list(self.psnr_points),
            "ssim_points": list(self.ssim_points),
            "max_error_points": list(self.max_error_points),
        }


@dataclass
class Sweep:
    """Every curve of a sweep and the BD-rates of ``dctconv`` against the others."""

    points: list[SweepPoint]
    bd_rates: list[BDRate]
    curves: dict[str, dict] = field(default_factory=dict)
    """Per curve: its label and the settings it was run with."""
    left_out: dict[str, str] = field(default_factory=dict)
    """Curves not drawn, and why (e.g. Pillow's encoders on a 16-bit image)."""
    notes: list[str] = field(default_factory=list)
    """What a reader of the curves needs to know about the source (a JPEG source: :data:`JPEG_SOURCE_NOTE`)."""

    def as_dict(self) -> dict:
        return {
            "test_curve": TEST_CURVE,
            "bd_rate_method": BD_METHOD,
            "curves": self.curves,
            "left_out": self.left_out,
            "notes": self.notes,
            "bd_rates": {b.anchor: b.as_dict() for b in self.bd_rates},
            "points": [p.as_dict() for p in self.points],
        }


def _point(method, image, data, pixels, *, data_range, keep=None, quality=None, setting=None) -> SweepPoint:
    image, pixels = np.asarray(image), np.asarray(pixels)
    if image.dtype.kind == "f":
        # NaN pixels (no data) decode as NaN: the same value in both images, out of the errors.
        nan = np.isnan(image) & np.isnan(pixels)
        if nan.any():
            fill = np.float32(np.nanmin(image)) if not nan.all() else np.float32(0)
            image, pixels = np.where(nan, fill, image), np.where(nan, fill, pixels)
    measured = compare(image, pixels, data_range=data_range)
    size = len(data)
    return SweepPoint(method, keep, quality, size, 8 * size / image.size, measured.psnr_db, measured.ssim,
                      setting, measured.max_abs_error)


def codec_sweep(image, *, block_size: int, data_range: float, qualities=QUALITIES,
                value_range=None) -> list[SweepPoint]:
    """The ``dctconv`` curve: :func:`dctconv.encode` at each quality, decoded and measured.

    Parameters
    ----------
    image : ndarray, shape (H, W)
        The source pixels (uint8, uint16, int32 or float32).
    block_size : int
        Block side n of the codec.
    data_range : float
        Full range of the source bit depth, for PSNR and SSIM.
    qualities : sequence of int
        The qualities of the curve.
    value_range : (float, float), optional
        The data range the codec scales its steps to (``encode(data_range=)``).

    Returns
    -------
    list of SweepPoint, in the order of ``qualities``
    """
    from ..codec._core import decode, encode

    points = []
    for quality in qualities:
        data = encode(image, block_size=block_size, quality=int(quality), data_range=value_range)
        points.append(_point("dctconv", image, data, decode(data, max_pixels=None), data_range=data_range,
                             quality=int(quality)))
    return points


def zonal_sweep(
    image, *, block_size: int, data_range: float, quality: int | None = None, step: float | None = None,
    threshold: float = 0.0,
) -> list[SweepPoint]:
    """The ``zonal`` curve: :func:`dctconv.encode` with ``keep`` = 1 .. n², decoded and measured.

    ``quality``, ``step`` and ``threshold`` are passed to every encode, as the command
    got them, so the point at the command's own K is the file it wrote.
    """
    from ..codec._core import decode, encode

    points = []
    for keep in range(1, block_size * block_size + 1):
        data = encode(image, block_size=block_size, quality=quality, step=step, keep=keep,
                      threshold=threshold)
        points.append(_point("zonal", image, data, decode(data, max_pixels=None), data_range=data_range, keep=keep,
                             quality=quality))
    return points


def bound_errors(image, value_range) -> list[float]:
    """The bounds of the ``dctconv_bound`` curve: ERROR_SHARES of the range; integers floor(E) >= 1, and 0."""
    low, high = value_range
    bounds = [share * (high - low) for share in _anchors.ERROR_SHARES]
    if np.asarray(image).dtype.kind in "iu":
        return sorted({0.0} | {float(math.floor(e)) for e in bounds if e >= 1})
    return bounds


def bound_sweep(image, *, block_size: int, value_range) -> list[SweepPoint]:
    """The ``dctconv_bound`` curve: :func:`dctconv.encode` with ``max_error`` at :func:`bound_errors`."""
    from ..codec._core import decode, encode

    low, high = value_range
    points = []
    for bound in bound_errors(image, value_range):
        data = encode(image, block_size=block_size, max_error=bound, data_range=(low, high))
        points.append(_point("dctconv_bound", image, data, decode(data, max_pixels=None), data_range=high - low,
                             setting=bound))
    return points


def anchor_sweep(image, method: str, *, value_range) -> list[SweepPoint]:
    """One imagecodecs curve (:mod:`dctconv.measure._anchors`): each setting encoded, decoded, measured.

    NaN pixels of a float image are set to the range's low end first (the anchors
    keep no mask); the points are measured against that image.
    """
    image = np.asarray(image)
    low, high = value_range
    if image.dtype.kind == "f" and np.isnan(image).any():
        image = np.where(np.isnan(image), np.float32(low), image)
    points = []
    for setting, run in _anchors.settings(method, image, value_range):
        data, pixels = run()
        points.append(_point(method, image, data, pixels, data_range=high - low, setting=float(setting)))
    return points


def pillow_available(method: str) -> bool:
    """Whether this Pillow can write and read ``method`` ("jpeg", "webp", "avif")."""
    from PIL import features

    return bool(features.check({"jpeg": "jpg", "webp": "webp", "avif": "avif"}[method]))


def pillow_sweep(image, method: str, *, qualities=QUALITIES) -> list[SweepPoint]:
    """Encode an 8-bit gray image with one of Pillow's encoders at each quality and measure it.

    The options are those of :data:`PILLOW_ENCODERS`; the decoded image is converted
    to 8-bit gray ("L": WebP decodes to RGB) before it is compared, with ``data_range``
    255.

    Raises
    ------
    InvalidImageError
        If ``image`` is not a 2-D uint8 array: these encoders take 8-bit pixels only.
    """
    from PIL import Image

    image = np.asarray(image)
    if image.ndim != 2 or image.dtype != np.uint8:
        raise InvalidImageError(f"{method.upper()} comparison needs 8-bit gray pixels, got {image.dtype}")
    encoder, options = PILLOW_ENCODERS[method]
    picture = Image.fromarray(image)
    points = []
    for quality in qualities:
        buffer = io.BytesIO()
        picture.save(buffer, format=encoder, quality=int(quality), **options)
        data = buffer.getvalue()
        with Image.open(io.BytesIO(data)) as decoded:
            pixels = np.asarray(decoded.convert("L"))
        points.append(_point(method, image, data, pixels, data_range=255.0, quality=int(quality)))
    return points


def envelope(points, measure: str) -> tuple[np.ndarray, np.ndarray]:
    """The rate-distortion envelope of a curve: (bits per pixel, quality), both strictly increasing.

    Points without the measure (None: identical images, or no SSIM) are dropped, and so
    is every point that some point with at most its bits beats or equals in quality:
    a curve that is not monotone (a quality step that buys nothing) cannot be
    interpolated as a function of quality, and no one would choose such a point.
    """
    known = sorted((p.bits_per_pixel, getattr(p, measure)) for p in points
                   if getattr(p, measure) is not None and p.bits_per_pixel > 0)
    rates, values = [], []
    for rate, value in known:
        if values and value <= values[-1]:
            continue
        if rates and rate == rates[-1]:  # same size, better quality: it replaces the other
            rates.pop()
            values.pop()
        rates.append(rate)
        values.append(value)
    return np.array(rates), np.array(values)


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) == 0 or len(b) == 0:
        return 0.0
    total = max(a.max(), b.max()) - min(a.min(), b.min())
    common = min(a.max(), b.max()) - max(a.min(), b.min())
    return float(max(common, 0.0) / total) if total > 0 else 0.0


def bd_rate(test, anchor, measure: str) -> tuple[float | None, float, tuple[int, int]]:
    """BD-rate in percent of the ``test`` points against the ``anchor`` points at equal ``measure``.

    Returns the BD-rate (None when either envelope has fewer than 2 points or the
    curves' quality ranges do not overlap), the overlap of the two ranges (a share of
    their union), and the number of envelope points of each curve.
    """
    import bjontegaard

    test_rate, test_value = envelope(test, measure)
    anchor_rate, anchor_value = envelope(anchor, measure)
    overlap = _overlap(test_value, anchor_value)
    used = (len(test_rate), len(anchor_rate))
    if min(used) < 2 or overlap == 0:
        return None, overlap, used
    with warnings.catch_warnings():
        # The package warns when the overlap is under 75 %; the JSON records the overlap.
        warnings.simplefilter("ignore")
        value = bjontegaard.bd_rate(anchor_rate, anchor_value, test_rate, test_value, method=BD_METHOD,
                                    require_matching_points=False, min_overlap=0)
    value = float(value)
    return (value if math.isfinite(value) else None), overlap, used


def bd_rates(points) -> list[BDRate]:
    """BD-rates of the ``dctconv`` curve against every other curve among ``points``.

    At equal largest error the dctconv curve is ``dctconv_bound`` where ``points`` hold
    it; it is never an anchor itself.
    """
    test = [p for p in points if p.method == TEST_CURVE]
    bounded = [p for p in points if p.method == "dctconv_bound"] or test
    rates = []
    for anchor in dict.fromkeys(p.method for p in points if p.method not in (TEST_CURVE, "dctconv_bound")):
        others = [p for p in points if p.method == anchor]
        psnr, psnr_overlap, psnr_points = bd_rate(test, others, "psnr_db")
        ssim, ssim_overlap, ssim_points = bd_rate(test, others, "ssim")
        error, error_overlap, error_points = bd_rate(bounded, others, "error_quality")
        rates.append(BDRate(anchor, psnr, ssim, psnr_overlap, ssim_overlap, psnr_points, ssim_points,
                            error, error_overlap, error_points))
    return rates


def sweep(
    image,
    *,
    data_range: float,
    block_size: int,
    quality: int | None = None,
    step: float | None = None,
    threshold: float = 0.0,
    qualities=QUALITIES,
    others=("jpeg", "webp", "avif"),
    anchors=_anchors.ANCHORS,
    value_range=None,
    source_format: str | None = None,
) -> Sweep:
    """Every curve of the sweep for one image, and the BD-rates of ``dctconv`` against the others.

    Parameters
    ----------
    image : ndarray, shape (H, W)
        The source pixels.
    data_range : float
        Full range of the source bit depth, for PSNR and SSIM.
    block_size : int
        Block side n of both dctconv curves.
    quality, step, threshold
        The quantization of the ``zonal`` curve (as :func:`dctconv.encode` takes them).
    qualities : sequence of int
        Qualities of the ``dctconv`` curve and of Pillow's encoders.
    others : sequence of str
        Pillow's encoders to compare with; those that this Pillow lacks, or that
        cannot take the image (not 8-bit), are listed in ``Sweep.left_out``.
    anchors : sequence of str
        imagecodecs' codecs to compare with (:data:`dctconv.measure._anchors.ANCHORS`):
        all of them for images other than 8-bit, JPEG XL alone for 8-bit images. Those
        missing, or that cannot take the image, are listed in ``Sweep.left_out``.
    value_range : (float, float), optional
        The data range (low, high) of the codec and the anchors; default 0 ..
        ``data_range``.
    source_format : str, optional
        Pillow's name of the source file's format; "JPEG" adds :data:`JPEG_SOURCE_NOTE`
        to ``Sweep.notes``.

    Returns
    -------
    Sweep
    """
    image = np.asarray(image)
    value_range = (0.0, float(data_range)) if value_range is None else tuple(map(float, value_range))
    photo = image.dtype == np.uint8
    points = codec_sweep(image, block_size=block_size, data_range=data_range, qualities=qualities,
                         value_range=None if photo else value_range)
    points += zonal_sweep(image, block_size=block_size, data_range=data_range, quality=quality,
                          step=step, threshold=threshold)
    n = block_size
    curves = {
        "dctconv": {"label": CURVE_LABELS["dctconv"], "block_size": n, "qualities": list(qualities)},
        "zonal": {"label": CURVE_LABELS["zonal"].replace("n²", str(n * n)), "block_size": n,
                  "keep": [1, n * n], "quality": quality, "step": step, "threshold": threshold},
    }
    left_out = {}
    for method in others:
        encoder, options = PILLOW_ENCODERS[method]
        if np.asarray(image).dtype != np.uint8:
            left_out[method] = "Pillow's encoders take 8-bit images only"
        elif not pillow_available(method):
            left_out[method] = "this Pillow cannot write it"
        else:
            points += pillow_sweep(image, method, qualities=qualities)
            curves[method] = {"label": CURVE_LABELS[method], "encoder": f"Pillow {encoder}",
                              "options": options, "qualities": list(qualities)}
    if not photo:
        points += bound_sweep(image, block_size=block_size, value_range=value_range)
        curves["dctconv_bound"] = {"label": CURVE_LABELS["dctconv_bound"], "block_size": n,
                                   "max_error": bound_errors(image, value_range)}
    chosen = [m for m in anchors if not photo or m == "jpegxl"]
    missing = _anchors.missing_package() if chosen else None
    for method in chosen:
        why = missing or (None if _anchors.available(method) else "this imagecodecs lacks it")
        why = why or _anchors.why_not(method, image)
        if why is None:
            try:
                found = anchor_sweep(image, method, value_range=value_range)
            except Exception as error:  # a codec's refusal of these pixels is a note, not a failure
                why = f"imagecodecs failed on this image ({type(error).__name__}: {error})"
        if why is not None:
            left_out[method] = why
            continue
        points += found
        curves[method] = {"label": CURVE_LABELS[method], "encoder": "imagecodecs " + _anchors.CODECS[method],
                          "settings": [p.setting for p in found]}
    notes = [JPEG_SOURCE_NOTE] if source_format == "JPEG" else []
    return Sweep(points, bd_rates(points), curves, left_out, notes)


def write_csv(file, points) -> None:
    """Write sweep points to an open text file as CSV: a header of :data:`COLUMNS`, one row each.

    Open the file with ``newline=""`` (the csv module's rule). A missing value
    (the PSNR of an identical image, the K of a JPEG point) is an empty cell.
    """
    writer = csv.DictWriter(file, fieldnames=COLUMNS)
    writer.writeheader()
    for point in points:
        writer.writerow({key: ("" if value is None else value) for key, value in point.as_dict().items()})
