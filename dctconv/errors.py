"""Exceptions raised by the dctconv library.

The library never prints or exits; the command line (``dctconv.cli``) is the only
place that turns these into one-line messages and exit codes.
"""


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


class ImageTooLargeError(ImageReadError):
    """An image has more pixels than the allowed maximum."""


class CoefficientFileError(DctconvError):
    """A coefficient file is missing, malformed or of an unknown version."""


class OutputCollisionError(DctconvError):
    """An output file would overwrite one of the inputs."""


class InvalidOptionError(DctconvError, ValueError):
    """A keyword option of a library function (workers, dtype) has an invalid value."""
