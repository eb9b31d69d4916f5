"""A damaged compressed file is caught (issue 21 item 3): bit flips, truncations, appended bytes
and range-coded sections that end early or have words left over.

The corpus is a set of small files like those the codec's tests write (n = 4, 8, 16; quality,
step, --keep, lossless, --max-error, NaN; 8-bit, 16-bit, float) and the two version 4 files
of the coder before the engine (MODL, WORD, RAWB, RESD). Every bit of each file's header,
section table and header CRC is flipped, and a random sample of the bits of its sections;
a flip is *undetected* when the file still decodes, to pixels other than the original's.
The share undetected is reported (``-rA``: the test's user properties) and must stay below
0.01 %.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import dctconv
from dctconv.cli import cli
from dctconv.codec._dctz import read_header, section
from dctconv.errors import CodecFileError
from hostile import dctz_sections

DATA = Path(__file__).parent.parent / "data"

#: Bits of the sections flipped per file (all of them when a file has fewer).
SAMPLED_BITS = 4000
#: Largest share of flips allowed to decode to other pixels without an error.
UNDETECTED_LIMIT = 1e-4


def _image(shape, seed: int, dtype=np.uint8, scale: float = 255.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    smooth = 0.5 + 0.4 * np.sin(x / 6 + seed) * np.cos(y / 5)
    values = (smooth + rng.normal(0, 0.03, shape)) * scale
    if np.dtype(dtype).kind == "f":
        return values.astype(dtype)
    return np.clip(np.rint(values), 0, scale).astype(dtype)


def _corpus() -> dict[str, bytes]:
    eight = _image((32, 40), 1)
    sixteen = _image((40, 32), 2, np.uint16, 4095.0)
    field = _image((36, 36), 3, np.float32, 10.0)
    with_nan = field.copy()
    with_nan[5:9, 20:31] = np.nan
    files = {
        "n4 q75": dctconv.encode(eight, block_size=4, quality=75),
        "n8 q50": dctconv.encode(eight, block_size=8, quality=50),
        "n16 q90": dctconv.encode(_image((48, 64), 4), block_size=16, quality=90),
        "n4 step 3 keep 6": dctconv.encode(eight, block_size=4, step=3.0, keep=6),
        "n8 step 0": dctconv.encode(eight, block_size=8, step=0.0),
        "n4 lossless": dctconv.encode(eight, block_size=4, max_error=0),
        "16-bit max error 20": dctconv.encode(sixteen, block_size=8, max_error=20),
        "float max error 0.05": dctconv.encode(field, block_size=4, max_error=0.05),
        "float with NaN": dctconv.encode(with_nan, block_size=8, max_error=0.1),
    }
    for name in ("v4_n4_q75", "v4_n4_q50_bound2"):  # the constriction coder's sections
        files[f"before the engine {name}"] = (DATA / f"codec_{name}.dctz").read_bytes()
    return files


CORPUS = _corpus()


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


def _outcome(data: bytes, original: np.ndarray) -> str:
    """"error" (a CodecFileError), "same" (decodes to the original pixels) or "undetected"."""
    try:
        pixels = dctconv.decode(data, max_pixels=None)
    except CodecFileError:
        return "error"
    return "same" if _same(pixels, original) else "undetected"


def _flipped_bits(data: bytes, rng) -> np.ndarray:
    """Every bit of the header, the section table and its CRC; a sample of the sections' bits."""
    start, _ = dctz_sections(data)
    header_bits = np.arange(8 * start)
    payload = np.arange(8 * start, 8 * len(data))
    if payload.size > SAMPLED_BITS:
        payload = rng.choice(payload, SAMPLED_BITS, replace=False)
    return np.concatenate([header_bits, payload])


def test_every_file_of_the_corpus_is_one_with_checksums():
    for name, data in CORPUS.items():
        header = read_header(data)
        assert header.format_version == 4, name
        assert header.section_table, name


def test_bit_flips_are_caught(record_property):
    rng = np.random.default_rng(21)
    counts = {"error": 0, "same": 0, "undetected": 0}
    examples = []
    for name, data in CORPUS.items():
        original = dctconv.decode(data)
        for bit in _flipped_bits(data, rng):
            damaged = bytearray(data)
            damaged[bit // 8] ^= 1 << (bit % 8)
            outcome = _outcome(bytes(damaged), original)
            counts[outcome] += 1
            if outcome == "undetected" and len(examples) < 5:
                examples.append(f"{name}: bit {bit}")
    flips = sum(counts.values())
    share = counts["undetected"] / flips
    record_property("bit_flips", flips)
    record_property("undetected", counts["undetected"])
    record_property("undetected_share", share)
    print(f"\n{flips:,} single-bit flips over {len(CORPUS)} files: {counts['error']:,} errors, "
          f"{counts['same']:,} the same pixels, {counts['undetected']:,} undetected ({100 * share:.4f} %)")
    assert flips > 20_000
    assert share < UNDETECTED_LIMIT, examples


def test_truncations_and_appended_bytes_are_caught():
    rng = np.random.default_rng(3)
    for name, data in CORPUS.items():
        for size in range(len(data)):
            with pytest.raises(CodecFileError):
                dctconv.decode(data[:size])
        for extra in (b"\x00", b"\x00\x00\x00\x00", bytes(rng.integers(0, 256, 7, dtype=np.uint8)), data[:16]):
            with pytest.raises(CodecFileError, match="extra bytes"):
                dctconv.decode(data + extra)


def test_a_damaged_file_is_one_line_naming_the_section_and_exit_1(tmp_path):
    data = CORPUS["n4 lossless"]
    start, table = dctz_sections(data)
    offsets = {}
    for tag, length, _ in table:
        offsets[tag.decode()] = start
        start += length
    assert set(offsets) == {"ADPT", "ADRP"}  # lossless: no levels, the image predicted pixel by pixel
    damaged = bytearray(data)
    damaged[offsets["ADRP"] + 1] ^= 0x04
    path = tmp_path / "x_compressed.dctz"
    path.write_bytes(bytes(damaged))
    result = CliRunner().invoke(cli, ["transform", "--inverse", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: {path}: section ADRP (the residual coded with per-pixel prediction) is damaged "
        "(its CRC-32 does not match)"]
    damaged = bytearray(data)
    damaged[20] ^= 0x01  # the step, in the header
    path.write_bytes(bytes(damaged))
    result = CliRunner().invoke(cli, ["transform", "--inverse", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"Error: {path}: the header is damaged (its CRC-32 does not match)"]
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


# ---------------------------------------------------------------- range-coded sections end exactly


def _with_section(data: bytes, tag: str, payload: bytes) -> bytes:
    """``data`` with section ``tag`` replaced and every CRC-32 rebuilt: only the decoder can tell."""
    from dctconv.codec._dctz import pack

    header = read_header(data)
    parts = {name: section(data, header, name) for name, _, _ in header.section_table}
    parts[tag] = payload
    return pack(header, parts)


def _message(data: bytes) -> str:
    with pytest.raises(CodecFileError) as info:
        dctconv.decode(data)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_a_word_section_that_ends_early_or_has_words_left_over_is_an_error():
    data = CORPUS["before the engine v4_n4_q75"]
    words = section(data, read_header(data), "WORD")
    assert len(words) >= 8
    # constriction's decoder reads zeros past the end: without the check, the last
    # word missing decoded the same pixels and a word appended went unnoticed.
    assert _message(_with_section(data, "WORD", words[:-4])) == "section WORD ends early (%d of its %d words)" % (
        len(words) // 4 - 1, len(words) // 4)
    assert _message(_with_section(data, "WORD", words + b"\x00\x00\x00\x00")) == (
        "section WORD has 1 word left over after its last symbol")
    assert _message(_with_section(data, "WORD", words + bytes(range(8)))) == (
        "section WORD has 2 words left over after its last symbol")
    for position in range(-8, 0):  # a bit of the last two words (the CRC-32s rebuilt): still an error
        changed = bytearray(words)
        changed[position] ^= 0x01
        _message(_with_section(data, "WORD", bytes(changed)))


def _plane_words(residual: bytes, change) -> bytes:
    """The RESD bytes of one plane (a 12-byte head: model bytes, words, raw bytes) with its words changed."""
    model, count, raw = struct.unpack_from("<III", residual)
    words = residual[12 + model : 12 + model + 4 * count]
    new = change(words)
    head = struct.pack("<III", model, len(new) // 4, raw)
    return head + residual[12 : 12 + model] + new + residual[12 + model + 4 * count :]


def test_a_residual_whose_words_end_early_or_are_left_over_is_an_error():
    data = CORPUS["before the engine v4_n4_q50_bound2"]
    residual = section(data, read_header(data), "RESD")
    assert _message(_with_section(data, "RESD", _plane_words(residual, lambda w: w[:-4]))).startswith(
        "section RESD ends early")
    assert _message(_with_section(data, "RESD", _plane_words(residual, lambda w: w + bytes(4)))) == (
        "section RESD has 1 word left over after its last symbol")


def test_the_files_of_the_corpus_decode_as_written():
    """The strict checks refuse nothing an encoder wrote: every file of the corpus, and the older versions."""
    for name, data in CORPUS.items():
        dctconv.decode(data)
    for path in sorted(DATA.glob("codec_v*.dctz")):
        dctconv.decode(path.read_bytes())


def test_a_nan_mask_whose_zlib_stream_ends_early_or_has_bytes_left_over_is_an_error():
    data = CORPUS["float with NaN"]
    mask = section(data, read_header(data), "NANM")
    assert mask[:1] == b"\x00"  # kind 0: the runs, zlib-compressed
    assert _message(_with_section(data, "NANM", mask + b"\x00")) == (
        "section NANM has 1 byte left over after its zlib stream")
    assert _message(_with_section(data, "NANM", mask[:-2])) == (
        "section NANM ends early (its zlib stream is not complete)")
