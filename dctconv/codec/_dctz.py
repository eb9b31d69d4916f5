"""The compressed file of :func:`dctconv.encode`: a versioned header, a section table, the sections.

Version 4 (written today; little-endian)::

    offset     size  field
    0          4     magic b"DCTZ"
    4          1     format version (4; versions 1 to 3 are read too)
    5          1     block size n (2 .. 64)
    6          1     pixel mode: 0 "L" (uint8), 1 "I;16" (uint16), 2 "I" (int32), 3 "F" (float32)
    7          1     quantization: 0 quality table, 1 flat step, 2 none (coefficients stored as float64)
    8          1     quality (1 .. 100; 0 unless quantization is 0)
    9          1     dead zone of the AC rounding, in 1/256 of a step (0 .. 127; 0 unless quantization is 0)
    10         2     K, channels kept per block in zigzag order (1 .. n*n)
    12         4     image height H
    16         4     image width W
    20         8     step (float64; 0 unless quantization is 1)
    28         8     threshold T (float64)
    36         8     data range low (float64)
    44         8     data range high (float64; > low, both finite)
    52         8     largest error promised, in pixel units (float64; -1 = no promise)
    60         2     flags (uint16): bit 0 set, block sizes chosen per region (n = 16,
                     the region's side; section PART); the other bits 0
    62         2     S, the number of sections (1 .. 16)
    64         12*S  section table: per section its tag (4 ASCII bytes), its length in bytes
                     (uint32) and the CRC-32 of its bytes (uint32, zlib.crc32)
    64+12S     4     CRC-32 of bytes 0 .. 64+12S (the header and the table)
    68+12S     ...   the sections, in table order, and nothing after them

A tag appears at most once. A file whose flags set bit 0 (written with
``--block-size auto``, :mod:`dctconv.codec._partition`) cuts the image, edge-padded to a
multiple of 16, into 16 x 16 regions, each one 16 x 16 block, four 8 x 8 blocks, or a
mix of 8 x 8 and 4 x 4 blocks by quadrant; ``PART`` holds that partition (coded by the
engine) and ``ADPT`` the offsets of the three sizes, then their levels in three passes
(16, 8, 4). Such a file has n = 16, K = 256, no threshold, and quantization 0 or 1. A quantized file (quantization 0 or 1) holds its levels
in ``ADPT``: for quantization 0 the reconstruction offsets (two bytes per channel
class, as below), then the levels coded by the adaptive binary range coder of
``dctconv.codec._engine`` (docs/formats.md gives it bit by bit). Version 4 files
written before the engine hold ``MODL`` (the model), ``WORD`` (the range-coded 32-bit
words, little-endian) and ``RAWB`` (raw bits) instead, with the content described
below for versions 1 to 3; a file holds one coding or the other, never both. For
quantization 2 the only such section is ``RAWB``, the zlib-compressed float64 values
of the K kept channels. A reader
refuses a tag it does not know. :func:`read_header` checks the magic, every field,
the header's CRC, every section's length against the file's and every section's
CRC before anything is decoded, so that a damaged file is named, never decoded.

The data range (low, high) is the one the quality steps are scaled to (the quality
table times ``(high - low) / 255``; versions 1 to 3 used the container's range: 255,
65535, 2**32 - 1, 1.0) and decoded pixels are clipped to. Two optional sections
(``dctconv.codec._bound``): ``RESD``, the bounded residual of a file that promises a
largest error E (the header's field): the map q (H x W) of the quantized residual
against the pixels the levels decode to, coded by
``dctconv.codec._entropy.encode_integer_map`` (files written before the engine), or
the same map in ``ADRS``, coded by the engine (``dctconv.codec._engine.encode_map``),
or in ``ADRP``, coded by the engine with a prediction of each value from its decoded
neighbours (``dctconv.codec._engine.encode_predicted_map``; a file holds one of the three);
a pixel decodes to ``P + q (2 floor(E) + 1)``
for integer modes, ``float32(P + q 2 (E - u))`` for float ones (u the float32 spacing at
the larger magnitude of the data range), clipped to the data range; absent when every
q is 0. ``NANM``, the NaN mask of a float image: a kind byte, then for kind 0 the
lengths of the runs of equal mask values, row after row, as LEB128 varints,
zlib-compressed (the first run is of non-NaN pixels, possibly empty), for kind 1 the
mask as ``encode_integer_map`` codes it; those pixels decode as NaN.

Versions 1 to 3 have a 48-byte header and no checksum::

    offset size  field
    0      36    as version 4 up to the threshold
    36     4     bytes of the model section
    40     4     32-bit words of the range-coded section
    44     4     bytes of the raw-bits section
    48     ...   model, words, raw bits, and nothing after them

For quantization 0 the model section starts with the reconstruction offsets of
``dctconv.codec._core.quantize_image``, two bytes per channel class. The rest of it is one
bit stream, 2 bits per context of the model
(``dctconv.codec._entropy.model_section``): 0 unused, 1 only zeros, 2 parametric
followed by two 5-bit indices (from version 3 its alphabet ends at its last token
above the floor), 3 a table followed by its 7-bit token count A and A 4-bit codes
(from version 3, A = 0 is a parametric model over the whole alphabet, its two 5-bit
indices following); then (version 3) 1 bit, set when the signs of the first row and
column of AC frequencies are range coded (they are then not in the raw bits),
followed by 42 sign models, each 1 bit (used) and, if used, a 5-bit probability.
Version 2 files have no sign bits; version 1 files hold one byte A per context and
then the 4-bit codes of every context's table. For quantization 2 the model and word
sections are empty and the raw section is the zlib-compressed float64 values of the
K kept channels.

:func:`read_header` checks every field, the pixel count against the caller's limit
and the section sizes against the file's length before anything is allocated.
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from ..errors import CodecFileError, CodecTooLargeError
from ..kernels import blocks_shape
from ..limits import DEFAULT_MAX_PIXELS, MAX_BLOCK_SIZE, MIN_BLOCK_SIZE

MAGIC = b"DCTZ"
FORMAT_VERSION = 4
#: Versions the reader takes: 1 stored every context's model as a table, 2 may give two
#: parameters instead (:mod:`dctconv.codec._entropy`), 3 may range code the signs of the
#: first row and column of AC frequencies; 4 adds the data range, the promised error,
#: a table of tagged sections and CRC-32 checksums.
READABLE_VERSIONS = (1, 2, 3, 4)
_HEADER = struct.Struct("<4sBBBBBBHIIddIII")
#: Size of the header of versions 1 to 3 in bytes.
HEADER_SIZE = _HEADER.size
_HEADER_V4 = struct.Struct("<4sBBBBBBHIIdddddHH")
_ENTRY = struct.Struct("<4sII")
_CRC = struct.Struct("<I")
#: Size of the fixed part of a version 4 header in bytes (the section table follows).
HEADER_V4_SIZE = _HEADER_V4.size
#: The most sections a version 4 file may have.
MAX_SECTIONS = 16
#: Section tags this reader knows, with what each holds (docs/formats.md).
SECTION_TAGS = {
    "MODL": "the model",
    "WORD": "the range-coded levels",
    "RAWB": "the raw bits",
    "RESD": "the bounded residual",
    "NANM": "the NaN mask",
    "ADPT": "the adaptively coded levels",
    "ADRS": "the adaptively coded residual",
    "ADRP": "the residual coded with per-pixel prediction",
    "PART": "the partition into block sizes",
}
#: Header flag bit 0: block sizes chosen per region (section PART).
FLAG_PARTITIONED = 1
#: The sections of versions 1 to 3, in file order.
_CLASSIC_TAGS = ("MODL", "WORD", "RAWB")
#: The data range quality steps were scaled to before version 4: the container's.
CONTAINER_RANGES = {"L": (0.0, 255.0), "I;16": (0.0, 65535.0), "I": (0.0, float(2**32 - 1)), "F": (0.0, 1.0)}

#: Pixel modes in the order of their code in the header, with their numpy dtype.
MODES = {"L": np.uint8, "I;16": np.uint16, "I": np.int32, "F": np.float32}
_MODE_CODES = list(MODES)
#: Quantization kinds in the order of their code in the header.
QUANTIZATIONS = ("quality", "step", "none")


@dataclass(frozen=True)
class CodecHeader:
    """The settings a compressed file was written with, and the sizes of its sections."""

    block_size: int
    image_shape: tuple[int, int]
    """(H, W) of the source image."""
    mode: str
    """Pixel mode of the source: "L", "I;16", "I" or "F"; decoding gives this type back."""
    quantization: str
    """"quality" (frequency table), "step" (one step for all) or "none" (float64 coefficients)."""
    quality: int | None
    step: float | None
    """The flat step (quantization "step"), 0.0 for "none", None for "quality"."""
    keep: int
    threshold: float
    dead_zone: int = 0
    """Dead zone of the AC rounding in 1/256 of a step (quality only): level = floor(|c|/step + 1/2 - dead_zone/256),
    before the encoder's rate-distortion choice of 8-bit levels (:mod:`dctconv.codec._rdoq`)."""
    model_bytes: int = 0
    word_count: int = 0
    raw_bytes: int = 0
    format_version: int = FORMAT_VERSION
    data_range: tuple[float, float] | None = None
    """(low, high) of the data the quality steps are scaled to and decoded pixels are
    clipped to; None: the container's range of :attr:`mode` (versions 1 to 3)."""
    max_error: float | None = None
    """The largest error promised for every pixel, in pixel units; None: no promise."""
    section_table: tuple[tuple[str, int, int], ...] = ()
    """(tag, length, CRC-32) of each section in file order (version 4; empty before)."""
    partitioned: bool = False
    """Block sizes 16, 8 and 4 chosen per 16 x 16 region (``--block-size auto``; header flag bit 0):
    :attr:`block_size` is then 16, the regions' side."""

    @property
    def value_range(self) -> tuple[float, float]:
        """(low, high): :attr:`data_range`, or the container's range of :attr:`mode`."""
        return self.data_range if self.data_range is not None else CONTAINER_RANGES[self.mode]

    @property
    def grid(self) -> tuple[int, int]:
        """(block rows, block columns)."""
        return blocks_shape(self.image_shape, self.block_size)

    @property
    def dtype(self) -> np.dtype:
        """numpy dtype of the pixels of :attr:`mode`."""
        return np.dtype(MODES[self.mode])

    @property
    def header_size(self) -> int:
        """Bytes before the first section."""
        if self.format_version < 4:
            return HEADER_SIZE
        return HEADER_V4_SIZE + _ENTRY.size * len(self.section_table) + _CRC.size

    @property
    def size(self) -> int:
        """Bytes of the whole file: header and sections."""
        if self.format_version < 4:
            return HEADER_SIZE + self.model_bytes + 4 * self.word_count + self.raw_bytes
        return self.header_size + sum(length for _, length, _ in self.section_table)

    def section_offsets(self) -> dict[str, tuple[int, int]]:
        """{tag: (start, end)} of each section in the file."""
        if self.format_version < 4:
            table = zip(_CLASSIC_TAGS, (self.model_bytes, 4 * self.word_count, self.raw_bytes))
        else:
            table = ((tag, length) for tag, length, _ in self.section_table)
        offsets, start = {}, self.header_size
        for tag, length in table:
            offsets[tag] = (start, start + length)
            start += length
        return offsets


def pack(header: CodecHeader, sections: dict[str, bytes]) -> bytes:
    """The bytes of a version 4 file: ``header``'s settings and ``sections`` ({tag: bytes}, in order).

    The section table, its lengths and every CRC-32 are computed here; the header's
    own section fields are ignored.
    """
    unknown = set(sections) - set(SECTION_TAGS)
    if unknown or not 1 <= len(sections) <= MAX_SECTIONS:
        raise ValueError(f"sections {sorted(sections)}: 1 to {MAX_SECTIONS} of {sorted(SECTION_TAGS)}")
    low, high = header.value_range
    head = _HEADER_V4.pack(
        MAGIC,
        FORMAT_VERSION,
        header.block_size,
        _MODE_CODES.index(header.mode),
        QUANTIZATIONS.index(header.quantization),
        header.quality or 0,
        header.dead_zone,
        header.keep,
        header.image_shape[0],
        header.image_shape[1],
        float(header.step or 0.0),
        float(header.threshold),
        float(low),
        float(high),
        -1.0 if header.max_error is None else float(header.max_error),
        FLAG_PARTITIONED if header.partitioned else 0,
        len(sections),
    )
    payloads = [bytes(payload) for payload in sections.values()]
    table = b"".join(
        _ENTRY.pack(tag.encode("ascii"), len(payload), zlib.crc32(payload))
        for tag, payload in zip(sections, payloads)
    )
    head += table
    return b"".join([head, _CRC.pack(zlib.crc32(head)), *payloads])


def classic_sections(model: bytes, words: np.ndarray, raw: bytes) -> dict[str, bytes]:
    """The MODL, WORD and RAWB sections of a file, as :func:`pack` takes them."""
    return {"MODL": bytes(model), "WORD": np.asarray(words, dtype="<u4").tobytes(), "RAWB": bytes(raw)}


def read_header(data, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> CodecHeader:
    """Read and check the header of a compressed file, without decoding anything.

    Parameters
    ----------
    data : bytes-like
        The whole file (the section sizes are checked against its length).
    max_pixels : int or None, optional
        Refuse a file whose image has more pixels than this. None lifts the limit.

    Returns
    -------
    CodecHeader

    Raises
    ------
    CodecTooLargeError
        If the image has more than ``max_pixels`` pixels.
    CodecFileError
        For a short file, wrong magic bytes, an unknown version, a field out of
        range, or sections that do not add up to the file's length.

    Examples
    --------
    >>> import numpy as np, dctconv
    >>> from dctconv.codec._dctz import read_header
    >>> header = read_header(dctconv.encode(np.zeros((5, 7), np.uint8), quality=50))
    >>> header.image_shape, header.mode, header.quality, header.keep
    ((5, 7), 'L', 50, 16)
    """
    data = memoryview(data).cast("B")
    if len(data) < len(MAGIC) or bytes(data[: len(MAGIC)]) != MAGIC:
        raise CodecFileError("not a dctconv compressed file (wrong magic bytes)")
    version = data[4] if len(data) > 4 else None
    if version is not None and version not in READABLE_VERSIONS:
        raise CodecFileError(
            f"unknown format version {version} (this dctconv reads versions 1 to {FORMAT_VERSION}; "
            "a newer dctconv may read it)"
        )
    fixed = HEADER_V4_SIZE if version == 4 else HEADER_SIZE
    if len(data) < fixed:
        raise CodecFileError(f"file is truncated: {len(data)} bytes, shorter than the {fixed}-byte header")
    extra = {}
    if version < 4:
        (_, _, n, mode, quantization, quality, dead_zone, keep, height, width, step, threshold,
         model_bytes, word_count, raw_bytes) = _HEADER.unpack_from(data)
    else:
        (_, _, n, mode, quantization, quality, dead_zone, keep, height, width, step, threshold,
         low, high, max_error, flags, count) = _HEADER_V4.unpack_from(data)
        table, model_bytes, word_count, raw_bytes = _read_table(data, count)
        if flags & ~FLAG_PARTITIONED:
            raise CodecFileError(f"header sets flags {flags:#06x}, which this dctconv does not know")
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise CodecFileError(f"header gives data range {low!r} .. {high!r}, not two finite numbers low < high")
        if not (max_error == -1 or (math.isfinite(max_error) and max_error >= 0)):
            raise CodecFileError(f"header gives largest error {max_error!r}, not a finite number >= 0 (or -1)")
        extra = dict(
            data_range=(low + 0.0, high + 0.0),
            max_error=None if max_error == -1 else max_error + 0.0,
            section_table=table,
            partitioned=bool(flags & FLAG_PARTITIONED),
        )
        tags = {tag for tag, _, _ in table}
        if flags & FLAG_PARTITIONED:
            if not (n == 16 and keep == 256 and threshold == 0 and quantization in (0, 1)):
                raise CodecFileError(
                    "header chooses block sizes per region (flag bit 0) but does not give n = 16, K = 256, "
                    "no threshold and quantized levels"
                )
            if not {"PART", "ADPT"} <= tags:
                raise CodecFileError("header chooses block sizes per region (flag bit 0) but sections PART "
                                     "and ADPT are not both there")
        elif "PART" in tags:
            raise CodecFileError("section PART holds a partition but the header gives one block size (flag bit 0 clear)")
    if not MIN_BLOCK_SIZE <= n <= MAX_BLOCK_SIZE:
        raise CodecFileError(f"header gives block size {n}, not from {MIN_BLOCK_SIZE} to {MAX_BLOCK_SIZE}")
    if mode >= len(_MODE_CODES):
        raise CodecFileError(f"header gives unknown pixel mode {mode}")
    if quantization >= len(QUANTIZATIONS):
        raise CodecFileError(f"header gives unknown quantization {quantization}")
    if dead_zone >= (128 if quantization == 0 else 1):
        raise CodecFileError(f"header gives dead zone {dead_zone}/256, not from 0 to {127 if quantization == 0 else 0}")
    if height < 1 or width < 1:
        raise CodecFileError(f"header gives an image of {width} x {height} pixels")
    CodecTooLargeError.check(f"image is {width} x {height}", width * height, max_pixels)
    if not 1 <= keep <= n * n:
        raise CodecFileError(f"header keeps {keep} channels, not from 1 to {n * n}")
    if not (math.isfinite(threshold) and threshold >= 0):
        raise CodecFileError(f"header gives threshold {threshold!r}, not a finite number >= 0")
    kind = QUANTIZATIONS[quantization]
    if kind == "quality" and not (1 <= quality <= 100 and step == 0):
        raise CodecFileError(f"header gives quality {quality}, not from 1 to 100")
    if kind == "step" and not (quality == 0 and math.isfinite(step) and step > 0):
        raise CodecFileError(f"header gives step {step!r}, not a finite number > 0")
    adaptive = any(tag == "ADPT" for tag, _, _ in extra.get("section_table", ()))
    if kind == "none" and not (quality == 0 and step == 0 and model_bytes == 0 and word_count == 0 and not adaptive):
        raise CodecFileError("header of unquantized coefficients gives quantization settings or coded data")
    header = CodecHeader(
        block_size=n,
        image_shape=(height, width),
        mode=_MODE_CODES[mode],
        quantization=kind,
        quality=quality if kind == "quality" else None,
        step={"quality": None, "step": step, "none": 0.0}[kind],
        keep=keep,
        threshold=threshold + 0.0,
        dead_zone=dead_zone,
        model_bytes=model_bytes,
        word_count=word_count,
        raw_bytes=raw_bytes,
        format_version=version,
        **extra,
    )
    if header.size != len(data):
        what = "truncated" if header.size > len(data) else f"followed by {len(data) - header.size:,} extra bytes"
        raise CodecFileError(
            f"file is {what}: its header describes {header.size:,} bytes, the file has {len(data):,}"
        )
    if version == 4:
        _check_sections(data, header)
    return header


def _read_table(data, count: int):
    """The section table of a version 4 file, checked: ((tag, length, crc), ...) and the classic sizes."""
    if not 1 <= count <= MAX_SECTIONS:
        raise CodecFileError(f"header gives {count} sections, not from 1 to {MAX_SECTIONS}")
    end = HEADER_V4_SIZE + _ENTRY.size * count
    if len(data) < end + _CRC.size:
        raise CodecFileError(f"file is truncated: {len(data)} bytes, shorter than its {end + _CRC.size}-byte header")
    (stored,) = _CRC.unpack_from(data, end)
    if zlib.crc32(data[:end]) != stored:
        raise CodecFileError("the header is damaged (its CRC-32 does not match)")
    table = []
    for k in range(count):
        raw_tag, length, crc = _ENTRY.unpack_from(data, HEADER_V4_SIZE + _ENTRY.size * k)
        tag = raw_tag.decode("ascii", "replace")
        if tag not in SECTION_TAGS:
            raise CodecFileError(f"unknown section {tag!r} (this dctconv knows {', '.join(SECTION_TAGS)})")
        if any(tag == seen for seen, _, _ in table):
            raise CodecFileError(f"section {tag} appears twice")
        table.append((tag, length, crc))
    lengths = {tag: length for tag, length, _ in table}
    classic = [tag for tag in ("MODL", "WORD") if tag in lengths]
    if "ADPT" in lengths and classic:
        raise CodecFileError(f"sections ADPT and {classic[0]} both hold levels; a file has one coding of them")
    residuals = [tag for tag in ("ADRS", "ADRP", "RESD") if tag in lengths]
    if len(residuals) > 1:
        raise CodecFileError(f"sections {residuals[0]} and {residuals[1]} both hold a residual; a file has one of them")
    if lengths.get("WORD", 0) % 4:
        raise CodecFileError(f"section WORD has {lengths['WORD']} bytes, not a whole number of 32-bit words")
    return tuple(table), lengths.get("MODL", 0), lengths.get("WORD", 0) // 4, lengths.get("RAWB", 0)


def _check_sections(data, header: CodecHeader) -> None:
    """Every section's CRC-32 against the table (the lengths were checked against the file)."""
    offsets = header.section_offsets()
    for tag, _, crc in header.section_table:
        start, end = offsets[tag]
        if zlib.crc32(data[start:end]) != crc:
            raise CodecFileError(f"section {tag} ({SECTION_TAGS[tag]}) is damaged (its CRC-32 does not match)")


def sections(data, header: CodecHeader) -> tuple[bytes, np.ndarray, bytes]:
    """The model bytes, the uint32 words and the raw bytes of a file whose header was read."""
    model, words, raw = (section(data, header, tag) for tag in _CLASSIC_TAGS)
    return model, np.frombuffer(words, dtype="<u4").astype(np.uint32), raw


def section(data, header: CodecHeader, tag: str) -> bytes:
    """The bytes of section ``tag`` of a file whose header was read (empty if it has none)."""
    start, end = header.section_offsets().get(tag, (0, 0))
    return bytes(memoryview(data).cast("B")[start:end])


#: Suffix of the files ``dctconv compress`` writes in this format.
SUFFIX = ".dctz"


def read_file(path) -> bytes:
    """The bytes of a compressed file, for :func:`read_header` and the decoder.

    The whole file is read: its header can only be checked against its length.

    Raises
    ------
    CodecFileError
        If the file is not a regular file, or cannot be opened or read.
    """
    from ..errors import exception_reason
    from ..io._safe_open import open_regular

    # A FIFO or a device would block the read, or never end.
    with open_regular(path, CodecFileError) as f:
        try:
            return f.read()
        except OSError as exc:
            raise CodecFileError(f"cannot read: {exc.strerror or exception_reason(exc)}") from None
