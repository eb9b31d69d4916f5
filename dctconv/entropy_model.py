"""The channel-conditional entropy model of the codec, coded with constriction's range coder.

The quantization levels of an image are n*n maps, one per frequency (channel), coded
one channel after the other in zigzag order, lowest frequency first. When channel k
is coded, every channel before it is known to the decoder, in every block. Its
symbols are therefore coded with a model chosen per coefficient from those known
channels (the context), and all the symbols that share a model go to the coder in
one vectorized call: there is no Python loop over coefficients, only over channels
and, inside a channel, over its few contexts.

A level ``q`` is coded as

* a token (the range-coded symbol): ``|q|`` itself below :data:`DIRECT_TOKENS`,
  else ``DIRECT_TOKENS + bit_length(|q|) - DIRECT_BITS - 1``, the size class of
  ``|q|`` as in JPEG's magnitude categories;
* for a token from the size classes, the bits of ``|q|`` below its leading one, and
  for every nonzero level its sign: raw bits, packed after the coded data.

The DC channel (the block means) is coded as the residual of planar prediction,
``q - left - above + above_left`` (the first row and column from their one
neighbour), which the decoder undoes with two cumulative sums.

The context of an AC coefficient at frequency (x, y) is built from the levels at the
two neighbouring lower frequencies (x - 1, y) and (x, y - 1), already coded: their
magnitudes in the same block, plus the average of the same sum in the four
neighbouring blocks (left, right, above, below; the edge block stands in for a
missing one). Its value, quantized by :data:`CONTEXT_EDGES`, picks one of
:data:`BINS` models of the channel's class (:func:`channel_classes`). The model of a
(class, bin) pair is the token histogram the encoder counted, stored in the file as
4-bit negative log2 probabilities in half bits.

References
----------
.. [1] R. Bamler, "Understanding Entropy Coding With Asymmetric Numeral Systems
   (ANS): a Statistician's Perspective", arXiv:2201.01741, 2022 (constriction).
.. [2] ITU-T T.81 (JPEG), 1992, F.1.2: magnitude categories and extra bits.
.. [3] D. Marpe, H. Schwarz, T. Wiegand, "Context-based adaptive binary arithmetic
   coding in the H.264/AVC video compression standard", IEEE TCSVT 13(7), 2003
   (contexts from neighbouring, already coded symbols).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import CodecFileError

#: Magnitudes below this are their own token.
DIRECT_TOKENS = 16
DIRECT_BITS = DIRECT_TOKENS.bit_length() - 1  # 4: bit_length of the first size-class magnitude is 5
#: Largest bit length of a coded value (a level or a DC residual); levels stay below
#: 2**(MAX_BITS - 2) so that the DC residual (up to 4 levels) fits.
MAX_BITS = 61
#: Number of distinct tokens.
TOKENS = DIRECT_TOKENS + MAX_BITS - DIRECT_BITS
#: Upper bin edges of the context value; its bin is the number of edges it reaches.
CONTEXT_EDGES = np.array([0.5, 1.5, 3.0, 6.0, 12.0, 24.0])
BINS = len(CONTEXT_EDGES) + 1
#: Negative log2 probability, in half bits, stored for a token never seen in a context.
UNSEEN = 15


@dataclass(frozen=True)
class CodedLevels:
    """The three sections of coded data: the models, the range coder's words, the raw bits."""

    model: bytes
    words: np.ndarray
    """uint32 words of constriction's RangeEncoder."""
    raw_bits: bytes


def channel_classes(block_size: int) -> np.ndarray:
    """Class of each channel ``x*n + y``: ``floor(4 log2(1 + x + y))``, renumbered 0, 1, ...

    Channels of one class share their models; classes grow coarser towards high
    frequencies, where large blocks have many channels with few symbols each. DC is
    always class 0 alone.
    """
    n = block_size
    diagonal = np.add.outer(np.arange(n), np.arange(n)).reshape(-1)
    raw = np.floor(4 * np.log2(1 + diagonal) + 1e-9).astype(np.int64)
    _, classes = np.unique(raw, return_inverse=True)
    return classes.reshape(-1)


def _bit_length(values: np.ndarray) -> np.ndarray:
    """bit_length of non-negative int64 values (exact: no float conversion)."""
    values = values.copy()
    length = np.zeros(values.shape, dtype=np.int64)
    for shift in (32, 16, 8, 4, 2, 1):
        big = values >= (1 << shift)
        length[big] += shift
        values[big] >>= shift
    return length + (values > 0)


def _tokens(magnitudes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tokens of non-negative int64 magnitudes, and the number of extra bits of each."""
    tokens = magnitudes.copy()
    large = magnitudes >= DIRECT_TOKENS
    extra = np.zeros(magnitudes.shape, dtype=np.int64)
    if large.any():
        length = _bit_length(magnitudes[large])
        tokens[large] = DIRECT_TOKENS + length - DIRECT_BITS - 1
        extra[large] = length - 1
    return tokens, extra


def _contexts(magnitudes: np.ndarray, channels: np.ndarray, block_size: int) -> np.ndarray:
    """Context bins (0 .. BINS - 1), shape (len(channels), rows, columns), from lower channels.

    Every channel of ``channels`` must have its lower neighbours (x - 1, y) and
    (x, y - 1) before it in the coding order: true for one anti-diagonal at a time.
    """
    n = block_size
    x, y = np.divmod(channels, n)
    # Frequencies (x, y - 1) and (x - 1, y); a missing one (at the block's edge) is
    # replaced by the other, so that every channel's context sums two magnitudes.
    left = np.where(y > 0, channels - 1, channels - n)
    up = np.where(x > 0, channels - n, channels - 1)
    same = magnitudes[left].astype(np.float64)
    same += magnitudes[up]
    padded = np.pad(same, ((0, 0), (1, 1), (1, 1)), mode="edge")
    around = padded[:, :-2, 1:-1] + padded[:, 2:, 1:-1]
    around += padded[:, 1:-1, :-2]
    around += padded[:, 1:-1, 2:]
    same += around / 4
    return np.searchsorted(CONTEXT_EDGES, same, side="right")


def coding_groups(channels: np.ndarray, block_size: int) -> list[np.ndarray]:
    """``channels`` (a zigzag prefix) split into anti-diagonals, coded one group at a time."""
    diagonal = channels // block_size + channels % block_size
    cuts = np.flatnonzero(np.diff(diagonal)) + 1
    return np.split(channels, cuts)


def _planar_residual(dc: np.ndarray) -> np.ndarray:
    return np.diff(np.diff(dc, axis=0, prepend=0), axis=1, prepend=0)


def _pack_tables(counts: np.ndarray) -> bytes:
    """Model section: one byte per context, its alphabet size A, then 4-bit codes for its A tokens."""
    sizes = np.zeros(len(counts), dtype=np.uint8)
    nibbles = []
    for index, histogram in enumerate(counts):
        used = np.flatnonzero(histogram)
        if used.size == 0:
            continue
        size = int(used[-1]) + 1
        sizes[index] = size
        hist = histogram[:size].astype(np.float64)
        with np.errstate(divide="ignore"):
            code = np.rint(-2 * np.log2(hist / hist.sum()))
        code = np.where(hist > 0, np.clip(code, 0, UNSEEN - 1), UNSEEN)
        nibbles.append(code.astype(np.uint8))
    nibbles = np.concatenate(nibbles) if nibbles else np.zeros(0, np.uint8)
    if nibbles.size % 2:
        nibbles = np.append(nibbles, np.uint8(0))
    packed = (nibbles[0::2] << 4) | nibbles[1::2]
    return sizes.tobytes() + packed.astype(np.uint8).tobytes()


def _unpack_tables(model: bytes, contexts: int) -> list[np.ndarray | None]:
    """Probabilities of each context's tokens (None for an unused context); checks every size."""
    if len(model) < contexts:
        raise CodecFileError("model section is shorter than its table of sizes")
    sizes = np.frombuffer(model, dtype=np.uint8, count=contexts).astype(np.int64)
    if sizes.max(initial=0) > TOKENS:
        raise CodecFileError("model section names a token beyond the largest one")
    total = int(sizes.sum())
    if len(model) != contexts + (total + 1) // 2:
        raise CodecFileError(
            f"model section has {len(model)} bytes, its sizes call for {contexts + (total + 1) // 2}"
        )
    packed = np.frombuffer(model, dtype=np.uint8, offset=contexts)
    nibbles = np.empty(packed.size * 2, dtype=np.uint8)
    nibbles[0::2] = packed >> 4
    nibbles[1::2] = packed & 15
    tables: list[np.ndarray | None] = []
    start = 0
    for size in sizes:
        if size == 0:
            tables.append(None)
            continue
        code = nibbles[start : start + size].astype(np.float64)
        start += size
        probabilities = np.exp2(-np.where(code == UNSEEN, 24.0, code) / 2)
        tables.append(probabilities)
    return tables


def _categorical(probabilities: np.ndarray):
    import constriction

    return constriction.stream.model.Categorical(probabilities, perfect=False)


def _bits_of(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The low ``lengths`` bits of each value, most significant first, concatenated (uint8 0/1)."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.uint8)
    starts = np.cumsum(lengths) - lengths
    owner = np.repeat(np.arange(len(values)), lengths)
    shift = np.repeat(lengths, lengths) - 1 - (np.arange(total) - np.repeat(starts, lengths))
    return ((values[owner] >> shift) & 1).astype(np.uint8)


def _values_of(bits: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_bits_of`: integers from runs of ``lengths`` bits (every length > 0)."""
    total = int(lengths.sum())
    starts = np.cumsum(lengths) - lengths
    shift = np.repeat(lengths, lengths) - 1 - (np.arange(total) - np.repeat(starts, lengths))
    weighted = bits.astype(np.int64) << shift
    return np.add.reduceat(weighted, starts) if len(lengths) else np.zeros(0, np.int64)


def _runs(ids: np.ndarray):
    """Stable order grouping equal ids, and the (id, start, end) runs of that order."""
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    bounds = np.flatnonzero(np.diff(sorted_ids)) + 1
    starts = np.concatenate(([0], bounds))
    ends = np.concatenate((bounds, [len(ids)]))
    return order, [(int(sorted_ids[a]), int(a), int(b)) for a, b in zip(starts, ends)]


def _group_ids(magnitudes, group, classes, block_size) -> np.ndarray:
    if group[0] == 0:
        bins = np.zeros((1, *magnitudes.shape[1:]), np.int64)
    else:
        bins = _contexts(magnitudes, group, block_size)
    return (classes[group][:, None, None] * BINS + bins).reshape(-1)


def encode_levels(levels: np.ndarray, channels: np.ndarray, block_size: int) -> CodedLevels:
    """Code the quantization levels of the listed channels.

    Parameters
    ----------
    levels : ndarray of int64, shape (n*n, rows, columns)
        Every level below ``2**(MAX_BITS - 2)`` in magnitude; channels not listed
        must be zero.
    channels : ndarray of int
        The channels to code: the first K of the zigzag order.
    block_size : int
        n.

    Returns
    -------
    CodedLevels

    Examples
    --------
    >>> import numpy as np
    >>> from dctconv.entropy_model import encode_levels, decode_levels
    >>> levels = np.zeros((4, 3, 5), dtype=np.int64)
    >>> levels[0] = np.arange(15).reshape(3, 5); levels[1, 1, 2] = -40
    >>> coded = encode_levels(levels, np.array([0, 1, 2, 3]), 2)
    >>> np.array_equal(decode_levels(coded, levels.shape, np.array([0, 1, 2, 3]), 2), levels)
    True
    """
    import constriction

    n = block_size
    classes = channel_classes(n)
    contexts = int(classes.max()) + 1
    magnitudes = np.abs(levels)
    plan = []  # per group: (context ids, tokens)
    raw = []
    counts = np.zeros(contexts * BINS * TOKENS, dtype=np.int64)
    for group in coding_groups(np.asarray(channels), n):
        values = _planar_residual(levels[0])[None] if group[0] == 0 else levels[group]
        ids = _group_ids(magnitudes, group, classes, n)
        flat = values.reshape(-1)
        mags = np.abs(flat)
        tokens, extra = _tokens(mags)
        counts += np.bincount(ids * TOKENS + tokens, minlength=counts.size)
        plan.append((ids, tokens))
        raw.append((flat[flat != 0] < 0).astype(np.uint8))
        large = extra > 0
        raw.append(_bits_of(mags[large], extra[large]))
    model = _pack_tables(counts.reshape(contexts * BINS, TOKENS))
    tables = _unpack_tables(model, contexts * BINS)
    models = [None if t is None or t.size == 1 else _categorical(t) for t in tables]
    encoder = constriction.stream.queue.RangeEncoder()
    for ids, tokens in plan:
        order, runs = _runs(ids)
        sorted_tokens = tokens[order].astype(np.int32)
        for context, start, end in runs:
            if models[context] is not None:
                encoder.encode(sorted_tokens[start:end], models[context])
    bits = np.concatenate(raw) if raw else np.zeros(0, np.uint8)
    return CodedLevels(model=model, words=encoder.get_compressed(), raw_bits=np.packbits(bits).tobytes())


def decode_levels(coded: CodedLevels, shape, channels: np.ndarray, block_size: int) -> np.ndarray:
    """Decode what :func:`encode_levels` wrote: int64 levels of ``shape`` (n*n, rows, columns).

    The caller has checked ``shape`` against its pixel limit. Every size read from
    the data is checked; damaged data raises CodecFileError, never anything else.
    """
    import constriction

    n = block_size
    classes = channel_classes(n)
    tables = _unpack_tables(coded.model, (int(classes.max()) + 1) * BINS)
    models = [None if t is None or t.size == 1 else _categorical(t) for t in tables]
    bits = np.unpackbits(np.frombuffer(coded.raw_bits, dtype=np.uint8))
    cursor = 0
    levels = np.zeros(shape, dtype=np.int64)
    magnitudes = np.zeros(shape, dtype=np.int64)  # |levels| of the channels decoded so far
    decoder = constriction.stream.queue.RangeDecoder(np.asarray(coded.words, dtype=np.uint32))
    for group in coding_groups(np.asarray(channels), n):
        ids = _group_ids(magnitudes, group, classes, n)
        order, runs = _runs(ids)
        sorted_tokens = np.zeros(len(ids), dtype=np.int64)
        for context, start, end in runs:
            if tables[context] is None:
                raise CodecFileError(f"channel {group[0]} uses a model the file does not define")
            if models[context] is not None:
                try:
                    sorted_tokens[start:end] = decoder.decode(models[context], end - start)
                except BaseException as exc:  # constriction's errors (a Rust panic is a BaseException)
                    if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
                        raise
                    raise CodecFileError(f"coded data damaged at channel {group[0]}") from None
        tokens = np.empty_like(sorted_tokens)
        tokens[order] = sorted_tokens
        nonzero = tokens > 0
        large = tokens >= DIRECT_TOKENS
        extra = tokens[large] - DIRECT_TOKENS + DIRECT_BITS  # bit_length - 1
        signs_count, extra_count = int(nonzero.sum()), int(extra.sum())
        if cursor + signs_count + extra_count > bits.size:
            raise CodecFileError(f"raw bits end early at channel {group[0]}")
        signs = bits[cursor : cursor + signs_count].astype(bool)
        cursor += signs_count
        values = tokens
        if extra.size:
            low = _values_of(bits[cursor : cursor + extra_count], extra)
            cursor += extra_count
            values[large] = (np.int64(1) << extra) + low
        values[np.flatnonzero(nonzero)[signs]] *= -1
        values = values.reshape(len(group), *shape[1:])
        if group[0] == 0:
            values = np.cumsum(np.cumsum(values, axis=1), axis=2)
        levels[group] = values
        magnitudes[group] = np.abs(values)
    if bits.size - cursor >= 8:
        raise CodecFileError(f"{(bits.size - cursor) // 8} bytes of raw bits left over after the last channel")
    return levels
