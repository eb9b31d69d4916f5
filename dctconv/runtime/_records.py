"""What made a set of outputs: the hidden record beside them that ``--skip-existing`` compares.

Every output set of ``transform``, ``transform --inverse`` and ``compress`` is
written with a record, ``.<stem>_<command>.made`` in the output folder (JSON,
:data:`RECORD_VERSION`): the input's size and BLAKE2b hash (of the bytes the run
read: the input is hashed before the work and again after it, and a file that
changed in between gets no record), the settings that change the outputs' bytes,
and each output's name and size. The record is put in place after the outputs and
its previous version removed before them (:meth:`dctconv.io._atomic.OutputSet.path`
with ``seal``), so it never vouches for outputs it does not describe.

:func:`up_to_date` decides whether an input can be skipped without decoding
anything: the record exists and parses, was made by the same command with the
same settings from an input of the same size and hash, and every output is there
with its recorded size, JSON outputs parse, ``.dctz`` outputs pass
:func:`dctconv.codec._dctz.read_header` (every CRC-32) and ``.npz`` outputs their
zip CRC-32s. docs/scale.md says the same to users.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

#: Version of the record's JSON; a record of another version is not trusted (the input is done again).
RECORD_VERSION = 1
RECORD_SUFFIX = ".made"

#: Per command, the options of its per-file function (:mod:`dctconv.runtime._jobs`) that
#: change the bytes of its outputs; any difference means the work is done again.
#: (``max_pixels`` and ``protected`` only refuse work; the inverse's file records its settings.)
SETTINGS = {
    "transform": ("block_size", "dtype", "layout", "channel_order", "from_jpeg", "pictures"),
    "inverse": (),
    "compress": ("block_size", "quality", "step", "keep", "threshold", "data_range", "max_error", "sweep",
                 "pictures"),
}

_CHUNK = 1 << 20


def record_name(stem: str, command: str) -> str:
    """The record's name in the output folder: ``.<stem>_<command>.made``."""
    return f".{stem}_{command}{RECORD_SUFFIX}"


def settings_of(command: str, options: dict) -> dict:
    """The settings of ``command`` that change its outputs, from the per-file function's keyword ``options``.

    In their JSON form (a tuple becomes a list), as the record stores them.
    """
    return json.loads(json.dumps({name: options.get(name) for name in SETTINGS[command]}, allow_nan=False))


def content_id(path) -> dict | None:
    """``{"size": bytes, "blake2b": hex digest}`` of a regular file, read in chunks; None if it cannot be read."""
    digest = hashlib.blake2b(digest_size=32)
    size = 0
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None  # a FIFO or a device: the work reports it
        with os.fdopen(fd, "rb", buffering=0, closefd=False) as f:
            buffer = bytearray(_CHUNK)
            view = memoryview(buffer)
            while count := f.readinto(buffer):
                digest.update(view[:count])
                size += count
    except OSError:
        return None
    finally:
        os.close(fd)
    return {"size": size, "blake2b": digest.hexdigest()}


class Recorder:
    """The record of one input's outputs, made by the per-file function that writes them.

    Create it before the input is read (it hashes the input), and call :meth:`seal`
    as the last step of the ``atomic_outputs`` block.
    """

    def __init__(self, path, command: str, options: dict):
        self.path = Path(path)
        self.command = command
        self.settings = settings_of(command, options)
        self.before = content_id(self.path)

    def seal(self, outputs, out_dir, stem: str) -> str | None:
        """Add the record to ``outputs`` (an :class:`dctconv.io._atomic.OutputSet`); return a note, or None.

        If the input changed since it was hashed (or cannot be hashed again), no
        record is written and the previous one is removed: ``--skip-existing`` then
        does it again. The note says so.
        """
        final = Path(out_dir) / record_name(stem, self.command)
        after = content_id(self.path)
        if self.before is None or after != self.before:
            outputs.drop(final)
            return ("changed while it was read: its outputs are written but not recorded, so "
                    "--skip-existing does it again")
        from .. import __version__

        entries = [{"name": final_name.name, "size": os.stat(temp).st_size} for temp, final_name in outputs.pending]
        record = {
            "record": RECORD_VERSION,
            "command": self.command,
            "input": {"name": self.path.name, **self.before},
            "settings": self.settings,
            "outputs": entries,
            "dctconv": __version__,
        }
        with open(outputs.path(final, seal=True), "w", encoding="utf-8") as f:
            json.dump(record, f, indent=1, allow_nan=False)
            f.write("\n")
        return None


def read_record(path) -> dict | None:
    """The record at ``path`` if it is one of this version, else None."""
    try:
        with open(path, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return None
            record = json.loads(f.read(1 << 22))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("record") != RECORD_VERSION:
        return None
    entries = record.get("outputs")
    source = record.get("input")
    if not (isinstance(entries, list) and entries and isinstance(source, dict)):
        return None
    for entry in entries:
        if not (isinstance(entry, dict) and isinstance(entry.get("name"), str) and isinstance(entry.get("size"), int)
                and entry["name"] == Path(entry["name"]).name and entry["name"] not in ("", ".", "..")):
            return None
    return record


def output_whole(path: Path, size: int) -> bool:
    """Whether the output at ``path`` has ``size`` bytes and, by its kind, is whole.

    ``.json``: parses; ``.dctz``: its header, section table and every CRC-32 check
    (:func:`dctconv.codec._dctz.read_header`, no decoding); ``.npz``: every member's
    zip CRC-32; any other: its size alone.
    """
    try:
        info = os.stat(path)
    except OSError:
        return False
    if not stat.S_ISREG(info.st_mode) or info.st_size != size:
        return False
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            with open(path, "rb") as f:
                json.loads(f.read())
        elif suffix == ".dctz":
            from ..codec._dctz import read_header

            with open(path, "rb") as f:
                read_header(f.read(), max_pixels=None)
        elif suffix == ".npz":
            import zipfile

            with zipfile.ZipFile(path) as archive:
                if archive.testzip() is not None:
                    return False
    except Exception:  # noqa: BLE001 (any failure to read or parse means: not whole)
        return False
    return True


def up_to_date(path, *, out_dir, stem: str, command: str, settings: dict) -> bool:
    """Whether ``path``'s outputs in ``out_dir`` were made from its content with ``settings`` and are whole.

    ``settings`` as :func:`settings_of` gives them. Cheap checks first; the input is
    hashed last, once.
    """
    record = read_record(Path(out_dir) / record_name(stem, command))
    if record is None or record.get("command") != command or record.get("settings") != settings:
        return False
    source = record["input"]
    try:
        if os.stat(path).st_size != source.get("size"):
            return False
    except OSError:
        return False
    for entry in record["outputs"]:
        if not output_whole(Path(out_dir) / entry["name"], entry["size"]):
            return False
    now = content_id(path)
    return now is not None and now["size"] == source.get("size") and now["blake2b"] == source.get("blake2b")
