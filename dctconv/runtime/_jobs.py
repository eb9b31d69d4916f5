"""Per-file work behind the commands: read, compute, write every output atomically (the names in :mod:`._outputs`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..io._atomic import atomic_outputs
from ..errors import CoefficientFileError, ImageReadError, InvalidImageError, printable
from ..io._images import ImageInfo
from ..limits import DEFAULT_BLOCK_SIZE, DEFAULT_MAX_PIXELS
from ._background import Background
from ._outputs import CompressionReport, compress_output_names, original_stem, transform_output_names
from ._records import Recorder


#: Modules that :func:`transform_file` and :func:`invert_file` import when first
#: called; ``--jobs`` imports them once for all its worker processes
#: (:func:`dctconv.runtime._parallel.map_in_processes`).
TRANSFORM_IMPORTS = (
    "dctconv.runtime._jobs", "dctconv.io._npz", "dctconv.measure._mosaics", "dctconv.transform",
    "PIL.Image", "PIL.PngImagePlugin", "PIL.TiffImagePlugin", "PIL.ImageDraw", "PIL.ImageFont", "skimage.util",
)
#: The same for :func:`compress_file` without its pictures (``pictures=False``):
#: most of its start-up is numba (the codec's engine and the SSIM), whose compiled
#: loops ``dctconv.runtime._warm`` loads.
COMPRESS_DATA_IMPORTS = TRANSFORM_IMPORTS + (
    "dctconv.codec._core", "dctconv.codec._engine", "dctconv.codec._rdoq", "dctconv.codec._zigzag",
    "dctconv.measure._metrics",
    "dctconv.measure._ssim", "dctconv.runtime._warm",
)
#: The same for :func:`compress_file` with its pictures (drawn with Pillow; matplotlib
#: only for ``--sweep``'s figure).
COMPRESS_IMPORTS = COMPRESS_DATA_IMPORTS + ("dctconv.measure._figures", "dctconv.measure._summary")

@dataclass
class FileResult:
    """What one input produced: the files written and notes worth telling the user."""

    source: Path
    outputs: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    info: ImageInfo | None = None
    report: CompressionReport | None = None
    """The numbers ``compress`` reports for this file."""


#: What each EXIF orientation value (2 to 8) does to the stored pixels to show them upright.
_ORIENTATIONS = {
    2: "mirrored left to right", 3: "rotated 180°", 4: "mirrored top to bottom",
    5: "mirrored along the main diagonal", 6: "rotated 90° clockwise",
    7: "mirrored along the other diagonal", 8: "rotated 90° counterclockwise",
}


def image_notes(info: ImageInfo) -> list[str]:
    """One-line notes about what reading the image changed, for stderr."""
    notes = []
    if info.converted:
        notes.append(f"{info.file_mode} converted to 8-bit gray (ITU-R 601-2 luma)")
    if info.frames > 1:
        notes.append(f"has {info.frames} frames; only the first is used")
    if info.orientation != 1:
        notes.append(f"turned by its EXIF orientation ({_ORIENTATIONS[info.orientation]}), "
                     "as image viewers show it")
    return notes


def _an_image(path: Path) -> Path:
    """``path``, unless its content is of another kind: then the error names the command that reads it."""
    from ..io import _kinds as kinds

    problem = kinds.wrong_kind(kinds.kind_of(path), (kinds.IMAGE,))
    if problem:
        raise ImageReadError(problem)
    return path


def transform_file(
    path,
    out_dir,
    *,
    block_size: int = DEFAULT_BLOCK_SIZE,
    dtype: str = "float64",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    protected=(),
    pictures: bool = True,
    layout: str = "channels_first",
    channel_order: str = "frequency",
    from_jpeg: bool = False,
) -> FileResult:
    """Write ``<stem>_coefficients.npz`` and (unless not ``pictures``) ``<stem>_maps.png`` for one image.

    The file stores the maps in ``layout`` and ``channel_order``. With ``from_jpeg`` the image
    is a JPEG file whose own quantized coefficients (luma, n = 8) are stored, not decoded.
    """
    import numpy as np

    from ..io._npz import CoefficientHeader, save_coefficients
    from ..io._images import read_image
    from ..transform import forward

    path, out_dir = Path(path), Path(out_dir)
    record = Recorder(path, "transform", dict(block_size=block_size, dtype=dtype, layout=layout,
                                              channel_order=channel_order, from_jpeg=from_jpeg, pictures=pictures))
    if from_jpeg:
        return _jpeg_file(path, out_dir, dtype=dtype, max_pixels=max_pixels, protected=protected,
                          pictures=pictures, layout=layout, channel_order=channel_order, record=record)
    image, info = read_image(_an_image(path), max_pixels=max_pixels)
    # The requested precision is passed to forward, which converts tile by tile: no
    # float copy of the image. (forward alone would keep a float32 (F) image in float32.)
    with np.errstate(over="ignore", invalid="ignore"):
        coefficients = forward(image, block_size, dtype=np.float32 if dtype == "float32" else np.float64)
    if not np.isfinite(coefficients).all():
        # The image is finite (read_image checks), so this is float32 overflow.
        raise InvalidImageError(
            "pixel values too large for float32 coefficients (they overflow); use float64"
        )
    header = CoefficientHeader(
        block_size=block_size,
        image_shape=image.shape,
        image_mode=info.mode,
        source=path.name,
        layout=layout,
        channel_order=channel_order,
    )
    return _write_transform(path, out_dir, coefficients, header, protected=protected, pictures=pictures,
                            notes=image_notes(info), info=info, record=record)


def _write_transform(path, out_dir, coefficients, header, *, protected, pictures, notes, record, info=None,
                     chroma=None) -> FileResult:
    """Write the coefficient file of ``coefficients`` ((n*n, rows, columns), frequency order) and its maps picture."""
    from ..io._npz import save_coefficients

    names = transform_output_names(path.stem, pictures=pictures)
    with atomic_outputs(protected) as outputs:
        with open(outputs.path(out_dir / names["coefficients"]), "wb") as f:
            save_coefficients(f, coefficients, header, chroma=chroma)
        if pictures:
            from ..io._images import save_picture
            from ..measure._mosaics import maps_picture

            save_picture(outputs.path(out_dir / names["maps"]), maps_picture(coefficients))
        notes += _sealed(record, outputs, out_dir, path.stem)
    return FileResult(path, outputs.written, notes, info)


def _jpeg_file(path: Path, out_dir: Path, *, dtype, max_pixels, protected, pictures, layout, channel_order, record):
    """transform --from-jpeg: the luma coefficients a JPEG file stores (level x step), not decoded."""
    import numpy as np

    from ..io._jpeg import JPEG_BLOCK_SIZE, read_jpeg_coefficients
    from ..io._npz import CoefficientHeader

    jpeg = read_jpeg_coefficients(path, dtype=np.float32 if dtype == "float32" else np.float64,
                                  max_pixels=max_pixels)
    luma = jpeg["Y"]
    header = CoefficientHeader(
        block_size=JPEG_BLOCK_SIZE, image_shape=luma.image_shape, image_mode="L", source=path.name,
        layout=layout, channel_order=channel_order,
    )
    notes, chroma = [], None
    if len(jpeg.components) > 1:
        cb, cr = jpeg["Cb"], jpeg["Cr"]
        if cb.image_shape != cr.image_shape:
            notes.append("Cb and Cr are sampled differently: only the luma (Y) is stored")
        else:
            chroma = (cb.coefficients, cr.coefficients, cb.image_shape)
    if jpeg.progressive:
        notes.append("progressive JPEG: read whole (every scan)")
    # The maps are level x step of pixels minus 128: the inverse adds 128 back.
    coefficients = luma.coefficients.copy()
    coefficients[0] += 128 * JPEG_BLOCK_SIZE
    return _write_transform(path, out_dir, coefficients, header, protected=protected, pictures=pictures,
                            notes=notes, chroma=chroma, record=record)


def invert_file(
    path, out_dir, *, max_pixels: int | None = DEFAULT_MAX_PIXELS, protected=()
) -> FileResult:
    """Write ``<stem>_reconstruction.png`` (``.tif`` for 32-bit integer and float sources) from a coefficient file.

    The file is a compressed file of :func:`dctconv.encode`, decoded to exactly the
    pixels ``compress`` wrote, or a ``.npz`` of ``transform`` or of the older
    ``compress``: told by its content, whatever its name (:mod:`dctconv.io._kinds`).
    An image is refused with the command that reads it.
    """
    import numpy as np

    from ..io import _kinds as kinds
    from ..io._npz import load_coefficients
    from ..io._images import image_suffix, save_image
    from ..transform import inverse

    path, out_dir = Path(path), Path(out_dir)
    record = Recorder(path, "inverse", {})
    kind = kinds.kind_of(path)
    problem = kinds.wrong_kind(kind, kinds.COEFFICIENT_KINDS,
                               image_fix="use dctconv transform without --inverse (or dctconv compress)")
    if problem:
        raise CoefficientFileError(problem)
    if kind is kinds.COMPRESSED:
        return _decode_file(path, out_dir, max_pixels=max_pixels, protected=protected, record=record)
    coefficients, header = load_coefficients(path, max_pixels=max_pixels)
    with np.errstate(over="ignore", invalid="ignore"):
        image = inverse(coefficients, header.image_shape)
    if not np.isfinite(image).all():
        raise CoefficientFileError(
            "coefficient values are too large: the reconstructed image overflows"
        )
    del coefficients  # as large as the image: free it before the image is encoded
    name = f"{original_stem(path)}_reconstruction{image_suffix(header.image_mode)}"
    with atomic_outputs(protected) as outputs:
        save_image(outputs.path(out_dir / name), image, header.image_mode)
        notes = _sealed(record, outputs, out_dir, original_stem(path))
    return FileResult(path, outputs.written, notes)


def _sealed(record: Recorder, outputs, out_dir: Path, stem: str) -> list[str]:
    """Add ``record`` to the outputs (the last of them): what --skip-existing compares. Its note, if any."""
    note = record.seal(outputs, out_dir, stem)
    return [] if note is None else [note]


def _decode_file(path: Path, out_dir: Path, *, max_pixels, protected, record) -> FileResult:
    from ..codec._core import decode
    from ..codec._dctz import read_file, read_header
    from ..io._images import image_suffix, save_image

    data = read_file(path)
    mode = read_header(data, max_pixels=max_pixels).mode
    pixels = decode(data, max_pixels=max_pixels)
    with atomic_outputs(protected) as outputs:
        save_image(outputs.path(out_dir / f"{original_stem(path)}_reconstruction{image_suffix(mode)}"), pixels, mode)
        notes = _sealed(record, outputs, out_dir, original_stem(path))
    return FileResult(path, outputs.written, notes)


def write_kernels_picture(out_dir, block_size: int, *, protected=()) -> Path:
    """Write ``kernels_<n>.png``, the n*n kernels drawn enlarged."""
    from ..io._images import save_picture
    from ..measure._mosaics import kernels_picture

    with atomic_outputs(protected) as outputs:
        save_picture(outputs.path(Path(out_dir) / f"kernels_{block_size}.png"), kernels_picture(block_size))
    return outputs.written[0]


def _write_bytes(path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def compress_file(
    path,
    out_dir,
    *,
    block_size: int = DEFAULT_BLOCK_SIZE,
    quality: int | None = None,
    step: float | None = None,
    keep: int | None = None,
    threshold: float = 0.0,
    data_range=None,
    max_error: float | None = None,
    sweep: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    protected=(),
    pictures: bool = True,
) -> FileResult:
    """Compress one image with :func:`dctconv.encode` and write, all or nothing, in ``out_dir``:

    ``<stem>_compressed.dctz`` (the compressed file), ``<stem>_reconstruction.png``
    (``.tif`` for 32-bit integer and float sources; exactly what decoding the file gives),
    ``<stem>_error.png``, ``<stem>_maps.png`` (the decoded maps), ``<stem>_summary.png``,
    ``<stem>_metrics.json``; with ``sweep`` also ``<stem>_sweep.csv``,
    ``<stem>_sweep.json`` (the curves and the BD-rates) and ``<stem>_sweep.png``.
    Without ``pictures`` only the data: the compressed file, the reconstruction, the
    metrics (and the sweep's CSV and JSON). matplotlib is imported for the sweep's
    figure only (the other pictures are drawn with Pillow). The
    metrics compare the original with the reconstruction as written, and
    ``compressed_bytes`` is the size of the compressed file on disk. ``quality``,
    ``step``, ``keep``, ``threshold``, ``data_range`` and ``max_error`` are those of
    :func:`dctconv.encode` (with none of quality, step and max_error: quality 75, and
    for images other than 8-bit a bound of 1 % of the data range). The metrics are
    computed over the data range (PSNR and SSIM with ``data_range = high - low``);
    float images may hold NaN (kept exactly; PSNR, MSE and RMSE are computed over the
    other pixels). Returns the numbers in ``FileResult.report``. Notes: a compressed
    file larger than the raw pixels (``image.nbytes``), and a reconstruction that lost
    the image (:func:`dctconv.measure._metrics.loss_notes`).
    """
    path, out_dir = Path(path), Path(out_dir)
    record = Recorder(path, "compress", dict(block_size=block_size, quality=quality, step=step, keep=keep,
                                             threshold=threshold, data_range=data_range, max_error=max_error,
                                             sweep=sweep, pictures=pictures))
    with Background() as background:
        # matplotlib (the sweep's figure) takes a second to import; the thread imports
        # it while the image is read and encoded. Only modules that reading and encoding
        # do not import themselves, so that the two threads never import the same module at once.
        if pictures and sweep:
            background.submit(_import_all, _SWEEP_IMPORTS)
        return _compress_file(path, out_dir, background, block_size=block_size, quality=quality, step=step,
                              keep=keep, threshold=threshold, data_range=data_range, max_error=max_error,
                              sweep=sweep, max_pixels=max_pixels,
                              protected=protected, pictures=pictures, record=record)


#: What :func:`compress_file` imports on its other thread while it reads and encodes: the
#: compiled loops, loaded (imported by the fork server of ``--jobs`` already).
_WARM_IMPORTS = ("dctconv.runtime._warm",)
#: What :func:`compress_file` imports after the encode: the sweep's figure.
_SWEEP_IMPORTS = ("matplotlib.figure", "matplotlib.backends.backend_agg")


def _import_all(names) -> None:
    import importlib

    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # the work imports it again, and reports what is wrong
            pass


def _listed(names) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


class _DecodedMaps:
    """The decoded coefficient maps of :class:`~dctconv.codec._core.Levels`, made one channel at a time
    as the maps picture reads them: the same numbers as ``levels.coefficients`` without the
    float64 maps of the whole image (128 MiB for 4096 x 4096), whose fresh memory cost more
    than the work (docs/performance.md)."""

    def __init__(self, levels):
        self._levels = levels
        self.shape = levels.levels.shape

    def __getitem__(self, channel: int):
        from ..codec._core import dequantize

        levels = self._levels
        offsets = None if levels.offsets is None else levels.offsets[:, channel : channel + 1]
        return dequantize(levels.levels[channel : channel + 1], levels.steps[channel : channel + 1], offsets,
                          levels.header.quantization)[0]


def _compress_file(path: Path, out_dir: Path, background: Background, *, block_size, quality, step, keep,
                   threshold, data_range, max_error, sweep, max_pixels, protected, pictures, record) -> FileResult:
    import json
    import os

    import numpy as np

    from ..codec._core import decoded_pixels, encode_image
    from ..codec._zigzag import keep_mask
    from ..io._images import image_bytes, image_suffix, read_image
    from ..measure._metrics import loss_notes, measure, over_valid

    # numba and the compiled loops of the quantization, the engine and the SSIM are imported
    # and loaded (0.5-1 s) on the other thread while this one reads the image; the encode
    # waits for a module the other thread is still importing (Python's lock per module).
    background.submit(_import_all, _WARM_IMPORTS)
    image, info = read_image(_an_image(path), max_pixels=max_pixels, allow_nan=True)
    notes = image_notes(info)
    data, levels = encode_image(image, block_size=block_size, quality=quality, step=step, keep=keep,
                                threshold=threshold, data_range=data_range, max_error=max_error)
    header = levels.header
    low, high = header.value_range
    n = header.block_size
    mask = keep_mask(n, header.keep)
    # The other thread encodes the pictures and the reconstruction into memory (in the order
    # they can be made) while this one decodes and measures; this one writes every file.
    tasks = {}
    if pictures:
        from ..io._images import picture_bytes, save_picture
        from ..measure._mosaics import error_picture_with_legend, maps_picture

        tasks["maps"] = background.submit(
            lambda: picture_bytes(maps_picture(_DecodedMaps(levels), mask=mask, dc_range=(n * low, n * high),
                                               partition=levels.partition.sizes if header.partitioned else None)))
    # What decode gives (the same levels and sections, through the same function):
    # transform --inverse of the file writes these pixels exactly.
    pixels = decoded_pixels(data, levels)
    nan = np.isnan(image) if info.mode == "F" else None
    nan_pixels = 0 if nan is None else int(np.count_nonzero(nan))
    measured_image, measured_pixels = image, pixels
    if nan_pixels:
        # NaN pixels decode as NaN exactly: the SSIM and the pictures see them as the
        # same value in both images, and PSNR, MSE and RMSE leave them out (over_valid).
        measured_image = np.where(nan, np.float32(low), image)
        measured_pixels = np.where(nan, np.float32(low), pixels)
    nonzero = np.count_nonzero(levels.levels.reshape(n * n, -1), axis=1)
    blocks = levels.levels[0].size
    # Block sizes chosen per region: the share of nonzero levels over the three passes' blocks.
    nonzero_fraction = (sum(int(np.count_nonzero(p.levels)) for p in levels.passes)
                        / sum(p.block_size ** 2 * int(p.present.sum()) for p in levels.passes)
                        if header.partitioned else int(nonzero.sum()) / levels.levels.size)
    if header.partitioned:
        blocks = max(1, int(levels.passes[0].present.sum()))
    height, width = image.shape
    names = compress_output_names(path.stem, image_suffix(info.mode), sweep=sweep, pictures=pictures)
    with atomic_outputs(protected) as outputs:
        temp = outputs.path(out_dir / names["compressed"])
        _write_bytes(temp, data)
        # The rename into place keeps the size, so this is the size on disk.
        compressed_bytes = os.path.getsize(temp)
        tasks["reconstruction"] = background.submit(image_bytes, pixels, info.mode)

        def encode_pictures(picture, scale, largest):
            tasks["error"] = background.submit(
                lambda: picture_bytes(error_picture_with_legend(picture, scale, largest_error=largest,
                                                                data_range=(low, high)), unfiltered=True))

        quality_numbers, _, error_scale = measure(measured_image, measured_pixels, data_range=high - low,
                                                  on_error_picture=encode_pictures if pictures else None,
                                                  submit=background.submit)
        if nan_pixels:
            quality_numbers = over_valid(quality_numbers, image, pixels, ~nan, data_range=high - low)
        notes += loss_notes(measured_image, measured_pixels, data_range=(low, high),
                            largest_error=quality_numbers.max_abs_error)
        found = None
        if sweep:
            from ..measure._sweep import NAMES, OWN_CURVES, sweep as run_sweep

            found = run_sweep(image, data_range=high - low, block_size=n, quality=header.quality,
                              step=header.step, threshold=header.threshold, value_range=(low, high),
                              source_format=info.file_format)
            notes += [f"sweep: {note}" for note in found.notes]
            others = [NAMES[m] for m in found.curves if m not in OWN_CURVES]
            if nan_pixels and others:
                notes.append(f"the sweep's {_listed(others)} compress the image with its {nan_pixels:,} NaN "
                             f"pixels set to {low:.6g}: they keep no no-data mask")
            for why in dict.fromkeys(found.left_out.values()):
                left_out = [NAMES[m] for m, reason in found.left_out.items() if reason == why]
                listed = _listed(left_out)
                notes.append(f"{listed} left out of the sweep: {why}")
        if compressed_bytes > image.nbytes:
            from ..codec._dctz import read_header

            overhead = read_header(data, max_pixels=None).header_size
            larger = (f"the compressed file ({compressed_bytes:,} bytes) is larger than the raw pixels "
                      f"({image.nbytes:,} bytes)")
            if overhead >= image.nbytes:  # no setting can help: the header alone is larger
                notes.append(f"{larger}: its header alone is {overhead:,} bytes, so no --quality or --step "
                             "makes it smaller")
            else:
                notes.append(f"{larger}; a lower --quality (or a larger --step) makes it smaller")
        report = CompressionReport(
            source=str(path),
            image_mode=info.mode,
            width=width,
            height=height,
            block_size="auto" if header.partitioned else n,
            quality=header.quality,
            step=header.step,
            kept_per_block=header.keep,
            kept_fraction=header.keep / (n * n),
            threshold=header.threshold,
            nonzero_fraction=nonzero_fraction,
            compressed_bytes=compressed_bytes,
            bits_per_pixel=8 * compressed_bytes / image.size,
            data_range=[low, high],
            **quality_numbers.as_dict(),
            rmse=float(np.sqrt(quality_numbers.mse)),
            max_error_bound=header.max_error,
            nan_pixels=nan_pixels,
            error_scale=error_scale,
            files=dict(names),
            bd_rates=None if found is None else {
                b.anchor: {key: value for key, value in b.as_dict().items() if key != "anchor"}
                for b in found.bd_rates
            },
        )
        if pictures:
            from ..measure._figures import summary_titles
            from ..measure._summary import summary_picture

            title, subtitle = summary_titles(printable(path.name), header, quality_numbers, compressed_bytes=compressed_bytes,
                                             bits_per_pixel=report.bits_per_pixel, error_scale=error_scale,
                                             nonzero_fraction=report.nonzero_fraction, data_range=(low, high))
            # Drawn while the other thread finishes the pictures, written after them.
            summary = summary_picture(
                measured_image, measured_pixels, channel_mask=mask, error_scale=error_scale, value_range=(low, high),
                channel_share=nonzero / blocks, title=title, subtitle=subtitle,
                partition=levels.partition.sizes if header.partitioned else None,
            )
        # The latest tasks first: one the other thread has not started is done here (Background.submit).
        encoded = {kind: tasks[kind]() for kind in reversed(tasks)}
        for kind in ("reconstruction", "error", "maps"):
            if kind in encoded:
                _write_bytes(outputs.path(out_dir / names[kind]), encoded[kind])
        if pictures:
            save_picture(outputs.path(out_dir / names["summary"]), summary)
        if sweep:
            from ..measure._sweep import write_csv

            with open(outputs.path(out_dir / names["sweep_csv"]), "w", newline="") as f:
                write_csv(f, found.points)
            with open(outputs.path(out_dir / names["sweep_json"]), "w") as f:
                json.dump({"source": str(path), "image_mode": info.mode, "width": width, "height": height,
                           "data_range": [low, high], **found.as_dict()}, f, indent=2, allow_nan=False)
                f.write("\n")
            if pictures:
                from ..measure._figures import save_sweep, sweep_title

                save_sweep(
                    outputs.path(out_dir / names["sweep_plot"]), [p.as_dict() for p in found.points],
                    title=sweep_title(printable(path.name), header), labels={k: c["label"] for k, c in found.curves.items()},
                    bd_rates={b.anchor: b.as_dict() for b in found.bd_rates},
                    this_file={"bits_per_pixel": report.bits_per_pixel, "psnr_db": report.psnr_db,
                               "ssim": report.ssim, "max_abs_error": report.max_abs_error},
                    # Scientific data: the largest error in its units is the second view.
                    views=("psnr_db", "ssim") if info.mode == "L" else ("psnr_db", "max_abs_error"),
                    notes=[f"Note: {note}" for note in found.notes],
                )
        with open(outputs.path(out_dir / names["metrics"]), "w") as f:
            json.dump(report.as_dict(), f, indent=2, allow_nan=False)  # NaN and Infinity are not JSON
            f.write("\n")
        notes += _sealed(record, outputs, out_dir, path.stem)
    return FileResult(path, outputs.written, notes, info, report)
