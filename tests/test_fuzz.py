"""Fuzzing every command (issue 6): mutated bytes of real files and random small arrays.

Whatever the input, a command must end with exit 0 or 1, never a traceback, never
leave a temporary file, report a failure in exactly one clean line, and on exit 0
have written the right thing (checked by the command's ``check`` in hostile.py,
against scipy.fft.dctn/idctn per block). A file that the strategies build valid must
be accepted.

Bounded to run in seconds; set DCTCONV_FUZZ_EXAMPLES=2000 for a longer hunt.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from conftest import tolerance
from dctconv.cli import cli
from hostile import (
    COEFFICIENT_COMMANDS,
    COMMANDS,
    IMAGE_COMMANDS,
    Armed,
    assert_clean_error,
    coefficient_arrays,
    files_in,
    fix_png_crcs,
    ids,
    png_bytes,
    sample_crop,
)

EXAMPLES = int(os.environ.get("DCTCONV_FUZZ_EXAMPLES", "60"))
fuzz = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Small enough that a mutated header cannot make Pillow decode megapixels.
MAX_PIXELS = "20000"


def run_command(command, path: Path, out: Path, extra=()):
    """Run ``command`` on one input; assert what holds for any input; return the result."""
    result = CliRunner().invoke(cli, command.argv([path], out) + ["--max-pixels", MAX_PIXELS, *extra])
    assert result.exit_code in (0, 1), (result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert not [name for name in files_in(out) if ".tmp" in name]
    if result.exit_code == 1:
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
        assert len(errors) == 1, result.stderr
        assert errors[0].startswith(f"Error: {path}: ")
        assert_clean_error(errors[0])
        assert files_in(out) == []
    elif command.check is not None:
        command.check(path, out)
    return result


# ---------------------------------------------------------------- mutated bytes


def _png(array, mode=None) -> bytes:
    image = Image.fromarray(array)
    if mode is not None:
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _base_images() -> dict[str, bytes]:
    gray = sample_crop()
    return {
        "gray": png_bytes(gray),
        "rgb": _png(np.asarray(Image.open(sample_crop.__globals__["SAMPLES"] / "astronaut.png")
                               .crop((200, 100, 211, 109)))),
        "gray16": png_bytes(gray.astype(np.uint16) * 257),
        "palette": _png(gray, "P"),
    }


BASE_IMAGES = _base_images()


@st.composite
def mutations(draw, data: bytes, *, header: int = 64) -> bytes:
    """``data`` after one to four byte edits, often in its first ``header`` bytes."""
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        where = st.one_of(st.integers(0, min(header, len(data)) - 1), st.integers(0, len(data) - 1))
        pos = draw(where)
        op = draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete"]))
        if op == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[pos] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF, draw(st.integers(0, 255))]))
        elif op == "truncate":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        else:
            del data[pos : pos + draw(st.integers(1, 32))]
    return bytes(data)


@st.composite
def mutated_png(draw) -> bytes:
    data = draw(mutations(BASE_IMAGES[draw(st.sampled_from(sorted(BASE_IMAGES)))]))
    # With the CRCs mended the edits reach Pillow's decoders instead of its checksum test.
    return fix_png_crcs(data) if draw(st.booleans()) else data


@pytest.mark.parametrize("command", IMAGE_COMMANDS, ids=ids(IMAGE_COMMANDS))
@fuzz
@given(data=mutated_png())
def test_mutated_png(command, data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzzed.png"
        path.write_bytes(data)
        run_command(command, path, Path(tmp) / "out")


def _coefficient_file_bytes(compressed: bool) -> bytes:
    arrays = coefficient_arrays(sample_crop())
    if compressed:
        mask = np.arange(16) % 3 == 0
        arrays.update(kind=np.array("compressed"), step=np.array(2.0), channel_mask=mask,
                      kept=np.rint(arrays.pop("coefficients")[mask] / 2).astype(np.int32))
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


BASE_COEFFICIENT_FILES = [_coefficient_file_bytes(False), _coefficient_file_bytes(True)]


@pytest.mark.parametrize("command", COEFFICIENT_COMMANDS, ids=ids(COEFFICIENT_COMMANDS))
@fuzz
@given(data=st.sampled_from(BASE_COEFFICIENT_FILES).flatmap(lambda base: mutations(base, header=4000)))
def test_mutated_coefficient_file(command, data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzzed_coefficients.npz"
        path.write_bytes(data)
        run_command(command, path, Path(tmp) / "out")


# ---------------------------------------------------------------- random small images


_IMAGE_KINDS = {
    # name: (dtype, file format, pixel values)
    "uint8-png": (np.uint8, "PNG", None),
    "uint16-png": (np.uint16, "PNG", None),
    "uint8-tif": (np.uint8, "TIFF", None),
    "uint16-tif": (np.uint16, "TIFF", None),
    "int32-tif": (np.int32, "TIFF", None),
    "float32-tif": (np.float32, "TIFF", st.one_of(
        st.floats(-1e6, 1e6, width=32),
        st.floats(width=32),  # NaN, infinity, and values near float32's limits
    )),
}


@st.composite
def random_images(draw):
    kind = draw(st.sampled_from(sorted(_IMAGE_KINDS)))
    dtype, fmt, elements = _IMAGE_KINDS[kind]
    shape = (draw(st.integers(1, 9)), draw(st.integers(1, 9)))
    array = draw(hnp.arrays(dtype, shape, elements=elements))
    return array, fmt


@pytest.mark.parametrize("command", IMAGE_COMMANDS, ids=ids(IMAGE_COMMANDS))
@fuzz
@given(image=random_images())
def test_random_small_image(command, image):
    array, fmt = image
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"random.{fmt.lower()}"
        Image.fromarray(array).save(path, format=fmt)
        result = run_command(command, path, Path(tmp) / "out")
        if np.isfinite(array).all():
            assert result.exit_code == 0, result.output
        else:
            assert result.stderr.splitlines() == [f"Error: {path}: float image contains NaN or infinity"]


@fuzz
@given(image=random_images(), block_size=st.sampled_from([2, 3, 4, 5, 8, 64]))
def test_transform_round_trip_of_random_small_images(image, block_size):
    array, fmt = image
    if not np.isfinite(array).all():
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = tmp / f"random.{fmt.lower()}"
        Image.fromarray(array).save(path, format=fmt)
        out = tmp / "out"
        run_command(COMMANDS[0], path, out, ["--block-size", str(block_size)])
        result = run_command(COMMANDS[1], out / "random_coefficients.npz", tmp / "back")
        assert result.exit_code == 0, result.output
        [written] = files_in(tmp / "back")
        with Image.open(tmp / "back" / written) as im:
            restored = np.asarray(im)
        assert restored.dtype == array.dtype
        if array.dtype.kind == "f":
            magnitude = float(np.abs(array).max()) * block_size
            np.testing.assert_allclose(restored, array, rtol=2.0**-23, atol=tolerance(np.float64, magnitude))
        else:
            np.testing.assert_array_equal(restored, array)


# ---------------------------------------------------------------- random coefficient files


_MODES = {"L": 255.0, "I;16": 65535.0, "I": 2.0**31, "F": 1.0}
_RANDOM_DTYPES = [np.int8, np.int64, np.uint8, np.uint64, np.float16, np.float32, np.float64,
                  np.bool_, np.complex64, np.dtype("U3")]


def random_arrays():
    return hnp.arrays(
        st.sampled_from(_RANDOM_DTYPES),
        hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
    )


@st.composite
def valid_coefficient_arrays(draw) -> dict:
    n = draw(st.sampled_from([2, 3, 4, 8]))
    height, width = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    mode = draw(st.sampled_from(sorted(_MODES)))
    grid = (-(-height // n), -(-width // n))
    bound = _MODES[mode] * n
    arrays = {
        "format_version": np.array(1),
        "block_size": np.array(n),
        "image_shape": np.array([height, width]),
        "image_mode": np.array(mode),
    }
    if draw(st.booleans()):
        arrays["kind"] = np.array("transform")
        dtype = draw(st.sampled_from([np.float32, np.float64]))
        elements = st.floats(-bound, bound, width=32 if dtype == np.float32 else 64)
        arrays["coefficients"] = draw(hnp.arrays(dtype, (n * n, *grid), elements=elements))
    else:
        mask = draw(hnp.arrays(np.bool_, n * n))
        step = draw(st.sampled_from([0.0, 0.25, 1.0, 7.0]))
        if step > 0:
            kept = draw(hnp.arrays(np.int32, (int(mask.sum()), *grid), elements=st.integers(-1000, 1000)))
        else:
            kept = draw(hnp.arrays(np.float64, (int(mask.sum()), *grid), elements=st.floats(-bound, bound)))
        arrays.update(kind=np.array("compressed"), step=np.array(step), channel_mask=mask, kept=kept)
    return arrays


_HEADER_VALUES = {
    "format_version": st.integers(-1, 3).map(np.array),
    "block_size": st.integers(-1, 70).map(np.array),
    "image_shape": st.lists(st.integers(-2, 20), min_size=0, max_size=3).map(np.array),
    "image_mode": st.sampled_from(["L", "F", "RGB", ""]).map(np.array),
    "kind": st.sampled_from(["transform", "compressed", "zip"]).map(np.array),
    "step": st.sampled_from([-1.0, 0.0, 0.5, float("nan"), float("inf")]).map(np.array),
}


@st.composite
def corruptions(draw, arrays: dict, marker: Path) -> list[str]:
    """Change ``arrays`` in place in zero to three ways; return what was done."""
    done = []
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(sorted(arrays)))
        op = draw(st.sampled_from(["drop", "add", "replace", "header", "nan", "object"]))
        if op == "drop":
            del arrays[key]
        elif op == "add":
            arrays["x_" + draw(st.text("abcdefgh", min_size=1, max_size=6))] = draw(random_arrays())
        elif op == "replace":
            arrays[key] = draw(random_arrays())
        elif op == "header":
            key = draw(st.sampled_from(sorted(_HEADER_VALUES)))
            arrays[key] = draw(_HEADER_VALUES[key])
        elif op == "nan" and arrays[key].dtype.kind == "f" and arrays[key].size:
            arrays[key] = arrays[key].copy()
            arrays[key].flat[draw(st.integers(0, arrays[key].size - 1))] = draw(
                st.sampled_from([np.nan, np.inf, -np.inf])
            )
        elif op == "object":
            arrays[key] = np.array([Armed(marker)], dtype=object)
        else:
            continue
        done.append(f"{op} {key}")
    return done


@pytest.mark.parametrize("command", COEFFICIENT_COMMANDS, ids=ids(COEFFICIENT_COMMANDS))
@fuzz
@given(data=st.data())
def test_random_coefficient_file(command, data):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        marker = tmp / "pickle-was-loaded"
        arrays = data.draw(valid_coefficient_arrays())
        done = data.draw(corruptions(arrays, marker))
        path = tmp / "random_coefficients.npz"
        np.savez(path, **arrays)
        result = run_command(command, path, tmp / "out")
        assert not marker.exists()
        if not done:
            assert result.exit_code == 0, result.output
