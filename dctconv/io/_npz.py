"""The coefficient file: a small versioned header kept apart from the coefficient arrays.

A coefficient file is an ``.npz`` archive (numpy's zip of ``.npy`` arrays) that is
always read with ``allow_pickle=False``, so loading one never runs code.

Two kinds are read: "transform" (every coefficient map, what ``dctconv transform``
writes) and "compressed", the zonal ``_compressed.npz`` files that ``compress`` wrote
before the codec's ``.dctz``. Those are read only: they keep decoding and verifying,
and nothing writes them any more (docs/formats.md describes them).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from ..errors import CoefficientFileError, ReconstructionTooLargeError, exception_reason
from ._images import GRAY_MODES
from ._safe_open import open_regular
from ..kernels import blocks_shape
from ..limits import BLOCK_SIZE_RANGE, DEFAULT_MAX_PIXELS, MAX_BLOCK_SIZE, MIN_BLOCK_SIZE
from .._validation import CHANNEL_ORDERS, LAYOUTS

FORMAT_VERSION = 1
#: Version of a file whose maps are channels last or in zigzag order: a reader of version 1
#: would take them for channels-first frequency-order maps, so it must refuse them instead.
LAYOUT_FORMAT_VERSION = 2
FORMAT_VERSIONS = (FORMAT_VERSION, LAYOUT_FORMAT_VERSION)
KINDS = ("transform", "compressed")


@dataclass(frozen=True)
class CoefficientHeader:
    """What a decoder needs besides the arrays: block size, image shape and pixel mode."""

    block_size: int
    """n, the patch side."""
    image_shape: tuple[int, int]
    """(H, W) of the original image, before edge padding."""
    image_mode: str
    """Gray mode of the source ("L", "I;16", "I", "F"): the reconstruction is written in it."""
    source: str = ""
    """File name of the source image, for the record."""
    kind: str = "transform"
    """"transform" (all coefficients, float) or "compressed" (kept channels, quantized; read only)."""
    step: float = 0.0
    """Quantization step of a compressed file; 0 means the values are stored unquantized."""
    threshold: float = 0.0
    """Threshold of a compressed file: kept AC coefficients with |c| below it were zeroed."""
    format_version: int = FORMAT_VERSION
    layout: str = "channels_first"
    """How the file stores the maps: (n*n, rows, columns), or "channels_last" (rows, columns, n*n)."""
    channel_order: str = "frequency"
    """Which frequency each stored channel holds: x*n + y, or "zigzag" (JPEG's order)."""

    @property
    def grid(self) -> tuple[int, int]:
        """(block rows, block columns) of the coefficient maps."""
        return blocks_shape(self.image_shape, self.block_size)


def save_coefficients(file, coefficients, header: CoefficientHeader, *, chroma=None) -> None:
    """Write all coefficient maps (kind "transform") to ``file`` (a path or a binary file).

    ``coefficients`` are (n*n, rows, columns) in frequency order, as :func:`dctconv.forward`
    gives them by default; they are stored in ``header.layout`` and ``header.channel_order``.
    A file with either not the default is version 2 and records both; any other is version
    1, as before. :func:`load_coefficients` gives back (n*n, rows, columns) in frequency order.

    ``chroma``, for ``transform --from-jpeg`` of a colour file: ``(cb, cr, (H, W))``, the
    Cb and Cr maps (frequency order, channels first) at their own sampling and the size
    of their pixel grid; stored as ``chroma_cb``, ``chroma_cr`` (in the same layout and
    order) and ``chroma_shape``, for the record: dctconv itself never reads them back.
    """
    arrays = {"coefficients": _arranged(coefficients, header)}
    if chroma is not None:
        cb, cr, shape = chroma
        arrays |= {"chroma_cb": _arranged(cb, header), "chroma_cr": _arranged(cr, header),
                   "chroma_shape": np.array(shape, dtype=np.int64)}
    np.savez(file, **_header_arrays(dataclasses.replace(header, kind="transform")), **arrays)


def _arranged(maps, header: CoefficientHeader) -> np.ndarray:
    """(n*n, rows, columns) maps in frequency order, put in ``header``'s layout and channel order."""
    maps = np.asarray(maps)
    if header.channel_order == "zigzag":
        from ..codec._zigzag import zigzag_order

        maps = np.take(maps, zigzag_order(header.block_size), axis=0)
    if header.layout == "channels_last":
        maps = np.ascontiguousarray(np.moveaxis(maps, 0, -1))
    return maps


def _header_arrays(header: CoefficientHeader) -> dict[str, np.ndarray]:
    arranged = (header.layout, header.channel_order) != ("channels_first", "frequency")
    version = LAYOUT_FORMAT_VERSION if arranged else header.format_version
    extra = {"layout": np.array(header.layout), "channel_order": np.array(header.channel_order)} if arranged else {}
    return {
        "format_version": np.array(version, dtype=np.int64),
        "kind": np.array(header.kind),
        "block_size": np.array(header.block_size, dtype=np.int64),
        "image_shape": np.array(header.image_shape, dtype=np.int64),
        "image_mode": np.array(header.image_mode),
        "source": np.array(header.source),
        "step": np.array(header.step, dtype=np.float64),
        "threshold": np.array(header.threshold, dtype=np.float64),
        **extra,
    }


@dataclass(frozen=True)
class CoefficientFile:
    """A coefficient file as read: the decoded maps, the header and which channels it stores."""

    coefficients: np.ndarray
    """(n*n, rows, columns): every map, zeros in the channels a compressed file dropped."""
    header: CoefficientHeader
    channel_mask: np.ndarray
    """(n*n,) bool: the channels stored in the file (all of them for kind "transform")."""


def load_coefficients(
    path, *, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> tuple[np.ndarray, CoefficientHeader]:
    """Read a coefficient file and return the full (n*n, rows, columns) maps and its header.

    A compressed file is decoded: kept channels are multiplied by the step, the
    others are zero. The file is treated as hostile: it is opened with
    ``allow_pickle=False``, and every member's ``.npy`` header (shape, dtype) is
    checked against the format before its data is read: header members must be
    single values (texts of at most :data:`MAX_TEXT` characters), ``image_shape`` two
    whole numbers, and the arrays the shape ``image_shape`` and ``block_size`` imply;
    members the format does not name are never read. So neither a pickled object
    array nor a header that claims a huge array (or a zip member that inflates to
    gigabytes) gets further than its first bytes.

    Parameters
    ----------
    path : str or Path
    max_pixels : int or None, optional
        Refuse a file whose ``image_shape`` has more pixels than this, before reading
        its arrays (the same guard as :func:`dctconv.io._images.read_image`). None lifts
        the limit.

    Raises
    ------
    ReconstructionTooLargeError
        If ``image_shape`` has more than ``max_pixels`` pixels.
    CoefficientFileError
        If the file is not an npz archive, misses a key, holds a pickled object
        array, has an unknown format version, inconsistent shapes, or NaN/infinity.

    See Also
    --------
    read_coefficient_file : the same, with the mask of the channels the file stores.
    """
    read = read_coefficient_file(path, max_pixels=max_pixels)
    return read.coefficients, read.header


def read_coefficient_file(path, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> CoefficientFile:
    """Read a coefficient file as :func:`load_coefficients` does, keeping its channel mask.

    For a reader that must know which channels a compressed file dropped (a zero
    map there is not a stored zero). Same checks, same exceptions.
    """
    header, arrays = _read(path, max_pixels)
    n = header.block_size
    if header.kind == "transform":
        coefficients = arrays["coefficients"]
        mask = np.ones(n * n, bool)
    else:
        mask, kept = arrays["channel_mask"], arrays["kept"]
        coefficients = np.zeros((n * n, *header.grid), np.float64)
        # Huge levels times a huge step overflow to infinity: reported just below.
        with np.errstate(over="ignore", invalid="ignore"):
            coefficients[mask] = kept * header.step if header.step > 0 else kept
    if not np.isfinite(coefficients).all():
        raise CoefficientFileError("coefficients contain NaN or infinity")
    return CoefficientFile(coefficients, header, np.asarray(mask, dtype=bool))


_REQUIRED = {
    "transform": ("coefficients",),
    "compressed": ("kept", "channel_mask"),
}

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_NPY_MAGIC = b"\x93NUMPY"
_IMAGE_MAGIC = (b"\x89PNG", b"II*\x00", b"MM\x00*", b"GIF8", b"\xff\xd8\xff", b"BM")
_NEVER_UNPICKLED = "refused without unpickling it (dctconv never unpickles)"


def _check_format(file) -> None:
    """Raise CoefficientFileError unless ``file`` starts like a zip archive (an .npz)."""
    try:
        head = file.read(8)
        file.seek(0)
    except OSError as exc:
        raise CoefficientFileError(f"cannot read: {exc.strerror or exception_reason(exc)}") from None
    if not head:
        raise CoefficientFileError("file is empty")
    if head.startswith(_ZIP_MAGIC):
        return
    if head.startswith(_NPY_MAGIC):
        raise CoefficientFileError("is a single .npy array, not a coefficient file (.npz archive)")
    if head[:1] == b"\x80":  # the PROTO opcode that starts every pickle of protocol 2 or later
        raise CoefficientFileError(f"is a Python pickle, not a coefficient file; {_NEVER_UNPICKLED}")
    if head.startswith(_IMAGE_MAGIC):
        raise CoefficientFileError("is an image, not a coefficient file (.npz archive)")
    raise CoefficientFileError("not a coefficient file (.npz archive): unknown format")


def _dims(shape) -> str:
    return " x ".join(str(side) for side in shape) if len(shape) else "a single value"


def _dtype_name(dtype) -> str:
    """A dtype as a user reads it: "text" for strings, else numpy's name ("int64", "bool")."""
    return "text" if dtype.kind in "US" else dtype.name


def _member_header(archive, key: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of array ``key``, from its .npy header alone."""
    if f"{key}.npy" not in archive.zip.namelist():
        raise CoefficientFileError(f"{key} is not stored as a .npy array")
    try:
        member = archive.zip.getinfo(f"{key}.npy")
        with archive.zip.open(member) as f:
            version = np.lib.format.read_magic(f)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = read_header(f)
            data_bytes = member.file_size - f.tell()
    except Exception as exc:  # zipfile, zlib and the .npy header parser each raise their own
        raise CoefficientFileError(f"{key} cannot be read: {exception_reason(exc)}") from None
    if dtype.hasobject:
        raise CoefficientFileError(f"array {key} holds pickled Python objects; {_NEVER_UNPICKLED}")
    # numpy allocates what the header claims before reading: a forged header must not
    # get a terabyte array allocated for a few bytes of data.
    needed = math.prod(shape) * dtype.itemsize
    if needed > data_bytes:
        raise CoefficientFileError(
            f"array {key} is damaged: its header promises {needed:,} bytes of data, "
            f"it holds {max(data_bytes, 0):,}"
        )
    return tuple(shape), dtype


def _member(archive, key: str) -> np.ndarray:
    """Read array ``key``, after checking its header."""
    _member_header(archive, key)
    return _member_data(archive, key)


def _member_data(archive, key: str) -> np.ndarray:
    """Read array ``key``, whose header the caller checked."""
    try:
        value = archive[key]
    except Exception as exc:  # a damaged member: bad CRC, truncated data, ...
        raise CoefficientFileError(f"{key} cannot be read: {exception_reason(exc)}") from None
    return value


def _read(path, max_pixels) -> tuple[CoefficientHeader, dict[str, np.ndarray]]:
    # The file is opened here, not by np.load: given a path, np.load leaves its own file
    # open when the zip directory turns out to be damaged.
    with open_regular(path, CoefficientFileError) as file:
        _check_format(file)
        try:
            archive = np.load(file, allow_pickle=False)
        except Exception as exc:  # a damaged zip directory: BadZipFile, OSError, ValueError, ...
            raise CoefficientFileError(f"damaged .npz archive: {exception_reason(exc)}") from None
        with archive:
            return _read_archive(archive, max_pixels)


def _read_archive(archive, max_pixels) -> tuple[CoefficientHeader, dict[str, np.ndarray]]:
    keys = set(archive.files)
    missing = [k for k in ("format_version", "block_size", "image_shape") if k not in keys]
    if missing:
        raise CoefficientFileError(
            f"not a dctconv coefficient file: missing {', '.join(missing)}"
        )
    version = _scalar(archive, "format_version", int)
    if version not in FORMAT_VERSIONS:
        raise CoefficientFileError(
            f"format version {version} is not supported (this dctconv reads versions "
            f"{' and '.join(map(str, FORMAT_VERSIONS))}); upgrade dctconv or re-create the file"
        )
    header = _header(archive, keys, version)
    height, width = header.image_shape
    ReconstructionTooLargeError.check(f"image is {width} x {height}", height * width, max_pixels)
    missing = [k for k in _REQUIRED[header.kind] if k not in keys]
    if missing:
        raise CoefficientFileError(f"{header.kind} file is missing {', '.join(missing)}")
    if header.kind == "transform":
        arrays = {"coefficients": _coefficients(archive, header)}
    else:
        arrays = _kept(archive, header)
    return header, arrays


def _coefficients(archive, header: CoefficientHeader) -> np.ndarray:
    """The stored maps, checked against the header, as (n*n, rows, columns) in frequency order."""
    n = header.block_size
    rows, cols = header.grid
    last = header.layout == "channels_last"
    shape, dtype = _member_header(archive, "coefficients")
    if len(shape) != 3:
        axes = "block rows, block columns, channels" if last else "channels, block rows, block columns"
        raise CoefficientFileError(f"coefficients must be 3-D ({axes}), got {_dims(shape)}")
    channels, grid = (shape[2], shape[:2]) if last else (shape[0], shape[1:])
    if channels != n * n:
        raise CoefficientFileError(
            f"block_size {n} needs {n * n} coefficient channels (n*n), "
            f"but the file has {channels}"
        )
    if grid != (rows, cols):
        height, width = header.image_shape
        needed = f"{rows} x {cols} x {n * n}" if last else f"{n * n} x {rows} x {cols}"
        raise CoefficientFileError(
            f"coefficients are {_dims(shape)}, but an image of {width} x {height} (image_shape) "
            f"at block size {n} needs {needed}"
        )
    if dtype.kind != "f":
        raise CoefficientFileError(f"coefficients are {_dtype_name(dtype)}, expected floats")
    coefficients = _member(archive, "coefficients")
    if last:
        coefficients = np.moveaxis(coefficients, -1, 0)
    if header.channel_order == "zigzag":
        from ..codec._zigzag import zigzag_order

        coefficients = np.take(coefficients, np.argsort(zigzag_order(n)), axis=0)
    return np.ascontiguousarray(coefficients)


def _kept(archive, header: CoefficientHeader) -> dict[str, np.ndarray]:
    n = header.block_size
    shape, dtype = _member_header(archive, "channel_mask")
    if shape != (n * n,):
        raise CoefficientFileError(
            f"channel_mask has {'x'.join(map(str, shape)) or 'a single value'}"
            f"{' entries' if len(shape) == 1 else ''}, expected {n * n} entries for block_size {n}"
        )
    if dtype != bool:
        raise CoefficientFileError(f"channel_mask is {_dtype_name(dtype)}, expected bool")
    mask = _member(archive, "channel_mask")
    expected = (int(mask.sum()), *header.grid)
    shape, dtype = _member_header(archive, "kept")
    if shape != expected:
        raise CoefficientFileError(
            f"kept is {_dims(shape)}, expected {_dims(expected)} "
            "(the kept channels of channel_mask, by the block grid of image_shape)"
        )
    if dtype.kind not in "iuf":
        raise CoefficientFileError(f"kept is {_dtype_name(dtype)}, expected integers or floats")
    return {"channel_mask": mask, "kept": _member(archive, "kept")}


_SCALAR_KINDS = {int: ("iu", "whole number"), float: ("iuf", "number"), str: ("U", "text")}

#: The longest text a header member may hold (a source file name, a mode, a kind), in
#: characters: a longer one is refused from its .npy header, before its data is read.
MAX_TEXT = 4096


def _scalar(archive, key: str, kind):
    """Read the single value ``key``; its .npy header must say one value of the right kind first.

    Only after the header is checked is the data read: a header member that claims
    a huge array or a gigabyte string (deflated to a few kB) costs nothing.
    """
    dtype_kinds, name = _SCALAR_KINDS[kind]
    shape, dtype = _member_header(archive, key)
    if shape != () or dtype.kind not in dtype_kinds:
        got = (
            _dtype_name(dtype)
            if shape == ()
            else f"an array of {_dims(shape)} values of {_dtype_name(dtype)}"
        )
        raise CoefficientFileError(f"{key} must be a single {name}, got {got}")
    characters = dtype.itemsize // np.dtype("U1").itemsize
    if dtype.kind == "U" and characters > MAX_TEXT:
        raise CoefficientFileError(
            f"{key} is a text of {characters:,} characters, more than the {MAX_TEXT:,} allowed"
        )
    return kind(_member_data(archive, key))


def _image_shape(archive) -> tuple[int, int]:
    shape, dtype = _member_header(archive, "image_shape")
    if shape != (2,) or dtype.kind not in "iu":
        if math.prod(shape) > 4 or dtype.itemsize > 16:  # too large to quote: not read
            raise CoefficientFileError(
                "image_shape must be two positive whole numbers, "
                f"got an array of {_dims(shape)} values of {_dtype_name(dtype)}"
            )
    values = _member_data(archive, "image_shape")
    if values.shape != (2,) or values.dtype.kind not in "iu" or (values < 1).any():
        got = " x ".join(str(v) for v in values.ravel()[:4]) if values.size else "nothing"
        raise CoefficientFileError(f"image_shape must be two positive whole numbers, got {got}")
    return int(values[0]), int(values[1])


def _header(archive, keys, version: int = FORMAT_VERSION) -> CoefficientHeader:
    block_size = _scalar(archive, "block_size", int)
    if not MIN_BLOCK_SIZE <= block_size <= MAX_BLOCK_SIZE:
        raise CoefficientFileError(f"block_size {block_size} is not {BLOCK_SIZE_RANGE}")
    image_shape = _image_shape(archive)
    kind = _scalar(archive, "kind", str) if "kind" in keys else "transform"
    if kind not in KINDS:
        raise CoefficientFileError(f"unknown kind \"{kind}\" (expected one of {', '.join(KINDS)})")
    mode = _scalar(archive, "image_mode", str) if "image_mode" in keys else "F"
    if mode not in GRAY_MODES:
        raise CoefficientFileError(
            f"unknown image_mode \"{mode}\" (expected one of {', '.join(GRAY_MODES)})"
        )
    step = _scalar(archive, "step", float) if "step" in keys else 0.0
    if not math.isfinite(step) or step < 0:
        raise CoefficientFileError(f"step must be a finite number >= 0, got {step}")
    threshold = _scalar(archive, "threshold", float) if "threshold" in keys else 0.0
    if not math.isfinite(threshold) or threshold < 0:
        raise CoefficientFileError(f"threshold must be a finite number >= 0, got {threshold}")
    source = _scalar(archive, "source", str) if "source" in keys else ""
    layout, channel_order = "channels_first", "frequency"
    if version >= LAYOUT_FORMAT_VERSION:
        layout = _scalar(archive, "layout", str) if "layout" in keys else layout
        channel_order = _scalar(archive, "channel_order", str) if "channel_order" in keys else channel_order
        if layout not in LAYOUTS or channel_order not in CHANNEL_ORDERS or kind != "transform":
            raise CoefficientFileError(
                f"unknown layout \"{layout}\" or channel_order \"{channel_order}\" of a {kind} file "
                f"(a transform file's layout is one of {', '.join(LAYOUTS)}, its channel_order one of "
                f"{', '.join(CHANNEL_ORDERS)})"
            )
    return CoefficientHeader(
        block_size=block_size,
        image_shape=image_shape,
        image_mode=mode,
        source=source,
        kind=kind,
        step=step,
        threshold=threshold,
        format_version=version,
        layout=layout,
        channel_order=channel_order,
    )
