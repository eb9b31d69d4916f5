"""What kind of file an input is, by its first bytes, the suffix only a hint: the one place that knows.

A registry in the manner of Pillow's: each :class:`Kind` has a name, the suffixes that
hint at it, and an accept function of the file's first bytes. The commands, the
expansion of a folder into its files and the per-file work all ask :func:`kind_of`,
so a renamed file is still what it is, and a file of the wrong kind gets a message
that names the command for it (:func:`wrong_kind`). Only a regular file is opened (a
FIFO would block, see :mod:`._safe_open`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

#: Bytes read to tell the kinds apart; every accept function needs fewer.
HEAD_BYTES = 32

#: The first bytes of a compressed file (``dctconv.codec._dctz.MAGIC``; a test keeps them equal).
DCTZ_MAGIC = b"DCTZ"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
#: A zip archive that starts with a member (every .npz that holds arrays) is read as an archive,
#: damaged or not; one that starts with the end record holds nothing, unless its directory says otherwise.
_ZIP_MEMBER = b"PK\x03\x04"


@dataclass(frozen=True)
class Kind:
    """One kind of input file."""

    name: str
    what: str
    """The kind in words, with its suffix: "a compressed file (.dctz)"."""
    suffixes: tuple[str, ...]
    """Lower-case name endings that hint at this kind when no content decides."""
    accept: Callable[[bytes], bool]
    """Whether a file that starts with these bytes is of this kind."""


_KINDS: list[Kind] = []


def register(kind: Kind) -> Kind:
    """Add ``kind`` to the registry; the kinds are tried in the order they were registered."""
    _KINDS.append(kind)
    return kind


def _is_image(head: bytes) -> bool:
    from PIL import Image

    from ._images import IMAGE_FORMATS

    Image.init()
    for name in IMAGE_FORMATS:
        accept = Image.OPEN.get(name, (None, None))[1]
        if accept is not None and accept(head):
            return True
    return False


def _image_suffixes() -> tuple[str, ...]:
    from ._images import image_suffixes

    return tuple(sorted(image_suffixes()))


IMAGE = register(Kind("image", "an image", (), _is_image))  # its suffixes are Pillow's (:func:`suffixes`)
COMPRESSED = register(Kind("compressed", "a compressed file (.dctz)", (".dctz",),
                           lambda head: head.startswith(DCTZ_MAGIC)))
COEFFICIENTS = register(Kind("coefficients", "a coefficient file (.npz)", (".npz",),
                             lambda head: head.startswith(_ZIP_MAGIC)))
#: The zonal ``_compressed.npz`` files of the older ``compress``: read, never written.
ZONAL = Kind("zonal", "an old compressed file (_compressed.npz)", ("_compressed.npz",),
             lambda head: head.startswith(_ZIP_MAGIC))

#: What ``transform --inverse`` and ``verify FILE IMAGE`` read.
COEFFICIENT_KINDS = (COEFFICIENTS, ZONAL, COMPRESSED)


def suffixes(kind: Kind) -> tuple[str, ...]:
    return _image_suffixes() if kind is IMAGE else kind.suffixes


def _head(path) -> bytes | None:
    """The first bytes of a regular file, or None (missing, not a regular file, unreadable)."""
    from ..errors import DctconvError
    from ._safe_open import open_regular

    try:
        with open_regular(path, DctconvError) as file:
            return file.read(HEAD_BYTES)
    except (DctconvError, OSError):
        return None


def _zip_names(path) -> list[str] | None:
    """The member names of a zip archive, from its directory alone; None if it is no readable archive."""
    import zipfile

    from ..errors import DctconvError
    from ._safe_open import open_regular

    try:
        with open_regular(path, DctconvError) as file, zipfile.ZipFile(file) as archive:
            return archive.namelist()
    except (DctconvError, OSError, zipfile.BadZipFile, ValueError, EOFError):
        return None


def kind_of(path) -> Kind | None:
    """The kind of the file at ``path``: by its first bytes, else by its name; None if neither tells.

    A zip archive is a coefficient file, or a zonal file when it holds their ``kept``
    array. An empty, damaged or unknown file is the kind its suffix hints at (so that
    reading it reports the damage), a file that starts with the end record of an
    empty zip archive and has no readable directory of members included; a path that
    is not a regular file is judged by its name alone.

    Example
    -------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "photo.png")
    >>> with open(path, "wb") as f:
    ...     _ = f.write(b"DCTZ" + bytes(60))
    >>> kind_of(path).what
    'a compressed file (.dctz)'
    """
    head = _head(path)
    if head:
        for kind in _KINDS:
            if kind.accept(head):
                if kind is not COEFFICIENTS:
                    return kind
                names = _zip_names(path) or []
                if names or head.startswith(_ZIP_MEMBER):
                    return ZONAL if "kept.npy" in names else kind
                break  # an archive of nothing, or not one: the kind its name hints at reads it and says so
    name = Path(path).name.lower()
    for kind in (ZONAL, *_KINDS):
        if name.endswith(suffixes(kind)):
            return kind
    return None


def wrong_kind(kind: Kind | None, wanted: tuple[Kind, ...], *, image_fix: str = "") -> str | None:
    """The message for a file of ``kind`` given where ``wanted`` kinds are read; None when the
    kind is wanted or unknown (the reader then reports what is wrong).

    A coefficient or compressed file is told the command that reads it; an image is
    told ``image_fix``, which depends on the command that refused it.
    """
    if kind is None or kind in wanted:
        return None
    wanted_words = " or ".join(k.what for k in dict.fromkeys(
        COEFFICIENTS if k is ZONAL else k for k in wanted))
    if kind is IMAGE:
        fix = image_fix
    elif kind is COMPRESSED:
        fix = "decode it with dctconv transform --inverse"
    else:
        fix = "reconstruct the image with dctconv transform --inverse"
    return f"is {kind.what}, not {wanted_words}" + (f"; {fix}" if fix else "")


def files_in(folder, wanted: tuple[Kind, ...]) -> list[Path]:
    """The files directly in ``folder`` (sorted by name, hidden ones and subfolders skipped)
    whose kind (:func:`kind_of`) is one of ``wanted``."""
    return sorted(
        path for path in Path(folder).iterdir()
        if not path.name.startswith(".") and path.is_file() and kind_of(path) in wanted
    )
