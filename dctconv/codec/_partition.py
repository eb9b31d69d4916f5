"""Block sizes chosen per region (``--block-size auto``): the partition of a 16 x 16 grid and its choice.

The image, edge-padded to a multiple of 16, is cut into 16 x 16 regions. Each region is
one 16 x 16 block, or four 8 x 8 quadrants (in the order top left, top right, bottom
left, bottom right), each of them one 8 x 8 block or four 4 x 4 blocks: a quadtree of
two levels. The levels of the blocks of each size are coded in a pass of their own
(16, then 8, then 4; :func:`dctconv.codec._engine.encode_passes`), on that size's grid,
where the blocks of the other sizes are absent.

The encoder chooses by rate-distortion cost, region by region [1]_: it quantizes the
whole image at each of the three sizes, measures for every block its distortion D (the
squared error of its dequantized coefficients: the orthonormal DCT keeps it equal to the
squared error of its pixels) and its rate R (the bits the engine takes for it when the
whole image is coded at that size, measured at the range coder:
:func:`dctconv.codec._engine.level_costs`), and keeps in each quadrant, then in each
region, the choice of least ``D + lambda R``, ``lambda = LAMBDA * s**2`` with ``s`` the
DC step (the same at every size: the steps of every size come from the same quality).

References
----------
.. [1] G. J. Sullivan, T. Wiegand, "Rate-distortion optimization for video compression",
   IEEE Signal Processing Magazine 15(6), 1998.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The side of a region, and the block sizes of a partition, largest first.
REGION = 16
SIZES = (16, 8, 4)
#: lambda over the squared DC step. High-rate theory gives 2 ln 2 / 12 = 0.116 (D = s**2 / 12
#: per coefficient, dD/dR = -2 ln 2 D); tuned on scikit-image's photos (docs/codec.md).
LAMBDA = 0.116


@dataclass(frozen=True)
class Partition:
    """Which block size covers each part of the image (docs/formats.md, "The partition")."""

    split16: np.ndarray
    """(rows, cols) uint8: 1 where the 16 x 16 region is four 8 x 8 quadrants."""
    split8: np.ndarray
    """(2 rows, 2 cols) uint8: 1 where the 8 x 8 quadrant is four 4 x 4 blocks (0 in unsplit regions)."""

    @property
    def sizes(self) -> np.ndarray:
        """(4 rows, 4 cols) uint8: the side of the block covering each 4 x 4 cell (16, 8 or 4)."""
        quadrant = np.where(self.split8 == 1, 4, 8).astype(np.uint8)
        quadrant[np.repeat(np.repeat(self.split16 == 0, 2, 0), 2, 1)] = 16
        return np.repeat(np.repeat(quadrant, 2, 0), 2, 1)

    def present(self, size: int) -> np.ndarray:
        """(rows, cols) of the grid of ``size``, uint8: 1 for a block of this size, 2 for a part of a
        larger block, 0 for a part split into smaller blocks."""
        sizes = self.sizes
        k = size // 4
        cover = sizes[::k, ::k]
        return np.where(cover == size, 1, np.where(cover > size, 2, 0)).astype(np.uint8)

    def counts(self) -> dict[int, int]:
        """{size: number of blocks of that size}."""
        sizes = self.sizes
        return {size: int(np.count_nonzero(sizes == size)) // (size // 4) ** 2 for size in SIZES}


def stand_ins(partition: Partition, size: int, decoded: list[np.ndarray]) -> np.ndarray:
    """(rows, cols) int64 DC stand-ins of the grid of ``size``: inside a larger block of DC level d and
    side L, ``d >> log2(L / size)`` (floor of d size / L: the DC of a block is its side times its mean
    over the step, and every size has the same DC step); 0 elsewhere. ``decoded``: the passes of the
    larger sizes, largest first."""
    present = partition.present(size)
    sub = np.zeros(present.shape, np.int64)
    for levels, larger in zip(decoded, SIZES):
        if larger <= size:
            break
        k = larger // size
        dc = np.repeat(np.repeat(levels[0], k, 0), k, 1) >> int(np.log2(k))
        inside = partition.present(larger)
        inside = np.repeat(np.repeat(inside == 1, k, 0), k, 1)
        sub[inside] = dc[inside]
    return sub


def _per_region(values: np.ndarray, k: int) -> np.ndarray:
    """Sums of ``values`` (rows, cols) over k x k groups."""
    rows, cols = values.shape
    return values.reshape(rows // k, k, cols // k, k).sum(axis=(1, 3))


def choose(distortion: dict[int, np.ndarray], rate: dict[int, np.ndarray], lam: float) -> Partition:
    """The partition of least ``D + lam R``: per quadrant one 8 x 8 block or four 4 x 4 ones, then per
    region one 16 x 16 block or its four quadrants as chosen. ``distortion[s]`` and ``rate[s]`` are
    (rows, cols) per block of the grid of size s."""
    cost = {size: distortion[size] + lam * rate[size] for size in SIZES}
    four = _per_region(cost[4], 2)
    split8 = four < cost[8]
    quadrant = np.where(split8, four, cost[8])
    split16 = _per_region(quadrant, 2) < cost[16]
    split8 &= np.repeat(np.repeat(split16, 2, 0), 2, 1)
    return Partition(split16.astype(np.uint8), split8.astype(np.uint8))
