"""Atomic output: every file is written under a temporary name and renamed into place."""

from __future__ import annotations

import functools
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import OutputCollisionError, OutputWriteError, exception_reason


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
            same_name = Path(path) == Path(output)
            what = "is also an input" if same_name else f"would overwrite the input {path}"
            raise OutputCollisionError(f"output {output} {what}; choose another -o DIR")


@functools.cache
def _file_mode() -> int:
    """Permissions a plainly created file gets: 0o666 less the umask (mkstemp uses 0o600)."""
    # The umask can only be read by setting it; done once, before any file is written.
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


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
        if any(Path(f).resolve() == final.resolve() for _, f in self._pending):
            raise OutputCollisionError(f"output {final} is written twice by the same input")
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputWriteError(f"cannot create the folder {final.parent}: {exception_reason(exc)}") from None
        # Same folder so the rename is atomic; keep the suffix so writers that look at
        # it still see the real one.
        try:
            fd, tmp = tempfile.mkstemp(
                prefix=f".{final.stem}.", suffix=f".tmp{final.suffix}", dir=final.parent
            )
        except OSError as exc:
            raise OutputWriteError(f"cannot write in the folder {final.parent}: {exception_reason(exc)}") from None
        os.close(fd)
        self._pending.append((Path(tmp), final))
        # mkstemp makes the file private (0o600); outputs get the permissions of any new file.
        os.chmod(tmp, _file_mode())
        return Path(tmp)

    def _commit(self) -> None:
        try:
            for tmp, final in self._pending:
                try:
                    os.replace(tmp, final)
                except OSError as exc:
                    raise OutputWriteError(f"cannot write {final}: {exception_reason(exc)}") from None
                self.written.append(final)
        except BaseException:
            # All or none: take back what was already renamed into place.
            for final in self.written:
                try:
                    final.unlink()
                except OSError:
                    pass
            self.written = []
            self._discard()
            raise

    def _discard(self) -> None:
        for tmp, _ in self._pending:
            try:
                tmp.unlink()
            except FileNotFoundError:
                pass

    def _last_final(self):
        return self._pending[-1][1] if self._pending else None


@contextmanager
def atomic_outputs(protected=()):
    """Context manager for writing a group of output files atomically.

    Inside the block, ``outputs.path(final)`` hands out temporary files next to their
    final names. If the block finishes, each is renamed into place (``os.replace`` is
    atomic on POSIX, so a reader never sees a truncated file); if it raises, or is
    interrupted by Ctrl-C, every temporary file is removed and no final name is
    touched. A final name equal to one of ``protected`` raises OutputCollisionError
    before anything is written.

    Output files get the usual permissions of a new file (0o666 less the umask). An
    OSError inside the block (disk full, permission denied) is taken as a failure to
    write the file handed out last and raised as OutputWriteError; so is a failure to
    create the folder or to rename. If a rename fails after others succeeded, the
    ones already in place are removed again, so the group stays all or nothing.
    """
    outputs = OutputSet(protected)
    try:
        yield outputs
    except OSError as exc:
        outputs._discard()
        final = outputs._last_final()
        where = f"cannot write {final}" if final is not None else "cannot write the outputs"
        raise OutputWriteError(f"{where}: {exception_reason(exc)}") from None
    except BaseException:
        outputs._discard()
        raise
    outputs._commit()
