"""Nothing lost or half-written (issue 6): atomic_outputs on its own and behind every command."""

from __future__ import annotations

import errno
import importlib
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from dctconv.io import _atomic as atomic
from dctconv.io._atomic import atomic_outputs
from dctconv.cli import cli
from dctconv.errors import OutputCollisionError, OutputWriteError
from hostile import (
    IMAGE_COMMANDS,
    OUTPUT_DIR_COMMANDS,
    WRITING_COMMANDS,
    command_named,
    files_in,
    ids,
    make_good_input,
    sample_crop,
)

writing_commands = pytest.mark.parametrize("command", WRITING_COMMANDS, ids=ids(WRITING_COMMANDS))
output_dir_commands = pytest.mark.parametrize("command", OUTPUT_DIR_COMMANDS, ids=ids(OUTPUT_DIR_COMMANDS))
COMPRESS = command_named("compress")


def run(args):
    return CliRunner().invoke(cli, [str(a) for a in args])


# ---------------------------------------------------------------- atomic_outputs itself


def _write_group(folder: Path, fail_with=None):
    """Write a.bin completely, then b.bin half, then fail (if asked)."""
    with atomic_outputs() as outputs:
        outputs.path(folder / "a.bin").write_bytes(b"A" * 100)
        half = outputs.path(folder / "b.bin")
        half.write_bytes(b"B" * 50)
        if fail_with is not None:
            raise fail_with
        half.write_bytes(b"B" * 100)
    return outputs.written


def test_complete_group_appears_with_the_permissions_of_a_new_file(tmp_path):
    saved = os.umask(0o027)
    atomic._file_mode.cache_clear()
    try:
        written = _write_group(tmp_path)
    finally:
        os.umask(saved)
        atomic._file_mode.cache_clear()
    assert written == [tmp_path / "a.bin", tmp_path / "b.bin"]
    assert files_in(tmp_path) == ["a.bin", "b.bin"]
    assert (tmp_path / "b.bin").read_bytes() == b"B" * 100
    # 0o666 less the umask 0o027, as open() would give; mkstemp's own would be 0o600.
    assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == 0o640


@pytest.mark.parametrize("failure", [RuntimeError("writer broke"), KeyboardInterrupt()],
                         ids=["error", "ctrl-c"])
def test_failure_midway_leaves_nothing(tmp_path, failure):
    with pytest.raises(type(failure)):
        _write_group(tmp_path, fail_with=failure)
    assert files_in(tmp_path) == []


def test_failure_keeps_the_previous_version_of_an_output(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_outputs() as outputs:
            outputs.path(tmp_path / "a.bin").write_bytes(b"new, but half")
            assert (tmp_path / "a.bin").read_bytes() == b"old"  # never visible half-written
            raise KeyboardInterrupt
    assert files_in(tmp_path) == ["a.bin"]
    assert (tmp_path / "a.bin").read_bytes() == b"old"


def test_os_error_while_writing_names_the_file(tmp_path):
    with pytest.raises(OutputWriteError) as info:
        _write_group(tmp_path, fail_with=OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    assert str(info.value) == f"cannot write {tmp_path / 'b.bin'}: No space left on device"
    assert files_in(tmp_path) == []


def test_failed_rename_takes_back_the_ones_already_done(tmp_path, monkeypatch):
    real_replace, calls = os.replace, []

    def replace_fails_second_time(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace_fails_second_time)
    with pytest.raises(OutputWriteError, match="^cannot write .*b.bin: Input/output error$"):
        _write_group(tmp_path)
    assert len(calls) == 2
    assert files_in(tmp_path) == []


def test_folder_that_cannot_be_created(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputWriteError) as info:
        _write_group(tmp_path / "file" / "sub")
    assert str(info.value) == f"cannot create the folder {tmp_path / 'file' / 'sub'}: Not a directory"


def test_protected_input_is_refused_before_writing(tmp_path):
    source = tmp_path / "a.bin"
    source.write_bytes(b"input")
    with pytest.raises(OutputCollisionError) as info:
        with atomic_outputs(protected=[source]) as outputs:
            outputs.path(tmp_path / "other.bin").write_bytes(b"x")
            outputs.path(tmp_path / "." / "a.bin")
    assert str(info.value) == f"output {tmp_path / 'a.bin'} is also an input; choose another -o DIR"
    assert files_in(tmp_path) == ["a.bin"]
    assert source.read_bytes() == b"input"


def test_protected_input_reached_through_a_symlink(tmp_path):
    source = tmp_path / "in" / "a.bin"
    source.parent.mkdir()
    source.write_bytes(b"input")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.bin").symlink_to(source)
    with pytest.raises(OutputCollisionError, match="would overwrite the input"):
        with atomic_outputs(protected=[source]) as outputs:
            outputs.path(tmp_path / "out" / "a.bin")
    assert source.read_bytes() == b"input"


# ---------------------------------------------------------------- behind every command


def _patch_writer(monkeypatch, command, failure, *, after_calls=0, writer=None):
    """Make the command's writer write half a file and raise ``failure`` (after some good calls)."""
    module, name = (writer or command.writer).split(":")
    module = importlib.import_module(module)
    real, calls = getattr(module, name), []

    def writer(path, *args, **kwargs):
        calls.append(path)
        if len(calls) > after_calls:
            Path(path).write_bytes(b"\x89PNG\r\n\x1a\n half of it")
            raise failure
        return real(path, *args, **kwargs)

    monkeypatch.setattr(module, name, writer)
    return calls


def _writer_output(command, src, out):
    return (command.writer_output or (lambda s, o: command.outputs(s, o)[-1]))(src, out)


@writing_commands
def test_disk_full_midway_leaves_no_file_of_that_input(command, tmp_path, monkeypatch):
    good = make_good_input(command, tmp_path / "in")
    out = tmp_path / "out"
    calls = _patch_writer(monkeypatch, command, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    result = run(command.argv([good], out))
    assert calls, "the writer was not called: the test would prove nothing"
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    last = _writer_output(command, good, out)
    assert result.stderr.splitlines() == [f"Error: {good}: cannot write {last}: No space left on device"]
    assert files_in(out) == []


@writing_commands
def test_writer_bug_midway_leaves_no_file_of_that_input(command, tmp_path, monkeypatch):
    good = make_good_input(command, tmp_path / "in")
    out = tmp_path / "out"
    _patch_writer(monkeypatch, command, RuntimeError("encoder exploded"))
    result = run(command.argv([good], out))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: {good}: internal error (RuntimeError: encoder exploded); rerun with --debug for the traceback"
    ]
    assert files_in(out) == []


@writing_commands
def test_ctrl_c_midway_keeps_earlier_inputs_and_nothing_of_the_interrupted_one(
    command, tmp_path, monkeypatch
):
    first = make_good_input(command, tmp_path / "in", "first")
    second = make_good_input(command, tmp_path / "in", "second", image=sample_crop(box=(0, 0, 7, 5)))
    third = make_good_input(command, tmp_path / "in", "third")
    out = tmp_path / "out"
    _patch_writer(monkeypatch, command, KeyboardInterrupt(), after_calls=1)
    result = run(command.argv([first, second, third], out))
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert result.stderr.splitlines()[-1] == "Aborted!"
    assert "Traceback" not in result.output
    assert files_in(out) == sorted(p.name for p in command.written(first, out))


# ---------------------------------------------------------------- an input is never overwritten


def test_inverse_output_that_is_one_of_the_inputs_is_refused(tmp_path):
    out = tmp_path / "out"
    image = make_good_input(IMAGE_COMMANDS[0], tmp_path / "in", "x")
    assert run(["transform", image, "-o", out]).exit_code == 0
    coefficients = out / "x_coefficients.npz"
    clash = out / "x_reconstruction.png"
    Image.fromarray(np.zeros((3, 3), np.uint8)).save(clash)
    before = clash.read_bytes()
    result = run(["transform", "--inverse", coefficients, clash, "-o", out])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    # Without --jobs 1 the two run in parallel and are reported as they finish, in either order.
    assert sorted(line for line in result.stderr.splitlines() if "Error" in line) == sorted([
        f"Error: {coefficients}: output {clash} is also an input; choose another -o DIR",
        f"Error: {clash}: is an image, not a coefficient file (.npz) or a compressed file (.dctz); "
        "use dctconv transform without --inverse (or dctconv compress)",
    ])
    assert clash.read_bytes() == before
    assert not [name for name in files_in(out) if ".tmp" in name]


def test_forward_output_named_like_another_input_is_refused(tmp_path):
    folder = tmp_path / "photos"
    x = make_good_input(IMAGE_COMMANDS[0], folder, "x")
    maps = make_good_input(IMAGE_COMMANDS[0], folder, "x_maps", image=sample_crop(box=(0, 0, 8, 8)))
    before = maps.read_bytes()
    result = run(["transform", x, maps, "-o", folder])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        f"Error: {x}: output {folder / 'x_maps.png'} is also an input; choose another -o DIR"
    )
    assert maps.read_bytes() == before
    # x_maps.png itself is an ordinary input and was processed; x.png wrote nothing.
    assert files_in(folder) == sorted(["x.png", "x_maps.png", "x_maps_coefficients.npz", "x_maps_maps.png",
                                       ".x_maps_transform.made"])


def test_compress_into_its_input_folder_never_overwrites_an_input(tmp_path):
    """compress FOLDER -o FOLDER: x's reconstruction would be x_reconstruction.png, itself an input."""
    folder = tmp_path / "photos"
    x = make_good_input(COMPRESS, folder, "x")
    clash = make_good_input(COMPRESS, folder, "x_reconstruction", image=sample_crop(box=(0, 0, 8, 8)))
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    result = run(COMPRESS.argv([folder], folder))
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert [line for line in result.stderr.splitlines() if line.startswith("Error")] == [
        f"Error: {x}: output {clash} is also an input; choose another -o DIR"
    ]
    assert {name: (folder / name).read_bytes() for name in before} == before
    # x wrote nothing; the clashing image is an ordinary input and was compressed.
    assert files_in(folder) == sorted([x.name, clash.name] + [p.name for p in COMPRESS.written(clash, folder)])
    COMPRESS.check(clash, folder, None)


def test_compress_sweep_disk_full_midway_leaves_nothing(tmp_path, monkeypatch):
    good = make_good_input(COMPRESS, tmp_path / "in")
    out = tmp_path / "out"
    calls = _patch_writer(monkeypatch, COMPRESS, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)),
                          writer="dctconv.measure._figures:save_sweep")
    result = run(COMPRESS.argv([good], out) + ["--sweep"])
    assert calls
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: {good}: cannot write {out / 'good_sweep.png'}: No space left on device"
    ]
    assert files_in(out) == []


def test_compress_sweep_ctrl_c_while_writing_the_csv_leaves_nothing(tmp_path, monkeypatch):
    """Ctrl-C after the csv header and 2 rows of the second input: the first input's outputs stay."""
    import csv

    first = make_good_input(COMPRESS, tmp_path / "in", "first")
    second = make_good_input(COMPRESS, tmp_path / "in", "second", image=sample_crop(box=(0, 0, 7, 5)))
    out = tmp_path / "out"
    writers, rows = [], []

    class InterruptedWriter(csv.DictWriter):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            writers.append(self)

        def writerow(self, row):
            if len(writers) == 2 and len([w for w in rows if w is self]) == 3:
                raise KeyboardInterrupt
            rows.append(self)
            return super().writerow(row)

    monkeypatch.setattr(csv, "DictWriter", InterruptedWriter)
    result = run(COMPRESS.argv([first, second], out) + ["--sweep"])
    # (DictWriter writes its header through writerow.) The first file: a header, 19 dctconv
    # qualities, 16 K, 19 qualities of each of Pillow's encoders and JPEG XL's 8 points
    # (lossless and 7 distances, where imagecodecs has it); the second: its header and 2 rows.
    from PIL import features

    from dctconv.measure import _anchors

    jpegxl = 8 if _anchors.missing_package() is None and _anchors.available("jpegxl") else 0
    first_rows = 1 + 19 + 16 + 19 * (3 if features.check("avif") else 2) + jpegxl
    assert len(rows) == first_rows + 3
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == "Aborted!"
    assert "Traceback" not in result.output
    assert files_in(out) == sorted(
        [p.name for p in COMPRESS.written(first, out)] + ["first_sweep.csv", "first_sweep.json", "first_sweep.png"]
    )
    with open(out / "first_sweep.csv") as f:
        assert len(f.read().splitlines()) == first_rows  # header and every row: complete


# ---------------------------------------------------------------- same-named inputs


@output_dir_commands
def test_second_input_with_the_same_output_names_is_refused(command, tmp_path):
    a = make_good_input(command, tmp_path / "a", "x", image=sample_crop(box=(0, 0, 8, 8)))
    b = make_good_input(command, tmp_path / "b", "x", image=sample_crop(box=(100, 100, 108, 108)))
    out = tmp_path / "out"
    result = run(command.argv([a, b], out))
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert [line for line in result.stderr.splitlines() if "Error" in line] == [
        f"Error: {b}: its outputs would overwrite those of {a} (same name 'x'); "
        "rename one of the inputs or give each its own -o DIR"
    ]
    assert files_in(out) == sorted(p.name for p in command.written(a, out))
    # What is there is a's result, not b's (the check recomputes it from a).
    command.check(a, out, None)


@output_dir_commands
def test_same_input_twice_is_processed_once(command, tmp_path):
    good = make_good_input(command, tmp_path / "in")
    out = tmp_path / "out"
    result = run(command.argv([good, good], out))
    assert result.exit_code == 0, result.output
    assert [line for line in result.stderr.splitlines() if "Error" in line or "more than once" in line] == [
        f"Note: {good}: given more than once; processed once"
    ]
    assert files_in(out) == sorted(p.name for p in command.written(good, out))


@output_dir_commands
def test_running_again_replaces_the_previous_outputs(command, tmp_path):
    good = make_good_input(command, tmp_path / "in")
    out = tmp_path / "out"
    assert run(command.argv([good], out)).exit_code == 0
    result = run(command.argv([good], out))
    assert result.exit_code == 0, result.output
    assert files_in(out) == sorted(p.name for p in command.written(good, out))


# ---------------------------------------------------------------- the inputs of a batch, indexed


@pytest.mark.parametrize("how", ["same path", "symlink", "hard link", "another input's path", "no collision"])
def test_input_paths_refuse_what_a_list_refuses(tmp_path, how):
    import pickle

    inputs = [tmp_path / "a.png", tmp_path / "b.png"]
    for path in inputs:
        path.write_bytes(b"input")
    output = {"same path": inputs[0], "another input's path": tmp_path / "sub" / ".." / "b.png",
              "symlink": tmp_path / "link.png", "hard link": tmp_path / "hard.png",
              "no collision": tmp_path / "out.png"}[how]
    if how == "symlink":
        output.symlink_to(inputs[1])
    elif how == "hard link":
        os.link(inputs[1], output)
    (tmp_path / "sub").mkdir()
    outcomes = []
    # A list, and the compact form that crosses to worker processes (pickled).
    for protected in (inputs, pickle.loads(pickle.dumps(atomic.InputPaths(inputs)))):
        try:
            atomic.check_not_input(output, protected)
            outcomes.append(None)
        except OutputCollisionError as exc:
            outcomes.append(str(exc))
    assert outcomes[0] == outcomes[1]
    assert (outcomes[0] is None) == (how == "no collision")
