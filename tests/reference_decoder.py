"""A second decoder of dctconv's compressed files (.dctz version 4, sections ADPT, ADRS, ADRP, NANM, RAWB),
written from docs/formats.md alone ("The compressed file", "The engine").

It uses numpy and the standard library only: its own header reader, its own range decoder,
its own contexts and its own inverse DCT. It imports nothing from dctconv. Plain Python loops,
one bit at a time: slow, meant for the small files of the tests
(tests/codec/test_reference_decoder.py compares its pixels with ``dctconv.decode``'s).
"""

from __future__ import annotations

import math
import struct
import zlib

import numpy as np

HEADER = struct.Struct("<4sBBBBBBHIIdddddHH")
MODES = {0: np.uint8, 1: np.uint16, 2: np.int32, 3: np.float32}
JPEG_LUMINANCE = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ]
)


class Damaged(Exception):
    """The file does not follow the format."""


# ---------------------------------------------------------------- the range decoder


class RangeDecoder:
    """docs/formats.md, "The range decoder" and "Integers"."""

    def __init__(self, data: bytes, contexts: int):
        self.data = data
        self.pos = 0
        self.past_end = 0
        self.range = 0xFFFFFFFF
        self.code = 0
        for _ in range(4):
            self.code = (self.code << 8) | self._byte()
        self.f = [16384] * contexts
        self.s = [16384] * contexts

    def fresh(self, contexts: int):
        """Every context back to its start (a new pass of a partitioned file; the range runs on)."""
        self.f = [16384] * contexts
        self.s = [16384] * contexts

    def _byte(self) -> int:
        if self.pos < len(self.data):
            value = self.data[self.pos]
        else:
            value = 0
            self.past_end += 1
            if self.past_end > 64:
                raise Damaged("the coded data ends early")
        self.pos += 1
        return value

    def _normalize(self):
        while self.range < 1 << 24:
            self.range <<= 8
            self.code = ((self.code << 8) | self._byte()) & 0xFFFFFFFF

    def bit(self, context: int) -> int:
        f, s = self.f[context], self.s[context]
        bound = (self.range >> 15) * ((f + s) >> 1)
        if self.code < bound:
            self.range = bound
            self.f[context] = f + ((32768 - f) >> 4)
            self.s[context] = s + ((32768 - s) >> 6)
            bit = 0
        else:
            self.code -= bound
            self.range -= bound
            self.f[context] = f - (f >> 4)
            self.s[context] = s - (s >> 6)
            bit = 1
        self._normalize()
        return bit

    def bypass(self) -> int:
        self.range >>= 1
        bit = 0
        if self.code >= self.range:
            self.code -= self.range
            bit = 1
        self._normalize()
        return bit

    def integer(self, base: int) -> int:
        if self.bit(base) == 0:
            return 0
        e = 0
        while self.bit(base + 1 + min(e, 9)):
            e += 1
            if e > 61:
                raise Damaged("an integer of more than 62 bits")
        value = 1
        for j in range(e - 1, -1, -1):
            value = 2 * value + self.bit(base + 11 + min(j, 9))
        return value

    def check_end(self):
        if self.past_end:
            raise Damaged("the coded data ends early")
        if self.pos != len(self.data):
            raise Damaged(f"{len(self.data) - self.pos} bytes left over")


def bitlen(value: int) -> int:
    return int(value).bit_length()


# ---------------------------------------------------------------- tables


def zigzag(n: int) -> np.ndarray:
    x, y = np.divmod(np.arange(n * n), n)
    return np.lexsort((np.where((x + y) % 2, x, -x), x + y))


def classes(n: int) -> np.ndarray:
    x, y = np.divmod(np.arange(n * n), n)
    raw = np.floor(4 * np.log2(1 + x + y) + 1e-9)
    return np.unique(raw, return_inverse=True)[1].reshape(-1)


def base_table(n: int) -> np.ndarray:
    if n == 8:
        return JPEG_LUMINANCE.copy()
    position = np.minimum(np.arange(n) * 8.0 / n, 7.0)
    lo = np.floor(position).astype(int)
    hi = np.minimum(lo + 1, 7)
    f = position - lo
    table = JPEG_LUMINANCE.astype(np.float64)
    rows = table[lo] * (1 - f)[:, None] + table[hi] * f[:, None]
    sampled = rows[:, lo] * (1 - f)[None, :] + rows[:, hi] * f[None, :]
    return np.clip(np.rint(16 * (sampled / 16) ** 0.25), 1, 255).astype(np.int64)


def steps_of(n: int, quantization: int, quality: int, step: float, low: float, high: float) -> np.ndarray:
    if quantization == 1:
        return np.full(n * n, step)
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    table = np.clip((base_table(n) * scale + 50) // 100, 1, 255).astype(np.float64)
    return table.reshape(-1) * ((high - low) / 255)


# ---------------------------------------------------------------- the levels (ADPT)


def decode_levels(coded, n: int, keep: int, rows: int, cols: int, steps: np.ndarray, *, P=None, sub=None):
    """docs/formats.md, "The levels: section ADPT", after the offsets. With ``P`` (the status of each
    position) and ``sub`` (the stand-ins), a pass of a partitioned file ("Block sizes chosen per
    region"): ``coded`` is then the RangeDecoder, running on from the pass before."""
    order = zigzag(n)[:keep]
    cls = classes(n)
    A = int(cls.max())
    DC, CBF = 0, 12 * 30
    SIG = CBF + 3
    LAST = SIG + A * 36
    MAG = LAST + A * 3
    SIGN = MAG + A * 6 * 30
    auto = P is not None
    if auto:
        rd = coded
        rd.fresh(SIGN + 24)
    else:
        rd = RangeDecoder(coded, SIGN + 24)
    q = [[[0] * cols for _ in range(rows)] for _ in range(n * n)]
    D = q[0]

    def known(r, c):
        """(value, known?) of a neighbour position (rule 2)."""
        if not (0 <= r < rows and 0 <= c < cols) or P[r][c] == 0:
            return 0, False
        return (D[r][c], True) if P[r][c] == 1 else (sub[r][c], True)

    for r in range(rows):
        for c in range(cols):
            if auto and P[r][c] != 1:
                continue
            if auto:
                (a, ka), (b, kb), (d, kd) = known(r, c - 1), known(r - 1, c), known(r - 1, c - 1)
                if ka and kb and kd:
                    p = min(a, b) if d >= max(a, b) else max(a, b) if d <= min(a, b) else a + b - d
                    g = abs(a - d) + abs(b - d)
                elif ka and kb:
                    p, g = (a + b) >> 1, abs(a - b)
                elif ka:
                    p, g = a, abs(a - d) if kd else 0
                elif kb:
                    p, g = b, abs(b - d) if kd else 0
                elif kd:
                    p, g = d, 0
                else:
                    p, g = 0, 0
            elif r == 0 and c == 0:
                p, g = 0, 0
            elif r == 0:
                p = D[0][c - 1]
                g = abs(D[0][c - 1] - D[0][c - 2]) if c >= 2 else 0
            elif c == 0:
                p = D[r - 1][0]
                g = abs(D[r - 1][0] - D[r - 2][0]) if r >= 2 else 0
            else:
                a, b, d = D[r][c - 1], D[r - 1][c], D[r - 1][c - 1]
                if d >= max(a, b):
                    p = min(a, b)
                elif d <= min(a, b):
                    p = max(a, b)
                else:
                    p = a + b - d
                g = abs(a - d) + abs(b - d)
            base = DC + min(bitlen(g), 11) * 30
            v = rd.integer(base)
            if v and rd.bit(base + 21):
                v = -v
            D[r][c] = p + v
            if abs(D[r][c]) >= 1 << 59:
                raise Damaged("a DC level beyond 2**59")
    if keep == 1:
        if not auto:
            rd.check_end()
        return np.array(q, np.int64)
    xs, ys = np.divmod(order, n)
    # Sign prediction weights per edge position (docs: w(0) = 256, w(u) from the steps).
    weights, lines = {}, {}
    for i in range(1, keep):
        x, y = int(xs[i]), int(ys[i])
        if x > 0 and y > 0:
            continue
        k = y if x == 0 else x
        line = [u * n + k for u in range(n)] if x == 0 else [k * n + u for u in range(n)]
        w = [256]
        for u in range(1, n):
            w.append(int(np.rint((256.0 * (steps[line[u]] / steps[line[0]])) * (math.sqrt(2.0) * math.cos(math.pi * u / (2 * n))))))
        weights[i], lines[i] = w, line
    L = [[0] * cols for _ in range(rows)]
    clamp = 1 << 20
    for r in range(rows):
        for c in range(cols):
            if auto and P[r][c] != 1:
                continue
            La = L[r - 1][c] if r > 0 else 0
            Ll = L[r][c - 1] if c > 0 else 0
            if not rd.bit(CBF + (La > 0) + (Ll > 0)):
                continue
            for i in range(1, keep):
                ch = int(order[i])
                x, y = int(xs[i]), int(ys[i])
                k = int(cls[ch]) - 1
                if r > 0 and c > 0:
                    around = abs(q[ch][r - 1][c]) + abs(q[ch][r][c - 1])
                elif r > 0:
                    around = 2 * abs(q[ch][r - 1][c])
                elif c > 0:
                    around = 2 * abs(q[ch][r][c - 1])
                else:
                    around = 0
                if auto and (x, y) in ((0, 1), (1, 0)):
                    own = D[r][c]
                    (lo, klo), (hi, khi) = ((known(r, c - 1), known(r, c + 1)) if (x, y) == (0, 1)
                                            else (known(r - 1, c), known(r + 1, c)))
                    g = abs((hi if khi else own) - (lo if klo else own))
                    b, m = min(bitlen(g), 3), g >> 3
                elif (x, y) == (0, 1):
                    g = abs(D[r][min(c + 1, cols - 1)] - D[r][max(c - 1, 0)])
                    b, m = min(bitlen(g), 3), g >> 3
                elif (x, y) == (1, 0):
                    g = abs(D[min(r + 1, rows - 1)][c] - D[max(r - 1, 0)][c])
                    b, m = min(bitlen(g), 3), g >> 3
                else:
                    left = x * n + y - 1 if y > 0 else (x - 1) * n + y
                    up = (x - 1) * n + y if x > 0 else x * n + y - 1
                    m = abs(q[left][r][c]) + abs(q[up][r][c])
                    b = min(m, 3)
                a = min(around, 2)
                t = (La >= i) + (Ll >= i)
                if i < keep - 1 and not rd.bit(SIG + k * 36 + (3 * t + a) * 4 + b):
                    continue
                v = rd.integer(MAG + (k * 6 + min(bitlen(around + m), 5)) * 30) + 1
                if v >= 1 << 59:
                    raise Damaged("a level beyond 2**59")
                if x > 0 and y > 0 and rd.bypass():
                    v = -v
                q[ch][r][c] = v
                if i == keep - 1 or rd.bit(LAST + k * 3 + (La > i) + (Ll > i)):
                    L[r][c] = i
                    break
            for i in range(1, L[r][c] + 1):
                if i not in weights:
                    continue
                ch = int(order[i])
                v = q[ch][r][c]
                if v == 0:
                    continue
                line, w = lines[i], weights[i]
                vertical = xs[i] == 0  # (0, k): across the block above
                missing = (r == 0) if vertical else (c == 0)
                if auto and not missing:
                    missing = (P[r - 1][c] if vertical else P[r][c - 1]) != 1
                if missing:
                    j, p = 7, 0
                else:
                    rn, cn = (r - 1, c) if vertical else (r, c - 1)
                    p = 0
                    for u in range(n):
                        p += (-1) ** u * w[u] * max(-clamp, min(clamp, q[line[u]][rn][cn]))
                        if u:
                            p -= w[u] * max(-clamp, min(clamp, q[line[u]][r][c]))
                    j = sum(abs(p) >= threshold for threshold in (64, 128, 256, 512, 1024, 2048))
                differs = rd.bit(SIGN + 3 * j + min(v, 3) - 1)
                if differs != (p < 0):
                    q[ch][r][c] = -v
    if not auto:
        rd.check_end()
    return np.array(q, np.int64)


# ---------------------------------------------------------------- block sizes chosen per region (PART)


def decode_partition(coded: bytes, R: int, C: int):
    """docs/formats.md, "PART, the partition": the side of the block covering each 4 x 4 cell (4R x 4C)."""
    rd = RangeDecoder(coded, 6)
    S16 = [[0] * C for _ in range(R)]
    S8 = [[0] * (2 * C) for _ in range(2 * R)]
    for r in range(R):
        for c in range(C):
            S16[r][c] = rd.bit((r > 0 and S16[r - 1][c] == 1) + (c > 0 and S16[r][c - 1] == 1))
            if S16[r][c]:
                for q in range(4):
                    i, j = 2 * r + q // 2, 2 * c + q % 2
                    S8[i][j] = rd.bit(3 + (i > 0 and S8[i - 1][j] == 1) + (j > 0 and S8[i][j - 1] == 1))
    rd.check_end()
    sides = np.zeros((4 * R, 4 * C), np.int64)
    for r in range(R):
        for c in range(C):
            for q in range(4):
                i, j = 2 * r + q // 2, 2 * c + q % 2
                side = 16 if not S16[r][c] else (4 if S8[i][j] else 8)
                sides[2 * i : 2 * i + 2, 2 * j : 2 * j + 2] = side
    return sides


def decode_partitioned(sections, quantization, quality, step, low, high, height, width):
    """docs/formats.md, "Block sizes chosen per region": the float64 image before rounding."""
    R, C = -(-height // 16), -(-width // 16)
    sides = decode_partition(sections["PART"], R, C)
    section = sections["ADPT"]
    counts = {s: int(classes(s).max()) + 1 for s in (16, 8, 4)}
    head = sum(2 * k for k in counts.values()) if quantization == 0 else 0
    if len(section) < head:
        raise Damaged("ADPT shorter than its offsets")
    rd = RangeDecoder(section[head:], 1)
    image = np.zeros((16 * R, 16 * C))
    start, decoded = 0, {}
    for s in (16, 8, 4):
        rows, cols = 16 * R // s, 16 * C // s
        cover = sides[:: s // 4, :: s // 4]  # the side covering each position's first cell
        P = np.where(cover == s, 1, np.where(cover > s, 2, 0)).tolist()
        sub = [[0] * cols for _ in range(rows)]
        for r in range(rows):
            for c in range(cols):
                if P[r][c] == 2:
                    L = int(cover[r][c])
                    E = decoded[L][0][r * s // L][c * s // L]
                    sub[r][c] = int(E) >> int(math.log2(L // s))
        if quantization == 1:
            steps = np.full(s * s, step)
        else:
            scale = 5000 // quality if quality < 50 else 200 - 2 * quality
            # B by the rule for n other than 8 at every size, 8 included.
            position = np.minimum(np.arange(s) * 8.0 / s, 7.0)
            lo = np.floor(position).astype(int)
            hi = np.minimum(lo + 1, 7)
            f = position - lo
            table = JPEG_LUMINANCE.astype(np.float64)
            rws = table[lo] * (1 - f)[:, None] + table[hi] * f[:, None]
            sampled = rws[:, lo] * (1 - f)[None, :] + rws[:, hi] * f[None, :]
            base = np.clip(np.rint(16 * (sampled / 16) ** 0.25), 1, 255).astype(np.int64)
            steps = np.clip((base * scale + 50) // 100, 1, 255).astype(np.float64).reshape(-1) * ((high - low) / 255)
        levels = decode_levels(rd, s, s * s, rows, cols, steps, P=P, sub=sub)
        decoded[s] = levels
        maps = levels * steps[:, None, None]
        if quantization == 0:
            cls = classes(s)
            codes = np.frombuffer(section[start : start + 2 * counts[s]], np.uint8).reshape(2, counts[s])
            start += 2 * counts[s]
            if codes.max() > 127:
                raise Damaged("an offset beyond half a step")
            offsets = codes[:, cls] / 256.0
            maps = np.zeros(levels.shape)
            nonzero = levels != 0
            channel = np.broadcast_to(np.arange(s * s)[:, None, None], levels.shape)[nonzero]
            q = levels[nonzero]
            o = np.where(np.abs(q) == 1, offsets[0][channel], offsets[1][channel])
            value = q * steps[channel]
            value -= np.sign(q) * o * steps[channel]
            maps[nonzero] = value
        present = (np.array(P) == 1)
        blocks = idct_blocks(maps, s)
        image += np.where(np.kron(present, np.ones((s, s))) == 1, blocks, 0.0)
    rd.check_end()
    return image[:height, :width]


# ---------------------------------------------------------------- integer maps (ADRS, NANM kind 2)


def decode_map(coded: bytes, height: int, width: int) -> np.ndarray:
    rd = RangeDecoder(coded, 16 * 30)
    v = [[0] * width for _ in range(height)]
    for r in range(height):
        for c in range(width):
            a = v[r][c - 1] if c > 0 else 0
            b = v[r - 1][c] if r > 0 else 0
            d = v[r - 1][c - 1] if r > 0 and c > 0 else 0
            e = v[r - 1][c + 1] if r > 0 and c + 1 < width else 0
            base = min(bitlen(2 * (abs(a) + abs(b)) + abs(d) + abs(e)), 15) * 30

            def kind(value):
                return 0 if value == 0 else (1 if value > 0 else 2)

            value = rd.integer(base)
            if value >= 1 << 59:
                raise Damaged("a value beyond 2**59")
            if value and rd.bit(base + 21 + 3 * kind(a) + kind(b)):
                value = -value
            v[r][c] = value
    rd.check_end()
    return np.array(v, np.int64)


# ---------------------------------------------------------------- predicted maps (ADRP)


def decode_predicted_map(section: bytes, height: int, width: int) -> np.ndarray:
    if not section:
        raise Damaged("an empty ADRP")
    h = section[0]
    if h > 62:
        raise Damaged("a gradient shift beyond 62")
    rd = RangeDecoder(section[1:], 32 * 30)
    limit = 1 << 20

    def clamp(x):
        return max(-limit, min(limit, x))

    def gradient_class(g):
        x = abs(g) >> h
        t = 0 if x == 0 else 1 if x <= 2 else 2 if x <= 6 else 3 if x <= 20 else 4
        return -t if g < 0 else t

    def kind(x):
        return 0 if x == 0 else (1 if x > 0 else 2)

    sums, counts = [0] * 729, [0] * 729
    above, here = [0] * width, [0] * width
    v = [[0] * width for _ in range(height)]
    for r in range(height):
        for c in range(width):
            if r == 0:
                a = v[0][c - 1] if c > 0 else 0
                b = d = e = a
            else:
                b = v[r - 1][c]
                a, d = (v[r][c - 1], v[r - 1][c - 1]) if c > 0 else (b, b)
                e = v[r - 1][c + 1] if c + 1 < width else b
            m = min(a, b) if d >= max(a, b) else max(a, b) if d <= min(a, b) else a + b - d
            g1, g2, g3 = e - b, b - d, d - a
            t = [gradient_class(g1), gradient_class(g2), gradient_class(g3)]
            nonzero = [x for x in t if x]
            s = -1 if nonzero and nonzero[0] < 0 else 1
            if s < 0:
                t = [-x for x in t]
            k = 81 * (t[0] + 4) + 9 * (t[1] + 4) + (t[2] + 4)
            corr = (sums[k] + (counts[k] >> 1)) // counts[k] if counts[k] else 0
            ea = here[c - 1] if c > 0 else 0
            eb = above[c] if r > 0 else 0
            ec = above[c - 1] if r > 0 and c > 0 else 0
            ed = above[c + 1] if r > 0 and c + 1 < width else 0
            act = min(abs(g1), limit) + min(abs(g2), limit) + min(abs(g3), limit) + 2 * abs(ea) + abs(eb)
            act += (abs(ec) + abs(ed)) // 2
            n = bitlen(act)
            j = act if act < 2 else min(2 * n - 2 + ((act >> (n - 2)) & 1), 31)
            err = rd.integer(30 * j)
            if err and rd.bit(30 * j + 21 + 3 * kind(ea) + kind(eb)):
                err = -err
            o = err + corr
            value = m + o if s == 1 else m - o
            if abs(value) >= 1 << 59:
                raise Damaged("a value beyond 2**59")
            v[r][c] = value
            sums[k] += clamp(o)
            counts[k] += 1
            if counts[k] == 64:
                sums[k] >>= 1
                counts[k] = 32
            here[c] = clamp(err)
        above, here = here, above
    rd.check_end()
    return np.array(v, np.int64)


# ---------------------------------------------------------------- the file


def idct_blocks(maps: np.ndarray, n: int) -> np.ndarray:
    """The inverse orthonormal DCT-II of every block, laid out: (n*n, rows, cols) -> (n rows, n cols)."""
    u = np.arange(n)
    basis = np.sqrt(np.where(u == 0, 1.0, 2.0) / n)[:, None] * np.cos(np.pi * (2 * u[None, :] + 1) * u[:, None] / (2 * n))
    # kernel[(i, j), (x, y)] = b_x(i) b_y(j)
    kernel = np.einsum("xi,yj->ijxy", basis, basis).reshape(n * n, n * n)
    _, rows, cols = maps.shape
    patches = kernel @ maps.reshape(n * n, rows * cols)
    return patches.reshape(n, n, rows, cols).transpose(2, 0, 3, 1).reshape(rows * n, cols * n)


def decode(data: bytes, *, reconstruction: bool = False):
    """The pixels of a version 4 .dctz file (its levels in ADPT, or quantization 2); with
    ``reconstruction``, also the float64 image before rounding (to find the pixels within float
    rounding of a half, where another inverse DCT may round the other way)."""
    if len(data) < HEADER.size:
        raise Damaged("shorter than the header")
    (magic, version, n, mode, quantization, quality, _dead_zone, keep, height, width, step, _threshold,
     low, high, max_error, flags, count) = HEADER.unpack_from(data)
    if magic != b"DCTZ" or version != 4 or flags & ~1:
        raise Damaged("not a version 4 file")
    table = [struct.unpack_from("<4sII", data, 64 + 12 * k) for k in range(count)]
    if zlib.crc32(data[: 64 + 12 * count]) != struct.unpack_from("<I", data, 64 + 12 * count)[0]:
        raise Damaged("header CRC")
    sections, start = {}, 64 + 12 * count + 4
    for tag, length, crc in table:
        payload = data[start : start + length]
        if len(payload) != length or zlib.crc32(payload) != crc:
            raise Damaged(f"section {tag!r}")
        sections[tag.decode("ascii")] = payload
        start += length
    if start != len(data):
        raise Damaged("bytes after the sections")
    rows, cols = -(-height // n), -(-width // n)
    steps = steps_of(n, quantization, quality, step, low, high) if quantization < 2 else None
    cls = classes(n)
    if flags & 1:
        if "PART" not in sections or "ADPT" not in sections or n != 16 or quantization == 2:
            raise Damaged("flag bit 0 without PART and ADPT, n = 16 and quantized levels")
        image = decode_partitioned(sections, quantization, quality, step, low, high, height, width)
    elif quantization == 2:
        kept = np.frombuffer(zlib.decompress(sections["RAWB"]), "<f8")
        maps = np.zeros((n * n, rows, cols))
        mask = np.zeros(n * n, bool)
        mask[zigzag(n)[:keep]] = True
        maps[mask] = kept.reshape(-1, rows, cols)
    else:
        section = sections["ADPT"]
        C = int(cls.max()) + 1
        head = 2 * C if quantization == 0 else 0
        levels = decode_levels(section[head:], n, keep, rows, cols, steps)
        maps = levels * steps[:, None, None]
        if quantization == 0:
            codes = np.frombuffer(section[:head], np.uint8).reshape(2, C)
            if codes.max() > 127:
                raise Damaged("an offset beyond half a step")
            offsets = codes[:, cls] / 256.0  # (2, n*n): |q| = 1, |q| >= 2
            maps = np.zeros(levels.shape)
            nonzero = levels != 0
            channel = np.broadcast_to(np.arange(n * n)[:, None, None], levels.shape)[nonzero]
            q = levels[nonzero]
            o = np.where(np.abs(q) == 1, offsets[0][channel], offsets[1][channel])
            value = q * steps[channel]
            value -= np.sign(q) * o * steps[channel]
            maps[nonzero] = value
    if not flags & 1:
        image = idct_blocks(maps, n)[:height, :width]
    dtype = np.dtype(MODES[mode])
    if dtype.kind == "f":
        top = np.finfo(np.float32).max
        pixels = np.clip(image, -top, top).astype(np.float32)
        pixels = np.clip(pixels, np.float32(low), np.float32(high))
    else:
        info = np.iinfo(dtype)
        pixels = np.clip(np.rint(image), info.min, info.max).astype(dtype)
        pixels = np.clip(pixels, math.ceil(low), math.floor(high)).astype(dtype)
    residuals = [tag for tag in ("ADRS", "ADRP") if tag in sections]
    if len(residuals) > 1:
        raise Damaged("two residuals")
    if residuals:
        if residuals[0] == "ADRS":
            q = decode_map(sections["ADRS"], height, width)
        else:
            q = decode_predicted_map(sections["ADRP"], height, width)
        if dtype.kind == "f":
            spacing = float(np.spacing(np.float32(max(abs(low), abs(high)))))
            values = pixels.astype(np.float64) + q * (2.0 * (max_error - spacing))
            pixels = np.clip(values, low, high).astype(np.float32)
        else:
            values = pixels.astype(np.int64) + q * (2 * math.floor(max_error) + 1)
            pixels = np.clip(values, math.ceil(low), math.floor(high)).astype(dtype)
    if "NANM" in sections:
        body = sections["NANM"]
        if body[0] == 2:
            nan = decode_map(body[1:], height, width).astype(bool)
        elif body[0] == 0:
            raw = zlib.decompress(body[1:])
            runs, value, shift = [], 0, 0
            for byte in raw:
                value |= (byte & 0x7F) << shift
                if byte & 0x80:
                    shift += 7
                else:
                    runs.append(value)
                    value, shift = 0, 0
            states = np.zeros(len(runs), bool)
            states[1::2] = True
            nan = np.repeat(states, runs).reshape(height, width)
        else:
            raise Damaged(f"NANM kind {body[0]}")
        pixels = pixels.copy()
        pixels[nan] = np.nan
    return (pixels, image) if reconstruction else pixels
