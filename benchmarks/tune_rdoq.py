"""The encoder's decisions (rate-distortion optimized quantization, the dead zone) on tuning images.

The tuning images are scikit-image's bundled photos that are not in sample_images/ (chelsea,
coffee, brick, grass, rocket, clock, in gray); bench_codec.py reports the chosen settings on
the sample photos and the other test images. Each variant is one setting of the encoder,
patched in this process:

1. n = 4, BD-rate (PSNR) against Pillow's optimized JPEG over quality 5 to 95 (as bench_codec.py):
   RDOQ off (rounding with the dead zone), one lambda ``c * (DC step)**2`` for every channel at
   several c, a lambda per channel ``c * step**2``, the dead zone 0 under RDOQ, and two rounds
   (the contexts' bits counted again on RDOQ's levels).
2. n = 8 at JPEG's qualities 25, 50, 75, 90: the file over JPEG's (mean) and the lowest PSNR
   difference, for RDOQ off, a fixed lambda, and the shipped rule (the largest lambda whose
   pixels stay within plain rounding's error).

Writes benchmarks/results/tune_rdoq.md and tune_rdoq.json.

    python benchmarks/tune_rdoq.py     # about 5 minutes on 2 cores
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_codec  # noqa: E402  (its curves, JPEG anchor and BD-rate)

from dctconv.codec import _core, _quantize, _rdoq  # noqa: E402

RESULTS = bench_codec.RESULTS
TUNING = ["chelsea", "coffee", "brick", "grass", "rocket", "clock"]


def load(name: str) -> np.ndarray:
    import skimage.data

    image = getattr(skimage.data, name)()
    return np.asarray(Image.fromarray(image).convert("L"))


@contextmanager
def variant(*, c=None, per_channel=False, dead_zone=None, passes=1, fixed_n8=False):
    """The encoder with one setting changed (c = 0: RDOQ off)."""
    saved = (_quantize.RDOQ_LAMBDA, _core.DEAD_ZONE, _core.rdoq_lambda, _rdoq.rdoq, _rdoq.rdoq_within)
    try:
        if c is not None:
            _quantize.RDOQ_LAMBDA = c
        if per_channel:
            _core.rdoq_lambda = lambda steps, n: None if c == 0 else c * np.asarray(steps, np.float64) ** 2
        if dead_zone is not None:
            _core.DEAD_ZONE = dead_zone
        if passes != 1:
            _rdoq.rdoq = lambda *args, **kwargs: saved[3](*args, **kwargs, passes=passes)
        if fixed_n8:
            def fixed(plain, coefficients, steps, n, lam, *, keep, fit, error):
                levels = plain.copy()  # lambda c * (DC step)**2, not the search's largest
                saved[3](levels, coefficients, steps, n, c * steps[0] ** 2, keep=keep, offsets=fit(levels))
                return levels, fit(levels)
            _rdoq.rdoq_within = fixed
        yield
    finally:
        _quantize.RDOQ_LAMBDA, _core.DEAD_ZONE, _core.rdoq_lambda, _rdoq.rdoq, _rdoq.rdoq_within = saved


N4_VARIANTS = {
    "RDOQ off (rounding, dead zone 13/256)": dict(c=0),
    "one lambda, c = 0.10": dict(c=0.10),
    "one lambda, c = 0.15 (shipped)": dict(c=0.15),
    "one lambda, c = 0.20": dict(c=0.20),
    "one lambda, c = 0.30": dict(c=0.30),
    "lambda per channel c * step^2, c = 0.10": dict(c=0.10, per_channel=True),
    "lambda per channel c * step^2, c = 0.15": dict(c=0.15, per_channel=True),
    "one lambda, c = 0.15, dead zone 0": dict(c=0.15, dead_zone=0),
    "one lambda, c = 0.15, two rounds of counting": dict(c=0.15, passes=2),
}
N8_VARIANTS = {
    "RDOQ off (rounding, dead zone 13/256)": dict(c=0),
    "fixed lambda, c = 0.03": dict(c=0.03, fixed_n8=True),
    "fixed lambda, c = 0.15": dict(c=0.15, fixed_n8=True),
    "largest lambda within plain rounding's error (shipped)": dict(),
}


def run() -> dict:
    images = {name: load(name) for name in TUNING}
    jpeg = {name: bench_codec.curve(image, lambda im, q: bench_codec.pillow(im, "JPEG", q))
            for name, image in images.items()}
    start = os.getloadavg()[0]
    n4 = {}
    for title, settings in N4_VARIANTS.items():
        with variant(**settings):
            n4[title] = {name: bench_codec.bd_rate(jpeg[name], bench_codec.curve(image, lambda im, q: bench_codec.ours(im, 4, q)))
                         for name, image in images.items()}
        print(title, f"{statistics.mean(n4[title].values()):+.2f} %", flush=True)
    n8 = {}
    for title, settings in N8_VARIANTS.items():
        rows = []
        with variant(**settings):
            for quality in bench_codec.N8_QUALITIES:
                sizes, gaps = [], []
                for image in images.values():
                    size, decoded = bench_codec.ours(image, 8, quality)
                    jpeg_size, jpeg_decoded = bench_codec.pillow(image, "JPEG", quality)
                    sizes.append(size / jpeg_size)
                    gaps.append(bench_codec.peak_signal_noise_ratio(image, decoded, data_range=255)
                                - bench_codec.peak_signal_noise_ratio(image, jpeg_decoded, data_range=255))
                rows.append({"quality": quality, "mean_size": statistics.mean(sizes), "lowest_psnr": min(gaps)})
        n8[title] = rows
        print(title, rows, flush=True)
    return {"n4": n4, "n8": n8, "load": [start, os.getloadavg()[0]]}


def report(results: dict) -> str:
    lines = [
        "### The encoder's decisions on the tuning images",
        "",
        "scikit-image's " + ", ".join(TUNING) + " (gray), not the test images.",
        "",
        "n = 4, BD-rate (PSNR) against JPEG, quality 5 to 95:",
        "",
        "| variant | " + " | ".join(TUNING) + " | mean |",
        "|---|" + "---:|" * (len(TUNING) + 1),
    ]
    for title, values in results["n4"].items():
        lines.append(f"| {title} | " + " | ".join(f"{values[name]:+.1f} %" for name in TUNING)
                     + f" | **{statistics.mean(values.values()):+.2f} %** |")
    lines += [
        "",
        "n = 8 at JPEG's qualities: the file over JPEG's (mean) / the lowest PSNR(dctconv) - PSNR(JPEG):",
        "",
        "| variant | " + " | ".join(f"quality {q}" for q in bench_codec.N8_QUALITIES) + " |",
        "|---|" + "---:|" * len(bench_codec.N8_QUALITIES),
    ]
    for title, rows in results["n8"].items():
        lines.append(f"| {title} | " + " | ".join(f"{row['mean_size']:.3f} / {row['lowest_psnr']:+.2f} dB" for row in rows)
                     + " |")
    lines += ["", "Load average {:.2f} at the start, {:.2f} at the end (1 minute).".format(*results["load"]), ""]
    return "\n".join(lines)


def main() -> int:
    results = run()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tune_rdoq.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    text = report(results)
    (RESULTS / "tune_rdoq.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
