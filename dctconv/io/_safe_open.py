"""Opening an input file that may be hostile: a regular file, or nothing.

A FIFO makes ``open`` (or the first read) wait forever for a writer; a terminal,
``/dev/stdin`` or ``/dev/zero`` would be read as data. Every reader of images and
coefficient files opens its input through :func:`open_regular`.
"""

from __future__ import annotations

import os
import stat

from ..errors import exception_reason

#: What a non-regular file is, for the one-line refusal.
_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a folder"),
)


def _check_regular(mode: int, error: type[Exception]) -> None:
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "not a file")
        raise error(f"is {kind}, not a regular file")


def open_regular(path, error: type[Exception]):
    """Open ``path`` for binary reading if it is a regular file (or a link to one).

    The type is checked before the file is opened, since opening a FIFO waits for a
    writer, and again on what was opened (without waiting, ``O_NONBLOCK``), in case
    the name was swapped in between.

    Parameters
    ----------
    path : str or Path
    error : type
        Exception class raised, with a one-line message, when the file is missing,
        cannot be opened, or is not a regular file (e.g. ImageReadError).

    Returns
    -------
    file
        A binary file object positioned at the start; the caller closes it.

    Example
    -------
    >>> from dctconv.errors import ImageReadError
    >>> open_regular("/dev/null", ImageReadError)
    Traceback (most recent call last):
    ...
    dctconv.errors.ImageReadError: is a character device, not a regular file
    """
    try:
        _check_regular(os.stat(path).st_mode, error)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise error(f"cannot open: {exc.strerror or exception_reason(exc)}") from None
    try:
        _check_regular(os.fstat(fd).st_mode, error)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
