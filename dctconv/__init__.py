"""dctconv: the block DCT of an image as a strided convolution.

The public names are imported lazily so that ``dctconv --help`` starts without
importing numpy or scipy.
"""

from __future__ import annotations

__version__ = "0.1.0"

_PUBLIC = {
    "dct_kernels": "kernels",
    "decode": "codec",
    "encode": "codec",
    "forward": "transform",
    "inverse": "transform",
    "read_jpeg_coefficients": "io._jpeg",
}

__all__ = sorted(_PUBLIC) + ["__version__"]


def __getattr__(name):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'dctconv' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{module}", __name__), name)


def __dir__():
    return __all__
