"""The codec's compiled entropy engine: an adaptive binary range coder over the levels, block by block.

Format version 4 codes the quantization levels in section ADPT, the residual of a
bound (``--max-error``) in section ADRS or ADRP and a NaN mask of kind 2 (NANM) with this
engine (docs/formats.md, "The engine: sections ADPT, ADRS, ADRP and NANM kind 2", is the
complete specification, tests/reference_decoder.py a second decoder written from it;
this docstring is its summary).

* **The coder** is LZMA's binary range coder [1]_: a 32-bit range, a 33-bit low
  with carry propagation through a cached byte, a probability of the bit 0 in
  :data:`PROB_BITS` bits. Each context holds two estimates that adapt after every
  bit with shifts :data:`RATE_FAST` and :data:`RATE_SLOW` (their mean is the
  probability, as in VVC's CABAC [2]_). Bits with no useful probability (most signs,
  nothing else) are coded with probability one half ("bypass").
* **Integers** (:func:`_enc_uint`): a zero flag; then the exponent ``e`` of
  ``v = |value|`` (``2**e <= v < 2**(e+1)``) in unary, then the ``e`` bits of ``v``
  below its leading one, most significant first; every bit has a context of its own
  set (FFV1's symbol coding [3]_). A set is :data:`SET_SIZE` contexts.
* **Levels**: first the DC level of every block in raster order, as its difference
  from the median prediction of LOCO-I [4]_ (left, above, left + above - above-left)
  with a set chosen by the activity of those neighbours; then each block's AC levels
  in zigzag order, as in H.264's CABAC [5]_: a coded-block flag, then for each
  position a significance flag, for a nonzero level its magnitude minus one, its sign
  (bypass), and a last flag. The contexts come from the channel's class
  (:func:`dctconv.codec._entropy.channel_classes`), the same coefficient in the blocks
  above and to the left, the in-block neighbours (x - 1, y) and (x, y - 1), the DC
  levels across the block for its first two AC frequencies, and the last positions of
  the neighbouring blocks.
* **Integer maps** (the residual of a bound): pixel by pixel in raster order, a
  signed integer in a set chosen by the magnitudes of the four causal neighbours,
  its sign in a context of the signs of the left and upper ones.
* **Predicted maps** (ADRP, the same residual): each value predicted from its decoded
  neighbours by LOCO-I's median [4]_, corrected by the mean of the earlier errors in
  its context of the three quantized local gradients (LOCO-I's 365 contexts, sign
  merged; CALIC's mean rather than LOCO-I's unit steps), and the difference coded as
  an integer in a set chosen by the local gradients and the neighbours' errors (CALIC's
  error energy), two sets per octave. With no DCT levels (a constant prediction) this
  is JPEG-LS's (near-)lossless coding with the engine's adaptive contexts in place of
  Golomb codes.

The compiled loops are built by numba on first use and cached on disk (``cache=True``):
the first call in a fresh environment compiles (seconds, docs/performance.md), later
processes load the cache.

References
----------
.. [1] I. Pavlov, LZMA SDK, ``LzmaEnc.c`` / ``LzmaDec.c`` (range coder), 1999-2023.
.. [2] ITU-T H.266 (VVC), 2020, 9.3.4.3: two-rate probability estimation.
.. [3] M. Niedermayer, D. Rice, J. Martinez, "FFV1 Video Coding Format", RFC 9043, 2021, 3.8.1.
.. [4] M. J. Weinberger, G. Seroussi, G. Sapiro, "The LOCO-I lossless image compression
   algorithm", IEEE TIP 9(8), 2000.
.. [5] D. Marpe, H. Schwarz, T. Wiegand, "Context-based adaptive binary arithmetic coding
   in the H.264/AVC video compression standard", IEEE TCSVT 13(7), 2003.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..errors import CodecFileError

PROB_BITS = 15
PROB_ONE = 1 << PROB_BITS
RATE_FAST = 4
RATE_SLOW = 6
TOP = 1 << 24
#: Contexts of one integer set: zero flag, 10 exponent bits, 10 mantissa bits, 9 signs.
SET_SIZE = 30
_EXP = 1
_MANT = 11
_SIGN = 21
#: DC sets: by the bit length of the neighbours' activity, capped.
DC_SETS = 12
#: Significance contexts per class: neighbours' last positions (3) x around (3) x inside (4).
SIG_CONTEXTS = 36
#: Magnitude sets per class: by the bit length of the neighbours' magnitudes, capped.
MAG_GRADES = 6
#: Sign contexts of the edge frequencies: bins of the prediction's size (and none) x |level| 1, 2, >= 3.
SIGN_BINS = 7
SIGN_CONTEXTS = (SIGN_BINS + 1) * 3
#: Levels enter the sign prediction clamped to this magnitude (its sums stay far inside int64).
CLAMP = 1 << 20
#: Sets of the residual map: by the bit length of the neighbours' magnitudes, capped.
MAP_SETS = 16
#: Bytes a coefficient's symbols can move out at most: about 130 decisions (flags, 61 exponent and
#: 61 mantissa bits, sign), each at most two bytes (a probability is never below 71 / 2**15).
ROOM = 264
#: Largest exponent of a coded integer (values stay below 2**62).
MAX_EXPONENT = 61
#: Magnitudes of levels (and of DC levels) must stay below this.
LEVEL_LIMIT = 1 << 59

# Error codes of the compiled decoders (0: none).
_ERR_ENDS_EARLY = 1
_ERR_EXPONENT = 2
_ERR_LEVEL = 3


# ---------------------------------------------------------------- the range coder


@njit(cache=True)
def _put(buf, st, byte):
    """Append one byte to ``buf`` (st[4] bytes used; the caller reserved room, :func:`_reserve`)."""
    buf[st[4]] = byte
    st[4] += 1


@njit(cache=True)
def _reserve(buf, st, room):
    """``buf``, or a copy twice as large, with at least ``room`` bytes free after the st[4] used.

    The coder's primitives write without checking: the loops reserve, per block or per
    row, more than its symbols can take (a decision moves at most two bytes out).
    """
    pos = st[4]
    room += st[3]  # the bytes still pending for a carry are written later too
    if pos + room <= buf.size:
        return buf
    bigger = np.empty(max(2 * buf.size, pos + room), np.uint8)
    bigger[:pos] = buf[:pos]
    return bigger


@njit(cache=True)
def _shift_low(buf, st):
    # st: low, range, cache, cache_size, bytes written
    low = st[0]
    if (low & 0xFFFFFFFF) < 0xFF000000 or low >= (1 << 32):
        carry = low >> 32
        temp = st[2]
        while True:
            _put(buf, st, (temp + carry) & 0xFF)
            temp = 0xFF
            st[3] -= 1
            if st[3] == 0:
                break
        st[2] = (low >> 24) & 0xFF
    st[3] += 1
    st[0] = (low & 0x00FFFFFF) << 8


@njit(cache=True)
def _enc_bit(buf, st, probs, ctx, bit):
    fast = probs[ctx, 0]
    slow = probs[ctx, 1]
    bound = (st[1] >> PROB_BITS) * ((fast + slow) >> 1)
    if bit == 0:
        st[1] = bound
        probs[ctx, 0] = fast + ((PROB_ONE - fast) >> RATE_FAST)
        probs[ctx, 1] = slow + ((PROB_ONE - slow) >> RATE_SLOW)
    else:
        st[0] += bound
        st[1] -= bound
        probs[ctx, 0] = fast - (fast >> RATE_FAST)
        probs[ctx, 1] = slow - (slow >> RATE_SLOW)
    while st[1] < TOP:
        st[1] <<= 8
        _shift_low(buf, st)


@njit(cache=True)
def _enc_bypass(buf, st, bit):
    st[1] >>= 1
    if bit:
        st[0] += st[1]
    while st[1] < TOP:
        st[1] <<= 8
        _shift_low(buf, st)


@njit(cache=True)
def _enc_uint(buf, st, probs, base, value):
    """A non-negative integer in the set starting at context ``base`` (FFV1's symbol coding)."""
    if value == 0:
        _enc_bit(buf, st, probs, base, 0)
        return
    _enc_bit(buf, st, probs, base, 1)
    e = 0
    while (value >> (e + 1)) != 0:
        e += 1
    for i in range(e):
        _enc_bit(buf, st, probs, base + _EXP + min(i, 9), 1)
    _enc_bit(buf, st, probs, base + _EXP + min(e, 9), 0)
    for i in range(e - 1, -1, -1):
        _enc_bit(buf, st, probs, base + _MANT + min(i, 9), (value >> i) & 1)


@njit(cache=True)
def _dec_normalize(data, st):
    """Shift bytes into the decoder until its range is at least TOP again (bytes past the end read as 0)."""
    while st[0] < TOP:
        st[0] <<= 8
        pos = st[2]
        if pos < data.size:
            st[1] = ((st[1] << 8) | data[pos]) & 0xFFFFFFFF
        else:
            st[1] = (st[1] << 8) & 0xFFFFFFFF
            st[3] += 1
        st[2] = pos + 1


@njit(cache=True)
def _dec_bit(data, st, probs, ctx):
    # st: range, code, next byte, bytes read past the end
    fast = probs[ctx, 0]
    slow = probs[ctx, 1]
    bound = (st[0] >> PROB_BITS) * ((fast + slow) >> 1)
    if st[1] < bound:
        st[0] = bound
        probs[ctx, 0] = fast + ((PROB_ONE - fast) >> RATE_FAST)
        probs[ctx, 1] = slow + ((PROB_ONE - slow) >> RATE_SLOW)
        bit = 0
    else:
        st[1] -= bound
        st[0] -= bound
        probs[ctx, 0] = fast - (fast >> RATE_FAST)
        probs[ctx, 1] = slow - (slow >> RATE_SLOW)
        bit = 1
    _dec_normalize(data, st)
    return bit


@njit(cache=True)
def _dec_bypass(data, st):
    st[0] >>= 1
    bit = 0
    if st[1] >= st[0]:
        st[1] -= st[0]
        bit = 1
    _dec_normalize(data, st)
    return bit


@njit(cache=True)
def _dec_uint(data, st, probs, base):
    """The integer :func:`_enc_uint` coded; -1 for an exponent beyond :data:`MAX_EXPONENT`."""
    if _dec_bit(data, st, probs, base) == 0:
        return 0
    e = 0
    while _dec_bit(data, st, probs, base + _EXP + min(e, 9)) == 1:
        e += 1
        if e > MAX_EXPONENT:
            return -1
    value = 1
    for i in range(e - 1, -1, -1):
        value = 2 * value + _dec_bit(data, st, probs, base + _MANT + min(i, 9))
    return value


def _new_encoder():
    return np.empty(4096, np.uint8), np.array([0, 0xFFFFFFFF, 0, 1, 0], np.int64)


def _dec_start(data):
    """Decoder state after reading the first four bytes (the encoder's first byte, always 0, is not stored)."""
    st = np.array([0xFFFFFFFF, 0, 0, 0], np.int64)
    code = 0
    for k in range(4):
        code = (code << 8) | (int(data[k]) if k < data.size else 0)
    st[1] = code
    st[2] = 4
    st[3] = max(0, 4 - data.size)
    return st


# ---------------------------------------------------------------- levels


@njit(cache=True)
def _coded_bits(st):
    """The information the encoder has taken in so far, in bits, up to a constant: the bytes out and
    pending, less what the range still holds (a block's cost is the difference across it)."""
    return 8.0 * (st[4] + st[3]) - np.log2(float(st[1]))


@njit(cache=True)
def _dc_known(levels, present, sub, r, c):
    """(DC level or its stand-in, known?) of block (r, c) of a pass of a partitioned file: a block of
    this pass (present 1), a larger block's stand-in (present 2), else unknown (outside, or smaller blocks)."""
    rows, cols = present.shape
    if r < 0 or c < 0 or r >= rows or c >= cols:
        return 0, False
    p = present[r, c]
    if p == 1:
        return levels[0, r, c], True
    if p == 2:
        return sub[r, c], True
    return 0, False


@njit(cache=True)
def _median(a, b, d):
    """LOCO-I's median edge detector [4]_ from the left ``a``, upper ``b`` and upper-left ``d`` neighbours."""
    if d >= max(a, b):
        return min(a, b)
    if d <= min(a, b):
        return max(a, b)
    return a + b - d


@njit(cache=True)
def _last_position(levels, zz, r, c):
    """The zigzag position of block (r, c)'s last nonzero AC level, 0 for none."""
    for i in range(zz.size - 1, 0, -1):
        if levels[zz[i], r, c] != 0:
            return i
    return 0


@njit(cache=True)
def _around(levels, ch, r, c):
    """|The same coefficient| in the blocks above and to the left (one missing: the other twice)."""
    if r > 0 and c > 0:
        return abs(levels[ch, r - 1, c]) + abs(levels[ch, r, c - 1])
    if r > 0:
        return 2 * abs(levels[ch, r - 1, c])
    if c > 0:
        return 2 * abs(levels[ch, r, c - 1])
    return 0


@njit(cache=True)
def _inside(levels, ch, lc, uc, r, c):
    """The in-block neighbours' magnitudes |(x, y - 1)| + |(x - 1, y)| of channel ``ch``; for (0, 1) and
    (1, 0), whose in-block neighbour is DC, the difference of the DC levels across the block instead
    (the block's own where the image ends)."""
    if lc != 0 and uc != 0:
        return abs(levels[lc, r, c]) + abs(levels[uc, r, c])
    rows = levels.shape[1]
    cols = levels.shape[2]
    if ch == 1:
        lo_c = c - 1 if c > 0 else c
        hi_c = c + 1 if c + 1 < cols else c
        return abs(levels[0, r, hi_c] - levels[0, r, lo_c])
    lo_r = r - 1 if r > 0 else r
    hi_r = r + 1 if r + 1 < rows else r
    return abs(levels[0, hi_r, c] - levels[0, lo_r, c])


@njit(cache=True)
def _sig_and_mag(k, i, around, inside, across, last_a, last_l, sig_base, mag_base):
    """(significance context, first context of the magnitude's set) of zigzag position ``i`` (class ``k``)
    from :func:`_around`, :func:`_inside` (``across``: a DC difference) and the neighbours' last positions.

    One function for the coder and for RDOQ's estimate of its bits (:mod:`dctconv.codec._rdoq`).
    """
    if across:
        b = 0
        while (inside >> b) > 0 and b < 3:
            b += 1
        inside >>= 3  # for the magnitude's grade
    else:
        b = min(inside, 3)
    a = min(around, 2)
    t = (1 if last_a >= i else 0) + (1 if last_l >= i else 0)
    act = around + inside
    grade = 0
    while act > 0 and grade < MAG_GRADES - 1:
        act >>= 1
        grade += 1
    return sig_base + k * SIG_CONTEXTS + (t * 3 + a) * 4 + b, mag_base + (k * MAG_GRADES + grade) * SET_SIZE


@njit(cache=True)
def _code_levels(levels, zz, cls, left_ch, up_ch, n_classes, edge_ch, edge_w, buf, st, data, dst, decoding,
                 present, sub, cost):
    """Encode (``decoding`` False: read ``levels``, write ``buf``) or decode (fill ``levels`` from ``data``).

    Returns (buf, error code). One function for both directions: the binarization
    and the contexts are then the same code, and numba compiles one loop.

    ``present`` (rows, cols) uint8, empty for a file of one block size: a pass of a partitioned
    file, whose blocks of this size (1) are coded and the others skipped (their levels 0);
    ``sub`` gives the DC stand-ins of the blocks inside larger ones (2). ``cost`` (rows, cols),
    empty unless the encoder wants them: the bits each block took (DC and AC).
    """
    nch, rows, cols = levels.shape
    auto = present.size > 0
    costed = cost.size > 0
    keep = zz.size
    n_side = edge_ch.shape[1]
    # Context layout (rows of probs).
    dc_base = 0
    cbf_base = dc_base + DC_SETS * SET_SIZE
    sig_base = cbf_base + 3
    last_base = sig_base + n_classes * SIG_CONTEXTS
    mag_base = last_base + n_classes * 3
    sign_base = mag_base + n_classes * MAG_GRADES * SET_SIZE
    total = sign_base + SIGN_CONTEXTS
    probs = np.empty((total, 2), np.int64)
    probs[:, :] = PROB_ONE >> 1
    lastpos = np.zeros((rows, cols), np.int64)
    err = 0
    last = 0
    # DC of every block in raster order.
    for r in range(rows):
        if not decoding:
            buf = _reserve(buf, st, cols * ROOM + 64)
        for c in range(cols):
            if auto and present[r, c] != 1:
                continue
            if costed:
                before = _coded_bits(st)
            if auto:
                a, ha = _dc_known(levels, present, sub, r, c - 1)
                b, hb = _dc_known(levels, present, sub, r - 1, c)
                d, hd = _dc_known(levels, present, sub, r - 1, c - 1)
                if ha and hb and hd:
                    pred = _median(a, b, d)
                    act = abs(a - d) + abs(b - d)
                elif ha and hb:
                    pred = (a + b) >> 1
                    act = abs(a - b)
                elif ha:
                    pred = a
                    act = abs(a - d) if hd else 0
                elif hb:
                    pred = b
                    act = abs(b - d) if hd else 0
                elif hd:
                    pred = d
                    act = 0
                else:
                    pred = 0
                    act = 0
            elif r == 0 and c == 0:
                pred = 0
                act = 0
            elif r == 0:
                a = levels[0, r, c - 1]
                pred = a
                act = abs(a - levels[0, r, c - 2]) if c >= 2 else 0
            elif c == 0:
                b = levels[0, r - 1, c]
                pred = b
                act = abs(b - levels[0, r - 2, c]) if r >= 2 else 0
            else:
                a = levels[0, r, c - 1]
                b = levels[0, r - 1, c]
                d = levels[0, r - 1, c - 1]
                pred = _median(a, b, d)
                act = abs(a - d) + abs(b - d)
            s = 0
            while act > 0 and s < DC_SETS - 1:
                act >>= 1
                s += 1
            base = dc_base + s * SET_SIZE
            if decoding:
                mag = _dec_uint(data, dst, probs, base)
                if mag < 0:
                    return buf, _ERR_EXPONENT
                if mag != 0 and _dec_bit(data, dst, probs, base + _SIGN) == 1:
                    mag = -mag
                value = pred + mag
                if value >= LEVEL_LIMIT or value <= -LEVEL_LIMIT:
                    return buf, _ERR_LEVEL
                levels[0, r, c] = value
                if dst[3] > 8:
                    return buf, _ERR_ENDS_EARLY
            else:
                diff = levels[0, r, c] - pred
                _enc_uint(buf, st, probs, base, abs(diff))
                if diff != 0:
                    _enc_bit(buf, st, probs, base + _SIGN, 1 if diff < 0 else 0)
                if costed:
                    cost[r, c] += _coded_bits(st) - before
    if keep == 1:
        return buf, err
    # AC, block by block.
    for r in range(rows):
        for c in range(cols):
            if auto and present[r, c] != 1:
                continue
            if not decoding:
                buf = _reserve(buf, st, keep * ROOM + 64)
            if costed:
                before = _coded_bits(st)
            last_a = lastpos[r - 1, c] if r > 0 else 0
            last_l = lastpos[r, c - 1] if c > 0 else 0
            cbf_ctx = cbf_base + (1 if last_a > 0 else 0) + (1 if last_l > 0 else 0)
            if decoding:
                coded = _dec_bit(data, dst, probs, cbf_ctx)
            else:
                last = _last_position(levels, zz, r, c)
                coded = 1 if last > 0 else 0
                _enc_bit(buf, st, probs, cbf_ctx, coded)
            if coded == 0:
                if costed:
                    cost[r, c] += _coded_bits(st) - before
                continue
            for i in range(1, keep):
                ch = zz[i]
                k = cls[i]
                around = _around(levels, ch, r, c)
                lc = left_ch[i]
                uc = up_ch[i]
                across = lc == 0 or uc == 0
                if auto and across:
                    # (0, 1) or (1, 0): the DC levels across the block; a neighbour's DC not known
                    # (smaller blocks, coded later) counts as this block's own.
                    own = levels[0, r, c]
                    if ch == 1:
                        lo_v, known = _dc_known(levels, present, sub, r, c - 1)
                        lo_v = lo_v if known else own
                        hi_v, known = _dc_known(levels, present, sub, r, c + 1)
                        hi_v = hi_v if known else own
                    else:
                        lo_v, known = _dc_known(levels, present, sub, r - 1, c)
                        lo_v = lo_v if known else own
                        hi_v, known = _dc_known(levels, present, sub, r + 1, c)
                        hi_v = hi_v if known else own
                    inside = abs(hi_v - lo_v)
                else:
                    inside = _inside(levels, ch, lc, uc, r, c)
                sig_ctx, base = _sig_and_mag(k, i, around, inside, across, last_a, last_l, sig_base, mag_base)
                if i == keep - 1:
                    sig = 1  # every earlier nonzero level said "not the last"
                else:
                    if decoding:
                        sig = _dec_bit(data, dst, probs, sig_ctx)
                    else:
                        sig = 1 if levels[ch, r, c] != 0 else 0
                        _enc_bit(buf, st, probs, sig_ctx, sig)
                if sig == 0:
                    continue
                if decoding:
                    mag = _dec_uint(data, dst, probs, base)
                    if mag < 0:
                        return buf, _ERR_EXPONENT
                    mag += 1
                    if mag >= LEVEL_LIMIT:
                        return buf, _ERR_LEVEL
                    if edge_ch[i, 0] < 0 and _dec_bypass(data, dst) == 1:
                        mag = -mag
                    levels[ch, r, c] = mag
                    if dst[3] > 8:
                        return buf, _ERR_ENDS_EARLY
                else:
                    value = levels[ch, r, c]
                    _enc_uint(buf, st, probs, base, abs(value) - 1)
                    if edge_ch[i, 0] < 0:
                        _enc_bypass(buf, st, 1 if value < 0 else 0)
                if i == keep - 1:
                    lastpos[r, c] = i
                    break
                t = (1 if last_a > i else 0) + (1 if last_l > i else 0)
                last_ctx = last_base + k * 3 + t
                if decoding:
                    is_last = _dec_bit(data, dst, probs, last_ctx)
                else:
                    is_last = 1 if i == last else 0
                    _enc_bit(buf, st, probs, last_ctx, is_last)
                if is_last:
                    lastpos[r, c] = i
                    break
            # The signs of the first row and column of frequencies, predicted across the
            # boundary with the block above ((0, k)) or to the left ((k, 0)).
            for i in range(1, lastpos[r, c] + 1):
                if edge_ch[i, 0] < 0:
                    continue
                ch = zz[i]
                value = levels[ch, r, c]
                if value == 0:
                    continue
                vertical = ch < n_side
                missing = (r == 0) if vertical else (c == 0)
                if auto and not missing:
                    # A neighbour of another size holds other frequencies: no prediction across it.
                    missing = present[r - 1, c] != 1 if vertical else present[r, c - 1] != 1
                if missing:
                    bin_ = SIGN_BINS
                    predicted = 0
                else:
                    rn = r - 1 if vertical else r
                    cn = c if vertical else c - 1
                    predicted = 0
                    for x in range(n_side):
                        other = edge_ch[i, x]
                        w = edge_w[i, x]
                        term = min(max(levels[other, rn, cn], -CLAMP), CLAMP) * w
                        predicted += -term if x % 2 else term
                        if x > 0:
                            predicted -= min(max(levels[other, r, c], -CLAMP), CLAMP) * w
                    size = abs(predicted)
                    bin_ = 0
                    while bin_ < SIGN_BINS - 1 and size >= (64 << bin_):
                        bin_ += 1
                sign_ctx = sign_base + bin_ * 3 + min(abs(value), 3) - 1
                if decoding:
                    if _dec_bit(data, dst, probs, sign_ctx) == (0 if predicted < 0 else 1):
                        levels[ch, r, c] = -value
                else:
                    _enc_bit(buf, st, probs, sign_ctx, 1 if (value < 0) != (predicted < 0) else 0)
            if decoding and dst[3] > 8:
                return buf, _ERR_ENDS_EARLY
            if costed:
                cost[r, c] += _coded_bits(st) - before
    return buf, err


@njit(cache=True)
def _code_map(values, buf, st, data, dst, decoding):
    """Encode or decode an integer map (rows, columns) pixel by pixel (see the module docstring)."""
    rows, cols = values.shape
    probs = np.empty((MAP_SETS * SET_SIZE, 2), np.int64)
    probs[:, :] = PROB_ONE >> 1
    for r in range(rows):
        if not decoding:
            buf = _reserve(buf, st, cols * ROOM + 64)
        for c in range(cols):
            a = values[r, c - 1] if c > 0 else 0
            b = values[r - 1, c] if r > 0 else 0
            d = values[r - 1, c - 1] if r > 0 and c > 0 else 0
            e = values[r - 1, c + 1] if r > 0 and c + 1 < cols else 0
            act = 2 * (abs(a) + abs(b)) + abs(d) + abs(e)
            s = 0
            while act > 0 and s < MAP_SETS - 1:
                act >>= 1
                s += 1
            base = s * SET_SIZE
            sign_ctx = base + _SIGN + 3 * (0 if a == 0 else (1 if a > 0 else 2)) + (0 if b == 0 else (1 if b > 0 else 2))
            if decoding:
                mag = _dec_uint(data, dst, probs, base)
                if mag < 0:
                    return buf, _ERR_EXPONENT
                if mag >= LEVEL_LIMIT:
                    return buf, _ERR_LEVEL
                if mag != 0 and _dec_bit(data, dst, probs, sign_ctx) == 1:
                    mag = -mag
                values[r, c] = mag
                if dst[3] > 8:
                    return buf, _ERR_ENDS_EARLY
            else:
                value = values[r, c]
                _enc_uint(buf, st, probs, base, abs(value))
                if value != 0:
                    _enc_bit(buf, st, probs, sign_ctx, 1 if value < 0 else 0)
    return buf, 0


# ---------------------------------------------------------------- predicted maps (ADRP)

#: Sets of the predicted map: by the activity around a pixel, two per octave, capped.
PRED_SETS = 32
#: Bias contexts of the predicted map: the three local gradients, each in 9 classes.
PRED_CONTEXTS = 729
#: A bias context's sum and count are halved when its count reaches this (LOCO-I's RESET).
PRED_RESET = 64
#: Largest gradient shift of ADRP's first byte.
MAX_SHIFT = 62


@njit(cache=True)
def _bitlen(value):
    k = 0
    while value > 0:
        value >>= 1
        k += 1
    return k


@njit(cache=True)
def _gradient_class(g, shift):
    """LOCO-I's quantized gradient, on a scale set by ``shift``: -4 .. 4."""
    m = abs(g) >> shift
    if m == 0:
        k = 0
    elif m <= 2:
        k = 1
    elif m <= 6:
        k = 2
    elif m <= 20:
        k = 3
    else:
        k = 4
    return k if g >= 0 else -k


@njit(cache=True)
def _activity_set(act):
    """Two sets per octave of the activity: 0, 1, then 2 (2), 3 (3), 4 (4..5), 5 (6..7), ..."""
    if act == 0:
        return 0
    k = _bitlen(act)
    if k == 1:
        return 1
    return min(2 * k - 2 + ((act >> (k - 2)) & 1), PRED_SETS - 1)


@njit(cache=True)
def _kind(value):
    return 0 if value == 0 else (1 if value > 0 else 2)


@njit(cache=True)
def _code_pmap(values, shift, buf, st, data, dst, decoding):
    """Encode or decode an integer map with per-pixel prediction (LOCO-I's median, bias per context)."""
    rows, cols = values.shape
    probs = np.empty((PRED_SETS * SET_SIZE, 2), np.int64)
    probs[:, :] = PROB_ONE >> 1
    bias_sum = np.zeros(PRED_CONTEXTS, np.int64)
    bias_count = np.zeros(PRED_CONTEXTS, np.int64)
    above = np.zeros(cols, np.int64)  # the coded errors of the row above, clamped
    here = np.zeros(cols, np.int64)
    for r in range(rows):
        if not decoding:
            buf = _reserve(buf, st, cols * ROOM + 64)
        for c in range(cols):
            if r == 0:
                a = values[0, c - 1] if c > 0 else 0
                b = a
                d = a
                e = a
            else:
                b = values[r - 1, c]
                if c > 0:
                    a = values[r, c - 1]
                    d = values[r - 1, c - 1]
                else:
                    a = b
                    d = b
                e = values[r - 1, c + 1] if c + 1 < cols else b
            med = _median(a, b, d)
            g1 = e - b
            g2 = b - d
            g3 = d - a
            q1 = _gradient_class(g1, shift)
            q2 = _gradient_class(g2, shift)
            q3 = _gradient_class(g3, shift)
            sign = 1
            if q1 < 0 or (q1 == 0 and (q2 < 0 or (q2 == 0 and q3 < 0))):
                sign = -1
                q1, q2, q3 = -q1, -q2, -q3
            ctx = (q1 + 4) * 81 + (q2 + 4) * 9 + (q3 + 4)
            count = bias_count[ctx]
            corr = (bias_sum[ctx] + (count >> 1)) // count if count > 0 else 0
            ea = here[c - 1] if c > 0 else 0
            eb = above[c] if r > 0 else 0
            ec = above[c - 1] if r > 0 and c > 0 else 0
            ed = above[c + 1] if r > 0 and c + 1 < cols else 0
            act = min(abs(g1), CLAMP) + min(abs(g2), CLAMP) + min(abs(g3), CLAMP) + 2 * abs(ea) + abs(eb) + (abs(ec) + abs(ed)) // 2
            base = _activity_set(act) * SET_SIZE
            sign_ctx = base + _SIGN + 3 * _kind(ea) + _kind(eb)
            if decoding:
                err = _dec_uint(data, dst, probs, base)
                if err < 0:
                    return buf, _ERR_EXPONENT
                if err != 0 and _dec_bit(data, dst, probs, sign_ctx) == 1:
                    err = -err
                off = err + corr
                value = med + off if sign > 0 else med - off
                if abs(value) >= LEVEL_LIMIT:
                    return buf, _ERR_LEVEL
                values[r, c] = value
                if dst[3] > 8:
                    return buf, _ERR_ENDS_EARLY
            else:
                off = (values[r, c] - med) * sign
                err = off - corr
                _enc_uint(buf, st, probs, base, abs(err))
                if err != 0:
                    _enc_bit(buf, st, probs, sign_ctx, 1 if err < 0 else 0)
            bias_sum[ctx] += min(max(off, -CLAMP), CLAMP)
            bias_count[ctx] = count + 1
            if count + 1 == PRED_RESET:
                bias_sum[ctx] >>= 1
                bias_count[ctx] = PRED_RESET >> 1
            here[c] = min(max(err, -CLAMP), CLAMP)
        above, here = here, above
    return buf, 0


@njit(cache=True)
def _finish(buf, st):
    buf = _reserve(buf, st, 16)
    for _ in range(5):
        _shift_low(buf, st)
    return buf


# ---------------------------------------------------------------- Python side


def level_tables(block_size: int, keep: int, steps=None):
    """Per zigzag position: channel, class, channels of its (x, y - 1) and (x - 1, y) neighbours, the
    class count, and for the first row and column of frequencies the channels and weights of the sign
    prediction (-1 elsewhere)."""
    from ._entropy import channel_classes
    from ._zigzag import zigzag_order

    n = block_size
    zz = zigzag_order(n)[:keep].astype(np.int64)
    classes = channel_classes(n)
    # Classes of the AC positions, renumbered from 0 (DC is class 0 alone).
    cls = (classes[zz] - 1).clip(0).astype(np.int64)
    x, y = np.divmod(zz, n)
    left = np.where(y > 0, zz - 1, zz - n)  # at the block's edge, the neighbour there counts twice
    up = np.where(x > 0, zz - n, zz - 1)
    steps = np.ones(n * n) if steps is None else np.asarray(steps, np.float64)
    edge_ch = np.full((keep, n), -1, np.int64)
    edge_w = np.zeros((keep, n), np.int64)
    across = np.sqrt(2.0) * np.cos(np.pi * np.arange(n) / (2 * n))
    for i, channel in enumerate(zz):
        if channel == 0 or (x[i] > 0 and y[i] > 0):
            continue
        k = y[i] if x[i] == 0 else x[i]
        # (0, k): the channels (x, k) of the column k; (k, 0): (k, x) of the row k.
        column = np.arange(n) * n + k if x[i] == 0 else k * n + np.arange(n)
        edge_ch[i] = column
        weights = np.rint(256.0 * (steps[column] / steps[channel]) * across)
        weights[0] = 256
        edge_w[i] = weights.astype(np.int64)
    return zz, cls, left.astype(np.int64), up.astype(np.int64), int(classes.max()), edge_ch, edge_w


def _empty():
    return np.zeros(0, np.uint8)


#: The ``present``, ``sub`` and ``cost`` of :func:`_code_levels` for a file of one block size.
_FIXED = (np.zeros((0, 0), np.uint8), np.zeros((0, 0), np.int64), np.zeros((0, 0), np.float64))


def _error(code: int, tag: str) -> CodecFileError:
    return CodecFileError(
        {
            _ERR_ENDS_EARLY: f"section {tag} ends early (its coded data is truncated or damaged)",
            _ERR_EXPONENT: f"section {tag} is damaged: it codes an integer of more than {MAX_EXPONENT + 1} bits",
            _ERR_LEVEL: f"section {tag} is damaged: it codes a level beyond 2**59",
        }[code]
    )


def _check_end(st, size: int, tag: str) -> None:
    if st[3] > 0:
        raise _error(_ERR_ENDS_EARLY, tag)
    if st[2] < size:
        left = size - int(st[2])
        raise CodecFileError(f"section {tag} has {left} byte{'s' if left != 1 else ''} left over after its last symbol")


def encode_levels(levels: np.ndarray, keep: int, block_size: int, steps=None) -> bytes:
    """The ADPT bytes of int64 ``levels`` (n*n, rows, columns), the first ``keep`` zigzag channels coded.

    Examples
    --------
    >>> import numpy as np
    >>> from dctconv.codec._engine import encode_levels, decode_levels
    >>> levels = np.zeros((4, 3, 5), np.int64); levels[0] = np.arange(15).reshape(3, 5); levels[3, 1, 2] = -40
    >>> np.array_equal(decode_levels(encode_levels(levels, 4, 2), levels.shape, 4, 2), levels)
    True
    """
    tables = level_tables(block_size, keep, steps)
    levels = np.ascontiguousarray(levels, dtype=np.int64)
    buf, st = _new_encoder()
    buf, _ = _code_levels(levels, *tables, buf, st, _empty(), np.zeros(4, np.int64), False, *_FIXED)
    buf = _finish(buf, st)
    return buf[1 : st[4]].tobytes()


def decode_levels(data, shape, keep: int, block_size: int, steps=None, *, tag: str = "ADPT") -> np.ndarray:
    """int64 levels of ``shape`` from the bytes :func:`encode_levels` wrote; CodecFileError if they do not end exactly."""
    tables = level_tables(block_size, keep, steps)
    data = np.frombuffer(data, np.uint8).copy()  # writable: the same compiled loop as the encoder's
    levels = np.zeros(shape, np.int64)
    st = _dec_start(data)
    _, err = _code_levels(levels, *tables, _empty(), np.zeros(5, np.int64), data, st, True, *_FIXED)
    if err:
        raise _error(err, tag)
    _check_end(st, data.size, tag)
    return levels


def encode_map(values) -> bytes:
    """The ADRS bytes of integer maps (C, R, W) (every value below 2**59 in magnitude), plane after plane.

    Examples
    --------
    >>> import numpy as np
    >>> from dctconv.codec._engine import encode_map, decode_map
    >>> values = np.zeros((1, 5, 7), np.int64); values[0, 2, 3] = -4
    >>> np.array_equal(decode_map(encode_map(values), values.shape), values)
    True
    """
    values = np.asarray(values)
    if values.ndim != 3 or values.dtype.kind not in "iu":
        raise ValueError(f"integer maps must be a (C, R, W) integer array, got {values.dtype} {values.shape}")
    _check_map_values(values)
    buf, st = _new_encoder()
    for plane in values:
        buf, _ = _code_map(np.ascontiguousarray(plane, np.int64), buf, st, _empty(), np.zeros(4, np.int64), False)
    buf = _finish(buf, st)
    return buf[1 : st[4]].tobytes()


def _check_map_values(values: np.ndarray) -> None:
    """ValueError unless every value is below 2**59 in magnitude: the decoders refuse the others,
    so a map beyond it would code a file no decoder reads."""
    if values.size and max(int(values.max()), -int(values.min())) >= LEVEL_LIMIT:
        raise ValueError("integer map values must stay below 2**59 in magnitude")


def decode_map(data, shape, *, tag: str = "ADRS") -> np.ndarray:
    """The int64 maps of ``shape`` (C, R, W) that :func:`encode_map` coded; CodecFileError unless they end exactly."""
    data = np.frombuffer(data, np.uint8).copy()  # writable: the same compiled loop as the encoder's
    values = np.zeros(tuple(int(s) for s in shape), np.int64)
    st = _dec_start(data)
    for plane in values:
        _, err = _code_map(plane, _empty(), np.zeros(5, np.int64), data, st, True)
        if err:
            raise _error(err, tag)
    _check_end(st, data.size, tag)
    return values


def gradient_shift(plane: np.ndarray) -> int:
    """The shift of ADRP's gradient classes for a map: the classes' thresholds 1, 3, 7, 21 then
    sit at 2**shift times those of 8-bit JPEG-LS, scaled to the map's typical gradient."""
    plane = np.asarray(plane, np.int64)
    if plane.shape[1] < 2:
        return 0
    typical = float(np.mean(np.abs(np.diff(plane[:, : min(plane.shape[1], 1024)], axis=1))))
    return int(min(MAX_SHIFT, max(0, _bitlen_py(int(typical)) - 3)))


def _bitlen_py(value: int) -> int:
    return int(value).bit_length()


def encode_predicted_map(values, *, shift: int | None = None) -> bytes:
    """The ADRP bytes of an integer map (R, W) (every value below 2**59 in magnitude): its gradient
    shift (one byte), then the map coded with per-pixel prediction.

    Examples
    --------
    >>> import numpy as np
    >>> from dctconv.codec._engine import encode_predicted_map, decode_predicted_map
    >>> values = np.add.outer(np.arange(5), 2 * np.arange(7)); values[2, 3] = -4
    >>> np.array_equal(decode_predicted_map(encode_predicted_map(values), values.shape), values)
    True
    """
    values = np.asarray(values)
    if values.ndim != 2 or values.dtype.kind not in "iu":
        raise ValueError(f"an integer map must be a (R, W) integer array, got {values.dtype} {values.shape}")
    _check_map_values(values)
    values = np.ascontiguousarray(values, np.int64)
    shift = gradient_shift(values) if shift is None else int(shift)
    buf, st = _new_encoder()
    buf, _ = _code_pmap(values, shift, buf, st, _empty(), np.zeros(4, np.int64), False)
    buf = _finish(buf, st)
    return bytes([shift]) + buf[1 : st[4]].tobytes()


def decode_predicted_map(data, shape, *, tag: str = "ADRP") -> np.ndarray:
    """The int64 map of ``shape`` (R, W) that :func:`encode_predicted_map` coded; CodecFileError unless
    it ends exactly."""
    if len(data) < 1:
        raise CodecFileError(f"section {tag} is empty")
    shift = data[0]
    if shift > MAX_SHIFT:
        raise CodecFileError(f"section {tag} is damaged: its gradient shift {shift} is beyond {MAX_SHIFT}")
    data = np.frombuffer(data, np.uint8)[1:].copy()
    values = np.zeros(tuple(int(s) for s in shape), np.int64)
    st = _dec_start(data)
    _, err = _code_pmap(values, shift, _empty(), np.zeros(5, np.int64), data, st, True)
    if err:
        raise _error(err, tag)
    _check_end(st, data.size, tag)
    return values


# ---------------------------------------------------------------- partitioned files (--block-size auto)

#: Contexts of the partition: a 16 x 16 region's split flag by its left and upper regions' (3), an
#: 8 x 8 quadrant's by its left and upper quadrants' (3).
PARTITION_CONTEXTS = 6


@njit(cache=True)
def _code_partition(split16, split8, buf, st, data, dst, decoding):
    """Encode or decode the split flags of a partition (docs/formats.md, "The partition: section PART")."""
    rows, cols = split16.shape
    probs = np.empty((PARTITION_CONTEXTS, 2), np.int64)
    probs[:, :] = PROB_ONE >> 1
    for r in range(rows):
        if not decoding:
            buf = _reserve(buf, st, cols * 20 + 64)
        for c in range(cols):
            ctx = (1 if r > 0 and split16[r - 1, c] else 0) + (1 if c > 0 and split16[r, c - 1] else 0)
            if decoding:
                split16[r, c] = _dec_bit(data, dst, probs, ctx)
                if dst[3] > 8:
                    return buf, _ERR_ENDS_EARLY
            else:
                _enc_bit(buf, st, probs, ctx, 1 if split16[r, c] else 0)
            if not split16[r, c]:
                continue
            for q in range(4):
                rq = 2 * r + q // 2
                cq = 2 * c + q % 2
                ctx = 3 + (1 if rq > 0 and split8[rq - 1, cq] else 0) + (1 if cq > 0 and split8[rq, cq - 1] else 0)
                if decoding:
                    split8[rq, cq] = _dec_bit(data, dst, probs, ctx)
                else:
                    _enc_bit(buf, st, probs, ctx, 1 if split8[rq, cq] else 0)
    return buf, 0


def encode_partition(split16: np.ndarray, split8: np.ndarray) -> bytes:
    """The PART bytes of a partition: ``split16`` (rows, cols) and ``split8`` (2 rows, 2 cols), 0 or 1."""
    buf, st = _new_encoder()
    buf, _ = _code_partition(np.ascontiguousarray(split16, np.uint8), np.ascontiguousarray(split8, np.uint8),
                             buf, st, _empty(), np.zeros(4, np.int64), False)
    buf = _finish(buf, st)
    return buf[1 : st[4]].tobytes()


def decode_partition(data, rows: int, cols: int, *, tag: str = "PART") -> tuple[np.ndarray, np.ndarray]:
    """(split16, split8) uint8 that :func:`encode_partition` coded; CodecFileError unless they end exactly."""
    data = np.frombuffer(data, np.uint8).copy()
    split16 = np.zeros((rows, cols), np.uint8)
    split8 = np.zeros((2 * rows, 2 * cols), np.uint8)
    st = _dec_start(data)
    _, err = _code_partition(split16, split8, _empty(), np.zeros(5, np.int64), data, st, True)
    if err:
        raise _error(err, tag)
    _check_end(st, data.size, tag)
    return split16, split8


def level_costs(levels: np.ndarray, block_size: int, steps=None) -> np.ndarray:
    """Bits that coding int64 ``levels`` (n*n, rows, cols), every channel kept, takes per block (rows, cols):
    the encoder's own coding, measured at its range (``_coded_bits``) before and after each block."""
    tables = level_tables(block_size, block_size * block_size, steps)
    levels = np.ascontiguousarray(levels, dtype=np.int64)
    cost = np.zeros(levels.shape[1:], np.float64)
    buf, st = _new_encoder()
    _code_levels(levels, *tables, buf, st, _empty(), np.zeros(4, np.int64), False, _FIXED[0], _FIXED[1], cost)
    return cost


def encode_passes(passes) -> bytes:
    """The coded levels of a partitioned file: ``passes`` is one (levels, present, sub, block_size, steps) per
    block size, largest first, coded one after the other in one stream (each with fresh contexts)."""
    buf, st = _new_encoder()
    for levels, present, sub, block_size, steps in passes:
        tables = level_tables(block_size, block_size * block_size, steps)
        buf, _ = _code_levels(np.ascontiguousarray(levels, np.int64), *tables, buf, st, _empty(),
                              np.zeros(4, np.int64), False, np.ascontiguousarray(present, np.uint8),
                              np.ascontiguousarray(sub, np.int64), _FIXED[2])
    buf = _finish(buf, st)
    return buf[1 : st[4]].tobytes()


def decode_passes(data, sizes, steps, maps, *, tag: str = "ADPT") -> list[np.ndarray]:
    """The int64 levels of each pass that :func:`encode_passes` coded: block sizes ``sizes``, their
    ``steps``, and ``maps(size, decoded)`` giving a pass's (present, sub) from the passes decoded so far."""
    data = np.frombuffer(data, np.uint8).copy()  # writable: the same compiled loop as the encoder's
    st = _dec_start(data)
    decoded = []
    for block_size, pass_steps in zip(sizes, steps):
        present, sub = maps(block_size, decoded)
        levels = np.zeros((block_size * block_size, *present.shape), np.int64)
        tables = level_tables(block_size, block_size * block_size, pass_steps)
        _, err = _code_levels(levels, *tables, _empty(), np.zeros(5, np.int64), data, st, True,
                              np.ascontiguousarray(present, np.uint8), np.ascontiguousarray(sub, np.int64),
                              _FIXED[2])
        if err:
            raise _error(err, tag)
        decoded.append(levels)
    _check_end(st, data.size, tag)
    return decoded
