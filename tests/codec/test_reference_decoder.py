"""dctconv's compressed files decode to the same pixels with tests/reference_decoder.py, a decoder
written from docs/formats.md alone (numpy and the standard library, its own range decoder)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import dctconv
from dctconv.codec._dctz import pack, read_header, section
from hostile import sample_crop
from reference_decoder import Damaged, decode
from science_images import mr_slice, terrain, with_holes

PHOTO = sample_crop(box=(180, 150, 243, 201))  # 63 x 51: no side a multiple of any block size
TERRAIN = terrain((45, 38), low=236, high=1076, dtype=np.uint16)
FIELD = terrain((40, 33), low=-3.5, high=12.25, dtype=np.float32)
HOLES = with_holes(FIELD, count=3, radius=4)
SPECKLED = FIELD.copy()
SPECKLED[np.random.default_rng(6).random(FIELD.shape) < 0.2] = np.nan  # a mask the engine codes (kind 2)

CORPUS = {
    "n4 quality 75": (PHOTO, dict(block_size=4, quality=75)),
    "n8 quality 50": (PHOTO, dict(block_size=8, quality=50)),
    "n16 quality 90": (PHOTO, dict(block_size=16, quality=90)),
    "n2 quality 20": (PHOTO, dict(block_size=2, quality=20)),
    "n4 quality 100": (PHOTO, dict(block_size=4, quality=100)),
    "n4 flat step": (PHOTO, dict(block_size=4, step=7.5)),
    "n8 keep 10 threshold 6": (PHOTO, dict(block_size=8, quality=80, keep=10, threshold=6.0)),
    "n4 keep 1": (PHOTO, dict(block_size=4, quality=60, keep=1)),
    "n16 keep 2": (PHOTO, dict(block_size=16, step=3.0, keep=2)),
    "n4 step 0": (PHOTO, dict(block_size=4, step=0)),
    "n4 lossless": (PHOTO, dict(block_size=4, max_error=0)),
    "n8 bound 3": (PHOTO, dict(block_size=8, quality=30, max_error=3)),
    "16-bit default bound": (TERRAIN, dict()),
    "16-bit n16 lossless": (TERRAIN, dict(block_size=16, max_error=0)),
    "32-bit n4": (mr_slice((30, 35)).astype(np.int32) * 70000, dict(block_size=4, quality=70)),
    "float n8": (FIELD, dict(block_size=8, quality=85)),
    "float bound": (FIELD, dict(block_size=4, max_error=0.05)),
    "float NaN runs": (HOLES, dict(block_size=4, quality=75, max_error=0.5)),
    "float NaN speckle": (SPECKLED, dict(block_size=8, quality=40)),
    # Block sizes chosen per region: 8-bit (RDOQ), a flat step, 16-bit with its bound, float NaN.
    "auto quality 75": (sample_crop(box=(100, 100, 171, 150)), dict(block_size="auto", quality=75)),
    "auto quality 30": (PHOTO, dict(block_size="auto", quality=30)),
    "auto flat step": (PHOTO, dict(block_size="auto", step=6.0)),
    "auto 16-bit bound": (TERRAIN, dict(block_size="auto", quality=70, max_error=3)),
    "auto float NaN": (HOLES, dict(block_size="auto", quality=80)),
    # ADRP: the residual predicted pixel by pixel, with and without DCT levels under it.
    "32-bit lossless": (mr_slice((30, 35)).astype(np.int32) * 70000 - 2**30, dict(max_error=0)),
    "16-bit bound 3": (TERRAIN, dict(max_error=3)),
    "float NaN bound": (HOLES, dict(max_error=0.02)),
    "n8 quality 5 bound 2": (PHOTO, dict(block_size=8, quality=5, max_error=2)),
}


@pytest.mark.parametrize("name", list(CORPUS))
def test_the_reference_decoder_gives_dctconvs_pixels(name):
    image, settings = CORPUS[name]
    data = dctconv.encode(image, **settings)
    tags = {tag for tag, _, _ in read_header(data).section_table}
    # The engine's sections; step 0 writes its RAWB beside an empty MODL and WORD.
    assert "RESD" not in tags and ("MODL" not in tags or settings.get("step") == 0)
    expected = dctconv.decode(data)
    got, image = decode(data, reconstruction=True)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    if got.dtype.kind == "f":
        np.testing.assert_array_equal(got, expected)  # NaN where NaN
        return
    # docs/formats.md: a reconstruction within float rounding of a half may round either way
    # in another inverse DCT (one gray level); every other pixel is the same.
    halves = np.abs(image - np.floor(image) - 0.5) < 1e-9
    differ = got != expected
    assert not (differ & ~halves).any()
    assert np.abs(got.astype(np.int64) - expected.astype(np.int64)).max(initial=0) <= 1
    assert differ.sum() <= max(1, differ.size // 500)


def test_the_corpus_covers_every_section_and_kind():
    tags, kinds = set(), set()
    for image, settings in CORPUS.values():
        data = dctconv.encode(image, **settings)
        header = read_header(data)
        tags |= {tag for tag, _, _ in header.section_table}
        for tag, start_end in header.section_offsets().items():
            if tag == "NANM":
                kinds.add(data[start_end[0]])
    assert tags == {"ADPT", "ADRS", "ADRP", "NANM", "MODL", "WORD", "RAWB", "PART"}  # MODL/WORD/RAWB: step 0's (empty, empty, zlib)
    assert kinds == {0, 2}


def test_the_corpus_has_every_block_size_of_a_partition():
    from dctconv.codec._core import decode_levels

    sides = set()
    for image, settings in CORPUS.values():
        if settings.get("block_size") == "auto":
            sides |= set(np.unique(decode_levels(dctconv.encode(image, **settings)).partition.sizes).tolist())
    assert sides == {4, 8, 16}


def test_the_reference_decoder_refuses_damaged_data():
    good = dctconv.encode(PHOTO, block_size=4, quality=75)
    with pytest.raises(Damaged):  # a section's CRC
        decode(good[:-1] + bytes([good[-1] ^ 0x55]))
    header = read_header(good)
    levels = section(good, header, "ADPT")
    for damaged in (levels[:-1], levels[:-5], levels + b"\x00"):  # ends early, or bytes left over
        with pytest.raises(Damaged):
            decode(pack(header, {"ADPT": damaged}))


def test_the_reference_decoder_imports_nothing_from_dctconv():
    source = (Path(__file__).parent.parent / "reference_decoder.py").read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= {"__future__", "math", "struct", "zlib", "numpy"}
