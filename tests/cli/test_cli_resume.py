"""--skip-existing resumes by content and settings (issue 21 item 1): each case of the issue.

Every test here failed when --skip-existing compared names and modification times.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from _helpers import output_names, record_names
from dctconv.cli import cli


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def image(seed: int, size=(24, 32)) -> np.ndarray:
    """A smooth picture plus a little noise: far from another seed's, well kept by quality 75."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : size[0], 0 : size[1]]
    phase = rng.uniform(0, 2 * np.pi, 2)
    smooth = 128 + 90 * np.sin(x / 5 + phase[0]) * np.cos(y / 7 + phase[1])
    return np.clip(smooth + rng.normal(0, 3, size), 0, 255).astype(np.uint8)


def save(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def skipped_line(skipped: int, of: int) -> str:
    return (f"Note: skipped {skipped} of {of} inputs whose outputs are there, whole, and made from the same "
            "content with the same settings (--skip-existing)")


def done_inputs(result) -> list[str]:
    return [Path(entry["input"]).name for entry in json.loads(result.stdout)["files"]]


def decoded(path: Path) -> np.ndarray:
    import dctconv

    return dctconv.decode(path.read_bytes()).astype(np.float64)


# ---------------------------------------------------------------- two inputs with one name


@pytest.mark.parametrize("command", ["transform", "compress"])
def test_same_name_is_refused_with_skip_existing_too(tmp_path, command):
    a = save(tmp_path / "a" / "x.png", image(1))
    b = save(tmp_path / "b" / "x.png", image(2))
    out = tmp_path / "out"
    refusal = (f"Error: {b}: its outputs would overwrite those of {a} (same name 'x'); "
               "rename one of the inputs or give each its own -o DIR")
    first = invoke(command, a, b, "-o", out, "--no-pictures")
    assert first.exit_code == 1 and refusal in first.stderr.splitlines()
    before = {name: (out / name).read_bytes() for name in os.listdir(out)}
    again = invoke(command, a, b, "-o", out, "--no-pictures", "--skip-existing")
    assert again.exit_code == 1
    assert refusal in again.stderr.splitlines()
    assert skipped_line(1, 1) in again.stderr
    assert {name: (out / name).read_bytes() for name in os.listdir(out)} == before  # b wrote nothing
    # What is there is a's: against the pixels of a, not of b (independent of dctconv's numbers).
    if command == "compress":
        got = decoded(out / "x_compressed.dctz")
    else:
        import scipy.fft

        with np.load(out / "x_coefficients.npz") as f:
            maps = f["coefficients"]
        n = int(np.sqrt(maps.shape[0]))
        rows, cols = maps.shape[1:]
        blocks = maps.reshape(n, n, rows, cols).transpose(2, 0, 3, 1).reshape(rows * n, cols * n)
        got = np.zeros_like(blocks)
        for r in range(rows):
            for c in range(cols):
                got[r * n:(r + 1) * n, c * n:(c + 1) * n] = scipy.fft.idctn(
                    blocks[r * n:(r + 1) * n, c * n:(c + 1) * n], norm="ortho")
        got = got[:24, :32]
    assert np.abs(got - image(1)).mean() < 5 < np.abs(got - image(2)).mean()


# ---------------------------------------------------------------- content, not times


def test_input_replaced_with_an_older_modification_time_is_done_again(tmp_path):
    source = save(tmp_path / "in" / "x.png", image(1))
    out = tmp_path / "out"
    assert invoke("compress", source, "-o", out, "--no-pictures").exit_code == 0
    old = (out / "x_metrics.json").stat().st_mtime
    save(source, image(2))  # as cp -p, an unpacked archive or a synced folder leaves it: older than the outputs
    os.utime(source, (old - 3600, old - 3600))
    result = invoke("compress", source, "-o", out, "--no-pictures", "--skip-existing", "--json")
    assert result.exit_code == 0, result.output
    assert done_inputs(result) == ["x.png"]
    assert np.abs(decoded(out / "x_compressed.dctz") - image(2)).mean() < 5
    # The same content with any modification time is skipped.
    os.utime(source, (old + 3600, old + 3600))
    result = invoke("compress", source, "-o", out, "--no-pictures", "--skip-existing", "--json")
    assert result.exit_code == 0 and skipped_line(1, 1) in result.stderr and done_inputs(result) == []


# ---------------------------------------------------------------- whole outputs


@pytest.mark.parametrize("damage", ["truncated dctz", "one byte of the dctz", "empty metrics", "missing output",
                                    "record damaged", "record of another command"])
def test_damaged_outputs_are_done_again(tmp_path, damage):
    sources = [save(tmp_path / "in" / f"{name}.png", image(seed)) for seed, name in enumerate("ab")]
    out = tmp_path / "out"
    assert invoke("compress", *sources, "-o", out, "--no-pictures").exit_code == 0
    if damage == "truncated dctz":
        os.truncate(out / "a_compressed.dctz", 10)
    elif damage == "one byte of the dctz":  # same size: only its CRC-32s tell
        data = bytearray((out / "a_compressed.dctz").read_bytes())
        data[len(data) // 2] ^= 0x10
        (out / "a_compressed.dctz").write_bytes(bytes(data))
    elif damage == "empty metrics":
        (out / "a_metrics.json").write_bytes(b"")
    elif damage == "missing output":
        (out / "a_reconstruction.png").unlink()
    elif damage == "record damaged":
        (out / ".a_compress.made").write_text("{")
    else:
        (out / ".a_compress.made").rename(out / ".a_transform.made")
    result = invoke("compress", *sources, "-o", out, "--no-pictures", "--skip-existing", "--json")
    assert result.exit_code == 0, result.output
    assert skipped_line(1, 2) in result.stderr
    assert done_inputs(result) == ["a.png"]
    assert np.abs(decoded(out / "a_compressed.dctz") - image(0)).mean() < 5
    assert json.loads((out / "a_metrics.json").read_text())["width"] == 32


def test_outputs_without_a_record_are_done_again(tmp_path):
    """Outputs written before records existed (or by hand) are not trusted."""
    source = save(tmp_path / "in" / "x.png", image(1))
    out = tmp_path / "out"
    assert invoke("transform", source, "-o", out).exit_code == 0
    assert record_names(out) == [".x_transform.made"]
    (out / ".x_transform.made").unlink()
    result = invoke("transform", source, "-o", out, "--skip-existing", "--json")
    assert result.exit_code == 0 and done_inputs(result) == ["x.png"]
    assert record_names(out) == [".x_transform.made"]


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize(("options", "key", "value"), [
    (["--quality", "10"], "quality", 10),
    (["--block-size", "8"], "block_size", 8),
    (["--step", "0"], "step", 0.0),
    (["--keep", "3"], "kept_per_block", 3),
    (["--threshold", "2"], "threshold", 2.0),
    (["--max-error", "4"], "max_error_bound", 4.0),
    (["--data-range", "0:300"], "data_range", [0.0, 300.0]),
])
def test_other_settings_do_the_work_again(tmp_path, options, key, value):
    sources = [save(tmp_path / "in" / f"{name}.png", image(seed)) for seed, name in enumerate("ab")]
    out = tmp_path / "out"
    assert invoke("compress", *sources, "-o", out, "--no-pictures").exit_code == 0
    assert json.loads((out / "a_metrics.json").read_text())["quality"] == 75
    result = invoke("compress", *sources, "-o", out, "--no-pictures", "--skip-existing", *options, "--json")
    assert result.exit_code == 0, result.output
    assert "Note: skipped" not in result.stderr
    assert done_inputs(result) == ["a.png", "b.png"]
    for name in "ab":
        assert json.loads((out / f"{name}_metrics.json").read_text())[key] == value
    # And now those are the settings the outputs were made with.
    result = invoke("compress", *sources, "-o", out, "--no-pictures", "--skip-existing", *options)
    assert result.exit_code == 0 and skipped_line(2, 2) in result.stderr


@pytest.mark.parametrize("options", [["--block-size", "8"], ["--dtype", "float32"], ["--layout", "channels_last"],
                                     ["--channel-order", "zigzag"]])
def test_other_transform_settings_do_the_work_again(tmp_path, options):
    source = save(tmp_path / "in" / "x.png", image(1))
    out = tmp_path / "out"
    assert invoke("transform", source, "-o", out, "--no-pictures").exit_code == 0
    result = invoke("transform", source, "-o", out, "--no-pictures", "--skip-existing", *options, "--json")
    assert result.exit_code == 0 and done_inputs(result) == ["x.png"]
    result = invoke("transform", source, "-o", out, "--no-pictures", "--skip-existing", *options, "--json")
    assert result.exit_code == 0 and done_inputs(result) == []


def test_inverse_of_another_coefficient_file_of_the_same_name_is_done_again(tmp_path):
    out = tmp_path / "out"
    for seed, folder in enumerate(["one", "two"]):
        source = save(tmp_path / folder / "x.png", image(seed))
        assert invoke("compress", source, "-o", tmp_path / folder, "--no-pictures").exit_code == 0
    first, second = (tmp_path / folder / "x_compressed.dctz" for folder in ("one", "two"))
    assert invoke("transform", "--inverse", first, "-o", out).exit_code == 0
    result = invoke("transform", "--inverse", first, "-o", out, "--skip-existing", "--json")
    assert result.exit_code == 0 and done_inputs(result) == []
    result = invoke("transform", "--inverse", second, "-o", out, "--skip-existing", "--json")
    assert result.exit_code == 0 and done_inputs(result) == ["x_compressed.dctz"]
    with Image.open(out / "x_reconstruction.png") as im:
        assert np.abs(np.asarray(im, np.float64) - image(1)).mean() < 5


# ---------------------------------------------------------------- an input changed during the run


def test_an_input_changed_while_it_is_compressed_gets_no_record(tmp_path, monkeypatch):
    import dctconv.codec._core as core

    source = save(tmp_path / "in" / "x.png", image(1))
    out = tmp_path / "out"
    assert invoke("compress", source, "-o", out, "--no-pictures").exit_code == 0
    assert record_names(out) == [".x_compress.made"]
    real = core.encode_image

    def rewritten_while_encoding(*args, **kwargs):
        stamp = source.stat().st_mtime_ns
        save(source, image(2))  # after the read, before the outputs are written; its time kept
        os.utime(source, ns=(stamp, stamp))
        return real(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(core, "encode_image", rewritten_while_encoding)
        save(source, image(3))  # a new content: this run does the work
        result = invoke("compress", source, "-o", out, "--no-pictures", "--skip-existing")
    assert result.exit_code == 0, result.output
    assert (f"Note: {source}: changed while it was read: its outputs are written but not recorded, so "
            "--skip-existing does it again") in result.stderr
    assert record_names(out) == []  # the previous record went with the outputs it described
    assert output_names(out) == ["x_compressed.dctz", "x_metrics.json", "x_reconstruction.png"]
    result = invoke("compress", source, "-o", out, "--no-pictures", "--skip-existing", "--json")
    assert result.exit_code == 0 and done_inputs(result) == ["x.png"]
    assert np.abs(decoded(out / "x_compressed.dctz") - image(2)).mean() < 5
    assert record_names(out) == [".x_compress.made"]


# ---------------------------------------------------------------- the record goes last


def test_the_record_is_gone_before_the_first_output_is_replaced(tmp_path, monkeypatch):
    """A run killed between two renames must not leave the old record beside new outputs."""
    import dctconv.io._atomic as atomic

    source = save(tmp_path / "in" / "x.png", image(1))
    out = tmp_path / "out"
    assert invoke("compress", source, "-o", out, "--no-pictures").exit_code == 0
    save(source, image(2))
    record = out / ".x_compress.made"
    seen, real = [], atomic.os.replace

    def replace(src, dst, *args, **kwargs):
        seen.append((Path(dst).name, record.exists()))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(atomic.os, "replace", replace)
    assert invoke("compress", source, "-o", out, "--no-pictures").exit_code == 0
    assert [name for name, _ in seen] == ["x_compressed.dctz", "x_reconstruction.png", "x_metrics.json",
                                          ".x_compress.made"]
    assert not any(present for _, present in seen)
    assert json.loads(record.read_text())["input"]["size"] == source.stat().st_size


@pytest.mark.parametrize("jobs", ["2"])
def test_records_are_written_by_the_workers(tmp_path, jobs):
    sources = [save(tmp_path / "in" / f"{name}.png", image(seed)) for seed, name in enumerate("abc")]
    out = tmp_path / "out"
    assert invoke("transform", *sources, "-o", out, "--no-pictures", "--jobs", jobs).exit_code == 0
    assert record_names(out) == [".a_transform.made", ".b_transform.made", ".c_transform.made"]
    result = invoke("transform", *sources, "-o", out, "--no-pictures", "--jobs", jobs, "--skip-existing")
    assert result.exit_code == 0 and skipped_line(3, 3) in result.stderr
