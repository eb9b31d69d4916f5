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

The DC channel (the block means) is coded coarse to fine (:func:`_dc_passes`): a
subgrid of every S-th block by planar prediction (``q - left - above + above_left``,
undone by two cumulative sums), then, halving the stride each time, the blocks midway
between two known ones, predicted by their mean and modelled by how much the two
differ. Interpolating between known neighbours predicts far better than extrapolating
from one side, and every pass is one vectorized step.

The AC channels are coded anti-diagonal by anti-diagonal (all channels x + y = s at
once, their lower neighbours being on diagonal s - 1), each in two passes over a
checkerboard of blocks: first the blocks whose row plus column is even, then the odd
ones, whose four neighbours in the same channel are known by then. The context of a
coefficient at frequency (x, y) is an expected magnitude in its own levels: the
magnitudes at (x - 1, y) and (x, y - 1) in the same block (times their steps over
its step), plus a quarter of the same sum averaged over the four neighbouring
blocks; in the second pass, half of that plus the mean magnitude of the same channel
in the four neighbours. For (0, 1) and (1, 0) it is the DC difference across the
block's left and right (above and below) neighbours. The value, cut at
:data:`CONTEXT_EDGES`, picks one of :data:`BINS` models of the channel's class
(:func:`channel_classes`) and pass. The model of each context is fitted by the encoder
and stored in the file (:func:`model_section`): since format version 2, two 5-bit
indices of a parametric law (:func:`parametric_probabilities`: the probability of 0
and a geometric law of the nonzero magnitudes), or, where it costs fewer bits with
its symbols, the token histogram the encoder counted as 4-bit negative log2
probabilities in half bits (the only kind of version 1). A context whose only token
is 0 costs nothing to code.

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
#: Weights of the context value (see :func:`_context_values`).
DC_WEIGHT = 0.25
AROUND_WEIGHT = 0.25
SECOND_PASS_OWN = 0.5
SECOND_PASS_NEIGHBOURS = 1.0
#: Upper bin edges of the DC context: the difference of the two known neighbours, in levels.
DC_EDGES = np.array([0.5, 1.5, 2.5, 4, 6, 9, 14, 22, 35, 60])
#: Negative log2 probability, in half bits, stored for a token never seen in a context.
UNSEEN = 15
#: The file format version whose model section :func:`encode_levels` writes by default
#: (1: a table per context; 2: a table or two parameters per context).
MODEL_VERSION = 2


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


def _neighbour_mean(maps: np.ndarray) -> np.ndarray:
    """Mean of the four neighbours (above, below, left, right) of every block of each map.

    An edge block stands in for its missing neighbour. Written with shifted slices
    rather than a padded copy; the sum is taken in that order, so the float32 result
    is the same on every machine and in encoder and decoder.
    """
    total = np.empty_like(maps)
    total[:, 1:] = maps[:, :-1]
    total[:, :1] = maps[:, :1]
    total[:, :-1] += maps[:, 1:]
    total[:, -1:] += maps[:, -1:]
    total[:, :, 1:] += maps[:, :, :-1]
    total[:, :, :1] += maps[:, :, :1]
    total[:, :, :-1] += maps[:, :, 1:]
    total[:, :, -1:] += maps[:, :, -1:]
    total /= 4
    return total


def _known_neighbour_mean(maps: np.ndarray, selected) -> np.ndarray:
    """Mean over the neighbours inside the grid, at the ``selected`` blocks (a :class:`_Checkerboard`).

    Used in the second pass of a group, when only the first pass's blocks are known
    in ``maps`` and every other block is still 0: a block's neighbours are then all
    known ones, so the mean is their sum over how many the block has (2 to 4).
    """
    k, rows, cols = maps.shape
    total = np.zeros((k, rows, cols), maps.dtype)
    total[:, 1:] = maps[:, :-1]
    total[:, :-1] += maps[:, 1:]
    total[:, :, 1:] += maps[:, :, :-1]
    total[:, :, :-1] += maps[:, :, 1:]
    count = np.full((rows, cols), 4, maps.dtype)
    count[0] -= 1
    count[-1] -= 1
    count[:, 0] -= 1
    count[:, -1] -= 1
    np.maximum(count, 1, out=count)
    return selected.take(total) / selected.take(count[None])


def _context_values(levels, steps, group, block_size) -> np.ndarray:
    """Expected magnitude (in levels of each channel) of ``group``'s coefficients, per block.

    Read from the channels coded before ``group`` only (float32: a context needs no
    more precision, and encoder and decoder compute it with the same operations).
    """
    n = block_size
    x, y = np.divmod(group, n)
    target = steps[group].astype(np.float32)[:, None, None]
    if group[0] in (1, n):
        # The first AC frequencies: the DC difference across the block's neighbours
        # (left to right for (0, 1), above to below for (1, 0)) says how steep it is.
        dc = np.pad(levels[0].astype(np.float32) * np.float32(steps[0] * DC_WEIGHT), 1, mode="edge")
        across = np.where(
            (y == 1)[:, None, None],
            np.abs(dc[None, 1:-1, 2:] - dc[None, 1:-1, :-2]),
            np.abs(dc[None, 2:, 1:-1] - dc[None, :-2, 1:-1]),
        )
        return across / target
    # Frequencies (x, y - 1) and (x - 1, y); at the block's edge the one there counts twice.
    left = np.where(y > 0, group - 1, group - n)
    up = np.where(x > 0, group - n, group - 1)
    same = np.abs(levels[left]).astype(np.float32)
    same *= (steps[left].astype(np.float32) / target[:, 0, 0])[:, None, None]
    other = np.abs(levels[up]).astype(np.float32)
    other *= (steps[up].astype(np.float32) / target[:, 0, 0])[:, None, None]
    same += other
    around = _neighbour_mean(same)
    around *= np.float32(AROUND_WEIGHT)
    same += around
    return same


def _second_pass_values(base, levels, group, selected) -> np.ndarray:
    """The second pass adds what the first one coded: the same channel in the four neighbours."""
    # Only the first pass's blocks are nonzero yet: read just those, then lay them out.
    known = _Checkerboard((selected.rows, selected.cols), 1 - selected.parity)
    magnitudes = np.zeros((len(group),) + levels.shape[1:], np.float32)
    for row, channel in enumerate(group):
        known.put(magnitudes[row : row + 1], np.abs(known.take(levels[channel : channel + 1])))
    own = _known_neighbour_mean(magnitudes, selected)
    own *= np.float32(SECOND_PASS_NEIGHBOURS)
    value = selected.take(base)
    value *= np.float32(SECOND_PASS_OWN)
    value += own
    return value


class _Checkerboard:
    """The blocks of one parity (row + column even, or odd) of a grid, in raster order.

    :meth:`take` gathers them from maps, (k, rows, columns) -> (k, m), and :meth:`put`
    scatters values back. With an even number of columns, a row's blocks of one
    parity are every other column starting at 0 or 1, so both are two strided copies;
    otherwise flat indices do it.
    """

    def __init__(self, grid, parity: int):
        self.rows, self.cols = grid
        self.parity = parity
        if self.cols % 2:
            index = np.arange(self.rows * self.cols)
            self.index = index[(index // self.cols + index % self.cols) % 2 == parity]
            self.size = self.index.size
        else:
            self.index = None
            self.size = self.rows * self.cols // 2

    def _halves(self, maps):
        """(rows of even index, their start column), (rows of odd index, theirs) as strided views."""
        pairs = maps.reshape(len(maps), self.rows, self.cols // 2, 2)
        return pairs[:, 0::2, :, self.parity], pairs[:, 1::2, :, 1 - self.parity]

    def take(self, maps: np.ndarray) -> np.ndarray:
        if self.index is not None:
            return maps.reshape(len(maps), -1)[:, self.index]
        out = np.empty((len(maps), self.rows, self.cols // 2), maps.dtype)
        even_rows, odd_rows = self._halves(maps)
        out[:, 0::2] = even_rows
        out[:, 1::2] = odd_rows
        return out.reshape(len(maps), -1)

    def put(self, maps: np.ndarray, values: np.ndarray) -> None:
        if self.index is not None:
            maps.reshape(len(maps), -1)[:, self.index] = values
            return
        values = values.reshape(len(maps), self.rows, self.cols // 2)
        even_rows, odd_rows = self._halves(maps)
        even_rows[...] = values[:, 0::2]
        odd_rows[...] = values[:, 1::2]


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


#: Probability of token 0 in a parametric model: logistic of 32 steps from -4 to 10.
PARAMETRIC_ZERO = 1 / (1 + np.exp(-np.linspace(-4.0, 10.0, 32)))
#: Ratio ``r = 1 - 2**-x`` of the geometric law of the nonzero magnitudes of a parametric
#: model, ``x`` on 32 logarithmic steps from 0.05 to 24 (mean magnitudes from 1 to
#: about ``2**24``).
PARAMETRIC_RATIO_EXPONENT = 0.05 * 480.0 ** (np.arange(32) / 31)
#: Kinds of a context in a version-2 model section (2 bits each).
_UNUSED, _ONLY_ZERO, _PARAMETRIC, _TABLE = range(4)
#: Probabilities are rounded to multiples of 2**-_PRECISION (at least one), so that
#: encoder and decoder hand constriction the same numbers on any machine.
_PRECISION = 24


def _token_bounds() -> tuple[np.ndarray, np.ndarray]:
    """Smallest magnitude of each token and the smallest of the next one."""
    low = np.arange(TOKENS, dtype=np.float64)
    high = low + 1
    large = low >= DIRECT_TOKENS
    length = np.arange(TOKENS) - DIRECT_TOKENS + DIRECT_BITS + 1  # bit_length of a size class
    low[large] = 2.0 ** (length[large] - 1)
    high[large] = 2.0 ** length[large]
    return low, high


def parametric_probabilities(zero: int, ratio: int) -> np.ndarray:
    r"""Token probabilities of the parametric model with parameter indices ``zero``, ``ratio`` (0 .. 31).

    ``P(0) = p0 = PARAMETRIC_ZERO[zero]`` and, for ``m >= 1``,
    :math:`P(|q| = m) = (1 - p_0)(1 - r) r^{m - 1}` with ``r = 1 - 2**-x``,
    ``x = PARAMETRIC_RATIO_EXPONENT[ratio]``: a geometric law of the nonzero
    magnitudes, as a Laplacian coefficient quantized with a uniform step gives. A
    size-class token gets the sum over its magnitudes (its extra bits are then
    uniform, as they are coded). The result is in units of ``2**-24`` (floats holding
    whole numbers, every token at least one unit), so that it is the same on every
    machine; constriction normalizes it.

    Examples
    --------
    >>> from dctconv.entropy_model import parametric_probabilities
    >>> p = parametric_probabilities(10, 8)  # p0 = 0.626, r = 1 - 2**-(0.05 * 480**(8/31)) = 0.157
    >>> p.shape, bool(p.min() >= 1), [round(float(v), 3) for v in p[:3] / p.sum()]
    ((73,), True, [0.626, 0.315, 0.049])
    """
    low, high = _token_bounds()
    log_ratio = np.log1p(-(2.0 ** -PARAMETRIC_RATIO_EXPONENT[ratio]))
    with np.errstate(under="ignore"):
        mass = np.exp((low - 1) * log_ratio) * -np.expm1((high - low) * log_ratio)
    p0 = PARAMETRIC_ZERO[zero]
    probabilities = (1 - p0) * mass
    probabilities[0] = p0
    return np.maximum(np.rint(probabilities * 2.0**_PRECISION), 1.0)


def _parametric_log2_grid() -> np.ndarray:
    """(32 * 32, TOKENS) log2 probabilities of every parametric model, index ``zero * 32 + ratio``."""
    if "grid" not in _GRID:
        grid = np.array([parametric_probabilities(a, b) for a in range(32) for b in range(32)])
        _GRID["grid"] = np.log2(grid / grid.sum(axis=1, keepdims=True))
    return _GRID["grid"]


_GRID: dict = {}


def _table_codes(histogram: np.ndarray) -> np.ndarray:
    """4-bit codes (negative log2 probability in half bits) of a histogram's tokens, up to its last one."""
    size = int(np.flatnonzero(histogram)[-1]) + 1
    hist = histogram[:size].astype(np.float64)
    with np.errstate(divide="ignore"):
        code = np.rint(-2 * np.log2(hist / hist.sum()))
    return np.where(hist > 0, np.clip(code, 0, UNSEEN - 1), UNSEEN).astype(np.int64)


def _table_probabilities(code: np.ndarray) -> np.ndarray:
    return np.exp2(-np.where(code == UNSEEN, 24.0, code) / 2)


def _pack_models(counts: np.ndarray) -> bytes:
    """Version-2 model section: per context a kind and its parameters, as one bit stream.

    For each context, 2 bits: unused; only token 0 (nothing coded); parametric
    (:func:`parametric_probabilities`), then 5 + 5 bits of its two indices; table,
    then 7 bits of its alphabet size A and A 4-bit codes as in version 1. The encoder
    takes whichever of the last two costs fewer bits, counting the parameters.
    """
    grid = _parametric_log2_grid()
    fields = []  # (value, bits) pairs, in order
    param_cost = -(counts @ grid.T)  # (contexts, 1024) bits of each context's symbols
    for index, histogram in enumerate(counts):
        used = np.flatnonzero(histogram)
        if used.size == 0:
            fields.append((_UNUSED, 2))
            continue
        if used[-1] == 0:
            fields.append((_ONLY_ZERO, 2))
            continue
        best = int(np.argmin(param_cost[index]))
        code = _table_codes(histogram)
        table = _table_probabilities(code)
        table_cost = -(histogram[: code.size] * np.log2(table / table.sum())).sum() + 7 + 4 * code.size
        if param_cost[index, best] + 10 <= table_cost:
            fields += [(_PARAMETRIC, 2), (best >> 5, 5), (best & 31, 5)]
        else:
            fields += [(_TABLE, 2), (code.size, 7)] + [(int(c), 4) for c in code]
    values = np.array([v for v, _ in fields], dtype=np.int64)
    lengths = np.array([b for _, b in fields], dtype=np.int64)
    return np.packbits(_bits_of(values, lengths)).tobytes()


def _unpack_models(model: bytes, contexts: int) -> list[np.ndarray | None]:
    """Probabilities of each context's tokens from a version-2 model section (None: unused).

    A context of only token 0 gets ``[1.0]`` (nothing to code). Every field is checked
    against the section's length; the padding after the last one must be under a byte.
    """
    bits = np.unpackbits(np.frombuffer(model, dtype=np.uint8))
    cursor = 0

    def take(count: int) -> int:
        nonlocal cursor
        if cursor + count > bits.size:
            raise CodecFileError("model section ends before its last context")
        value = 0
        for bit in bits[cursor : cursor + count]:
            value = (value << 1) | int(bit)
        cursor += count
        return value

    tables: list[np.ndarray | None] = []
    for _ in range(contexts):
        kind = take(2)
        if kind == _UNUSED:
            tables.append(None)
        elif kind == _ONLY_ZERO:
            tables.append(np.ones(1))
        elif kind == _PARAMETRIC:
            zero = take(5)
            tables.append(parametric_probabilities(zero, take(5)))
        else:
            size = take(7)
            if not 1 <= size <= TOKENS:
                raise CodecFileError(f"model section gives a table of {size} tokens, not from 1 to {TOKENS}")
            if cursor + 4 * size > bits.size:
                raise CodecFileError("model section ends before its last context")
            code = bits[cursor : cursor + 4 * size].reshape(size, 4) @ np.array([8, 4, 2, 1])
            cursor += 4 * size
            tables.append(_table_probabilities(code))
    if bits.size - cursor >= 8:
        raise CodecFileError(f"model section has {(bits.size - cursor) // 8} bytes after its last context")
    return tables


def model_section(counts: np.ndarray, version: int) -> bytes:
    """The model section of format ``version`` (1: tables only, 2: tables or parameters)."""
    return _pack_tables(counts) if version == 1 else _pack_models(counts)


def read_models(model: bytes, contexts: int, version: int) -> list[np.ndarray | None]:
    """Each context's token probabilities from a model section of format ``version``."""
    return _unpack_tables(model, contexts) if version == 1 else _unpack_models(model, contexts)


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
    if ids.size == 0:
        return np.zeros(0, np.intp), []
    low = int(ids.min())
    keys = ids - ids.dtype.type(low)
    # A pass uses a few neighbouring ids: as offsets in one byte, numpy's stable sort
    # (a radix sort for small integers) makes one pass over them instead of two.
    if int(keys.max()) < 256:
        keys = keys.astype(np.uint8)
    order = np.argsort(keys, kind="stable")
    counts = np.bincount(keys)
    ends = np.cumsum(counts)
    return order, [(low + int(k), int(ends[k] - counts[k]), int(ends[k])) for k in np.flatnonzero(counts)]


def _dc_passes(grid):
    """The passes of the DC map, coarse to fine: ("base", rows, cols, 0), then ("row"/"column", rows, cols, s).

    The base pass is the subgrid of stride S; every later pass halves the stride s:
    "row" codes the blocks midway between two known ones of the same row, "column"
    those midway between two known rows. A block is predicted as the mean of its two
    known neighbours (the one there at the image's edge).
    """
    rows, cols = grid
    stride = 1
    while min(rows, cols) >= 16 * stride:
        stride *= 2
    yield "base", np.arange(0, rows, stride), np.arange(0, cols, stride), 0
    while stride > 1:
        half = stride // 2
        yield "row", np.arange(0, rows, stride), np.arange(half, cols, stride), half
        yield "column", np.arange(half, rows, stride), np.arange(0, cols, half), half
        stride = half


def _dc_prediction(dc: np.ndarray, kind: str, rows, cols, half: int):
    """Prediction of the DC levels of a pass, and the context bin of each, from known DC levels."""
    if kind == "row":
        before = dc[np.ix_(rows, cols - half)]
        after_cols = np.where(cols + half < dc.shape[1], cols + half, cols - half)
        after = dc[np.ix_(rows, after_cols)]
    else:
        before = dc[np.ix_(rows - half, cols)]
        after_rows = np.where(rows + half < dc.shape[0], rows + half, rows - half)
        after = dc[np.ix_(after_rows, cols)]
    prediction = (before + after) >> 1  # floor of the mean, exact in integers
    bins = _bin(np.abs(before - after), DC_EDGES)
    return prediction, bins


def _passes(grid, channels: np.ndarray, block_size: int):
    """The passes of the coding order.

    DC first (:func:`_dc_passes`, as ("dc", kind, rows, cols, half)), then each
    anti-diagonal of AC channels in two passes, ("ac", group, first_pass, blocks):
    the blocks whose row plus column is even, then the odd ones, whose four
    neighbours are then known in the same channels (blocks: a :class:`_Checkerboard`).
    """
    even, odd = _Checkerboard(grid, 0), _Checkerboard(grid, 1)
    for group in coding_groups(np.asarray(channels), block_size):
        if group[0] == 0:
            for kind, rows, cols, half in _dc_passes(grid):
                yield "dc", kind, rows, cols, half
        else:
            yield "ac", group, True, even
            yield "ac", group, False, odd


def _pass_ids(levels, steps, step, classes, block_size, cache: dict) -> np.ndarray:
    """Context id (int16) of every coefficient a pass codes, in (channel, raster) order.

    ``cache`` carries the first pass's context values to the second pass of a group.
    """
    ac_contexts = 2 * (int(classes.max()) + 1) * BINS
    if step[0] == "dc":
        _, kind, rows, cols, half = step
        if kind == "base":
            return np.full(len(rows) * len(cols), ac_contexts, np.int16)
        _, bins = _dc_prediction(levels[0], kind, rows, cols, half)
        offset = ac_contexts + 1 + (0 if kind == "row" else len(DC_EDGES) + 1)
        return (offset + bins).astype(np.int16).reshape(-1)
    _, group, first_pass, selected = step
    if first_pass:
        cache["base"] = _context_values(levels, steps, group, block_size)
        value = selected.take(cache["base"])
    else:
        value = _second_pass_values(cache.pop("base"), levels, group, selected)
    bins = _bin(value, CONTEXT_EDGES)
    offset = 0 if first_pass else int(classes.max()) + 1
    bins += ((offset + classes[group]) * BINS).astype(np.int16)[:, None]
    return bins.reshape(-1)


def _bin(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Number of ``edges`` each non-negative value reaches (int16): its bin.

    Every edge is a multiple of 1/2, so ``v >= e`` exactly when ``floor(2 v) >= 2 e``:
    a table lookup at ``floor(2 min(v, top))`` (exact for floats and integers alike).
    """
    twice = np.rint(2 * edges).astype(np.intp)
    table = np.searchsorted(twice, np.arange(twice[-1] + 1), side="right").astype(np.int16)
    index = np.minimum(values, values.dtype.type(edges[-1]))
    index = index * 2 if values.dtype.kind in "iu" else index * np.float32(2)
    return table[index.astype(np.intp)]


def _pass_values(levels, step) -> np.ndarray:
    """What a pass codes, flat: levels, or DC residuals after prediction (encoder side)."""
    if step[0] == "dc":
        _, kind, rows, cols, half = step
        dc = levels[0][np.ix_(rows, cols)]
        if kind == "base":
            return _planar_residual(dc).reshape(-1)
        prediction, _ = _dc_prediction(levels[0], kind, rows, cols, half)
        return (dc - prediction).reshape(-1)
    _, group, _, selected = step
    return np.concatenate([selected.take(levels[channel : channel + 1]) for channel in group], axis=None)


def _store(levels, step, values) -> None:
    """Put the decoded values of a pass into ``levels`` (decoder side: undo the prediction)."""
    if step[0] == "dc":
        _, kind, rows, cols, half = step
        values = values.reshape(len(rows), len(cols))
        if kind == "base":
            dc = np.cumsum(np.cumsum(values, axis=0), axis=1)
        else:
            dc = values + _dc_prediction(levels[0], kind, rows, cols, half)[0]
        levels[0][np.ix_(rows, cols)] = dc
        return
    _, group, _, selected = step
    values = values.reshape(len(group), -1)
    for row, channel in enumerate(group):  # a group's channels are not one slice of levels
        selected.put(levels[channel : channel + 1], values[row : row + 1])


def context_count(block_size: int) -> int:
    """Number of models of block size n: two AC passes times classes times bins, and DC's."""
    return 2 * (int(channel_classes(block_size).max()) + 1) * BINS + 1 + 2 * (len(DC_EDGES) + 1)


def encode_levels(
    levels: np.ndarray, channels: np.ndarray, block_size: int, steps=None, *, version: int = MODEL_VERSION
) -> CodedLevels:
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
    steps = np.ones(n * n) if steps is None else np.asarray(steps, dtype=np.float64)
    classes = channel_classes(n)
    contexts = context_count(n)
    known = np.zeros_like(levels)  # what the decoder knows when it reaches each pass
    plan = []  # per pass: (context ids, tokens)
    raw = []
    counts = np.zeros(contexts * TOKENS, dtype=np.int64)
    cache: dict = {}
    for step in _passes(levels.shape[1:], channels, n):
        ids = _pass_ids(known, steps, step, classes, n, cache)
        flat = _pass_values(levels, step)
        _store(known, step, flat.copy())
        mags = np.abs(flat)
        tokens, extra = _tokens(mags)
        counts += np.bincount(ids.astype(np.int64) * TOKENS + tokens, minlength=counts.size)
        plan.append((ids, tokens))
        raw.append((flat[flat != 0] < 0).astype(np.uint8))
        large = extra > 0
        raw.append(_bits_of(mags[large], extra[large]))
    model = model_section(counts.reshape(contexts, TOKENS), version)
    tables = read_models(model, contexts, version)
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


def decode_levels(
    coded: CodedLevels, shape, channels: np.ndarray, block_size: int, steps=None, *, version: int = MODEL_VERSION
) -> np.ndarray:
    """Decode what :func:`encode_levels` wrote: int64 levels of ``shape`` (n*n, rows, columns).

    The caller has checked ``shape`` against its pixel limit. Every size read from
    the data is checked; damaged data raises CodecFileError, never anything else.
    """
    import constriction

    n = block_size
    steps = np.ones(n * n) if steps is None else np.asarray(steps, dtype=np.float64)
    classes = channel_classes(n)
    tables = read_models(coded.model, context_count(n), version)
    models = [None if t is None or t.size == 1 else _categorical(t) for t in tables]
    bits = np.unpackbits(np.frombuffer(coded.raw_bits, dtype=np.uint8))
    cursor = 0
    levels = np.zeros(shape, dtype=np.int64)
    decoder = constriction.stream.queue.RangeDecoder(np.asarray(coded.words, dtype=np.uint32))
    cache: dict = {}
    for step in _passes(shape[1:], channels, n):
        group = [0] if step[0] == "dc" else step[1]
        ids = _pass_ids(levels, steps, step, classes, n, cache)
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
        values = np.empty_like(sorted_tokens)
        values[order] = sorted_tokens
        nonzero = values > 0
        large = values >= DIRECT_TOKENS
        extra = values[large] - DIRECT_TOKENS + DIRECT_BITS  # bit_length - 1
        signs_count, extra_count = int(nonzero.sum()), int(extra.sum())
        if cursor + signs_count + extra_count > bits.size:
            raise CodecFileError(f"raw bits end early at channel {group[0]}")
        signs = bits[cursor : cursor + signs_count].astype(bool)
        cursor += signs_count
        if extra.size:
            low = _values_of(bits[cursor : cursor + extra_count], extra)
            cursor += extra_count
            values[large] = (np.int64(1) << extra) + low
        values[np.flatnonzero(nonzero)[signs]] *= -1
        _store(levels, step, values)
    if bits.size - cursor >= 8:
        raise CodecFileError(f"{(bits.size - cursor) // 8} bytes of raw bits left over after the last channel")
    return levels
