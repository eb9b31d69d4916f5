"""The codec: block DCT, frequency-weighted quantization, context-modelled range coding.

:func:`encode` turns a grayscale image into the bytes of a ``.dctz`` file, :func:`decode`
turns them back into pixels. The modules beside this one are its parts: ``_quantize``
(the steps), ``_zigzag`` (zigzag order, the kept channels, the checks of keep, step and
threshold), ``_entropy`` (the model and the range coder) and ``_dctz`` (the file format,
docs/formats.md).

The names are imported lazily so that asking for the format's header reader does not
import the coder.
"""

from __future__ import annotations

_PUBLIC = {"encode": "_core", "decode": "_core"}

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'dctconv.codec' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{module}", __name__), name)


def __dir__():
    return __all__
