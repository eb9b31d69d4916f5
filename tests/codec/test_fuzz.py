"""Fuzzing every command (issue 6): mutated bytes of real files and random small arrays.

Whatever the input, a command must end with exit 0 or 1, never a traceback nor a
Python warning, never leave a temporary file, report a failure in exactly one clean
line, and on exit 0 have done the right thing (checked by the command's ``check`` in
hostile.py, against scipy.fft.dctn/idctn per block and scikit-image). verify's verdict
(exit 0 or a FAILED line) must be the one recomputed independently (``judge``). A file
that the strategies build valid must be accepted.

Bounded to run in seconds; set DCTCONV_FUZZ_EXAMPLES=2000 for a longer hunt.
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from references import reference_blockwise_dct, tolerance
from dctconv.cli import cli
from hostile import (
    COEFFICIENT_COMMANDS,
    COMMANDS,
    IMAGE_COMMANDS,
    Armed,
    assert_clean_error,
    coefficient_arrays,
    command_named,
    companion_image,
    file_matches_image,
    files_in,
    fix_png_crcs,
    gray_mode,
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


def fuzz_for(command):
    """``fuzz`` with this command's share of the examples (compress draws two figures per file)."""
    return settings(fuzz, max_examples=max(1, round(EXAMPLES * command.fuzz_share)))


def run_on_bytes(command, data: bytes, name: str):
    """Write ``data`` to a file called ``name`` in a fresh folder and run ``command`` on it."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        return run_command(command, path, Path(tmp) / "out")


def run_command(command, path: Path, out: Path, extra=()):
    """Run ``command`` on one input; assert what holds for any input; return the result."""
    args = command.argv([path], out) + ["--max-pixels", MAX_PIXELS, *extra]  # may decode path itself
    with warnings.catch_warnings(record=True) as caught:
        # A warning would reach the user's terminal as lines of Python internals.
        warnings.simplefilter("always")
        result = CliRunner().invoke(cli, args)
    assert not caught, [f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in caught]
    assert result.exit_code in (0, 1), (result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert not [name for name in files_in(out) if ".tmp" in name]
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    if result.exit_code == 1 and (errors or command.judge is None):
        assert len(errors) == 1, result.stderr
        assert errors[0].startswith(f"Error: {path}: ")
        assert_clean_error(errors[0])
        assert files_in(out) == []
    elif result.exit_code == 1:  # a verdict: verify read everything and found a difference
        assert command.judge(path, out) is not True, result.output
        assert "FAIL" in result.stdout
    else:
        assert not errors, result.stderr
        if command.judge is not None:
            assert command.judge(path, out) is not False, result.output
        if command.check is not None:
            command.check(path, out, result)
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
def test_mutated_png(command):
    @fuzz_for(command)
    @given(data=mutated_png())
    def mutated(data):
        run_on_bytes(command, data, "fuzzed.png")

    mutated()


def _coefficient_file_bytes(compressed: bool, threshold: float = 0.0) -> bytes:
    arrays = coefficient_arrays(sample_crop())
    if compressed:
        # Laid out as compress writes it (README, "The coefficient file"): the kept
        # channels as integer levels, zeros below the threshold, savez_compressed.
        mask = np.arange(16) % 3 == 0
        kept = arrays.pop("coefficients")[mask]
        kept[1:][np.abs(kept[1:]) < threshold] = 0
        arrays.update(kind=np.array("compressed"), step=np.array(2.0), threshold=np.array(threshold),
                      channel_mask=mask, kept=np.rint(kept / 2).astype(np.int16))
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


def _codec_file_bytes(**settings) -> bytes:
    """A compressed file of compress's format (.dctz), made by dctconv's own encoder: the
    entropy-coded format has no other writer. The mutations are the hostile part."""
    import dctconv

    return dctconv.encode(sample_crop(), **settings)


#: (file name, bytes): the transform's and the old compress's .npz, the codec's .dctz.
BASE_COEFFICIENT_FILES = [
    ("fuzzed_coefficients.npz", _coefficient_file_bytes(False)),
    ("fuzzed_compressed.npz", _coefficient_file_bytes(True)),
    ("fuzzed_compressed.npz", _coefficient_file_bytes(True, threshold=9.0)),
    ("fuzzed_compressed.dctz", _codec_file_bytes()),
    ("fuzzed_compressed.dctz", _codec_file_bytes(block_size=3, keep=5, step=2.0, threshold=9.0)),
    ("fuzzed_compressed.dctz", _codec_file_bytes(step=0.0)),
]
BASE_IDS = ["transform", "compressed", "compressed-threshold", "codec", "codec-zonal", "codec-unquantized"]


@pytest.mark.parametrize("command", COEFFICIENT_COMMANDS, ids=ids(COEFFICIENT_COMMANDS))
def test_mutated_coefficient_file(command):
    @fuzz_for(command)
    @given(case=st.sampled_from(BASE_COEFFICIENT_FILES).flatmap(
        lambda base: st.tuples(st.just(base[0]), mutations(base[1], header=4000))))
    def mutated(case):
        name, data = case
        run_on_bytes(command, data, name)

    mutated()


@pytest.mark.parametrize("base", range(len(BASE_COEFFICIENT_FILES)), ids=BASE_IDS)
@pytest.mark.parametrize("command", COEFFICIENT_COMMANDS, ids=ids(COEFFICIENT_COMMANDS))
def test_unmutated_base_files_are_accepted(command, base, tmp_path):
    """The positive control of the mutations: each base file is valid and, for verify, matches."""
    name, data = BASE_COEFFICIENT_FILES[base]
    path = tmp_path / name.replace("fuzzed", "base")
    path.write_bytes(data)
    assert run_command(command, path, tmp_path / "out").exit_code == 0


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
def test_random_small_image(command):
    @fuzz_for(command)
    @given(image=random_images())
    def random_image(image):
        array, fmt = image
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"random.{fmt.lower()}"
            Image.fromarray(array).save(path, format=fmt)
            result = run_command(command, path, Path(tmp) / "out")
            infinite = int(np.isinf(array).sum()) if array.dtype.kind == "f" else 0
            if command.id == "compress" and infinite:
                # compress keeps NaN pixels (no data) and names how many infinities it refuses.
                assert result.stderr.splitlines()[0].startswith(
                    f"Error: {path}: float image contains {infinite:,} infinite value")
            elif command.id == "compress" and not np.isfinite(array).all():
                assert result.exit_code == 0, result.output
            elif not np.isfinite(array).all():
                assert result.stderr.splitlines() == [f"Error: {path}: float image contains NaN or infinity"]
            elif command.expect_ok(array):
                assert result.exit_code == 0, result.output

    random_image()


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
        [written] = [name for name in files_in(tmp / "back") if not name.endswith(".made")]  # the record aside
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
def test_random_coefficient_file(command):
    """Random valid files, corrupted in zero to three ways. (For verify they hold no image's
    transform, so they must fail, but cleanly: test_verify_file_* below has matching ones.)"""

    @fuzz_for(command)
    @given(data=st.data())
    def random_file(data):
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            marker = tmp / "pickle-was-loaded"
            arrays = data.draw(valid_coefficient_arrays())
            done = data.draw(corruptions(arrays, marker))
            path = tmp / "random_coefficients.npz"
            np.savez(path, **arrays)
            result = run_command(command, path, tmp / "out")
            assert not marker.exists()
            if not done and command.judge is None:
                assert result.exit_code == 0, result.output

    random_file()


# ---------------------------------------------------------------- verify: files that match, or nearly


VERIFY_FILE = command_named("verify-file")


@st.composite
def image_and_its_file(draw):
    """A random small image, and the arrays of a coefficient file holding its transform or its
    compression (computed here with scipy, laid out as the README says), then maybe altered.

    Returns (pixels, file format, arrays, what was altered)."""
    array, fmt = draw(random_images())
    assume(np.isfinite(array).all())
    n = draw(st.sampled_from([2, 3, 4, 8]))
    exact = reference_blockwise_dct(array.astype(np.float64), n)
    arrays = coefficient_arrays(array, block_size=n, mode=gray_mode(array))
    big = float(np.abs(exact).max(initial=0))
    if draw(st.booleans()):
        fits32 = big < float(np.finfo(np.float32).max) / 2
        dtype = np.float32 if fits32 and draw(st.booleans()) else np.float64
        arrays["coefficients"] = exact.astype(dtype)
        stored = "coefficients"
    else:
        mask = draw(hnp.arrays(np.bool_, n * n))
        step = draw(st.sampled_from([0.0, 0.5, 1.0, 3.0]))
        threshold = draw(st.sampled_from([0.0, 0.0, 1.0, 50.0]))
        if big / max(step, 1e-300) >= 2.0**62:
            step = 0.0  # levels would not fit in 64 bits: store the floats
        kept = exact[mask]
        channels = np.flatnonzero(mask)
        kept[(channels != 0)[:, None, None] & (np.abs(kept) < threshold)] = 0  # DC is never zeroed
        kept = np.rint(kept / step).astype(np.int64) if step > 0 else kept
        del arrays["coefficients"]
        arrays.update(kind=np.array("compressed"), step=np.array(step), threshold=np.array(threshold),
                      channel_mask=mask, kept=kept)
        stored = "kept"
    change = draw(st.sampled_from(["none", "none", "coefficient", "zero", "pixel"]))
    values = arrays[stored] = arrays[stored].copy()
    if change in ("coefficient", "zero") and values.size:
        where = draw(st.integers(0, values.size - 1))
        if change == "zero":
            values.flat[where] = 0
        elif values.dtype.kind == "i":
            values.flat[where] += draw(st.sampled_from([-1, 1, 7, -1000]))
        else:
            relative = draw(st.sampled_from([1e-15, 1e-9, 1e-3, 1.0]))
            values.flat[where] += relative * max(big, 1.0)
    elif change == "pixel":
        array = array.copy()
        where = draw(st.integers(0, array.size - 1))
        if array.dtype.kind == "f":
            value = np.float64(array.flat[where])
            changed = value * 1.5 + 1
            array.flat[where] = changed if abs(changed) < float(np.finfo(np.float32).max) else value / 2
        else:
            info = np.iinfo(array.dtype)
            array.flat[where] = array.flat[where] - 1 if array.flat[where] > info.min else 1
    return array, fmt, arrays, change


@settings(fuzz, max_examples=2 * EXAMPLES)
@given(case=image_and_its_file())
def test_verify_file_says_ok_exactly_when_the_file_matches(case):
    """Exit 0 only when the file really holds what its image transforms (or compresses) to,
    and a FAILED verdict only when it does not: run_command asks the independent judge."""
    array, fmt, arrays, change = case
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        image = tmp / f"random.{'png' if fmt == 'PNG' else 'tif'}"
        Image.fromarray(array).save(image, format=fmt)
        path = tmp / "random_coefficients.npz"
        np.savez(path, **arrays)
        assert companion_image(path) == image
        result = run_command(VERIFY_FILE, path, tmp / "out")
        assert not [line for line in result.stderr.splitlines() if line.startswith("Error")], result.stderr
        verdict = file_matches_image(path, image)
        event(f"{change}: exit {result.exit_code}, judged {verdict}")
        if change == "none":
            assert result.exit_code == 0, result.output
