"""Atomic output: every file is written under a temporary name and renamed into place.

A group of outputs (all the files of one input) is replaced all or nothing: the
previous version of each output is kept under a hidden backup name until every
new file is in place, and put back if any step fails.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import os
import re
import secrets
import signal
import socket
import stat
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

from ..errors import OutputCollisionError, OutputWriteError, exception_reason

#: Hidden names of the temporaries (``.dctconv-PID-HOST-XXXXXXXX.tmp``) and of the
#: previous versions kept during a replacement (``.dctconv-XXXXXXXX.old``): short and
#: of bounded length, so that any output name the file system accepts can be written.
#: A temporary names the process that writes it (its id, and 8 hex digits of a hash
#: of its machine's name), so that one left by a killed process can be told from one
#: being written (:func:`remove_stale_temporaries`).
TEMP_PREFIX = ".dctconv-"
TEMP_SUFFIX = ".tmp"
BACKUP_SUFFIX = ".old"

_TEMP_NAME = re.compile(r"\.dctconv-(\d{1,10})-([0-9a-f]{8})-[a-z0-9_]{8}\.tmp")


@functools.cache
def _host_tag() -> str:
    """8 hex digits that name this machine in temporaries' names (a hash of its host name)."""
    return hashlib.blake2b(socket.gethostname().encode(errors="replace"), digest_size=4).hexdigest()


def _temp_prefix() -> str:
    return f"{TEMP_PREFIX}{os.getpid()}-{_host_tag()}-"


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine (a process id reused since counts: kept)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, another user's
        return True
    return True


def remove_stale_temporaries(folder) -> list[Path]:
    """Remove the temporaries in ``folder`` that dctconv processes of this machine left when they died.

    A temporary is stale when its name (``.dctconv-PID-HOST-XXXXXXXX.tmp``) names this
    machine and a process id that no process has now: the writer was killed (SIGKILL,
    a crash, its machine's out-of-memory killer) before it could remove it. Only
    such names are touched: not those of a live process (another run writing there),
    not those of another machine (only a process there can tell), not the backups
    (``.old``, which may be an output's only copy), not anything else. Returns the
    paths removed; a folder that cannot be listed removes nothing.
    """
    folder = Path(folder)
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    removed, host = [], _host_tag()
    for name in names:
        match = _TEMP_NAME.fullmatch(name)
        if match is None or match[2] != host or _alive(int(match[1])):
            continue
        try:
            os.unlink(folder / name)
        except OSError:  # gone already (another run's clean-up), or not ours to remove
            continue
        removed.append(folder / name)
    return removed

#: Signals held back while temporaries and backups are created, renamed or removed:
#: Ctrl-C or SIGTERM then takes effect just after, never between two renames.
_HELD_SIGNALS = {signal.SIGINT, signal.SIGTERM}

#: Called (without arguments) as a group of outputs is put in place, before the first
#: rename. A ``--jobs`` worker sets it (:func:`dctconv.runtime._parallel._start_worker`):
#: from then on Ctrl-C or SIGTERM no longer interrupts the file, whose outputs are
#: complete, and the worker stops after returning it. Raised after the renames, the
#: held signal made a finished file count as not finished.
on_commit = None

#: Errors of os.link that mean "no hard links here" (FAT, some network file systems,
#: or a file the user may not link to); the previous version is then renamed aside.
_NO_HARD_LINK = {errno.EPERM, errno.EACCES, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS,
                 errno.EXDEV}


def same_file(a, b) -> bool:
    """Return True if paths ``a`` and ``b`` name the same file (existing or not)."""
    a, b = Path(a), Path(b)
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


class InputPaths:
    """The inputs of a batch, which no output may overwrite, in a form cheap to send and to check.

    A batch's every task carries the list of all its inputs; as a list of paths that
    cost a batch of N files N² work (each task unpickled N paths, and each output was
    compared with each of them: 40 ms a file at N = 1,000). This pickles as one
    string, and :func:`check_not_input` looks an output up in an index of the inputs
    (resolved paths, device and inode numbers) made once per process and batch.
    """

    def __init__(self, paths=()):
        self.text = "\0".join(os.fspath(p) for p in paths)

    def __iter__(self):
        return iter(self.text.split("\0") if self.text else ())

    def __reduce__(self):
        return _input_paths, (self.text,)

    def index(self) -> tuple[frozenset, frozenset]:
        return _input_index(self.text)


def _input_paths(text: str) -> InputPaths:
    paths = InputPaths()
    paths.text = text
    return paths


@functools.lru_cache(maxsize=2)
def _input_index(text: str) -> tuple[frozenset, frozenset]:
    """(resolved paths, (device, inode) of those that exist) of the inputs joined in ``text``.

    Kept for the process's next tasks of the same batch. A hit is confirmed against
    the file itself (an inode number can be reused once its file is deleted).
    """
    resolved, ids = set(), set()
    for path in text.split("\0") if text else ():
        resolved.add(Path(path).resolve())
        try:
            info = os.stat(path)
        except OSError:
            continue
        ids.add((info.st_dev, info.st_ino))
    return frozenset(resolved), frozenset(ids)


def _may_be_input(output: Path, inputs: InputPaths) -> bool:
    resolved, ids = inputs.index()
    if output.resolve() in resolved:
        return True
    try:
        info = os.stat(output)
    except OSError:
        return False
    return (info.st_dev, info.st_ino) in ids


def check_not_input(output, inputs) -> None:
    """Raise OutputCollisionError if ``output`` would overwrite one of ``inputs`` (paths, or :class:`InputPaths`)."""
    if isinstance(inputs, InputPaths) and not _may_be_input(Path(output), inputs):
        return
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


@contextmanager
def _signals_held():
    """Hold back SIGINT and SIGTERM for the block; one that arrived is handled at its end.

    The handlers are swapped for ones that only take note: a signal mask would hold a
    signal back from this thread only, and the kernel hands a process's signal to any
    thread that does not block it (the transform runs a thread pool).
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # Python runs signal handlers in the main thread only: nothing interrupts this one
        return
    arrived = []
    previous = {}
    for signum in _HELD_SIGNALS:
        handler = signal.getsignal(signum)
        if handler is not None:  # None: a handler set outside Python, left alone
            previous[signum] = signal.signal(signum, lambda signum, frame: arrived.append(signum))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(arrived):
            signal.raise_signal(signum)  # now handled as it would have been


def _real_name(path: Path) -> Path:
    return path.parent.resolve() / path.name


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return 255


def _check_writable_name(final: Path) -> None:
    """Refuse, before anything is written, a name the file system cannot hold, or a folder in the way."""
    size, limit = len(os.fsencode(final.name)), _name_max(final.parent)
    if size > limit:
        raise OutputWriteError(
            f"cannot write {final}: its name is {size} bytes long, more than the {limit} this "
            "file system allows; shorten the input's name"
        )
    if final.is_dir() and not final.is_symlink():
        raise OutputWriteError(f"cannot write {final}: a folder has that name; move it away or choose another -o DIR")


class _Replacement:
    """One output being put in place: its temporary, its final name and the previous version."""

    def __init__(self, temp: Path | None, final: Path, *, seal: bool = False):
        self.temp, self.final = temp, final  # temp None: final is removed (OutputSet.drop)
        self.seal = seal
        self.backup: Path | None = None
        self.moved = False  # the previous version was renamed aside, not linked: final is missing
        self.replaced = False

    def set_aside(self) -> None:
        """Keep the previous version of ``final`` (if any) under a backup name.

        Final stays in place (a second name), except for a seal or a file to drop:
        those are renamed aside, so that their final name is gone before any other
        output is replaced.
        """
        try:
            info = os.lstat(self.final)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(info.st_mode):
            raise OSError(errno.EISDIR, "a folder has that name")
        while True:
            backup = self.final.parent / f"{TEMP_PREFIX}{secrets.token_hex(4)}{BACKUP_SUFFIX}"
            try:
                if self.seal or self.temp is None:
                    self._rename_aside(backup)
                else:
                    # A second name for the same file: the final name never goes missing.
                    os.link(self.final, backup, follow_symlinks=False)
            except FileExistsError:
                continue
            except OSError as exc:
                if exc.errno not in _NO_HARD_LINK:
                    raise
                if os.path.lexists(backup):
                    continue
                self._rename_aside(backup)
            self.backup = backup
            return

    def _rename_aside(self, backup: Path) -> None:
        if os.path.lexists(backup):
            raise FileExistsError(backup)
        os.rename(self.final, backup)
        self.moved = True

    def restore(self) -> Path | None:
        """Put the previous version back (or remove the new file); return a backup left behind."""
        try:
            if self.replaced or self.moved:
                if self.backup is not None:
                    os.replace(self.backup, self.final)
                elif self.temp is not None:
                    os.unlink(self.final)
            elif self.backup is not None:
                os.unlink(self.backup)  # a second name of the file still in place
        except OSError:
            return self.backup
        return None

    def drop_backup(self) -> None:
        if self.backup is not None:
            try:
                os.unlink(self.backup)
            except OSError:
                pass


class OutputSet:
    """Files that appear together or not at all: see :func:`atomic_outputs`."""

    def __init__(self, protected=()):
        self._pending: list[tuple[Path, Path]] = []
        self._seals: list[tuple[Path | None, Path]] = []
        self._last: Path | None = None  # the final name handed out last
        self._protected = protected if isinstance(protected, InputPaths) else list(protected)
        self.written: list[Path] = []

    @property
    def pending(self) -> list[tuple[Path, Path]]:
        """(temporary, final name) of each output handed out so far, seals left out."""
        return list(self._pending)

    def path(self, final, *, seal: bool = False) -> Path:
        """Return a temporary path, in the folder of ``final``, to write ``final``'s content to.

        A ``seal`` (the record of :mod:`dctconv.runtime._records`) vouches for the other
        outputs: its previous version is renamed away before any other output is
        replaced, and it is put in place after all of them, so that a run killed in
        the middle of the renames leaves no seal beside outputs it does not describe.
        It is not listed in :attr:`written`.
        """
        final = Path(final)
        check_not_input(final, self._protected)
        # The name is replaced, not what it may link to: two links to one file are two
        # outputs. Only the folder is resolved.
        if any(_real_name(f) == _real_name(final) for _, f in self._pending + self._seals):
            raise OutputCollisionError(f"output {final} is written twice by the same input")
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputWriteError(f"cannot create the folder {final.parent}: {exception_reason(exc)}") from None
        _check_writable_name(final)
        # Same folder, so that the rename is atomic. Every writer is told its format, so
        # the temporary needs no suffix of its own.
        with _signals_held():
            try:
                fd, temp = tempfile.mkstemp(prefix=_temp_prefix(), suffix=TEMP_SUFFIX, dir=final.parent)
            except OSError as exc:
                raise OutputWriteError(
                    f"cannot write in the folder {final.parent}: {exception_reason(exc)}"
                ) from None
            os.close(fd)
            (self._seals if seal else self._pending).append((Path(temp), final))
            self._last = final
        # mkstemp makes the file private (0o600); outputs get the permissions of any new file.
        os.chmod(temp, _file_mode())
        return Path(temp)

    def drop(self, final) -> None:
        """Remove ``final`` (if it exists) when the outputs are put in place, as a seal is replaced.

        A seal that can no longer vouch for the new outputs goes; a failure puts it back.
        """
        final = Path(final)
        check_not_input(final, self._protected)
        self._seals.append((None, final))

    def _commit(self) -> None:
        """Put every temporary in place, all or nothing, keeping previous versions until done."""
        if on_commit is not None:
            on_commit()
        with _signals_held():
            steps = [_Replacement(temp, final) for temp, final in self._pending]
            seals = [_Replacement(temp, final, seal=True) for temp, final in self._seals]
            everything = seals + steps  # seals renamed aside first
            try:
                for step in everything:
                    try:
                        step.set_aside()
                    except OSError as exc:
                        raise OutputWriteError(f"cannot write {step.final}: {exception_reason(exc)}") from None
                for step in steps + seals:  # and put in place last
                    try:
                        if step.temp is not None:
                            os.replace(step.temp, step.final)
                    except OSError as exc:
                        raise OutputWriteError(f"cannot write {step.final}: {exception_reason(exc)}") from None
                    step.replaced = True
            except BaseException as exc:
                kept = [backup for step in reversed(everything) if (backup := step.restore()) is not None]
                self._discard()
                if kept and isinstance(exc, OutputWriteError):
                    names = ", ".join(str(p) for p in kept)
                    raise OutputWriteError(
                        f"{exc}; a previous version could not be put back and is kept as {names}"
                    ) from None
                raise
            for step in everything:
                step.drop_backup()
            self.written = [step.final for step in steps]
            self._pending, self._seals = [], []

    def _discard(self) -> None:
        with _signals_held():
            for temp, _ in self._pending + self._seals:
                try:
                    if temp is not None:
                        temp.unlink()
                except FileNotFoundError:
                    pass
            self._pending, self._seals = [], []

    def _last_final(self):
        return self._last if self._pending or self._seals else None


@contextmanager
def atomic_outputs(protected=()):
    """Context manager for writing a group of output files atomically.

    Inside the block, ``outputs.path(final)`` hands out temporary files next to their
    final names (hidden, short: ``.dctconv-PID-HOST-XXXXXXXX.tmp``). If the block
    finishes, each is renamed into place (``os.replace`` is atomic on POSIX, so a
    reader never sees a truncated file); if it raises, or is interrupted by Ctrl-C,
    every temporary file is removed and no final name is touched. A final name equal
    to one of ``protected`` raises OutputCollisionError before anything is written;
    a name longer than the file system allows, or taken by a folder, raises
    OutputWriteError before anything is written.

    The group is replaced all or nothing. Before the first rename, the previous
    version of each output gets a second, hidden name (``.dctconv-XXXXXXXX.old``, a
    hard link; where the file system has none, the file is renamed to it). If a
    rename fails, every output already replaced gets its previous version back (or
    is removed if it is new), so each output is either all new or, byte for byte,
    as before; on success the backups are removed. SIGINT and SIGTERM are held back
    during the renames and take effect after them. Only a SIGKILL or a crash in the
    middle can leave ``.dctconv-*`` files behind.

    Output files get the usual permissions of a new file (0o666 less the umask). An
    OSError inside the block (disk full, permission denied) is taken as a failure to
    write the file handed out last and raised as OutputWriteError; so is a failure to
    create the folder or to rename.
    """
    outputs = OutputSet(protected)
    try:
        yield outputs
        outputs._commit()
    except OSError as exc:
        final = outputs._last_final()
        outputs._discard()
        where = f"cannot write {final}" if final is not None else "cannot write the outputs"
        raise OutputWriteError(f"{where}: {exception_reason(exc)}") from None
    except BaseException:
        outputs._discard()
        raise
