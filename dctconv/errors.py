"""Exceptions raised by the dctconv library.

The library never prints or exits; the command line (``dctconv.cli``) is the only
place that turns these into one-line messages and exit codes.
"""


import re

_BYTES_LITERAL = re.compile(r"""\bb(['"]).*?(?<!\\)\1""")


def exception_reason(exc: BaseException) -> str:
    """One readable line saying why a foreign exception (Pillow, zipfile, numpy) was raised.

    An OSError gives its strerror ("Permission denied", not "[Errno 13] ..."); bytes
    literals that parsers quote from the file are replaced by "(bytes)", and a message
    that still holds raw data is not echoed at all.
    """
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip()
    text = _BYTES_LITERAL.sub("(bytes)", text.splitlines()[0]) if text else ""
    if "\\x" in text or len(text) > 160:
        text = ""
    return text or "damaged or unreadable data"


def printable(text: str) -> str:
    r"""``text`` with control characters (newlines, terminal escapes) written as escapes: one safe line.

    Example
    -------
    >>> print(printable("two" + chr(10) + "lines, " + chr(27) + "[31mred"))
    two\nlines, \x1b[31mred
    """
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


class DctconvError(Exception):
    """Base class of every error dctconv raises on purpose."""


class InvalidBlockSizeError(DctconvError, ValueError):
    """The block size is not a whole number from 2 to 64."""


class InvalidImageError(DctconvError, ValueError):
    """The array is not a finite, non-empty 2-D grayscale image."""


class InvalidCoefficientsError(DctconvError, ValueError):
    """The coefficient array does not have the (n*n, rows, columns) layout."""


class ImageReadError(DctconvError):
    """An image file could not be read as a grayscale image."""


class TooManyPixelsError(DctconvError):
    """An image to read or to reconstruct has more pixels than the allowed maximum."""

    def __init__(self, message: str, *, pixels: int, limit: int):
        super().__init__(message)
        self.pixels = pixels
        self.limit = limit

    @classmethod
    def check(cls, size: str, pixels: int, limit: int | None) -> None:
        """Raise ``cls`` if ``pixels`` is over ``limit`` (None: no limit); ``size`` reads "image is W x H"."""
        if limit is not None and pixels > limit:
            raise cls(f"{size} = {pixels:,} pixels, more than the limit of {limit:,}", pixels=pixels, limit=limit)

    def __reduce__(self):
        # --jobs sends errors back from worker processes by pickling them; the default
        # reduction would call __init__ without the keyword-only arguments.
        return _rebuild_too_many_pixels, (type(self), str(self), self.pixels, self.limit)


def _rebuild_too_many_pixels(cls, message, pixels, limit):
    return cls(message, pixels=pixels, limit=limit)


class ImageTooLargeError(TooManyPixelsError, ImageReadError):
    """An image file has more pixels than the allowed maximum."""


class CoefficientFileError(DctconvError):
    """A coefficient file is missing, malformed or of an unknown version."""


class ReconstructionTooLargeError(TooManyPixelsError, CoefficientFileError):
    """A coefficient file describes an image with more pixels than the allowed maximum."""


class OutputCollisionError(DctconvError):
    """An output file would overwrite one of the inputs, or one written earlier in the same run."""


class OutputWriteError(DctconvError):
    """An output file or its folder could not be written."""


class InvalidCompressionError(DctconvError, ValueError):
    """A compression setting (keep, step, threshold) is out of range, or the levels overflow."""


class ImageMismatchError(DctconvError, ValueError):
    """An image cannot be checked against a coefficient file: its shape or gray mode is not the file's."""


class InvalidOptionError(DctconvError, ValueError):
    """A keyword option of a library function (workers, dtype) has an invalid value."""


class CodecFileError(CoefficientFileError):
    """A compressed file (dctconv.encode's format) is damaged, truncated or of an unknown version."""


class CodecTooLargeError(ReconstructionTooLargeError, CodecFileError):
    """A compressed file describes an image with more pixels than the allowed maximum."""


class OutOfMemoryError(DctconvError, MemoryError):
    """There is not enough memory to decode an image (it names the pixels and the bytes needed)."""

    def __init__(self, message: str, *, pixels: int = 0, needed: int = 0):
        super().__init__(message)
        self.pixels = pixels
        self.needed = needed

    @classmethod
    def decoding(cls, height: int, width: int, needed: int) -> "OutOfMemoryError":
        """The error for an image of ``height`` x ``width`` that needs at least ``needed`` bytes to decode."""
        pixels = height * width
        return cls(f"not enough memory to decode an image of {width:,} x {height:,} = {pixels:,} pixels "
                   f"(it needs at least {_size_text(needed)}); free memory or decode it on a larger machine",
                   pixels=pixels, needed=needed)

    def __reduce__(self):
        # --jobs sends errors back from worker processes by pickling them (see TooManyPixelsError).
        return _rebuild_out_of_memory, (type(self), str(self), self.pixels, self.needed)


def _rebuild_out_of_memory(cls, message, pixels, needed):
    return cls(message, pixels=pixels, needed=needed)


def _size_text(size: int) -> str:
    """A byte count for people: "268 MB", "1.9 GB" (powers of 1000)."""
    for unit, scale in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= scale:
            value = size / scale
            return f"{value:.1f} {unit}" if value < 10 else f"{value:,.0f} {unit}"
    return f"{size} bytes"


class ClusterError(DctconvError):
    """A dask cluster cannot be used: dask is not installed, the scheduler is unreachable, lost or without workers,
    or a worker wrote an output the client does not see."""


class WorkerLostError(DctconvError):
    """A worker process of ``--jobs`` ended abruptly (out of memory, a crash) with the item unfinished."""


class WorkerStartError(DctconvError):
    """The worker processes of ``--jobs`` cannot start (they cannot import dctconv or its libraries)."""
