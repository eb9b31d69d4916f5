"""The codecs of scientific imaging as sweep curves, through imagecodecs.

imagecodecs (the codec library tifffile and zarr use; the ``science`` extra) gives
the anchors a user of 16-bit, 32-bit or float images would pick instead of dctconv.
Each anchor encodes the image at a few settings; each file is decoded again with
imagecodecs and measured here, against the original pixels, over the data range
(:func:`dctconv.measure._metrics.compare`): the encoders' own claims (SZ3's bound,
JPEG-LS's NEAR) are not used. Every curve:

``sz3``
    SZ3 in absolute-bound mode, the bound E at :data:`ERROR_SHARES` of the range.
``zfp``
    ZFP in fixed-accuracy mode, its tolerance at the same shares.
``jpegls``
    CharLS JPEG-LS, lossless (NEAR 0) and near-lossless at NEAR = floor(E) for the
    same shares; 8- and 16-bit integers only.
``jpeg2k``
    OpenJPEG JPEG 2000: lossless (the reversible 5/3 wavelet) and lossy at the PSNR
    targets :data:`J2K_LEVELS` (in dB over the image's own bit depth, which is passed
    as ``bitspersample``); integers only.
``jpegxl``
    libjxl JPEG XL: lossless and lossy at the Butteraugli distances
    :data:`JXL_DISTANCES`. Integers are coded at their own bit depth; floats losslessly
    as they are, and lossily mapped to 0..1 over the data range (JPEG XL's nominal
    range for floats) and back.
``png``
    PNG at zlib level 9, lossless; 8- and 16-bit integers only.

Integer images go to SZ3 and ZFP as float64 copies, and their decoded values are
rounded back to the image's type (what a user storing integers does). Float images
with NaN (no-data) pixels go to the anchors with the NaN pixels set to the range's low
end: none of them keeps a no-data mask.
"""

from __future__ import annotations

import math

import numpy as np

#: The anchors, in the order they are drawn and listed.
ANCHORS = ("sz3", "zfp", "jpegls", "jpeg2k", "jpegxl", "png")

#: Short names, for notes and the printed BD-rates.
NAMES = {"sz3": "SZ3", "zfp": "ZFP", "jpegls": "JPEG-LS", "jpeg2k": "JPEG 2000", "jpegxl": "JPEG XL",
         "png": "PNG"}

#: imagecodecs' class of each codec (its ``available`` says whether this build has it).
CODECS = {"sz3": "SZ3", "zfp": "ZFP", "jpegls": "JPEGLS", "jpeg2k": "JPEG2K", "jpegxl": "JPEGXL", "png": "PNG"}

#: Bounds and tolerances of SZ3, ZFP, JPEG-LS (and dctconv's --max-error curve), as
#: shares of the data range.
ERROR_SHARES = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)

#: JPEG 2000's lossy targets: PSNR in dB over the image's bit depth.
J2K_LEVELS = (30, 40, 50, 60, 70, 80)

#: JPEG XL's lossy Butteraugli distances (1 is "visually lossless" for photos).
JXL_DISTANCES = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0)

#: What each curve is, for the JSON and the plot legend.
LABELS = {
    "sz3": "SZ3, absolute bound 0.01 % .. 10 % of the range",
    "zfp": "ZFP, accuracy 0.01 % .. 10 % of the range",
    "jpegls": "JPEG-LS (CharLS), lossless and NEAR up to 10 % of the range",
    "jpeg2k": "JPEG 2000 (OpenJPEG), lossless and PSNR 30 .. 80 dB",
    "jpegxl": "JPEG XL (libjxl), lossless and distance 0.05 .. 4",
    "png": "PNG, lossless (zlib level 9)",
}


def missing_package() -> str | None:
    """Why no anchor can run: None when imagecodecs imports."""
    try:
        import imagecodecs  # noqa: F401
    except ImportError:
        return "imagecodecs is not installed (pip install 'dctconv[science]')"
    return None


def available(method: str) -> bool:
    """Whether this imagecodecs build has the codec of ``method``."""
    import imagecodecs

    codec = getattr(imagecodecs, CODECS[method], None)
    return bool(getattr(codec, "available", False))


def why_not(method: str, image) -> str | None:
    """Why ``method`` cannot take ``image`` (its type or values); None when it can."""
    dtype = np.asarray(image).dtype
    if method in ("jpegls", "png") and dtype not in (np.uint8, np.uint16):
        return "it takes 8- and 16-bit integers only"
    if method == "jpeg2k":
        if dtype.kind == "f":
            return "it takes integers only"
        if dtype == np.int32 and (int(np.min(image)) < 0 or int(np.max(image)) >= 1 << 26):
            return "OpenJPEG takes 32-bit integers within 0 .. 2**26 only"
    if method == "jpegxl" and dtype == np.int32:
        return "it takes 8- and 16-bit integers and floats only"
    return None


def _bits(image) -> int:
    return max(1, int(np.max(image)).bit_length())


def _narrow(image) -> np.ndarray:
    """A 16-bit image holding 8-bit values as uint8: OpenJPEG and libjxl fail on uint16 with 8 bits per sample."""
    if image.dtype == np.uint16 and _bits(image) <= 8:
        return image.astype(np.uint8)
    return image


def settings(method: str, image, value_range) -> list[tuple[float, object]]:
    """(setting, encode) of each point of ``method``'s curve; ``encode()`` returns (bytes, decoded pixels).

    The setting is what the JSON records: SZ3's bound, ZFP's tolerance, JPEG-LS's
    NEAR, JPEG 2000's PSNR target (0: lossless), JPEG XL's distance (0: lossless),
    PNG's zlib level.
    """
    import imagecodecs as ic

    low, high = value_range
    span = high - low
    integer = image.dtype.kind in "iu"
    shares = [share * span for share in ERROR_SHARES]

    def back(decoded):
        """Decoded values in the image's type: integers rounded and clipped to the type's range."""
        decoded = np.asarray(decoded).reshape(image.shape)
        if integer:
            info = np.iinfo(image.dtype)
            return np.clip(np.rint(decoded.astype(np.float64)), info.min, info.max).astype(image.dtype)
        return decoded.astype(image.dtype)

    source = image.astype(np.float64) if integer else image
    points = []
    if method == "sz3":
        for bound in shares:
            def run(bound=bound):
                data = ic.sz3_encode(source, mode=0, abs=bound)
                return data, back(ic.sz3_decode(data, shape=source.shape, dtype=source.dtype))
            points.append((bound, run))
    elif method == "zfp":
        for tolerance in shares:
            def run(tolerance=tolerance):
                data = ic.zfp_encode(source, level=tolerance, mode="a")
                return data, back(ic.zfp_decode(data))
            points.append((tolerance, run))
    elif method == "jpegls":
        limit = max(0, min(255, int(np.max(image)) // 2))
        nears = sorted({0} | {int(math.floor(e)) for e in shares if 1 <= e <= limit})
        for near in nears:
            def run(near=near):
                data = ic.jpegls_encode(image, level=near)
                return data, back(ic.jpegls_decode(data))
            points.append((float(near), run))
    elif method == "jpeg2k":
        narrow = _narrow(image)
        bits = _bits(image)
        for level in (0, *J2K_LEVELS):
            def run(level=level):
                options = dict(reversible=True) if level == 0 else {}
                data = ic.jpeg2k_encode(narrow, level=level, bitspersample=bits, **options)
                return data, back(ic.jpeg2k_decode(data))
            points.append((float(level), run))
    elif method == "jpegxl":
        if integer:
            narrow = _narrow(image)
            options = {} if narrow.dtype == np.uint8 else dict(bitspersample=_bits(image))

            def run(distance=0.0):
                data = (ic.jpegxl_encode(narrow, lossless=True, **options) if distance == 0
                        else ic.jpegxl_encode(narrow, distance=distance, **options))
                return data, back(ic.jpegxl_decode(data))
        else:
            scale = span if span > 0 else 1.0
            unit = ((image.astype(np.float64) - low) / scale).astype(np.float32)

            def run(distance=0.0):
                if distance == 0:
                    data = ic.jpegxl_encode(image, lossless=True)
                    return data, back(ic.jpegxl_decode(data))
                data = ic.jpegxl_encode(unit, distance=distance)
                return data, back(ic.jpegxl_decode(data).astype(np.float64) * scale + low)
        for distance in (0.0, *JXL_DISTANCES):
            points.append((distance, lambda distance=distance: run(distance)))
    elif method == "png":
        def run():
            data = ic.png_encode(image, level=9)
            return data, back(ic.png_decode(data))
        points.append((9.0, run))
    else:
        raise ValueError(f"unknown anchor {method!r}")
    return points
