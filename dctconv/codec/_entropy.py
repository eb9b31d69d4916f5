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
  for every nonzero level its sign: raw bits, packed after the coded data; except,
  from format version 3, the signs of the first row (0, k) and column (k, 0) of AC
  frequencies, which are range coded after all the levels (:func:`_sign_passes`):
  the continuity of the pixels across a block's boundary predicts them from the
  neighbouring blocks (:func:`_edge_predictions`), and the symbol coded is whether
  the sign differs from the prediction's, in contexts of how large the prediction
  is and of ``|q|``. The encoder keeps them raw where that is cheaper (small images).

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

import functools
from dataclasses import dataclass

import numpy as np

from ..errors import CodecFileError

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
MODEL_VERSION = 3


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

    def flat_index(self, positions: np.ndarray) -> np.ndarray:
        """Raster index in the grid of the blocks at ``positions`` of :meth:`take`'s order."""
        if self.index is not None:
            return self.index[positions]
        row, half = np.divmod(positions, self.cols // 2)
        return row * self.cols + 2 * half + (row + self.parity) % 2

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


def parametric_probabilities(zero: int, ratio: int, *, short: bool = False) -> np.ndarray:
    r"""Token probabilities of the parametric model with parameter indices ``zero``, ``ratio`` (0 .. 31).

    ``P(0) = p0 = PARAMETRIC_ZERO[zero]`` and, for ``m >= 1``,
    :math:`P(|q| = m) = (1 - p_0)(1 - r) r^{m - 1}` with ``r = 1 - 2**-x``,
    ``x = PARAMETRIC_RATIO_EXPONENT[ratio]``: a geometric law of the nonzero
    magnitudes, as a Laplacian coefficient quantized with a uniform step gives. A
    size-class token gets the sum over its magnitudes (its extra bits are then
    uniform, as they are coded). The result is in units of ``2**-24`` (floats holding
    whole numbers, every token at least one unit), so that it is the same on every
    machine; constriction normalizes it.

    ``short``: the alphabet ends at the last token of more than one unit (at least
    two tokens). The tokens after it, each at the floor of one unit, are then not
    codable with this model, and the decoder searches a far shorter table:
    constriction's decode time grows with the alphabet (86 ns a symbol with all 73
    tokens, 55 with 4). From format version 3 a parametric model is short unless the
    model section says otherwise (:func:`_pack_models`); a context of DC residuals
    with a few far outliers keeps the whole alphabet.

    Examples
    --------
    >>> from dctconv.codec._entropy import parametric_probabilities
    >>> p = parametric_probabilities(10, 8)  # p0 = 0.626, r = 1 - 2**-(0.05 * 480**(8/31)) = 0.157
    >>> p.shape, bool(p.min() >= 1), [round(float(v), 3) for v in p[:3] / p.sum()]
    ((73,), True, [0.626, 0.315, 0.049])
    """
    return _parametric_units(int(zero), int(ratio), bool(short)).copy()


@functools.lru_cache(maxsize=None)
def _parametric_units(zero: int, ratio: int, short: bool) -> np.ndarray:
    """:func:`parametric_probabilities`, computed once per process: a small file's model
    section names dozens of the 2 x 1024 models, and a process codes many files."""
    low, high = _token_bounds()
    log_ratio = np.log1p(-(2.0 ** -PARAMETRIC_RATIO_EXPONENT[ratio]))
    with np.errstate(under="ignore"):
        mass = np.exp((low - 1) * log_ratio) * -np.expm1((high - low) * log_ratio)
    p0 = PARAMETRIC_ZERO[zero]
    probabilities = (1 - p0) * mass
    probabilities[0] = p0
    units = np.maximum(np.rint(probabilities * 2.0**_PRECISION), 1.0)
    if short:
        units = units[: max(2, int(np.flatnonzero(units > 1)[-1]) + 1)]
    units.flags.writeable = False  # shared by every caller in the process
    return units


#: log2 probability the encoder counts for a token a short parametric model cannot code:
#: a context holding one is never given that model.
_UNCODABLE = -1e9


@functools.lru_cache(maxsize=None)
def _parametric_log2_grid(short: bool) -> np.ndarray:
    """(32 * 32, TOKENS) log2 probabilities of every parametric model, index ``zero * 32 + ratio``."""
    grid = np.full((32 * 32, TOKENS), _UNCODABLE)
    for index in range(32 * 32):
        units = _parametric_units(index >> 5, index & 31, short)
        grid[index, : units.size] = np.log2(units / units.sum())
    grid.flags.writeable = False  # shared by every caller in the process
    return grid


def _table_codes(histogram: np.ndarray) -> np.ndarray:
    """4-bit codes (negative log2 probability in half bits) of a histogram's tokens, up to its last one."""
    size = int(np.flatnonzero(histogram)[-1]) + 1
    hist = histogram[:size].astype(np.float64)
    with np.errstate(divide="ignore"):
        code = np.rint(-2 * np.log2(hist / hist.sum()))
    return np.where(hist > 0, np.clip(code, 0, UNSEEN - 1), UNSEEN).astype(np.int64)


def _table_probabilities(code: np.ndarray) -> np.ndarray:
    return np.exp2(-np.where(code == UNSEEN, 24.0, code) / 2)


def _pack_models(
    counts: np.ndarray, sign_counts: np.ndarray | None = None, sign_flag: bool = False, short: bool = False
) -> bytes:
    """Version-2 model section: per context a kind and its parameters, as one bit stream.

    For each context, 2 bits: unused; only token 0 (nothing coded); parametric
    (:func:`parametric_probabilities`), then 5 + 5 bits of its two indices; table,
    then 7 bits of its alphabet size A and A 4-bit codes as in version 1. The encoder
    takes whichever of the last two costs fewer bits, counting the parameters.
    In version 3 a parametric model has the short alphabet of
    ``parametric_probabilities(..., short=True)``, and a table of size A = 0 is a
    parametric model over the whole alphabet, its two indices following; the
    encoder takes the cheapest of the three. Version 3 then appends 1 bit, whether
    the signs of the edge channels are range coded
    (:func:`_sign_passes`), and if they are, the sign models (``sign_counts``:
    (SIGN_CONTEXTS, 2) counts of the sign symbols 0 and 1): per sign context 1 bit,
    unused or used, and for a used one the 5-bit index i of its probability of a 1,
    ``(2i + 1) / 64`` (:func:`_sign_model_choice`).
    """
    fields = []  # (value, bits) pairs, in order
    param_cost = -(counts @ _parametric_log2_grid(False).T)  # (contexts, 1024) bits of each context's symbols
    short_cost = -(counts @ _parametric_log2_grid(True).T) if short else None
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
        if not short:
            if param_cost[index, best] + 10 <= table_cost:
                fields += [(_PARAMETRIC, 2), (best >> 5, 5), (best & 31, 5)]
            else:
                fields += [(_TABLE, 2), (code.size, 7)] + [(int(c), 4) for c in code]
            continue
        # Version 3: kind 2 is a short parametric model; a whole-alphabet one (needed where a
        # context has far outliers, as DC residuals can) is kind 3 with a table size of 0.
        best_short = int(np.argmin(short_cost[index]))
        costs = [short_cost[index, best_short] + 10, param_cost[index, best] + 17, table_cost]
        choice = int(np.argmin(costs))
        if choice == 0:
            fields += [(_PARAMETRIC, 2), (best_short >> 5, 5), (best_short & 31, 5)]
        elif choice == 1:
            fields += [(_TABLE, 2), (0, 7), (best >> 5, 5), (best & 31, 5)]
        else:
            fields += [(_TABLE, 2), (code.size, 7)] + [(int(c), 4) for c in code]
    if sign_flag:
        fields.append((int(sign_counts is not None), 1))
    if sign_counts is not None:
        choice, _ = _sign_model_choice(sign_counts)
        for index, pair in enumerate(sign_counts):
            fields += [(1, 1), (int(choice[index]), 5)] if pair.any() else [(0, 1)]
    values = np.array([v for v, _ in fields], dtype=np.int64)
    lengths = np.array([b for _, b in fields], dtype=np.int64)
    return np.packbits(_bits_of(values, lengths)).tobytes()


def _unpack_models(model: bytes, contexts: int, sign_contexts: int = 0, short: bool = False):
    """Probabilities of each context's tokens from a version-2 model section (None: unused).

    A context of only token 0 gets ``[1.0]`` (nothing to code). Then, for version 3,
    the probability of a 1 in each of the ``sign_contexts`` sign models (None: unused),
    or None instead of the list if the edge signs are raw bits.
    Every field is checked against the section's length; the padding after the last
    one must be under a byte.
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
            tables.append(parametric_probabilities(zero, take(5), short=short))
        else:
            size = take(7)
            if size == 0 and short:  # version 3: a parametric model over the whole alphabet
                zero = take(5)
                tables.append(parametric_probabilities(zero, take(5)))
                continue
            if not 1 <= size <= TOKENS:
                raise CodecFileError(f"model section gives a table of {size} tokens, not from 1 to {TOKENS}")
            if cursor + 4 * size > bits.size:
                raise CodecFileError("model section ends before its last context")
            code = bits[cursor : cursor + 4 * size].reshape(size, 4) @ np.array([8, 4, 2, 1])
            cursor += 4 * size
            tables.append(_table_probabilities(code))
    signs = None
    if sign_contexts and take(1):
        signs = [(2 * take(5) + 1) / 64 if take(1) else None for _ in range(sign_contexts)]
    if bits.size - cursor >= 8:
        raise CodecFileError(f"model section has {(bits.size - cursor) // 8} bytes after its last context")
    return tables, signs


def model_section(counts: np.ndarray, version: int, sign_counts: np.ndarray | None = None) -> bytes:
    """The model section of format ``version`` (1: tables only, 2: tables or parameters, 3: and sign models)."""
    if version == 1:
        return _pack_tables(counts)
    coded = version >= SIGN_MODEL_VERSION
    return _pack_models(counts, sign_counts if coded else None, sign_flag=coded, short=version >= SHORT_MODEL_VERSION)


def read_models(model: bytes, contexts: int, version: int):
    """Each context's token probabilities from a model section of format ``version``, and the sign models.

    Returns ``(tables, signs)``: ``signs`` is None where the edge signs are raw bits
    (always before version 3).
    """
    if version == 1:
        return _unpack_tables(model, contexts), None
    return _unpack_models(
        model, contexts, SIGN_CONTEXTS if version >= SIGN_MODEL_VERSION else 0, short=version >= SHORT_MODEL_VERSION
    )


#: Format version from which a parametric model ends at its last token above the floor
#: (``parametric_probabilities(..., short=True)``) unless it is marked whole (:func:`_pack_models`).
SHORT_MODEL_VERSION = 3
#: Format version from which the signs of the first row and column of AC frequencies
#: are range coded (:func:`_sign_passes`) instead of stored as raw bits.
SIGN_MODEL_VERSION = 3
#: Upper bin edges of a sign's context: the prediction's magnitude in levels of its channel.
SIGN_EDGES = np.array([0.25, 0.5, 1.0, 2.0, 4.0, 8.0])
#: Sign models: two passes times the bins of SIGN_EDGES times |q| = 1, 2, >= 3.
SIGN_CONTEXTS = 2 * (len(SIGN_EDGES) + 1) * 3


def _sign_model_choice(sign_counts: np.ndarray) -> tuple[np.ndarray, float]:
    """Best probability index of each sign context, and the bits of the signs and their models with them."""
    ones = (2 * np.arange(32) + 1) / 64
    cost = -(sign_counts[:, :1] * np.log2(1 - ones) + sign_counts[:, 1:] * np.log2(ones))
    used = sign_counts.any(axis=1)
    return cost.argmin(axis=1), float(cost.min(axis=1)[used].sum() + 1 + 5 * used.sum() + len(sign_counts))


def _sign_symbols(levels, steps, channels, block_size: int):
    """Encoder side of the sign passes: ``([(context ids, symbols) per pass], counts)``.

    ``counts`` is None (and the list empty) when range coding the signs would not
    take fewer bits than storing them raw, models included: on small images.
    """
    signs = []
    for where, sign_ids, negative in _sign_passes(levels, steps, channels, block_size):
        signs.append((sign_ids, ((levels.reshape(-1)[where] < 0) != negative).astype(np.int32)))
    counts = np.zeros((SIGN_CONTEXTS, 2), np.int64)
    for sign_ids, symbols in signs:
        np.add.at(counts, (sign_ids, symbols), 1)
    if not signs or _sign_model_choice(counts)[1] >= counts.sum():
        return [], None
    return signs, counts


def _edge_channels(channels: np.ndarray, block_size: int) -> np.ndarray:
    """The coded AC channels of the first row (0, k) and first column (k, 0) of frequencies."""
    channels = np.asarray(channels)
    return channels[(channels > 0) & ((channels < block_size) | (channels % block_size == 0))]


def _defers_sign(group: np.ndarray, block_size: int) -> np.ndarray:
    """Which channels of an AC group leave their signs to :func:`_sign_passes` (version 3)."""
    return (group < block_size) | (group % block_size == 0)


def _inline_signs(step, count: int, block_size: int, coded_signs: bool) -> np.ndarray | None:
    """Which of a pass's ``count`` values carry their sign as a raw bit in the pass (None: all)."""
    if not coded_signs or step[0] == "dc":
        return None
    group = step[1]
    return np.repeat(~_defers_sign(group, block_size), count // len(group))


def _edge_predictions(levels, steps, block_size: int, channels, blocks, known) -> np.ndarray:
    r"""Prediction of edge coefficients from their neighbours across the block's boundary.

    ``channels`` and ``blocks`` (flat raster indices) name the coefficients, all on
    the first row (0, k) or column (k, 0) of frequencies. For (0, k), the pixel rows
    r of a block carry the horizontal frequency k with the amplitudes
    :math:`h(r) = \sum_x D(x, k) b_x(r)` (``D`` the level times its step, ``b_x`` the
    orthonormal DCT basis). The row above a block's first row is the last row of the
    block above, so :math:`h(0) \approx h_{above}(n - 1)` gives
    :math:`D(0, k) \approx \sqrt{n} (h_{above}(n - 1) - \sum_{x \ge 1} D(x, k) b_x(0))`;
    the block below gives another estimate, and the prediction is their mean (one
    at the image's edge, 0 without neighbours). (k, 0) is the same across the left
    and right neighbours. A neighbour's own edge coefficient D(0, k) counts only where
    ``known`` (rows, columns) is True. Lepton predicts JPEG's edge coefficients this
    way from the block above or to the left [1]_.

    Returns
    -------
    ndarray of float64, shape (len(channels),)

    References
    ----------
    .. [1] D. R. Horn, K. Elkabany, C. Lesniewski-Laas, K. Winstein, "The Design,
       Implementation, and Deployment of a System to Transparently Compress Hundreds
       of Petabytes of Image Files for a File-Storage Service", NSDI 2017 (Lepton).
    """
    n = block_size
    rows, cols = levels.shape[1:]
    flat = levels.reshape(n * n, -1)
    known = known.reshape(-1)
    x = np.arange(n)
    basis = np.sqrt(np.where(x == 0, 1.0, 2.0) / n)[:, None] * np.cos(np.pi * (2 * x[None, :] + 1) * x[:, None] / (2 * n))
    vertical = channels < n
    k = np.where(vertical, channels, channels // n)
    row, col = np.divmod(blocks, cols)

    def interior(where, at):
        """The interior's (x >= 1) share of h(0) and of h(n - 1) in blocks ``where``."""
        first = np.zeros(where.size)
        last = np.zeros(where.size)
        for frequency in range(1, n):  # one term at a time: the same sums in encoder and decoder
            channel = np.where(vertical[at], frequency * n + k[at], k[at] * n + frequency)
            value = flat[channel, where] * steps[channel]
            first += basis[frequency, 0] * value
            last += basis[frequency, n - 1] * value
        return first, last

    def edge(where, at):
        """D(0, k) b_0 in blocks ``where`` where it is known, else 0 (b_0 is 1/sqrt(n) on every row)."""
        return np.where(known[where], flat[channels[at], where] * steps[channels[at]], 0.0) / np.sqrt(n)

    own_first, own_last = interior(blocks, np.arange(blocks.size))
    total = np.zeros(blocks.size)
    count = np.zeros(blocks.size)
    before = np.flatnonzero(np.where(vertical, row > 0, col > 0))
    if before.size:
        neighbour = blocks[before] - np.where(vertical[before], cols, 1)
        total[before] += interior(neighbour, before)[1] + edge(neighbour, before) - own_first[before]
        count[before] += 1
    after = np.flatnonzero(np.where(vertical, row < rows - 1, col < cols - 1))
    if after.size:
        neighbour = blocks[after] + np.where(vertical[after], cols, 1)
        total[after] += interior(neighbour, after)[0] + edge(neighbour, after) - own_last[after]
        count[after] += 1
    return total / np.maximum(count, 1) * np.sqrt(n)


def _sign_passes(levels, steps, channels, block_size: int):
    """The deferred signs of the edge channels, in two passes over the checkerboard of blocks.

    Yields, per pass, the flat indices into ``levels`` of the nonzero edge levels of
    the blocks of one parity, their sign contexts and whether their prediction
    (:func:`_edge_predictions`) is negative; a sign is coded as the symbol "differs
    from the prediction's". The first pass sees no edge coefficient of any neighbour,
    the second those of the first pass's blocks. The caller (the decoder) sets the
    signs of a pass before asking for the next. Only magnitudes of the edge channels
    and signed levels of the others are read.
    """
    edges = _edge_channels(channels, block_size)
    if edges.size == 0:
        return
    grid = levels.shape[1:]
    size = grid[0] * grid[1]
    edge_steps = steps[edges]
    for which in (0, 1):
        board = _Checkerboard(grid, which)
        known = (np.add.outer(np.arange(grid[0]), np.arange(grid[1])) % 2 == 0) if which else np.zeros(grid, bool)
        # The nonzero edge levels of this parity, channel by channel in raster order.
        channel, block, magnitude = [], [], []
        for row, edge in enumerate(edges):
            values = board.take(levels[edge : edge + 1])[0]
            at = np.flatnonzero(values)
            channel.append(np.full(at.size, row))
            block.append(board.flat_index(at))
            magnitude.append(np.abs(values[at]))
        channel, block, magnitude = (np.concatenate(parts) for parts in (channel, block, magnitude))
        if block.size == 0:
            continue
        predicted = _edge_predictions(levels, steps, block_size, edges[channel], block, known)
        bins = np.searchsorted(SIGN_EDGES, np.abs(predicted) / edge_steps[channel], side="right")
        strength = np.minimum(magnitude, 3) - 1
        contexts = ((which * (len(SIGN_EDGES) + 1) + bins) * 3 + strength).astype(np.int16)
        yield edges[channel] * size + block, contexts, predicted < 0


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
    >>> from dctconv.codec._entropy import encode_levels, decode_levels
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
    signs, sign_counts = _sign_symbols(levels, steps, channels, n) if version >= SIGN_MODEL_VERSION else ([], None)
    coded_signs = sign_counts is not None
    for step in _passes(levels.shape[1:], channels, n):
        ids = _pass_ids(known, steps, step, classes, n, cache)
        flat = _pass_values(levels, step)
        _store(known, step, flat.copy())
        mags = np.abs(flat)
        tokens, extra = _tokens(mags)
        counts += np.bincount(ids.astype(np.int64) * TOKENS + tokens, minlength=counts.size)
        plan.append((ids, tokens))
        inline = _inline_signs(step, flat.size, n, coded_signs)
        signed = flat != 0 if inline is None else (flat != 0) & inline
        raw.append((flat[signed] < 0).astype(np.uint8))
        large = extra > 0
        raw.append(_bits_of(mags[large], extra[large]))
    model = model_section(counts.reshape(contexts, TOKENS), version, sign_counts)
    tables, sign_models = read_models(model, contexts, version)
    models = [None if t is None or t.size == 1 else _categorical(t) for t in tables]
    encoder = constriction.stream.queue.RangeEncoder()
    for ids, tokens in plan:
        order, runs = _runs(ids)
        sorted_tokens = tokens[order].astype(np.int32)
        for context, start, end in runs:
            if models[context] is not None:
                encoder.encode(sorted_tokens[start:end], models[context])
    for sign_ids, symbols in signs:
        order, runs = _runs(sign_ids)
        symbols = symbols[order]
        for context, start, end in runs:
            encoder.encode(symbols[start:end], _bernoulli(sign_models[context]))
    bits = np.concatenate(raw) if raw else np.zeros(0, np.uint8)
    return CodedLevels(model=model, words=encoder.get_compressed(), raw_bits=np.packbits(bits).tobytes())


def decode_levels(
    coded: CodedLevels, shape, channels: np.ndarray, block_size: int, steps=None, *, version: int = MODEL_VERSION,
    section: str = "WORD", strict: bool = True,
) -> np.ndarray:
    """Decode what :func:`encode_levels` wrote: int64 levels of ``shape`` (n*n, rows, columns).

    The caller has checked ``shape`` against its pixel limit. Every size read from
    the data is checked; damaged data raises CodecFileError, never anything else.

    With ``strict`` the words must be exactly the coding of the symbols decoded from
    them (:func:`_check_words`): a range-coded section (named ``section`` in the
    error) that ends early or has words left over is an error, and so are set
    padding bits after the last raw bit. constriction's decoder reads zeros past the
    end and cannot say where the encoder stopped (``maybe_exhausted`` is True with a
    word missing or one appended), so the symbols are coded again with the same
    models and the words compared.
    """
    import constriction

    n = block_size
    steps = np.ones(n * n) if steps is None else np.asarray(steps, dtype=np.float64)
    classes = channel_classes(n)
    tables, sign_models = read_models(coded.model, context_count(n), version)
    models = [None if t is None or t.size == 1 else _categorical(t) for t in tables]
    bits = np.unpackbits(np.frombuffer(coded.raw_bits, dtype=np.uint8))
    cursor = 0
    levels = np.zeros(shape, dtype=np.int64)
    decoder = constriction.stream.queue.RangeDecoder(np.asarray(coded.words, dtype=np.uint32))
    coded_symbols = [] if strict else None  # (symbols, model) in the order the encoder coded them
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
                    symbols = decoder.decode(models[context], end - start)
                except BaseException as exc:  # constriction's errors (a Rust panic is a BaseException)
                    if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
                        raise
                    raise CodecFileError(f"coded data damaged at channel {group[0]}") from None
                sorted_tokens[start:end] = symbols
                if coded_symbols is not None:
                    coded_symbols.append((symbols, models[context]))
        values = np.empty_like(sorted_tokens)
        values[order] = sorted_tokens
        inline = _inline_signs(step, values.size, n, sign_models is not None)
        signed = values > 0 if inline is None else (values > 0) & inline
        large = values >= DIRECT_TOKENS
        extra = values[large] - DIRECT_TOKENS + DIRECT_BITS  # bit_length - 1
        signs_count, extra_count = int(signed.sum()), int(extra.sum())
        if cursor + signs_count + extra_count > bits.size:
            raise CodecFileError(f"raw bits end early at channel {group[0]}")
        signs = bits[cursor : cursor + signs_count].astype(bool)
        cursor += signs_count
        if extra.size:
            low = _values_of(bits[cursor : cursor + extra_count], extra)
            cursor += extra_count
            values[large] = (np.int64(1) << extra) + low
        values[np.flatnonzero(signed)[signs]] *= -1
        _store(levels, step, values)
    if bits.size - cursor >= 8:
        raise CodecFileError(f"{(bits.size - cursor) // 8} bytes of raw bits left over after the last channel")
    if strict and bits[cursor:].any():
        raise CodecFileError("the raw bits are damaged: bits are set after the last one")
    if sign_models is not None:
        _decode_signs(decoder, sign_models, levels, steps, channels, n, coded_symbols)
    if strict:
        _check_words(coded.words, coded_symbols, section)
    return levels


def _check_words(words, coded_symbols, section: str) -> None:
    """Raise CodecFileError unless ``words`` are exactly the range coding of ``coded_symbols``.

    ``coded_symbols`` are the (symbols, model) pairs a decoder read, in order; coding
    them again gives the words an encoder wrote for them, which the file's must equal:
    more words are left over, fewer end early (the decoder read zeros past the end),
    others are damaged. This is the end-of-section check of this coder; the engine
    (:mod:`dctconv.codec._engine`) has its own (``_check_end``).
    """
    import constriction

    encoder = constriction.stream.queue.RangeEncoder()
    for symbols, model in coded_symbols:
        encoder.encode(np.asarray(symbols, dtype=np.int32), model)
    expected = np.asarray(encoder.get_compressed(), dtype=np.uint32)
    words = np.asarray(words, dtype=np.uint32)
    if words.size < expected.size:
        raise CodecFileError(f"section {section} ends early ({words.size} of its {expected.size} words)")
    if words.size > expected.size:
        left = words.size - expected.size
        raise CodecFileError(f"section {section} has {left} word{'s' if left != 1 else ''} left over "
                             "after its last symbol")
    if not np.array_equal(words, expected):
        raise CodecFileError(f"section {section} is damaged (its words are not those of what they decode to)")


def _bernoulli(probability: float):
    import constriction

    return constriction.stream.model.Bernoulli(probability, perfect=False)


def _decode_signs(decoder, sign_models, levels, steps, channels, block_size: int, coded_symbols=None) -> None:
    """Decode the deferred signs of the edge channels (version 3) into ``levels``, pass by pass."""
    for where, sign_ids, negative in _sign_passes(levels, steps, channels, block_size):
        order, runs = _runs(sign_ids)
        symbols = np.zeros(len(sign_ids), dtype=np.int64)
        for context, start, end in runs:
            if sign_models[context] is None:
                raise CodecFileError("the signs use a model the file does not define")
            model = _bernoulli(sign_models[context])
            try:
                decoded = decoder.decode(model, end - start)
            except BaseException as exc:  # constriction's errors (a Rust panic is a BaseException)
                if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
                    raise
                raise CodecFileError("coded data damaged in the signs") from None
            symbols[order[start:end]] = decoded
            if coded_symbols is not None:
                coded_symbols.append((decoded, model))
        flip = where[(symbols == 1) != negative]
        levels.reshape(-1)[flip] *= -1


# ---------------------------------------------------------------- integer maps

#: Bytes before each plane of :func:`encode_integer_map`: model bytes, words, raw bytes.
_PLANE_HEAD = np.dtype([("model", "<u4"), ("words", "<u4"), ("raw", "<u4")])


def _polyphase(plane: np.ndarray) -> np.ndarray:
    """A (R, W) map as the (4, ceil(R/2), ceil(W/2)) channels of 2 x 2 blocks (zero-padded)."""
    rows, cols = -(-plane.shape[0] // 2), -(-plane.shape[1] // 2)
    padded = np.zeros((2 * rows, 2 * cols), np.int64)
    padded[: plane.shape[0], : plane.shape[1]] = plane
    return padded.reshape(rows, 2, cols, 2).transpose(1, 3, 0, 2).reshape(4, rows, cols)


def encode_integer_map(values) -> bytes:
    """Entropy code integer maps (C, R, W), such as the bounded residual of ``--max-error``.

    Each plane is cut into 2 x 2 blocks whose four positions are coded as the four
    channels of block size 2 by :func:`encode_levels` (its context model and range
    coder: zeros and small values next to small values cost little), after a 12-byte
    head (model bytes, words, raw bytes). Values must stay below ``2**59`` in magnitude.

    Examples
    --------
    >>> import numpy as np
    >>> from dctconv.codec._entropy import encode_integer_map, decode_integer_map
    >>> values = np.zeros((1, 5, 7), np.int64); values[0, 2, 3] = -4
    >>> np.array_equal(decode_integer_map(encode_integer_map(values), values.shape), values)
    True
    """
    values = np.asarray(values)
    if values.ndim != 3 or values.dtype.kind not in "iu":
        raise ValueError(f"integer maps must be a (C, R, W) integer array, got {values.dtype} {values.shape}")
    channels = np.arange(4)
    parts = []
    for plane in values:
        coded = encode_levels(_polyphase(plane), channels, 2)
        words = np.asarray(coded.words, dtype="<u4").tobytes()
        head = np.array([(len(coded.model), len(words) // 4, len(coded.raw_bits))], _PLANE_HEAD).tobytes()
        parts += [head, coded.model, words, coded.raw_bits]
    return b"".join(parts)


def decode_integer_map(data, shape, *, section: str = "RESD") -> np.ndarray:
    """The int64 maps of ``shape`` (C, R, W) that :func:`encode_integer_map` coded into ``data``.

    Raises CodecFileError for data that does not hold exactly that many planes, each
    coded exactly (:func:`decode_levels`, strict; ``section`` names the file's section).
    """
    count, height, width = (int(side) for side in shape)
    data = memoryview(data).cast("B")
    planes = np.zeros((count, height, width), np.int64)
    cursor = 0
    polyphase = (4, -(-height // 2), -(-width // 2))
    for c in range(count):
        if cursor + _PLANE_HEAD.itemsize > len(data):
            raise CodecFileError("integer map ends early")
        head = np.frombuffer(data, _PLANE_HEAD, count=1, offset=cursor)[0]
        cursor += _PLANE_HEAD.itemsize
        sizes = int(head["model"]), 4 * int(head["words"]), int(head["raw"])
        if cursor + sum(sizes) > len(data):
            raise CodecFileError("integer map ends early")
        model = bytes(data[cursor : cursor + sizes[0]])
        words = np.frombuffer(data, "<u4", count=sizes[1] // 4, offset=cursor + sizes[0]).astype(np.uint32)
        raw = bytes(data[cursor + sizes[0] + sizes[1] : cursor + sum(sizes)])
        cursor += sum(sizes)
        maps = decode_levels(CodedLevels(model, words, raw), polyphase, np.arange(4), 2, section=section)
        full = maps.reshape(2, 2, polyphase[1], polyphase[2]).transpose(2, 0, 3, 1).reshape(2 * polyphase[1], -1)
        planes[c] = full[:height, :width]
    if cursor != len(data):
        raise CodecFileError(f"{len(data) - cursor} bytes left over after the integer map")
    return planes
