"""The quantized DCT coefficients of a JPEG file, read without decoding it, in dctconv's layout.

A JPEG file holds, for each 8 x 8 block of each component, integer levels and a table
of quantization steps; the encoder's DCT coefficient is level x step, in the same
orthonormal scale as :func:`dctconv.forward` with n = 8 (JPEG's C(u) C(v) / 4 is
dctconv's a(x) a(y)) of the pixels minus 128. jpeglib hands over libjpeg's own arrays
(libjpeg's decoder, in this process: no external program sees the file); this module
checks the file first, then turns them into coefficient maps.
"""

from __future__ import annotations

import os
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ImageReadError, ImageTooLargeError, exception_reason, printable
from ..limits import DEFAULT_MAX_PIXELS
from .._validation import check_channel_order, check_float_dtype, check_layout
from ._safe_open import open_regular

#: The libjpeg build of jpeglib's that reads the files.
LIBJPEG = "turbo210"

#: JPEG's block side: the coefficient maps have 64 channels.
JPEG_BLOCK_SIZE = 8

#: Component names by position, as JPEG's JFIF colour space numbers them.
_NAMES = ("Y", "Cb", "Cr")

# libjpeg reports through the process's stderr; only one reader redirects it at a time.
_STDERR_LOCK = threading.Lock()


@dataclass(frozen=True)
class JpegComponent:
    """One component (Y, Cb or Cr) of a JPEG file as coefficient maps."""

    name: str
    """"Y", "Cb" or "Cr"."""
    coefficients: np.ndarray
    """level x step in dctconv's scale: (64, rows, columns), or (rows, columns, 64) channels last."""
    levels: np.ndarray
    """The quantized integers the file holds (int16), in the same layout."""
    steps: np.ndarray
    """(64,) quantization step of each channel (uint16), in the channel order of the maps."""
    sampling: tuple[int, int]
    """(vertical, horizontal) sampling factors: 2, 2 for Y and 1, 1 for Cb and Cr in 4:2:0."""
    image_shape: tuple[int, int]
    """(H, W) of the component's own pixel grid: ``inverse(coefficients, image_shape)`` crops to it."""


@dataclass(frozen=True)
class JpegCoefficients:
    """What :func:`read_jpeg_coefficients` returns: the image's size and its components."""

    image_shape: tuple[int, int]
    """(H, W) of the image in pixels."""
    components: tuple[JpegComponent, ...]
    """Y alone for a grayscale file; Y, Cb and Cr for a colour one."""
    progressive: bool
    """True for a progressive file (read as a whole: every scan)."""
    layout: str = "channels_first"
    channel_order: str = "frequency"

    def __getitem__(self, name: str) -> JpegComponent:
        for component in self.components:
            if component.name == name:
                return component
        raise KeyError(f"{name!r}: this file has components {', '.join(c.name for c in self.components)}")

    @property
    def y(self) -> np.ndarray:
        """The luma coefficient maps."""
        return self["Y"].coefficients

    @property
    def cb(self) -> np.ndarray | None:
        """The blue-difference maps at their own sampling, or None for a grayscale file."""
        return self["Cb"].coefficients if len(self.components) == 3 else None

    @property
    def cr(self) -> np.ndarray | None:
        """The red-difference maps at their own sampling, or None for a grayscale file."""
        return self["Cr"].coefficients if len(self.components) == 3 else None


def read_jpeg_coefficients(
    path, *, layout: str = "channels_first", channel_order: str = "frequency", dtype=np.float64,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> JpegCoefficients:
    """Read a JPEG file's quantized DCT coefficients and steps as dctconv coefficient maps, without decoding.

    Component Y, and for a colour file Cb and Cr at their own sampling (a 4:2:0 file
    has chroma maps of half the rows and columns), each as the 64 maps of the 8 x 8
    block DCT that the encoder quantized: channel ``x*8 + y`` holds frequency (row
    x, column y) times its step, so that they equal ``dctconv.forward(pixels - 128, 8)``
    of the encoder's input within half a step (the quantization) and libjpeg's
    integer DCT's rounding. ``dctconv.inverse(maps, component.image_shape) + 128``
    gives the decoded component (up to the decoder's rounding to 8 bits).

    Baseline, extended, progressive and arithmetic-coded 8-bit files and files with
    restart markers are read; a file libjpeg cannot read (12-bit, lossless, damaged)
    raises ImageReadError with libjpeg's reason, and CMYK and YCCK files are refused.

    Parameters
    ----------
    path : str or Path
        A JPEG file (a regular file; its header is checked before any array is made).
    layout : {"channels_first", "channels_last"}, optional
        (64, rows, columns) (the default) or (rows, columns, 64), as :func:`dctconv.forward`.
    channel_order : {"frequency", "zigzag"}, optional
        Channel ``x*8 + y`` (the default) or JPEG's zigzag order, the file's own.
    dtype : {float64, float32}, optional
        Dtype of the coefficient maps; levels stay int16.
    max_pixels : int or None, optional
        Refuse images of more pixels than this, from the header, before reading the
        coefficients. None lifts the limit.

    Returns
    -------
    JpegCoefficients
        ``image_shape``, ``components`` (each with ``coefficients``, ``levels``,
        ``steps``, ``sampling``, ``image_shape``), ``progressive``; ``.y``, ``.cb`` and
        ``.cr`` are the coefficient maps.

    Raises
    ------
    ImageReadError
        If the file is not a regular file, not a JPEG, in a colour space other than
        gray or YCbCr, or libjpeg cannot read it.
    ImageTooLargeError
        If the image has more than ``max_pixels`` pixels.
    InvalidOptionError
        If ``layout``, ``channel_order`` or ``dtype`` is not one of its values.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from PIL import Image
    >>> from dctconv import forward, read_jpeg_coefficients
    >>> pixels = np.asarray(Image.open("sample_images/camera.png").convert("L"))[:64, :64]
    >>> path = tempfile.mkdtemp() + "/camera.jpg"
    >>> Image.fromarray(pixels).save(path, quality=90)
    >>> jpeg = read_jpeg_coefficients(path)
    >>> jpeg.y.shape, jpeg.cb
    ((64, 8, 8), None)
    >>> error = np.abs(jpeg.y - forward(pixels - 128.0, 8)) / jpeg["Y"].steps[:, None, None]
    >>> float(np.mean(error <= 0.5)) > 0.99     # within half a step, but for libjpeg's integer DCT
    True
    """
    layout, channel_order = check_layout(layout), check_channel_order(channel_order)
    dtype = check_float_dtype(dtype)
    path = Path(path)
    progressive = _check_format(path)
    jpeg = _read(path, max_pixels)
    height, width = int(jpeg.height), int(jpeg.width)
    space = str(jpeg.jpeg_color_space)
    if jpeg.has_black or jpeg.num_components not in (1, 3):
        raise ImageReadError(f"is a {space.split('.')[-1]} JPEG; only grayscale and YCbCr files are read")
    order = _channel_order(channel_order)
    factors = np.asarray(jpeg.samp_factor).reshape(-1, 2)
    tables = np.asarray(jpeg.qt).reshape(-1, 64)
    table_of = np.asarray(jpeg.quant_tbl_no).reshape(-1)
    top = factors.max(axis=0)
    components = []
    for index, name in enumerate(_NAMES[: jpeg.num_components]):
        blocks = np.asarray(getattr(jpeg, name))  # (rows, columns, 8, 8): levels in natural (x, y) order
        rows, cols = blocks.shape[:2]
        levels = blocks.reshape(rows, cols, 64)
        steps = tables[table_of[index]].astype(np.uint16)
        if order is not None:
            levels, steps = np.take(levels, order, axis=-1), steps[order]
        v, h = (int(f) for f in factors[index])
        shape = (-(-height * v // int(top[0])), -(-width * h // int(top[1])))
        if layout == "channels_first":
            levels = np.ascontiguousarray(np.moveaxis(levels, -1, 0), dtype=np.int16)
            coefficients = levels.astype(dtype)
            coefficients *= steps.astype(dtype)[:, None, None]
        else:
            levels = np.ascontiguousarray(levels, dtype=np.int16)
            coefficients = levels.astype(dtype)
            coefficients *= steps.astype(dtype)
        components.append(JpegComponent(name, coefficients, levels, steps, (v, h), shape))
    return JpegCoefficients((height, width), tuple(components), progressive, layout, channel_order)


def _channel_order(channel_order: str) -> np.ndarray | None:
    """The zigzag permutation of the 64 channels, or None for the file's natural x*8 + y order."""
    if channel_order == "zigzag":
        from ..codec._zigzag import zigzag_order

        return zigzag_order(JPEG_BLOCK_SIZE)
    return None


def _check_format(path: Path) -> bool:
    """Refuse anything but a regular file that starts as a JPEG; say whether Pillow sees it as progressive."""
    from PIL import Image

    with open_regular(path, ImageReadError) as file:
        if file.read(3) != b"\xff\xd8\xff":
            raise ImageReadError("is not a JPEG file (only JPEG files hold JPEG coefficients)")
        file.seek(0)
        saved_limit = Image.MAX_IMAGE_PIXELS
        try:  # Pillow reads the header only; the file's size is checked on libjpeg's reading of it
            Image.MAX_IMAGE_PIXELS = None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Image.open(file, formats=("JPEG",)) as im:
                    return bool(im.info.get("progressive") or im.info.get("progression"))
        except Exception:  # noqa: BLE001 (12-bit and other files Pillow cannot open: libjpeg says why)
            return False
        finally:
            Image.MAX_IMAGE_PIXELS = saved_limit


def _read(path: Path, max_pixels):
    """jpeglib's DCT arrays: the header first, whose size is checked before the arrays are made."""
    try:
        import jpeglib
    except ImportError:
        raise ImageReadError(
            "reading JPEG coefficients needs jpeglib: pip install 'dctconv[jpeg]'"
        ) from None
    # libjpeg-turbo's Huffman decoder: about a fifth faster than jpeglib's default libjpeg 6b here.
    with jpeglib.version(LIBJPEG):
        jpeg = _libjpeg(lambda: jpeglib.read_dct(str(path)))
        width, height = int(jpeg.width), int(jpeg.height)
        if width < 1 or height < 1:
            raise ImageReadError(f"image has no pixels ({width} x {height})")
        ImageTooLargeError.check(f"image is {width} x {height}", width * height, max_pixels)
        _libjpeg(jpeg.load)
    return jpeg


def _libjpeg(call):
    """``call()``, with libjpeg's messages (it writes them to stderr) kept out of the terminal: the last one is the error."""
    with _STDERR_LOCK, tempfile.TemporaryFile() as log:
        saved = os.dup(2)
        try:
            os.dup2(log.fileno(), 2)
            try:
                result, failure = call(), None
            except Exception as exc:  # noqa: BLE001 (jpeglib raises OSError, ValueError, ...)
                result, failure = None, exc
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        log.seek(0)
        said = [line.strip() for line in log.read(4096).decode("ascii", "replace").splitlines() if line.strip()]
    if failure is not None:
        reason = said[-1] if said else exception_reason(failure)
        raise ImageReadError(f"libjpeg cannot read it: {printable(reason)}")
    return result
