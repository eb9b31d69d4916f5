"""Imported by the fork server of ``compress --jobs``: the compiled loops run once there.

numba compiles the codec engine's loops (:mod:`dctconv.codec._engine`) and the SSIM's
(:mod:`dctconv.measure._ssim`) at their first call, or loads them from its cache: 0.7 s
per process on a 2-core machine, which every worker paid on its first file. Imported
after the other preloads (:data:`dctconv.runtime._jobs.COMPRESS_DATA_IMPORTS`), this
module codes a few levels and measures a tiny image once in the fork server, so that
every worker forked from it starts with the loops loaded. Nothing is written; a failure
here is left to the workers, which load the loops themselves and report what is wrong.
"""

from __future__ import annotations


def warm() -> None:
    """Encode and decode a tiny array of levels, and compare two tiny images: the compiled loops loaded."""
    try:
        import numpy as np

        from ..codec import _engine

        levels = np.zeros((4, 2, 3), np.int64)
        levels[0] = np.arange(6).reshape(2, 3)
        levels[3, 1, 2] = -2
        _engine.decode_levels(_engine.encode_levels(levels, 4, 2), levels.shape, 4, 2)
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
