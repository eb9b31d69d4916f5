"""Reading grayscale images at full precision, and writing them back at their bit depth."""

from __future__ import annotations

import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ImageReadError, ImageTooLargeError, exception_reason
from ._safe_open import open_regular
from ..limits import DEFAULT_MAX_PIXELS

#: The raster formats read, by Pillow's name for them; no other is even tried. Pillow
#: identifies a file by its content, whatever its name, and some of its formats hand
#: the file to an external program (EPS and PDF to Ghostscript, a long record of
#: code-execution bugs): an untrusted file never gets there. PPM covers PGM and PBM.
IMAGE_FORMATS = ("PNG", "TIFF", "JPEG", "BMP", "GIF", "PPM", "WEBP")
#: The same, as the error for any other file names them.
FORMAT_NAMES = "PNG, TIFF, JPEG, BMP, GIF, PPM/PGM/PBM or WebP"

#: Gray modes kept at full precision: Pillow mode -> (numpy dtype, file suffix written).
GRAY_MODES = {
    "L": (np.uint8, ".png"),
    "I;16": (np.uint16, ".png"),
    "I": (np.int32, ".tif"),
    "F": (np.float32, ".tif"),
}
_SIXTEEN_BIT = {"I;16", "I;16L", "I;16B", "I;16N"}

#: zlib's run-length strategy for PNG output: on photos, coefficient maps and 16-bit
#: images it wrote files within 1% of Pillow's default (often smaller) 1.6 to 4.8
#: times faster; on a 4096 x 4096 photo 0.6 s instead of 2.7 s
#: (benchmarks/bench_cli.py). The pixels are the same; only the deflate search differs.
PNG_OPTIONS = {"compress_type": zlib.Z_RLE}


@dataclass(frozen=True)
class ImageInfo:
    """What was read: the gray mode kept, what the file held, and any conversion made."""

    mode: str
    """Gray mode the pixels are kept and written back in: "L", "I;16", "I" or "F"."""
    file_mode: str
    """Pillow mode of the file itself, e.g. "RGB" or "P"."""
    converted: bool
    """True when color or palette pixels were turned into luma (ITU-R 601-2)."""
    frames: int
    """Number of frames in the file; only the first is read."""
    orientation: int = 1
    """The file's EXIF orientation tag (1 to 8); 2 to 8 were applied, as image viewers do."""
    file_format: str | None = None
    """Pillow's name of the file's format ("PNG", "JPEG", ...): a JPEG source was already lossy."""

    @property
    def data_range(self) -> float:
        """Full range of the mode's pixel values, as PSNR and SSIM use it."""
        return {"L": 255.0, "I;16": 65535.0, "I": float(2**32 - 1), "F": 1.0}[self.mode]


def read_image(path, *, max_pixels: int | None = DEFAULT_MAX_PIXELS, allow_nan: bool = False
               ) -> tuple[np.ndarray, ImageInfo]:
    """Read the first frame of an image file as a 2-D gray array at full precision.

    8-bit gray (L) gives uint8, 16-bit gray (I;16 and its byte orders) uint16, 32-bit
    integer (I) int32 and float (F) float32. Any other mode (1, P, LA, RGB, RGBA,
    CMYK, ...) is converted to 8-bit luma by Pillow's ``convert("L")``, which uses
    the ITU-R 601-2 weights L = 0.299 R + 0.587 G + 0.114 B. An EXIF orientation tag
    (2 to 8) is applied, so the array is the image as viewers show it; an unsigned
    32-bit TIFF with values of 2**31 or more is refused (int32 cannot hold them).

    Parameters
    ----------
    path : str or Path
        A regular file in one of :data:`IMAGE_FORMATS` (PNG, TIFF, JPEG, BMP, GIF,
        PPM/PGM/PBM, WebP), whatever its name; other formats are refused unread.
    max_pixels : int or None, optional
        Refuse images with more pixels than this, before decoding them (Pillow's
        decompression-bomb guard). None lifts the limit.
    allow_nan : bool, optional
        Accept NaN pixels in a float image (no data: ``compress`` keeps them).
        Infinities are always refused, with their count.

    Returns
    -------
    image : ndarray, shape (H, W)
    info : ImageInfo

    Raises
    ------
    ImageTooLargeError
        If the image has more than ``max_pixels`` pixels.
    ImageReadError
        If the file is not a regular file, is in another format, cannot be decoded,
        is empty, holds NaN or infinity, or unsigned 32-bit values it cannot keep.

    Example
    -------
    >>> image, info = read_image("sample_images/camera.png")
    >>> image.shape, image.dtype.name, info.mode
    ((512, 512), 'uint8', 'L')
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    # Pillow's own guard is global and only warns below twice its limit; this check
    # replaces it with the caller's limit, applied to the header before decoding.
    saved_limit = Image.MAX_IMAGE_PIXELS
    with open_regular(path, ImageReadError) as file:
        try:
            Image.MAX_IMAGE_PIXELS = None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Image.open(file, formats=IMAGE_FORMATS) as im:
                    width, height = im.size
                    if width < 1 or height < 1:
                        raise ImageReadError(f"image has no pixels ({width} x {height})")
                    ImageTooLargeError.check(f"image is {width} x {height}", width * height, max_pixels)
                    frames = getattr(im, "n_frames", 1)
                    im.seek(0)
                    im.load()
                    array, info = _to_gray(_upright(im), im, frames)
        except ImageReadError:
            raise
        except UnidentifiedImageError:
            raise ImageReadError(_unidentified(file)) from None
        except Exception as exc:  # Pillow's decoders raise OSError, SyntaxError, ValueError, EOFError, ...
            raise ImageReadError(f"cannot read image: {exception_reason(exc)}") from None
        finally:
            Image.MAX_IMAGE_PIXELS = saved_limit
    if info.mode == "F" and not np.isfinite(array).all():
        if not allow_nan:
            raise ImageReadError("float image contains NaN or infinity")
        infinite = int(np.count_nonzero(np.isinf(array)))
        if infinite:
            raise ImageReadError(
                f"float image contains {infinite:,} infinite value{'s' if infinite > 1 else ''}; "
                "replace them with NaN (no data) or with finite values"
            )
    return array, info


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _unidentified(file) -> str:
    """Say why no format was found for ``file``: empty, a PNG without pixels, or another format."""
    try:
        file.seek(0)
        head = file.read(24)
    except OSError as exc:
        return f"cannot read: {exc.strerror or exception_reason(exc)}"
    if not head:
        return "file is empty"
    # Pillow rejects a PNG whose header claims a zero side with the same words as a
    # text file; the IHDR chunk is always first, so its size is at bytes 16..24.
    if head[:8] == _PNG_SIGNATURE and head[12:16] == b"IHDR" and len(head) == 24:
        width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        if width == 0 or height == 0:
            return f"image has no pixels (its PNG header says {width} x {height})"
    return f"not an image in a format dctconv reads ({FORMAT_NAMES}), or its header is damaged"


_ORIENTATION = 0x0112  # the EXIF (and TIFF) tag


def _orientation(im) -> int:
    try:
        value = im.getexif().get(_ORIENTATION, 1)
    except Exception:  # a damaged EXIF block: viewers cannot read it either
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _upright(im):
    """``im`` as viewers show it: its EXIF orientation applied (a copy), or ``im`` itself."""
    from PIL import ImageOps

    return ImageOps.exif_transpose(im) if _orientation(im) != 1 else im


def _unsigned_32_bit(im) -> bool:
    """True for a TIFF of unsigned 32-bit integers, which Pillow reads as int32 (wrapping 2**31 and up)."""
    if im.format != "TIFF" or im.mode != "I":
        return False
    tags = im.tag_v2
    bits, sample_format = tags.get(258, ()), tags.get(339, 1)  # BitsPerSample, SampleFormat
    bits = bits[0] if isinstance(bits, tuple) and bits else bits
    sample_format = sample_format[0] if isinstance(sample_format, tuple) and sample_format else sample_format
    return bits == 32 and sample_format == 1  # 1 (the default): unsigned integers


def _to_gray(im, original, frames: int) -> tuple[np.ndarray, ImageInfo]:
    """The pixels of ``im`` (``original`` turned upright) in their gray mode."""
    mode = im.mode
    details = {"frames": frames, "orientation": _orientation(original), "file_format": original.format}
    if mode in _SIXTEEN_BIT or (mode == "I" and original.format == "PNG"):
        # PNG has no 32-bit gray: an "I" PNG is a 16-bit one read by an older Pillow.
        return np.asarray(im).astype(np.uint16), ImageInfo("I;16", mode, False, **details)
    if mode in ("L", "I", "F"):
        array = np.asarray(im).astype(GRAY_MODES[mode][0], copy=False)
        if _unsigned_32_bit(original) and (array < 0).any():
            raise ImageReadError(
                "holds unsigned 32-bit values of 2**31 or more, which dctconv cannot keep exactly "
                "(it keeps 32-bit images as signed integers); scale its values below 2**31 first"
            )
        return array, ImageInfo(mode, mode, False, **details)
    try:
        gray = im.convert("L")
    except ValueError:
        gray = im.convert("RGB").convert("L")
    return np.asarray(gray), ImageInfo("L", mode, True, **details)


def image_suffixes() -> set[str]:
    """Lower-case file suffixes of :data:`IMAGE_FORMATS` (.png, .jpg, .tif, ...): what a folder is searched for."""
    from PIL import Image

    Image.init()
    return {ext.lower() for ext, fmt in Image.registered_extensions().items() if fmt in IMAGE_FORMATS}


def to_pixels(image, mode: str) -> np.ndarray:
    """Round and clip a float image to the pixel type of ``mode`` (float: clip to float32's range)."""
    dtype = np.dtype(GRAY_MODES[mode][0])
    image = np.asarray(image)
    if image.dtype == dtype and dtype.kind in "iu":
        return image  # already pixels: every value is in range and whole
    if dtype.kind == "f":
        # A float64 reconstruction of a pixel at float32's maximum can exceed it by an
        # ulp, which the cast would turn into infinity.
        limit = np.finfo(dtype).max
        return np.clip(image, -limit, limit).astype(dtype)
    info = np.iinfo(dtype)
    # float32 cannot hold int32's maximum (2**31 - 1 rounds up to 2**31), so a
    # float32 image clipped to it would still overflow, and wrap, in the cast.
    widen = image.dtype.itemsize < 8 and dtype.itemsize >= 4
    pixels = np.empty(image.shape, dtype)
    # In chunks of rows of about 4 MiB: rounding the whole image at once made two
    # float temporaries as large as the image (2 GiB each for 16384 x 16384).
    step = max(1, (1 << 22) // max(1, image[:1].nbytes))
    for top in range(0, len(image), step):
        chunk = image[top : top + step]
        chunk = np.rint(chunk.astype(np.float64) if widen else chunk)
        pixels[top : top + step] = np.clip(chunk, info.min, info.max, out=chunk)
    return pixels


def image_suffix(mode: str) -> str:
    """File suffix a reconstruction of ``mode`` is written with: .png for 8/16 bit, .tif otherwise."""
    return GRAY_MODES[mode][1]


def save_image(path, image, mode: str) -> None:
    """Write ``image``, rounded and clipped to ``mode``, as PNG (L, I;16) or TIFF (I, F)."""
    _write_image(path, image, mode)


def image_bytes(image, mode: str) -> bytes:
    """The bytes :func:`save_image` writes for ``image``: to encode now and write later."""
    import io

    buffer = io.BytesIO()
    _write_image(buffer, image, mode)
    return buffer.getvalue()


def _write_image(target, image, mode: str) -> None:
    from PIL import Image

    pixels = to_pixels(image, mode)
    suffix = image_suffix(mode)
    if mode == "L":
        _write(target, png_bytes(pixels))
    elif suffix == ".png":
        Image.fromarray(pixels).save(target, format="PNG", **PNG_OPTIONS)
    else:
        Image.fromarray(pixels).save(target, format="TIFF")


def save_picture(path, picture) -> None:
    """Write an 8-bit picture (uint8 array, gray (H, W) or RGB (H, W, 3)) as PNG."""
    _write_picture(path, picture)


def picture_bytes(picture, *, unfiltered: bool = False) -> bytes:
    """The bytes :func:`save_picture` writes for ``picture``: to encode now and write later.

    With ``unfiltered`` every row of a gray picture is stored as it is (PNG filter type 0),
    for pictures of noise-like values such as errors, which a filter makes larger and
    slower to write.
    """
    if unfiltered:
        return png_bytes(np.asarray(picture, dtype=np.uint8), row_filter=NO_FILTER)
    import io

    buffer = io.BytesIO()
    _write_picture(buffer, picture)
    return buffer.getvalue()


#: PNG filter types (the PNG specification, section 9): none, and "up" (each byte minus the one above).
NO_FILTER, UP = 0, 2
#: Rows filtered and deflated per call by :func:`png_bytes`: a copy with their filter bytes stays small.
_PNG_BAND_BYTES = 1 << 18


def png_bytes(picture: np.ndarray, *, row_filter: int = UP) -> bytes:
    """An 8-bit gray (H, W) or RGB (H, W, 3) picture as PNG bytes, every row with one filter type.

    The PNG specification's layout: the signature, IHDR (8-bit samples, colour type 0 or
    2, no interlace), one IDAT holding the zlib stream of the rows, each led by its filter
    byte, and IEND; each chunk with its CRC-32. The rows are filtered with
    ``row_filter`` (:data:`UP`: each byte minus the byte above it, modulo 256, the first
    row as it is; :data:`NO_FILTER`) and deflated with :data:`PNG_OPTIONS`' strategy a
    band at a time, so no copy of the whole picture is made. Pillow tries every filter
    on every row instead: on gray photos, reconstructions and maps the "up" filter for
    all rows gives files within a few percent of its size in about half its time
    (docs/performance.md); RGB pages of text and white margins stay Pillow's.
    """
    import struct

    if picture.dtype != np.uint8 or picture.ndim not in (2, 3) or (picture.ndim == 3 and picture.shape[2] != 3):
        raise ValueError(f"an 8-bit gray or RGB picture is needed, got {picture.dtype} {picture.shape}")
    if row_filter not in (NO_FILTER, UP):
        raise ValueError(f"row filter {row_filter} is not one of {NO_FILTER} (none) and {UP} (up)")
    height, width = picture.shape[:2]
    row_bytes = picture[:1].nbytes
    rows = np.ascontiguousarray(picture).reshape(height, row_bytes)
    deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 8, PNG_OPTIONS["compress_type"])
    step = max(1, _PNG_BAND_BYTES // (row_bytes + 1))
    band = np.empty((min(step, height), row_bytes + 1), np.uint8)
    band[:, 0] = row_filter
    parts = []
    for top in range(0, height, step):
        count = min(step, height - top)
        current = rows[top : top + count]
        if row_filter == NO_FILTER:
            band[:count, 1:] = current
        elif top == 0:  # the first row has none above it: its bytes as they are
            band[0, 1:] = current[0]
            np.subtract(current[1:], current[:-1], out=band[1:count, 1:])
        else:  # uint8 arithmetic: the difference modulo 256, as PNG defines it
            np.subtract(current, rows[top - 1 : top + count - 1], out=band[:count, 1:])
        parts.append(deflate.compress(band[:count].tobytes()))
    parts.append(deflate.flush())

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0 if picture.ndim == 2 else 2, 0, 0, 0)
    return b"".join([_PNG_SIGNATURE, chunk(b"IHDR", header), chunk(b"IDAT", b"".join(parts)), chunk(b"IEND", b"")])


def _write_picture(target, picture) -> None:
    picture = np.asarray(picture, dtype=np.uint8)
    if picture.ndim == 2:
        _write(target, png_bytes(picture))
    else:  # the summary's page: Pillow's filter per row keeps its white margins and text small
        from PIL import Image

        Image.fromarray(picture).save(target, format="PNG", **PNG_OPTIONS)


def _write(target, data: bytes) -> None:
    if hasattr(target, "write"):
        target.write(data)
    else:
        with open(target, "wb") as f:
            f.write(data)
