"""Hostile files, and the table of commands that the error tests run over.

Every command that reads images or coefficient files gets the same hostile-input,
several-inputs, atomic-output and fuzz tests by adding one entry to COMMANDS.

Files here are built without dctconv: PNG/TIFF/GIF through Pillow, coefficient
files through ``np.savez`` following the documented layout, PNG headers by hand.
What a command wrote is checked against scipy.fft per block and scikit-image.
"""

from __future__ import annotations

import io
import json
import math
import re
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from references import SAMPLES, reference_blockwise_dct, reference_blockwise_idct, tolerance

# ---------------------------------------------------------------- the commands


@dataclass(frozen=True)
class Command:
    """How to run one command on some inputs, and what it writes for a good one."""

    id: str
    reads: str
    """"image" or "coefficients": which hostile cases and good inputs apply."""
    argv: Callable[[Sequence[Path], Path], list[str]]
    """(inputs, output folder) -> the arguments after ``dctconv``.

    For ``verify FILE.npz IMAGE`` it also writes the other argument (the image, or
    its coefficient file) beside the input when it is not there yet: see companion_image."""
    outputs: Callable[[Path, Path], list[Path]]
    """(a good input made by make_good_input, output folder) -> the files it produces."""
    metavar: str
    """How click names the input argument in its usage errors."""
    library_call: str
    """A library function (``module:name``) the command calls for every input."""
    writer: str | None = None
    """A save function (``module:name``) the command writes through once per input, after
    another output; None for a command that writes no file."""
    writer_output: Callable[[Path, Path], Path] | None = None
    """(input, output folder) -> the file the writer writes (default: the last of outputs)."""
    output_dir: bool = True
    """The command has ``-o DIR``."""
    several: bool = True
    """The command takes several inputs in one call."""
    folders: bool = False
    """A folder is a valid input (it stands for the images in it)."""
    bad_options: list[tuple[list[str], str]] = field(default_factory=list)
    """(extra arguments, click's error line) for option values the command must refuse."""
    check: Callable[..., None] | None = None
    """(input, output folder, click result) -> assert that what the command did for it is right.

    The fuzz tests call it after every exit 0; None means they check only the exit
    code, the absence of tracebacks and of temporary files."""
    judge: Callable[[Path, Path], bool | None] | None = None
    """For a command whose answer is a verdict (verify): (input, output folder) -> whether,
    computed independently, the input should pass; None when it is too close to tell.
    Exit 1 without an error line is then a verdict "does not pass", checked against it."""
    listing: Callable[..., None] | None = None
    """(click result, the good inputs, output folder) -> assert that stdout reports exactly them."""
    fuzz_share: float = 1.0
    """Share of the fuzz examples this command gets (compress draws figures: it is slow)."""
    expect_ok: Callable[[np.ndarray], bool] = lambda array: bool(np.isfinite(array).all())
    """Whether an image with these finite pixels must be processed (exit 0)."""

    record: Callable[[Path, Path], Path] | None = None
    """(a good input, output folder) -> the hidden record written with its outputs
    (:mod:`dctconv.runtime._records`); None for a command that writes none."""

    def written(self, src: Path, out: Path) -> list[Path]:
        """Every file the command leaves in ``out`` for ``src``: its outputs, then its record."""
        return self.outputs(src, out) + ([self.record(src, out)] if self.record is not None else [])

    @property
    def missing_word(self) -> str:
        """click's word for the input in "... does not exist": "File", or "Path" when folders are valid."""
        return "Path" if self.folders else "File"


def _transform_outputs(src: Path, out: Path) -> list[Path]:
    return [out / f"{src.stem}_coefficients.npz", out / f"{src.stem}_maps.png"]


def _inverse_outputs(src: Path, out: Path) -> list[Path]:
    return [out / f"{src.stem.removesuffix('_coefficients').removesuffix('_compressed')}_reconstruction.png"]


_COMPRESS_OUTPUTS = ("compressed.dctz", "reconstruction.png", "error.png", "maps.png", "summary.png",
                     "metrics.json")


def _compress_outputs(src: Path, out: Path) -> list[Path]:
    """What compress writes for an 8-bit source (make_good_input's), in the order it writes them."""
    return [out / f"{src.stem}_{name}" for name in _COMPRESS_OUTPUTS]


def _record(command: str):
    from dctconv.runtime._records import record_name

    def record(src: Path, out: Path) -> Path:
        return out / record_name(src.stem.removesuffix('_coefficients').removesuffix('_compressed')
                                 if command == "inverse" else src.stem, command)
    return record


def _arrow_listing(command_outputs):
    def listing(result, goods, out):
        assert result.stdout.splitlines() == [
            f"{g} -> {', '.join(map(str, command_outputs(g, out)))}" for g in goods
        ]
    return listing


def _compress_listing(result, goods, out):
    header, *rows = result.stdout.splitlines()
    assert header.split()[:4] == ["file", "n", "steps", "K"]
    assert [row.split()[0] for row in rows] == [str(g) for g in goods]


def _table_rows(stdout: str) -> list[list[str]]:
    """verify's table rows split into cells (runs of 2+ spaces), header, rule and summary left out."""
    return [re.split(r"\s{2,}", line.strip()) for line in stdout.splitlines()[2:-1]
            if not line.startswith("FAIL ")]


def _overflows_float32(pixels: np.ndarray) -> bool:
    """Whether float32 pixels can have a DC coefficient beyond float32's range at verify's block sizes.

    A constant n x n patch of value v has the DC coefficient n * v; float32 images are
    transformed in float32, so verify then reports an infinite error (README, verify).
    """
    from dctconv.verify._checks import DEFAULT_BLOCK_SIZES

    if pixels.dtype != np.float32:
        return False
    largest = float(np.abs(pixels.astype(np.float64)).max())
    return max(DEFAULT_BLOCK_SIZES) * largest >= float(np.finfo(np.float32).max) / 2


def _verify_listing(result, goods, out):
    """The table names the good images (by file name) and the summary counts the unread one."""
    kernel_rows = ("dct_kernels ", "random x, c ", "residual x + ")
    images = {row[2] for row in _table_rows(result.stdout) if not row[2].startswith(kernel_rows)}
    assert images == {g.name for g in goods}, images
    last = result.stdout.splitlines()[-1]
    assert last.startswith("all ") and last.endswith(
        f"; 1 of {len(goods) + 1} images could not be read (errors above)"
    ), last


# ---------------------------------------------------------------- independent decoders


_GRAY = {"L": np.uint8, "I;16": np.uint16, "I": np.int32, "F": np.float32}


def decode_gray(path: Path) -> np.ndarray:
    """The first frame of an image file as gray pixels, as the README specifies it.

    8/16/32-bit gray and float are kept as they are; anything else becomes 8-bit
    luma (Pillow's ITU-R 601-2 ``convert("L")``).
    """
    with Image.open(path) as im:
        im.seek(0)
        if im.mode in ("L", "I;16", "I", "F"):
            return np.asarray(im)
        try:
            return np.asarray(im.convert("L"))
        except ValueError:  # modes Pillow converts to L only by way of RGB
            return np.asarray(im.convert("RGB").convert("L"))


def decode_coefficient_file(path: Path) -> tuple[tuple[int, int], str, np.ndarray]:
    """(image_shape, image_mode, full coefficient maps) of a file in the documented layout.

    A compressed .dctz file (magic DCTZ) is read by dctconv's decoder (compressed_levels):
    its entropy coding has no independent decoder."""
    if path.read_bytes()[:4] == b"DCTZ":
        header, levels, steps, offsets = compressed_levels(path)
        coefficients = levels if header.quantization == "none" else dequantized(levels, steps, offsets)
        return header.image_shape, header.mode, coefficients
    with np.load(path, allow_pickle=False) as f:
        n = int(f["block_size"])
        shape = tuple(int(side) for side in f["image_shape"])
        mode = str(f["image_mode"]) if "image_mode" in f.files else "F"
        kind = str(f["kind"]) if "kind" in f.files else "transform"
        if kind == "transform":
            return shape, mode, f["coefficients"]
        step = float(f["step"]) if "step" in f.files else 0.0
        coefficients = np.zeros((n * n, -(-shape[0] // n), -(-shape[1] // n)))
        kept = f["kept"].astype(np.float64)
        coefficients[f["channel_mask"]] = kept * step if step > 0 else kept
        return shape, mode, coefficients


def assert_pixels(got: np.ndarray, reference: np.ndarray, mode: str, tol: float) -> None:
    """``got`` is a float within ``tol`` of ``reference``, rounded and clipped to ``mode``'s pixels."""
    dtype = np.dtype(_GRAY[mode])
    assert got.dtype == dtype, (got.dtype, mode)
    assert got.shape == reference.shape
    if dtype.kind == "f":
        limit = float(np.finfo(dtype).max)
        np.testing.assert_allclose(got, np.clip(reference, -limit, limit), rtol=2.0**-23, atol=tol)
        return
    info = np.iinfo(dtype)
    low = np.clip(np.rint(reference - tol), info.min, info.max)
    high = np.clip(np.rint(reference + tol), info.min, info.max)
    inside = (low <= got) & (got <= high)
    assert inside.all(), (got[~inside][:5], reference[~inside][:5], tol)


def check_transform_output(src: Path, out: Path, result=None) -> None:
    image = decode_gray(src).astype(np.float64)
    with np.load(out / f"{src.stem}_coefficients.npz", allow_pickle=False) as f:
        coefficients, n = f["coefficients"], int(f["block_size"])
        assert tuple(f["image_shape"]) == image.shape
    assert coefficients.dtype == np.float64
    expected = reference_blockwise_dct(image, n)
    magnitude = float(np.abs(image).max()) * n
    np.testing.assert_allclose(coefficients, expected, rtol=0, atol=tolerance(np.float64, magnitude))
    with Image.open(out / f"{src.stem}_maps.png") as maps:
        assert maps.mode == "L"


def check_inverse_output(src: Path, out: Path, result=None) -> None:
    shape, mode, coefficients = decode_coefficient_file(src)
    stem = src.stem.removesuffix("_coefficients").removesuffix("_compressed")
    [written] = [p for p in out.iterdir() if p.name.startswith(f"{stem}_reconstruction.")]
    assert written.suffix == (".png" if mode in ("L", "I;16") else ".tif")
    reference = reference_blockwise_idct(coefficients.astype(np.float64), shape)
    n = int(round(np.sqrt(coefficients.shape[0])))
    work = np.float32 if coefficients.dtype == np.float32 else np.float64
    tol = tolerance(work, float(np.abs(coefficients).max(initial=0)) * n)
    with Image.open(written) as im:
        assert_pixels(np.asarray(im), reference, mode, tol)


#: Full range of each gray mode's pixel values, as PSNR and SSIM use it (README, compress).
DATA_RANGE = {"L": 255.0, "I;16": 65535.0, "I": float(2**32 - 1), "F": 1.0}
_MODE_OF_DTYPE = {np.dtype(dtype): mode for mode, dtype in _GRAY.items()}


def gray_mode(pixels: np.ndarray) -> str:
    return _MODE_OF_DTYPE[pixels.dtype]


def zigzag_mask(n: int, keep: int) -> np.ndarray:
    """The first ``keep`` channels x*n + y in JPEG zigzag order, as the README defines it:
    anti-diagonals s = x + y in turn, x falling on even ones and rising on odd ones."""
    cells = sorted(((x, y) for x in range(n) for y in range(n)),
                   key=lambda c: (c[0] + c[1], c[0] if (c[0] + c[1]) % 2 else -c[0]))
    if n == 4:  # ITU-T T.81, Figure 5, read on a 4 x 4 corner
        assert cells[:7] == [(0, 0), (0, 1), (1, 0), (2, 0), (1, 1), (0, 2), (0, 3)]
    mask = np.zeros(n * n, dtype=bool)
    mask[[x * n + y for x, y in cells[:keep]]] = True
    return mask


def _no_constants(name):
    raise AssertionError(f"{name} in a JSON file: not valid JSON")


def read_json(path: Path):
    """A JSON file, refusing NaN and Infinity (Python writes them; JSON has no such numbers)."""
    return json.loads(path.read_text(), parse_constant=_no_constants)


def ssim_window(shape) -> int | None:
    """The SSIM window the README specifies: 7, or the largest odd side that fits; None under 3."""
    window = min(7, *shape)
    window -= 1 - window % 2
    return window if window >= 3 else None


def _smallest_default_step(dtype) -> float:
    from dctconv.codec._quantize import step_table

    return float(step_table(4, quality=75, dtype=dtype).min())


def default_steps(n: int, dtype, data_range=None) -> np.ndarray:
    """The steps of compress's default, quality 75, for pixels of ``dtype``: the documented table
    (tested against Pillow's JPEG tables and the written rule in test_quantization.py) times
    the width of the data range over 255 (the container's range when none is given)."""
    from dctconv.codec._quantize import step_table

    if data_range is None:
        return step_table(n, quality=75, dtype=dtype)
    return step_table(n, quality=75) * (data_range[1] - data_range[0]) / 255


def default_data_range(pixels: np.ndarray) -> tuple[float, float]:
    """The documented default data range: 0 .. 255 for 8-bit, else the smallest and largest
    value (NaN left out); a constant image ``low .. low + w`` with w = max(1, |low| / 2**23),
    or ``low - w .. low`` where ``low + w`` passes float32's largest number."""
    if pixels.dtype == np.uint8:
        return 0.0, 255.0
    values = pixels[~np.isnan(pixels)] if pixels.dtype.kind == "f" else pixels
    if values.size == 0:
        return 0.0, 1.0
    low, high = float(values.min()), float(values.max())
    if high > low:
        return low, high
    width = max(1.0, abs(low) / 2**23)
    return (low - width, low) if low + width > float(np.finfo(np.float32).max) else (low, low + width)


def compressed_levels(path: Path) -> tuple:
    """(header, levels, steps, offsets) of a compressed .dctz file, read by dctconv's decoder: the
    entropy coding has no independent decoder; what the levels must be is checked here.
    ``offsets`` is None, or the (2, n*n) reconstruction offsets (in steps) of levels of
    magnitude 1 and of larger ones."""
    from dctconv.codec._core import decode_levels

    levels = decode_levels(path.read_bytes(), max_pixels=None)
    return levels.header, levels.levels, levels.steps, getattr(levels, "offsets", None)


def dequantized(levels, steps, offsets) -> np.ndarray:
    """Coefficients of levels as the format documents them: level * step, or with reconstruction
    offsets sign(level) (|level| - offset) step."""
    steps = np.asarray(steps, dtype=np.float64)[:, None, None]
    if offsets is None:
        return levels * steps
    offsets = np.asarray(offsets, dtype=np.float64)
    offset = np.where(np.abs(levels) == 1, offsets[0][:, None, None], offsets[1][:, None, None])
    return np.sign(levels) * np.maximum(np.abs(levels) - offset, 0) * steps


def levels_match(stored, image, n, steps, *, kept=None, threshold=0.0, dead_zone: float = 0.0,
                 slack: float = 1.0, rdoq: bool = False) -> np.ndarray:
    """Where the levels ``stored`` are the documented quantization of ``image``, recomputed with
    scipy: per-block dctn; channels outside ``kept`` and AC coefficients below ``threshold``
    zeroed; level sign(c) floor(|c| / step + 1/2 - z), with z = ``dead_zone`` (in steps) for AC
    levels and 0 for DC (z = 0 is rint, whose ties go to even).

    A level may be either neighbour where |c| / step is within float rounding of a
    rounding boundary (a tie: common for integer images, whose DC is a sum / n), and 0
    where |c| is within float rounding of the threshold. With ``rdoq`` (8-bit quality
    files without a bound: docs/codec.md) an AC level may also be 0 or up to two below
    the plain rounding of |c| / step, never above it.
    """
    image = np.asarray(image, dtype=np.float64)
    truth = reference_blockwise_dct(image, n)
    if kept is not None:
        truth = truth * np.asarray(kept)[:, None, None]
    rounding = slack * tolerance(np.float64, n * n * float(np.abs(image).max(initial=0)))
    steps = np.broadcast_to(np.asarray(steps, dtype=np.float64), (n * n,))[:, None, None]
    zeroed = np.abs(truth) < threshold - rounding
    zeroed[0] = False  # DC is never thresholded
    either = np.abs(np.abs(truth) - threshold) <= rounding
    either[0] = False
    size = np.where(zeroed, 0.0, np.abs(truth)) / steps
    err = rounding / steps
    shift = np.full((n * n, 1, 1), 0.5)
    shift[1:] -= dead_zone
    low, high = np.floor(size - err + shift), np.floor(size + err + shift)
    magnitude = np.abs(stored)
    # Within float rounding of 0 the sign of a coefficient is not determined (e.g. a flat block
    # of huge values, whose AC coefficients are rounding noise of either sign).
    signs_agree = (stored == 0) | (np.sign(stored) == np.sign(truth)) | (np.abs(truth) <= rounding)
    near = (low <= magnitude) & (magnitude <= high) & signs_agree
    if rdoq:
        shift[1:] = 0.5
        rounded_high = np.floor(size + err + shift)
        chosen = (magnitude == 0) | ((np.floor(size - err + shift) - 2 <= magnitude) & (magnitude <= rounded_high)
                                     & signs_agree)
        chosen[0] = False
        near |= chosen
    return near | (either & (stored == 0))


def rdoq_applies(header) -> bool:
    """Whether the encoder chose the levels of ``header``'s file by rate-distortion cost (docs/codec.md)."""
    return header.quantization == "quality" and header.mode == "L" and header.max_error is None


def check_compressed(path: Path, written: np.ndarray, image: np.ndarray, mode: str, *, steps,
                     kept=None, threshold=0.0) -> None:
    """``path`` holds the quantized levels of ``image`` (see levels_match) and ``written`` is
    their decoding: scipy's idctn per block of the dequantized coefficients, rounded and
    clipped to ``mode``."""
    header, stored, file_steps, offsets = compressed_levels(path)
    n = header.block_size
    assert header.image_shape == image.shape and header.mode == mode
    assert np.array_equal(file_steps, np.broadcast_to(steps, (n * n,)))
    dead_zone = getattr(header, "dead_zone", 0) / 256
    match = levels_match(stored, image, n, steps, kept=kept, threshold=threshold, dead_zone=dead_zone,
                         rdoq=rdoq_applies(header))
    assert match.all(), (np.argwhere(~match)[:5], stored[~match][:5])
    coefficients = dequantized(stored, file_steps, offsets)
    decoded = reference_blockwise_idct(coefficients, image.shape)
    assert_pixels(written, decoded, mode, tolerance(np.float64, n * float(np.abs(coefficients).max(initial=0))))


def check_compress_output(src: Path, out: Path, result=None) -> None:
    """compress with its defaults (n = 4, quality 75, all frequencies): the file, the pixels, the numbers.

    The file holds the levels of scipy's dctn per block divided by the documented steps
    (scaled to the data range) and rounded (check_compressed). For 8-bit images the
    reconstruction is scipy's idctn of them, rounded and clipped; for the others the
    default bound holds on every pixel (1 % of the data range, floor of it for integers),
    checked here, NaN pixels decoding as NaN. The metrics are scikit-image's on the
    written files over the data range.
    """
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    n = 4
    pixels = decode_gray(src)
    mode = gray_mode(pixels)
    low, high = default_data_range(pixels)
    image = pixels.astype(np.float64)
    stem = src.stem
    metrics = read_json(out / f"{stem}_metrics.json")
    assert (metrics["block_size"], metrics["quality"], metrics["step"], metrics["kept_per_block"],
            metrics["threshold"]) == (n, 75, None, n * n, 0.0)
    assert (metrics["image_mode"], metrics["height"], metrics["width"]) == (mode, *image.shape)
    assert metrics["source"] == str(src)
    assert metrics["data_range"] == [low, high]

    compressed = out / f"{stem}_compressed.dctz"
    assert metrics["compressed_bytes"] == compressed.stat().st_size
    suffix = ".png" if mode in ("L", "I;16") else ".tif"
    with Image.open(out / f"{stem}_reconstruction{suffix}") as im:
        written = np.asarray(im)
    nan = np.isnan(image)
    if mode == "L":
        check_compressed(compressed, written, pixels, mode, steps=default_steps(n, pixels.dtype, (low, high)))
        assert metrics["max_error_bound"] is None
    else:
        bound = 0.01 * (high - low)
        if mode == "F":
            top = np.float32(max(abs(low), abs(high)))
            with np.errstate(over="ignore"):
                spacing = float(np.spacing(top))
            if not math.isfinite(spacing):  # at float32's largest number the next one up is inf:
                spacing = 2.0 ** (math.frexp(float(top))[1] - 24)  # the spacing of its binade
            bound = max(bound, 2 * spacing)
        assert math.isclose(metrics["max_error_bound"], bound, rel_tol=1e-12)
        limit = bound if mode == "F" else math.floor(bound)
        assert np.array_equal(np.isnan(written.astype(np.float64)), nan)
        assert np.all(np.abs(written.astype(np.float64)[~nan] - image[~nan]) <= limit)
    assert metrics["nan_pixels"] == int(nan.sum())

    original, restored = np.where(nan, low, image), np.where(nan, low, written.astype(np.float64))
    difference = original - restored
    data_range = high - low
    valid = ~nan
    assert math.isclose(metrics["mse"], float(np.mean(difference[valid] ** 2)) if valid.any() else 0.0,
                        rel_tol=1e-12, abs_tol=1e-300)
    assert math.isclose(metrics["rmse"], math.sqrt(metrics["mse"]), rel_tol=1e-12)
    assert metrics["max_abs_error"] == float(np.abs(difference).max())
    if not difference.any():
        assert metrics["psnr_db"] is None
    else:
        expected = peak_signal_noise_ratio(original[valid], restored[valid], data_range=data_range)
        assert math.isclose(metrics["psnr_db"], expected, rel_tol=1e-9), (metrics["psnr_db"], expected)
    window = ssim_window(image.shape)
    if window is None:
        assert metrics["ssim"] is None
    else:
        expected = structural_similarity(original, restored, data_range=data_range, win_size=window)
        assert math.isclose(metrics["ssim"], expected, rel_tol=1e-9, abs_tol=1e-12), (metrics["ssim"], expected)
    with Image.open(out / f"{stem}_error.png") as im:
        error_picture = np.asarray(im)[: difference.shape[0], : difference.shape[1]]  # the legend is below
    np.testing.assert_array_equal(
        error_picture, np.minimum(np.rint(np.abs(difference) * metrics["error_scale"]), 255)
    )
    for name in ("maps", "summary"):
        with Image.open(out / f"{stem}_{name}.png") as im:
            assert im.format == "PNG"


# ---------------------------------------------------------------- verify: the verdict, recomputed


#: Machine epsilon of the dtype verify computes in: the unit of its documented tolerances.
EPSILON = {np.dtype(np.float64): 2.0**-52, np.dtype(np.float32): 2.0**-23}


def file_matches_image(npz: Path, image_path: Path) -> bool | None:
    """Whether, by the README's rule, a coefficient file holds what its image transforms to.

    Recomputed with scipy.fft.dctn per block. Transform files: every coefficient
    within eps (n*n + 3) n max|x| (eps of the file's float32 or float64). Compressed
    files: the kept channels within step/2 plus the float64 one; a stored 0 of a kept
    AC channel whose true value is below the recorded threshold is not compared.
    None when the answer depends on rounding: the largest difference within a factor
    two of the rounding part of the tolerance, or a stored zero that near the threshold
    (dctconv's forward and scipy's differ by rounding, so such a case may go either way).
    """
    if npz.read_bytes()[:4] == b"DCTZ":
        return compressed_file_matches_image(npz, image_path)
    with np.load(npz, allow_pickle=False) as f:
        n = int(f["block_size"])
        kind = str(f["kind"]) if "kind" in f.files else "transform"
        step = float(f["step"]) if kind == "compressed" and "step" in f.files else 0.0
        threshold = float(f["threshold"]) if kind == "compressed" and "threshold" in f.files else 0.0
        if kind == "transform":
            dtype = np.dtype(np.float32 if f["coefficients"].dtype == np.float32 else np.float64)
            compared = np.ones(n * n, dtype=bool)
        else:
            dtype = np.dtype(np.float64)
            compared = np.asarray(f["channel_mask"], dtype=bool)
    shape, _, coefficients = decode_coefficient_file(npz)
    image = decode_gray(image_path).astype(np.float64)
    if image.shape != shape:
        return False
    truth = reference_blockwise_dct(image, n)
    rounding = EPSILON[dtype] * (n * n + 3) * n * float(np.abs(image).max())
    difference = np.abs(coefficients - truth)
    kept = np.broadcast_to(compared[:, None, None], truth.shape)
    zero_ac = kept & (coefficients == 0)
    zero_ac[0] = False

    def verdict(skipped) -> bool | None:
        worst = float(difference[kept & ~skipped].max(initial=0.0))
        if worst <= step / 2 + rounding / 2:
            return True
        if worst > step / 2 + 2 * rounding:
            return False
        return None

    strict = verdict(zero_ac & (np.abs(truth) < threshold - 2 * rounding))
    loose = verdict(zero_ac & (np.abs(truth) < threshold + 2 * rounding))
    return strict if strict == loose else None


def compressed_file_matches_image(path: Path, image_path: Path) -> bool | None:
    """Whether a compressed .dctz file holds the levels of its image, recomputed with scipy
    (levels_match); None when the answer turns on float rounding (it differs with the
    rounding allowance divided or multiplied by 4)."""
    header, stored, steps, _ = compressed_levels(path)
    pixels = decode_gray(image_path)
    if pixels.shape != header.image_shape or gray_mode(pixels) != header.mode:
        return False
    n = header.block_size
    kept = zigzag_mask(n, header.keep)
    if header.quantization == "none":
        truth = reference_blockwise_dct(pixels.astype(np.float64), n) * kept[:, None, None]
        small = np.abs(truth) < header.threshold
        small[0] = False
        worst = float(np.abs(np.where(small, 0.0, truth) - stored).max())
        rounding = tolerance(np.float64, n * n * float(np.abs(pixels.astype(np.float64)).max(initial=0)))
        return True if worst <= rounding / 4 else False if worst > 4 * rounding else None
    dead_zone = getattr(header, "dead_zone", 0) / 256
    verdicts = {bool(levels_match(stored, pixels, n, steps, kept=kept, threshold=header.threshold,
                                  dead_zone=dead_zone, slack=slack, rdoq=rdoq_applies(header)).all())
                for slack in (0.25, 4.0)}
    return verdicts.pop() if len(verdicts) == 1 else None


def _decodable(path: Path, max_pixels: int = 20_000) -> np.ndarray | None:
    """The gray pixels of a small, readable, finite image file; None for anything else."""
    try:
        with Image.open(path) as im:
            if not 0 < im.width * im.height <= max_pixels:
                return None
        pixels = decode_gray(path)
    except Exception:
        return None
    return pixels if np.isfinite(pixels).all() else None


def companion_image(npz: Path) -> Path:
    """The IMAGE of ``verify FILE.npz IMAGE`` for a coefficient file: x.png (or x.tif) beside
    x_coefficients.npz.

    Written when missing, as the sample crop: the image make_good_input's files come from."""
    stem = npz.stem.removesuffix("_coefficients").removesuffix("_compressed")
    for suffix in (".tif", ".tiff"):
        if npz.with_name(stem + suffix).exists():
            return npz.with_name(stem + suffix)
    path = npz.with_name(f"{stem}.png")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png_bytes(sample_crop()))
    return path


def companion_file(image: Path) -> Path:
    """The FILE.npz of ``verify FILE.npz IMAGE`` for an image: its transform, computed with scipy.

    Written when missing, from the image's own pixels when they can be decoded (small and
    finite), else from the sample crop; so a good image always matches its file."""
    path = image.with_name(f"{image.name}.companion_coefficients.npz")
    if not path.exists():
        pixels = _decodable(image)
        pixels = sample_crop() if pixels is None else pixels
        path.parent.mkdir(parents=True, exist_ok=True)
        write_npz(path, coefficient_arrays(pixels, mode=gray_mode(pixels)))
    return path


def check_verify_images(src: Path, out: Path, result) -> None:
    """verify IMAGE: every check of the image (and of the kernels) passed, and the summary says so."""
    rows = _table_rows(result.stdout)
    assert rows and all(row[-1] == "pass" for row in rows), rows
    assert any(row[2].startswith(src.name) for row in rows)
    assert result.stdout.splitlines()[-1] == f"all {len(rows)} checks passed"


def check_verify_file(src: Path, out: Path, result) -> None:
    """verify FILE.npz IMAGE said OK: the file does hold the transform of its image."""
    assert file_matches_image(src, companion_image(src)) is not False
    assert result.stdout.splitlines()[-1].startswith(f"OK: {src} holds the ")


def check_verify_image(src: Path, out: Path, result) -> None:
    """verify FILE.npz IMAGE (the image being the input) said OK: the image matches its file."""
    file = companion_file(src)
    assert file_matches_image(file, src) is not False
    assert result.stdout.splitlines()[-1].startswith(f"OK: {file} holds the ")


# ---------------------------------------------------------------- the table


def _range_error(value, low=2, high=64, option="'--block-size' / '-n'") -> str:
    return f"Error: Invalid value for {option}: {value} is not in the range {low}<=x<={high}."


MAX_PIXELS_ERROR = (["--max-pixels", "0"], "Error: Invalid value for '--max-pixels': 0 is not in the range x>=1.")
BLOCK_SIZE_ERRORS = [
    (["--block-size", "0"], _range_error(0)),
    (["--block-size", "1"], _range_error(1)),
    (["--block-size", "65"], _range_error(65)),
    (["--block-size", "-4"], _range_error(-4)),
    (["--block-size", "abc"], "Error: Invalid value for '--block-size' / '-n': 'abc' is not a valid integer."),
    (["--block-size", "4.5"], "Error: Invalid value for '--block-size' / '-n': '4.5' is not a valid integer."),
    (["--block-size", ""], "Error: Invalid value for '--block-size' / '-n': '' is not a valid integer."),
    MAX_PIXELS_ERROR,
]

# Every command runs in this process (--jobs 1 where there is --jobs; verify has none), so
# that the tests can patch the library (a failing writer, an internal bug).
# tests/test_cli_jobs.py covers --jobs > 1.
COMMANDS = [
    Command(
        id="transform",
        reads="image",
        argv=lambda inputs, out: ["transform", *map(str, inputs), "-o", str(out), "--jobs", "1"],
        outputs=_transform_outputs,
        record=_record("transform"),
        metavar="FILE_OR_DIR...",
        writer="dctconv.io._images:save_picture",
        library_call="dctconv.transform:forward",
        bad_options=BLOCK_SIZE_ERRORS,
        check=check_transform_output,
        listing=_arrow_listing(_transform_outputs),
        folders=True,
    ),
    Command(
        id="transform-inverse",
        reads="coefficients",
        argv=lambda inputs, out: ["transform", "--inverse", *map(str, inputs), "-o", str(out), "--jobs", "1"],
        outputs=_inverse_outputs,
        record=_record("inverse"),
        metavar="FILE_OR_DIR...",
        writer="dctconv.io._images:save_image",
        library_call="dctconv.transform:inverse",
        bad_options=[
            MAX_PIXELS_ERROR,
            (["--block-size", "8"], "Error: Invalid value for '--block-size' / '-n': "
             "the coefficient file records it; drop this option with --inverse"),
        ],
        check=check_inverse_output,
        listing=_arrow_listing(_inverse_outputs),
        folders=True,  # of coefficient files: tests/test_cli_conventions.py
    ),
    Command(
        id="compress",
        reads="image",
        argv=lambda inputs, out: ["compress", *map(str, inputs), "-o", str(out), "--jobs", "1"],
        outputs=_compress_outputs,
        record=_record("compress"),
        metavar="IMAGE_OR_DIR...",
        # The summary figure, written by save_picture after the compressed file, the
        # reconstruction, the error and the maps.
        writer="dctconv.io._images:save_picture",
        writer_output=lambda src, out: out / f"{src.stem}_summary.png",
        library_call="dctconv.codec._core:encode_image",
        folders=True,
        bad_options=BLOCK_SIZE_ERRORS + [
            (["--keep", "0"], "Error: Invalid value for '--keep': must be from 1 to 16 for --block-size 4 (got 0)."),
            (["--keep", "17"], "Error: Invalid value for '--keep': must be from 1 to 16 for --block-size 4 (got 17)."),
            (["--keep", "-1"], "Error: Invalid value for '--keep': must be from 1 to 16 for --block-size 4 (got -1)."),
            (["--keep", "5", "--block-size", "2"],
             "Error: Invalid value for '--keep': must be from 1 to 4 for --block-size 2 (got 5)."),
            (["--keep", "abc"], "Error: Invalid value for '--keep': 'abc' is not a valid integer."),
            (["--step", "-1"], "Error: Invalid value for '--step': -1.0 is not in the range x>=0."),
            (["--step", "-1e-300"], "Error: Invalid value for '--step': -1e-300 is not in the range x>=0."),
            (["--step", "nan"], "Error: Invalid value for '--step': nan is not a finite number."),
            (["--step", "inf"], "Error: Invalid value for '--step': inf is not a finite number."),
            (["--step", "abc"], "Error: Invalid value for '--step': 'abc' is not a valid float range."),
            (["--threshold", "-0.5"], "Error: Invalid value for '--threshold': -0.5 is not in the range x>=0."),
            (["--threshold", "nan"], "Error: Invalid value for '--threshold': nan is not a finite number."),
            (["--jobs", "0"], "Error: Invalid value for '--jobs' / '-j': 0 is not in the range x>=1."),
        ],
        check=check_compress_output,
        listing=_compress_listing,
        fuzz_share=0.25,
        # Levels rint(c / step) with |c| <= 4 max|x| must stay below the codec's 2**59.
        expect_ok=lambda array: bool(np.isfinite(array).all())
        and float(np.abs(array.astype(np.float64)).max()) * 4 / _smallest_default_step(array.dtype) < 2.0**58,
    ),
    Command(
        id="verify",
        reads="image",
        argv=lambda inputs, out: ["verify", *map(str, inputs)],
        outputs=lambda src, out: [],
        metavar="[IMAGE...]",
        library_call="dctconv.verify._files:image_checks",
        output_dir=False,
        bad_options=BLOCK_SIZE_ERRORS,
        check=check_verify_images,
        # The transform is right: every image that can be read passes every check,
        # unless its float32 coefficients overflow (see _overflows_float32).
        judge=lambda src, out: None if _overflows_float32(decode_gray(src)) else True,
        expect_ok=lambda array: bool(np.isfinite(array).all()) and not _overflows_float32(array),
        listing=_verify_listing,
    ),
    Command(
        id="verify-file",
        reads="coefficients",
        argv=lambda inputs, out: ["verify", *map(str, inputs), str(companion_image(inputs[0]))],
        outputs=lambda src, out: [],
        metavar="[IMAGE...]",
        library_call="dctconv.verify._files:verify_file",
        output_dir=False,
        several=False,
        # click checks --block-size's value before the command refuses the option itself.
        bad_options=BLOCK_SIZE_ERRORS + [
            (["--block-size", "4"], "Error: Invalid value for '--block-size': "
             "the coefficient file records the block size; drop --block-size"),
        ],
        check=check_verify_file,
        judge=lambda src, out: file_matches_image(src, companion_image(src)),
    ),
    Command(
        # verify FILE.npz IMAGE with the hostile input in the IMAGE place.
        id="verify-image",
        reads="image",
        argv=lambda inputs, out: ["verify", str(companion_file(inputs[0])), *map(str, inputs)],
        outputs=lambda src, out: [],
        metavar="[IMAGE...]",
        library_call="dctconv.io._images:read_image",
        output_dir=False,
        several=False,
        bad_options=[MAX_PIXELS_ERROR],
        check=check_verify_image,
        judge=lambda src, out: file_matches_image(companion_file(src), src),
    ),
]

def command_named(name: str) -> Command:
    return next(c for c in COMMANDS if c.id == name)


IMAGE_COMMANDS = [c for c in COMMANDS if c.reads == "image"]
WRITING_COMMANDS = [c for c in COMMANDS if c.writer is not None]
OUTPUT_DIR_COMMANDS = [c for c in COMMANDS if c.output_dir]
SEVERAL_COMMANDS = [c for c in COMMANDS if c.several]
#: Commands that take a folder of images (transform --inverse takes one of .npz files).
FOLDER_COMMANDS = [c for c in COMMANDS if c.folders and c.reads == "image"]
COEFFICIENT_COMMANDS = [c for c in COMMANDS if c.reads == "coefficients"]
BAD_OPTIONS = [(c, extra, line) for c in COMMANDS for extra, line in c.bad_options]


def ids(commands) -> list[str]:
    return [c.id for c in commands]


# ---------------------------------------------------------------- good inputs


def sample_crop(name: str = "camera.png", box=(200, 180, 213, 190)) -> np.ndarray:
    """A small crop (default 10 x 13, not multiples of 4) of a sample photograph, in gray."""
    with Image.open(SAMPLES / name) as im:
        return np.asarray(im.convert("L").crop(box))


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def coefficient_arrays(image: np.ndarray, *, block_size: int = 4, mode: str = "L") -> dict:
    """The arrays of a valid "transform" coefficient file for ``image`` (documented layout)."""
    return {
        "format_version": np.array(1, dtype=np.int64),
        "kind": np.array("transform"),
        "block_size": np.array(block_size, dtype=np.int64),
        "image_shape": np.array(image.shape, dtype=np.int64),
        "image_mode": np.array(mode),
        "source": np.array("crop.png"),
        "step": np.array(0.0),
        "coefficients": reference_blockwise_dct(image, block_size),
    }


def write_npz(path: Path, arrays: dict, *, drop=(), **changes) -> Path:
    """np.savez ``arrays`` with some keys replaced (``changes``) or left out (``drop``)."""
    arrays = {**arrays, **changes}
    np.savez(path, **{k: v for k, v in arrays.items() if k not in drop})
    return path


def make_good_input(command: Command, folder: Path, name: str = "good", image=None) -> Path:
    """A valid input for ``command`` in ``folder``: an 8-bit PNG, or its coefficient file."""
    folder.mkdir(parents=True, exist_ok=True)
    image = sample_crop() if image is None else image
    if command.reads == "image":
        path = folder / f"{name}.png"
        path.write_bytes(png_bytes(image))
        return path
    return write_npz(folder / f"{name}_coefficients.npz", coefficient_arrays(image))


# ---------------------------------------------------------------- PNG surgery


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunks(data: bytes):
    """Yield (offset, length, type) of every chunk; stops at the first one that does not fit."""
    offset = len(PNG_SIGNATURE)
    while offset + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if offset + 12 + length > len(data):
            return
        yield offset, length, kind
        offset += 12 + length


def fix_png_crcs(data: bytes) -> bytes:
    """Recompute every chunk's CRC so that a mutation gets past Pillow's checksum test."""
    data = bytearray(data)
    for offset, length, _ in list(png_chunks(bytes(data))):
        body = bytes(data[offset + 4 : offset + 8 + length])
        data[offset + 8 + length : offset + 12 + length] = struct.pack(">I", zlib.crc32(body))
    return bytes(data)


def forge_png_size(data: bytes, width: int, height: int) -> bytes:
    """The PNG ``data`` with its IHDR claiming ``width`` x ``height``, with a valid CRC."""
    offset, length, kind = next(png_chunks(data))
    assert kind == b"IHDR" and length == 13
    body = bytearray(data[offset + 8 : offset + 8 + length])
    body[0:8] = struct.pack(">II", width, height)
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(body)))
    return data[: offset + 8] + bytes(body) + crc + data[offset + 12 + length :]


# ---------------------------------------------------------------- pickles that act


class Armed:
    """Unpickling this creates the file ``marker``: proof that a pickle was (not) loaded."""

    def __init__(self, marker: Path):
        self.marker = Path(marker)

    def __reduce__(self):
        return (Path.touch, (self.marker,))


# ---------------------------------------------------------------- result checks


def files_in(folder: Path) -> list[str]:
    """Every file under ``folder``, hidden temporaries included, as sorted relative names."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


#: Signs of Python internals in a message: tracebacks, OSError numbers, reprs of arrays,
#: objects (<Foo at 0x...>), classes and bytes (b'\x89...'). (A control character read
#: from a file is shown escaped, "\x1f": that is the CLI keeping the error on one line.)
FORBIDDEN_IN_MESSAGES = [
    "Traceback", "Errno", "array(", "dtype(", "np.", " at 0x", "<class", "b'", 'b"', "None",
]


def assert_clean_error(line: str) -> None:
    """An error line reads as a sentence for a user: no Python internals in it."""
    assert line.startswith("Error: ")
    for fragment in FORBIDDEN_IN_MESSAGES:
        assert fragment not in line, f"{fragment!r} in {line!r}"


def dctz_sections(data: bytes) -> tuple[int, list[tuple[bytes, int, int]]]:
    """(offset of the first section, [(tag, length, crc), ...]) of a version 4 .dctz file,
    read from the layout of docs/formats.md (64-byte header, 12-byte table entries, CRC-32)."""
    count = struct.unpack_from("<H", data, 62)[0]
    table = [struct.unpack_from("<4sII", data, 64 + 12 * k) for k in range(count)]
    return 64 + 12 * count + 4, table


def reseal(data: bytes) -> bytes:
    """A version 4 .dctz file with every CRC-32 recomputed (header and each section), so that
    a test that changes a field or a section reaches the decoder instead of the checksum."""
    data = bytearray(data)
    if len(data) < 64 or data[4] != 4:
        return bytes(data)
    count = struct.unpack_from("<H", data, 62)[0]
    if not 1 <= count <= 16 or len(data) < 68 + 12 * count:
        return bytes(data)
    start, table = dctz_sections(bytes(data))
    for k, (tag, length, _) in enumerate(table):
        struct.pack_into("<I", data, 64 + 12 * k + 8, zlib.crc32(data[start : start + length]))
        start += length
    end = 64 + 12 * count
    struct.pack_into("<I", data, end, zlib.crc32(data[:end]))
    return bytes(data)
