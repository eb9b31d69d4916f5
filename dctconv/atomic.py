"""Atomic output: every file is written under a temporary name and renamed into place."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import OutputCollisionError


def same_file(a, b) -> bool:
    """Return True if paths ``a`` and ``b`` name the same file (existing or not)."""
    a, b = Path(a), Path(b)
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_not_input(output, inputs) -> None:
    """Raise OutputCollisionError if ``output`` would overwrite one of ``inputs``."""
    out_resolved = Path(output).resolve()
    for path in inputs:
        if Path(path).resolve() == out_resolved or same_file(output, path):
            raise OutputCollisionError(
                f"output {output} would overwrite the input {path}; choose another -o DIR"
            )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class OutputSet:
    """Files that appear together or not at all: see :func:`atomic_outputs`."""

    def __init__(self, protected=()):
        self._pending: list[tuple[Path, Path]] = []
        self._protected = list(protected)
        self.written: list[Path] = []

    def path(self, final) -> Path:
        """Return a temporary path, in the folder of ``final``, to write ``final``'s content to."""
        final = Path(final)
        check_not_input(final, self._protected)
        final.parent.mkdir(parents=True, exist_ok=True)
        # Same folder so the rename is atomic; keep the suffix so writers that look at
        # it still see the real one.
        fd, tmp = tempfile.mkstemp(
            prefix=f".{final.stem}.", suffix=f".tmp{final.suffix}", dir=final.parent
        )
        os.close(fd)
        self._pending.append((Path(tmp), final))
        return Path(tmp)

    def _commit(self) -> None:
        # mkstemp creates files readable by the owner only; give outputs the usual
        # permissions, as open() would have.
        mode = 0o666 & ~_umask()
        for tmp, final in self._pending:
            os.chmod(tmp, mode)
            os.replace(tmp, final)
            self.written.append(final)

    def _discard(self) -> None:
        for tmp, _ in self._pending:
            try:
                tmp.unlink()
            except FileNotFoundError:
                pass


@contextmanager
def atomic_outputs(protected=()):
    """Context manager for writing a group of output files atomically.

    Inside the block, ``outputs.path(final)`` hands out temporary files next to their
    final names. If the block finishes, each is renamed into place (``os.replace`` is
    atomic on POSIX, so a reader never sees a truncated file); if it raises, or is
    interrupted by Ctrl-C, every temporary file is removed and no final name is
    touched. A final name equal to one of ``protected`` raises OutputCollisionError
    before anything is written.
    """
    outputs = OutputSet(protected)
    try:
        yield outputs
    except BaseException:
        outputs._discard()
        raise
    outputs._commit()
