"""Imported by the fork server of ``compress --jobs``: the compiled loops run once there.

numba compiles the codec engine's loops (:mod:`dctconv.codec._engine`), the quantization's
(:mod:`dctconv.codec._rdoq`) and the SSIM's (:mod:`dctconv.measure._ssim`) at their first
call, or loads them from its cache: 0.7 s per process on a 2-core machine, which every
worker paid on its first file. Imported
after the other preloads (:data:`dctconv.runtime._jobs.COMPRESS_DATA_IMPORTS`), this
module compresses and decodes a tiny image and measures one once in the fork server, so that
every worker forked from it starts with the loops loaded. Nothing is written; a failure
here is left to the workers, which load the loops themselves and report what is wrong.
"""

from __future__ import annotations


def warm() -> None:
    """Compress and decode a tiny 8-bit image, and compare two: the compiled loops loaded.

    Through :func:`dctconv.encode` itself, so that every loop a default ``compress`` runs
    is loaded: the quantization's (RDOQ, :mod:`dctconv.codec._rdoq`), the engine's both ways
    (:mod:`dctconv.codec._engine`), the map coders of a 16-bit image's bounded residual and
    the SSIM's.
    """
    try:
        import numpy as np

        from ..codec._core import decode, encode

        image = (np.add.outer(np.arange(8), np.arange(8)) * 9 % 256).astype(np.uint8)
        image[2:5, 3:7] = 200
        decode(encode(image))
        # A 16-bit image's default keeps a bound: its residual's map coders (ADRS, ADRP) load too.
        decode(encode(image.astype(np.uint16) * 250))
    except Exception:  # noqa: BLE001 - the workers load the engine themselves, and report it
        pass
    try:
        import numpy as np

        from ..measure._metrics import compare

        image = np.arange(64, dtype=np.uint8).reshape(8, 8)
        compare(image, image[::-1], data_range=255)
    except Exception:  # noqa: BLE001 - the workers compile the SSIM themselves, and report it
        pass


warm()
