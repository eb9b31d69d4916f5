"""The compressed file format: header fields, hostile files, fuzzing."""

from __future__ import annotations

import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dctconv
from dctconv.codec._core import decode_levels, offsets_size
from dctconv.codec._dctz import HEADER_SIZE, pack, read_header, section
from dctconv.errors import CodecFileError, CodecTooLargeError
from dctconv.io._images import read_image
from hostile import dctz_sections, reseal

DATA = Path(__file__).parent.parent / "data"

fuzz = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def sample_file(**settings) -> bytes:
    rng = np.random.default_rng(7)
    image = np.clip(np.add.outer(np.arange(20), np.arange(27)) * 5 + rng.normal(0, 9, (20, 27)), 0, 255)
    defaults = {"block_size": 4} if "step" in settings else {"block_size": 4, "quality": 60}
    return dctconv.encode(image.astype(np.uint8), **{**defaults, **settings})


VALID = sample_file()
#: Two sections (ADPT, ADRS): for the section table's own checks.
BOUNDED = sample_file(max_error=1)


def one_line(exc: Exception) -> str:
    message = str(exc)
    assert message and "\n" not in message
    return message


def test_header_is_small_and_holds_the_settings():
    assert HEADER_SIZE <= 64
    header = read_header(sample_file(block_size=8, step=2.5, keep=10, threshold=1.5))
    assert (header.block_size, header.image_shape, header.mode) == (8, (20, 27), "L")
    assert (header.quantization, header.quality, header.step, header.keep, header.threshold) == (
        "step", None, 2.5, 10, 1.5)
    assert header.size == len(sample_file(block_size=8, step=2.5, keep=10, threshold=1.5))
    header = read_header(VALID)
    assert (header.quantization, header.quality, header.step, header.keep) == ("quality", 60, None, 16)
    for dtype, mode in [(np.uint16, "I;16"), (np.int32, "I"), (np.float32, "F")]:
        assert read_header(dctconv.encode(np.zeros((3, 3), dtype))).mode == mode


def patched(offset: int, fmt: str, value, source: bytes = VALID) -> bytes:
    """VALID with one field changed and its checksums recomputed: the field's own check answers."""
    data = bytearray(source)
    struct.pack_into(fmt, data, offset, value)
    return reseal(bytes(data))


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "not a dctconv compressed file (wrong magic bytes)"),
        (b"PK\x03\x04" + VALID[4:], "not a dctconv compressed file (wrong magic bytes)"),
        (VALID[:30], "file is truncated: 30 bytes, shorter than the 64-byte header"),
        (patched(4, "<B", 5), "unknown format version 5 (this dctconv reads versions 1 to 4; a newer dctconv may read it)"),
        (patched(4, "<B", 0), "unknown format version 0 (this dctconv reads versions 1 to 4; a newer dctconv may read it)"),
        (patched(5, "<B", 65), "header gives block size 65, not from 2 to 64"),
        (patched(6, "<B", 4), "header gives unknown pixel mode 4"),
        (patched(7, "<B", 3), "header gives unknown quantization 3"),
        (patched(8, "<B", 0), "header gives quality 0, not from 1 to 100"),
        (patched(9, "<B", 128), "header gives dead zone 128/256, not from 0 to 127"),
        (patched(10, "<H", 17), "header keeps 17 channels, not from 1 to 16"),
        (patched(12, "<I", 0), "header gives an image of 27 x 0 pixels"),
        (patched(28, "<d", float("nan")), "header gives threshold nan, not a finite number >= 0"),
        (VALID[:-1], f"file is truncated: its header describes {len(VALID):,} bytes, the file has {len(VALID) - 1:,}"),
        (VALID + b"junk", f"file is followed by 4 extra bytes: its header describes {len(VALID):,} bytes, the file has {len(VALID) + 4:,}"),
        # Version 4's own fields: the data range, the promised error, the flags, the table.
        (patched(36, "<d", float("nan")), "header gives data range nan .. 255.0, not two finite numbers low < high"),
        (patched(44, "<d", 0.0), "header gives data range 0.0 .. 0.0, not two finite numbers low < high"),
        (patched(52, "<d", -2.0), "header gives largest error -2.0, not a finite number >= 0 (or -1)"),
        (patched(60, "<H", 2), "header sets flags 0x0002, which this dctconv does not know"),
        (patched(60, "<H", 1), "header chooses block sizes per region (flag bit 0) but does not give n = 16, "
                               "K = 256, no threshold and quantized levels"),
        (patched(62, "<H", 0), "header gives 0 sections, not from 1 to 16"),
        (patched(62, "<H", 17), "header gives 17 sections, not from 1 to 16"),
        (patched(64, "<4s", b"JUNK"),
         "unknown section 'JUNK' (this dctconv knows MODL, WORD, RAWB, RESD, NANM, ADPT, ADRS, ADRP, PART)"),
        (patched(76, "<4s", b"ADPT", BOUNDED), "section ADPT appears twice"),
        (patched(76, "<4s", b"WORD", BOUNDED),
         "sections ADPT and WORD both hold levels; a file has one coding of them"),
        (patched(64, "<4s", b"RESD", BOUNDED),
         "sections ADRS and RESD both hold a residual; a file has one of them"),
        # Checksums: a change that is not resealed is named before anything is decoded.
        (VALID[:5] + b"\x08" + VALID[6:], "the header is damaged (its CRC-32 does not match)"),
        (VALID[:-1] + bytes([VALID[-1] ^ 1]), "section ADPT (the adaptively coded levels) is damaged (its CRC-32 does not match)"),
    ],
)
def test_hostile_headers_raise_one_line_errors(data, message):
    with pytest.raises(CodecFileError) as info:
        dctconv.decode(data)
    assert one_line(info.value) == message


def test_lying_sizes_are_refused_before_allocation():
    data = bytearray(VALID)
    struct.pack_into("<II", data, 12, 100_000, 100_000)
    tracemalloc.start()
    try:
        with pytest.raises(CodecTooLargeError) as info:
            dctconv.decode(reseal(bytes(data)), max_pixels=1_000_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert one_line(info.value) == "image is 100000 x 100000 = 10,000,000,000 pixels, more than the limit of 1,000,000"
    assert peak < 1 << 20
    with pytest.raises(CodecTooLargeError):
        read_header(VALID, max_pixels=500)
    # Sections that claim more than the file holds: a size check, not an allocation.
    data = bytearray(VALID)
    struct.pack_into("<I", data, 64 + 4, 2**32 - 4)  # ADPT's length
    with pytest.raises(CodecFileError, match="file is truncated: its header describes"):
        dctconv.decode(reseal(bytes(data)))


def test_garbage_sections_after_a_valid_header():
    rng = np.random.default_rng(3)
    header = read_header(VALID)
    start, _ = dctz_sections(VALID)
    for _ in range(20):
        body = rng.integers(0, 256, len(VALID) - start, dtype=np.uint8).tobytes()
        try:
            pixels = dctconv.decode(reseal(VALID[:start] + body))
        except CodecFileError as exc:
            one_line(exc)
        else:
            assert pixels.shape == header.image_shape and pixels.dtype == np.uint8


@fuzz
@given(st.data())
def test_fuzzed_files_decode_or_raise_codec_file_error(data):
    source = data.draw(st.sampled_from([VALID, sample_file(step=0), sample_file(block_size=2, step=0.3, keep=3)]))
    mutated = bytearray(source)
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(mutated) - 1))
        mutated[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(HEADER_SIZE - 2, len(mutated) + 3))
    mutated = bytes(mutated[:cut]) + bytes(max(0, cut - len(mutated)))
    if data.draw(st.booleans()):
        mutated = reseal(mutated)  # past the checksums, into the decoder
    try:
        pixels = dctconv.decode(mutated, max_pixels=4000)
    except CodecFileError as exc:
        one_line(exc)
    else:
        assert pixels.ndim == 2 and pixels.size <= 4000


def with_section(data: bytes, tag: str, payload: bytes) -> bytes:
    """A version 4 file with section ``tag``'s bytes replaced (table and checksums rebuilt)."""
    header = read_header(data)
    parts = {name: section(data, header, name) for name, _, _ in header.section_table}
    parts[tag] = payload
    return pack(header, parts)


def test_decode_levels_of_a_damaged_offsets_or_model_section():
    header = read_header(VALID)
    offsets = offsets_size(header)
    assert offsets == 14  # n = 4: 7 classes, two offsets each
    adaptive, _ = dctz_sections(VALID)  # ADPT is the only section, the offsets first
    data = bytearray(VALID)
    data[adaptive] = 128  # an offset of half a step or more
    with pytest.raises(CodecFileError, match="reconstruction offsets beyond half a step"):
        decode_levels(reseal(bytes(data)))
    with pytest.raises(CodecFileError, match="ADPT section is shorter than its reconstruction offsets"):
        decode_levels(with_section(VALID, "ADPT", bytes(10)))
    # A version 4 file of the coder before the engine (MODL, WORD, RAWB).
    old_v4 = (DATA / "codec_v4_n4_q75.dctz").read_bytes()
    assert read_header(old_v4).model_bytes > offsets
    model, _ = dctz_sections(old_v4)  # MODL is the first section
    data = bytearray(old_v4)
    data[model + offsets : model + offsets + 2] = b"\xff\xff"  # kind 3 (a table) of 127 tokens
    with pytest.raises(CodecFileError, match="model section gives a table of 127 tokens, not from 1 to 73"):
        decode_levels(reseal(bytes(data)))
    old = bytearray((DATA / "codec_v1_n4_q75.dctz").read_bytes())
    old[HEADER_SIZE + offsets] = 200  # version 1: a context's alphabet larger than any token
    with pytest.raises(CodecFileError, match="model section names a token beyond the largest one"):
        decode_levels(bytes(old))


@pytest.mark.parametrize("tag, cut, extra, left", [("ADPT", 3, b"\x00\x00", "2 bytes"), ("ADRS", 2, b"\x01", "1 byte")])
def test_the_adaptive_sections_must_end_exactly(tag, cut, extra, left):
    data = VALID if tag == "ADPT" else BOUNDED  # ADRS: the residual of a bounded file
    coded = section(data, read_header(data), tag)
    assert coded
    with pytest.raises(CodecFileError) as info:
        dctconv.decode(with_section(data, tag, coded[:-cut]))
    assert one_line(info.value) == f"section {tag} ends early (its coded data is truncated or damaged)"
    with pytest.raises(CodecFileError) as info:
        dctconv.decode(with_section(data, tag, coded + extra))
    assert one_line(info.value) == f"section {tag} has {left} left over after its last symbol"


@pytest.mark.parametrize("name", ["v4_n4_q75", "v4_n4_q50_bound2"])
def test_version_4_files_of_the_coder_before_the_engine_still_decode(name):
    # Written by dctconv at commit 2de6749 (MODL, WORD, RAWB and RESD, the constriction coder)
    # from codec_v1_source.png, with the pixels its decoder gave them.
    data = (DATA / f"codec_{name}.dctz").read_bytes()
    tags = [tag for tag, _, _ in read_header(data).section_table]
    assert tags[:3] == ["MODL", "WORD", "RAWB"] and ("RESD" in tags) == name.endswith("bound2")
    assert np.array_equal(dctconv.decode(data), read_image(DATA / f"codec_{name}.png")[0])


@pytest.mark.parametrize("name", ["v1_n8_q50", "v1_n4_q75", "v1_n4_keep6_step1", "v2_n8_q50", "v3_n8_q50", "v3_n4_q75"])
def test_older_versions_still_decode(name):
    # Written by dctconv before format version 2 (commit 73f8d9d), before version 3
    # (commit 13ae4e7) and before version 4 (commit 36d2045), with the pixels its decoder
    # gave them: the crop of camera.png in codec_v1_source.png at n = 8 quality 50, n = 4 quality 75, n = 4 --keep 6 --step 1.
    data = (DATA / f"codec_{name}.dctz").read_bytes()
    assert read_header(data).format_version == int(name[1])
    assert np.array_equal(dctconv.decode(data), read_image(DATA / f"codec_{name}.png")[0])
    source, _ = read_image(DATA / "codec_v1_source.png")
    settings = {"n8_q50": {"block_size": 8, "quality": 50}, "n4_q75": {"block_size": 4, "quality": 75},
                "n4_keep6_step1": {"block_size": 4, "step": 1.0, "keep": 6}}[name[3:]]
    new = dctconv.encode(source, **settings)
    # Version 4's header (64 bytes, a 12-byte entry per section, a CRC) is larger; the coded
    # sections are no larger than those of the older file.
    old_header, new_header = read_header(data), read_header(new)
    assert new_header.format_version == 4
    assert len(new) - new_header.header_size <= len(data) - old_header.header_size
