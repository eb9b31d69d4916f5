"""Issue 10, outputs: a failed rerun loses nothing (item 1); long names work (item 7).

Every output of an input is, after any failure, either its complete new version or,
byte for byte, its previous one: checked by making the k-th rename fail and the k-th
file write fail (a real ENOSPC from /dev/full), for every k.
"""

from __future__ import annotations

import builtins
import errno
import os
import shutil
import signal
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from dctconv.io import _atomic as atomic
from dctconv.io._atomic import atomic_outputs
from dctconv.cli import cli
from dctconv.errors import OutputWriteError
from hostile import command_named, png_bytes, sample_crop

TRANSFORM = command_named("transform")
COMPRESS = command_named("compress")
OLD_IMAGE = sample_crop(box=(200, 180, 213, 190))
NEW_IMAGE = sample_crop(box=(40, 60, 53, 70))


def run(args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every entry under ``folder`` (hidden ones included): file bytes, None for a folder."""
    return {
        str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes())
        for p in sorted(folder.rglob("*"))
    }


def restore(snap: dict[str, bytes | None], folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name, content in snap.items():
        if content is None:
            (folder / name).mkdir(parents=True, exist_ok=True)
        else:
            (folder / name).write_bytes(content)


def old_and_new(command, tmp_path):
    """An input x.png, its outputs from a first run (old), and those of a changed x.png (new)."""
    source = tmp_path / "in" / "x.png"
    source.parent.mkdir()
    source.write_bytes(png_bytes(NEW_IMAGE))
    assert run(command.argv([source], tmp_path / "new")).exit_code == 0
    new = snapshot(tmp_path / "new")
    source.write_bytes(png_bytes(OLD_IMAGE))
    out = tmp_path / "out"
    assert run(command.argv([source], out)).exit_code == 0
    old = snapshot(out)
    assert old.keys() == new.keys() == {p.name for p in command.written(source, out)}
    assert all(old[name] != new[name] for name in old)  # else "old or new" would prove less
    source.write_bytes(png_bytes(NEW_IMAGE))
    return source, out, old, new


# ---------------------------------------------------------------- item 1, the report's case


def test_output_that_cannot_be_replaced_keeps_the_other_previous_outputs(tmp_path):
    """A folder where x_maps.png should go: the rerun fails, x_coefficients.npz stays as it was."""
    source, out, old, _ = old_and_new(TRANSFORM, tmp_path)
    (out / "x_maps.png").unlink()
    (out / "x_maps.png").mkdir()
    before = snapshot(out)
    result = run(TRANSFORM.argv([source], out))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: {source}: cannot write {out / 'x_maps.png'}: a folder has that name; "
        "move it away or choose another -o DIR"
    ]
    assert snapshot(out) == before
    assert before["x_coefficients.npz"] == old["x_coefficients.npz"]


# ---------------------------------------------------------------- item 1, every k


def _count_calls(monkeypatch, module, name, fail_at, error):
    """Make the ``fail_at``-th call of ``module.name`` raise ``error``; return the list of calls."""
    real, calls = getattr(module, name), []

    def counted(*args, **kwargs):
        calls.append(args)
        if len(calls) == fail_at:
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def _no_hard_links(monkeypatch):
    def link(*args, **kwargs):
        raise OSError(errno.EPERM, os.strerror(errno.EPERM))

    monkeypatch.setattr(atomic.os, "link", link)


@pytest.mark.parametrize(("command", "hard_links"), [(TRANSFORM, True), (TRANSFORM, False), (COMPRESS, True)],
                         ids=["transform", "transform-no-hard-links", "compress"])
def test_kth_rename_fails_for_every_k(command, hard_links, tmp_path, monkeypatch):
    source, out, old, new = old_and_new(command, tmp_path)
    if not hard_links:  # FAT, some network file systems: previous versions are renamed aside
        _no_hard_links(monkeypatch)
    outputs = command.written(source, out)  # the record is put in place last
    for k in range(1, len(outputs) + 2):
        restore(old, out)
        with monkeypatch.context() as patch:
            calls = _count_calls(patch, atomic.os, "replace", k, OSError(errno.EIO, os.strerror(errno.EIO)))
            result = run(command.argv([source], out))
        if k <= len(outputs):
            assert result.exit_code == 1, k
            assert result.stderr.splitlines() == [
                f"Error: {source}: cannot write {outputs[k - 1]}: Input/output error"
            ], k
            assert snapshot(out) == old, k
        else:
            assert len(calls) == len(outputs), "not every rename was made to fail"
            assert result.exit_code == 0, result.output
            assert snapshot(out) == new


@pytest.mark.parametrize("command", [TRANSFORM, COMPRESS], ids=["transform", "compress"])
def test_kth_write_fails_with_disk_full_for_every_k(command, tmp_path, monkeypatch):
    """The k-th output file is opened on /dev/full: its writer meets a real ENOSPC."""
    source, out, old, new = old_and_new(command, tmp_path)
    outputs = command.written(source, out)  # the record is written last
    real_open = builtins.open
    for k in range(1, len(outputs) + 2):
        restore(old, out)
        opened = []

        def open_kth_on_dev_full(file, mode="r", *args, **kwargs):
            if isinstance(file, (str, Path)) and Path(file).parent == out and "w" in mode:
                opened.append(file)
                if len(opened) == k:
                    return real_open("/dev/full", mode, *args, **kwargs)
            return real_open(file, mode, *args, **kwargs)

        with monkeypatch.context() as patch:
            patch.setattr(builtins, "open", open_kth_on_dev_full)
            result = run(command.argv([source], out))
        if k <= len(outputs):
            assert result.exit_code == 1, k
            assert result.stderr.splitlines() == [
                f"Error: {source}: cannot write {outputs[k - 1]}: No space left on device"
            ], k
            assert snapshot(out) == old, k
        else:
            assert len(opened) == len(outputs), "not every write was made to fail"
            assert result.exit_code == 0, result.output
            assert snapshot(out) == new


# ---------------------------------------------------------------- item 1, atomic_outputs itself


def _write(folder: Path, contents: dict[str, bytes]) -> None:
    with atomic_outputs() as outputs:
        for name, data in contents.items():
            outputs.path(folder / name).write_bytes(data)


OLD = {"a.bin": b"old a", "b.bin": b"old b", "c.bin": b"old c"}
NEW = {"a.bin": b"new a", "b.bin": b"new b", "c.bin": b"new c", "d.bin": b"new d"}


@pytest.mark.parametrize("step", ["link", "replace"])
def test_kth_step_of_the_replacement_fails_for_every_k(step, tmp_path, monkeypatch):
    """Three outputs with a previous version, one new: failing link or rename k leaves the old set."""
    steps = 0
    for k in range(1, 6):
        restore(OLD, tmp_path)
        with monkeypatch.context() as patch:
            calls = _count_calls(patch, atomic.os, step, k, OSError(errno.EIO, os.strerror(errno.EIO)))
            if k <= (3 if step == "link" else 4):
                with pytest.raises(OutputWriteError, match=r"cannot write .*\.bin: Input/output error$"):
                    _write(tmp_path, NEW)
                assert snapshot(tmp_path) == OLD, k
            else:
                _write(tmp_path, NEW)
                steps = len(calls)
                assert snapshot(tmp_path) == NEW
    assert steps == (3 if step == "link" else 4)


def test_previous_version_that_cannot_be_put_back_is_named(tmp_path, monkeypatch):
    """The second rename fails, and so does putting a.bin's previous version back: the user is told where it is."""
    restore(OLD, tmp_path)
    real_replace, calls = os.replace, []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) >= 2:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)
    with pytest.raises(OutputWriteError) as info:
        _write(tmp_path, NEW)
    message = str(info.value)
    assert message.startswith(f"cannot write {tmp_path / 'b.bin'}: Input/output error; "
                              "a previous version could not be put back and is kept as ")
    backup = Path(message.rsplit(" ", 1)[1])
    assert backup.parent == tmp_path and backup.name.startswith(".dctconv-")
    assert backup.read_bytes() == OLD["a.bin"]
    monkeypatch.undo()
    left = snapshot(tmp_path)
    assert left.pop(backup.name) == OLD["a.bin"]
    assert left == dict(OLD, **{"a.bin": NEW["a.bin"]})


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_during_the_renames_takes_effect_after_them(signum, tmp_path, monkeypatch):
    """Ctrl-C (or SIGTERM, as the command line handles it) between two renames: the new set is complete."""
    restore(OLD, tmp_path)
    real_replace, calls = os.replace, []

    def replace_and_signal(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            os.kill(os.getpid(), signum)
        real_replace(src, dst)

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "replace", replace_and_signal)
    previous = signal.signal(signum, interrupt)
    # A second thread, as the transform's pool makes: the kernel may hand it the signal.
    other = threading.Thread(target=(stop := threading.Event()).wait)
    other.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            _write(tmp_path, NEW)
    finally:
        stop.set()
        other.join()
        signal.signal(signum, previous)
    assert len(calls) == 4
    assert snapshot(tmp_path) == NEW


# ---------------------------------------------------------------- item 7, long names


def test_longest_names_the_file_system_takes_are_written(tmp_path):
    """A 232-character stem: x_coefficients.npz is 249 bytes, under the 255 allowed, so it must work."""
    stem = "s" * 232
    source = tmp_path / f"{stem}.png"
    source.write_bytes(png_bytes(OLD_IMAGE))
    out = tmp_path / "out"
    result = run(TRANSFORM.argv([source], out))
    assert result.exit_code == 0, result.output
    # (The record, .<stem>_transform.made, is no longer than <stem>_coefficients.npz.)
    written = sorted(p.name for p in TRANSFORM.written(source, out))
    assert sorted(snapshot(out)) == written
    # And again, over the previous outputs (their backups have short names too).
    assert run(TRANSFORM.argv([source], out)).exit_code == 0
    assert sorted(snapshot(out)) == written


def test_output_name_too_long_is_named_before_anything_is_written(tmp_path):
    stem = "s" * 245  # the input's name fits (249 bytes); s..._coefficients.npz (262) does not
    source = tmp_path / f"{stem}.png"
    source.write_bytes(png_bytes(OLD_IMAGE))
    out = tmp_path / "out"
    result = run(TRANSFORM.argv([source], out))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: {source}: cannot write {out / (stem + '_coefficients.npz')}: its name is 262 bytes long, "
        "more than the 255 this file system allows; shorten the input's name"
    ]
    assert snapshot(out) == {}
