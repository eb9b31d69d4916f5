"""The transform as a layer: dctconv on PyTorch tensors against the layers PyTorch users build, and JPEG reading.

1. With one library (PyTorch) on one device, the forward and inverse 8 x 8 block DCT of a
   batch of images three ways, side by side in interleaved rounds (medians):
   ``dctconv.forward`` / ``dctconv.inverse`` on the tensor; a hand-written
   ``torch.nn.functional.conv2d`` / ``conv_transpose2d`` with stride 8 whose 64 kernels are
   built from the DCT formula here (not by dctconv); and torch-dct's ``dct_2d`` /
   ``idct_2d`` (FFT based) over the unfolded 8 x 8 blocks, with the reshapes to and from
   (N, C, 64, H/8, W/8) that give the same maps. All three results are compared before
   timing. The rows run on every device torch has here (the CPU; CUDA when present, timed
   with synchronisation); dctconv's numpy engine on the same pixels is listed for scale.
2. A JPEG file's coefficients: ``read_jpeg_coefficients`` (no decode) against Pillow's decode
   followed by ``dctconv.forward`` of the pixels minus 128, for a grayscale and a 4:2:0
   colour JPEG (colour: Pillow decodes to YCbCr, upsampled, and all three planes are
   transformed).

Writes benchmarks/results/bench_layers.md and bench_layers.json.

    python benchmarks/bench_layers.py              # about a minute on two cores
    python benchmarks/bench_layers.py --rounds 3 --side 256
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SAMPLES = ROOT / "sample_images"


def load_average() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def median_ms(function, rounds: int, synchronize=lambda: None) -> float:
    samples = []
    for _ in range(rounds):
        synchronize()
        start = time.perf_counter()
        function()
        synchronize()
        samples.append(time.perf_counter() - start)
    return 1000 * statistics.median(samples)


def interleaved(cases: dict, rounds: int, synchronize=lambda: None) -> dict:
    """Median ms of each case, the cases taking turns round by round (so load hits them alike)."""
    samples = {name: [] for name in cases}
    for function in cases.values():  # warm-up (allocators, lazy imports, kernels)
        function()
    for _ in range(rounds):
        for name, function in cases.items():
            samples[name].append(median_ms(function, 1, synchronize))
    return {name: statistics.median(values) for name, values in samples.items()}


def formula_kernels(n: int) -> np.ndarray:
    """(n*n, 1, n, n) DCT-II kernels from the textbook formula, for conv2d (not dctconv's code)."""
    a = np.array([math.sqrt(1 / n)] + [math.sqrt(2 / n)] * (n - 1))
    i = np.arange(n)
    cos = np.cos(np.pi * (i[None, :] + 0.5) * i[:, None] / n)  # [frequency, position]
    kernels = np.einsum("x,y,xi,yj->xyij", a, a, cos, cos).reshape(n * n, 1, n, n)
    return kernels


# ---------------------------------------------------------------- 1. layers


def layer_cases(torch, device, batch: int, side: int, n: int = 8):
    import torch.nn.functional as F
    import torch_dct

    from dctconv import forward, inverse

    generator = torch.Generator().manual_seed(0)
    x = (255 * torch.rand(batch, 1, side, side, generator=generator)).to(device)
    weights = torch.from_numpy(formula_kernels(n)).float().to(device)
    rows = cols = side // n

    def conv_forward(v):
        return F.conv2d(v, weights, stride=n)[:, None]  # (N, 1, 64, rows, cols)

    def conv_inverse(c):
        return F.conv_transpose2d(c[:, 0], weights, stride=n)

    def torchdct_forward(v):
        blocks = v.unfold(-2, n, n).unfold(-2, n, n)  # (N, 1, rows, cols, n, n)
        coefficients = torch_dct.dct_2d(blocks, norm="ortho")
        return coefficients.reshape(batch, 1, rows, cols, n * n).permute(0, 1, 4, 2, 3)

    def torchdct_inverse(c):
        blocks = torch_dct.idct_2d(c.permute(0, 1, 3, 4, 2).reshape(batch, 1, rows, cols, n, n), norm="ortho")
        return blocks.permute(0, 1, 2, 4, 3, 5).reshape(batch, 1, side, side)

    maps = forward(x, n)
    for name, other in (("conv2d", conv_forward(x)), ("torch-dct", torchdct_forward(x))):
        error = float((other - maps).abs().max())
        assert error < 1e-2, f"{name} differs from dctconv.forward by {error}"
    for name, other in (("conv_transpose2d", conv_inverse(maps)), ("torch-dct", torchdct_inverse(maps))):
        error = float((other - inverse(maps)).abs().max())
        assert error < 1e-2, f"{name} differs from dctconv.inverse by {error}"
    forward_cases = {
        "dctconv.forward": lambda: forward(x, n),
        "conv2d (formula kernels)": lambda: conv_forward(x),
        "torch-dct dct_2d over blocks": lambda: torchdct_forward(x),
    }
    inverse_cases = {
        "dctconv.inverse": lambda: inverse(maps),
        "conv_transpose2d (formula kernels)": lambda: conv_inverse(maps),
        "torch-dct idct_2d over blocks": lambda: torchdct_inverse(maps),
    }
    return x, forward_cases, inverse_cases


def layers(rounds: int, batch: int, side: int) -> list[dict]:
    import torch

    from dctconv import forward

    rows = []
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        synchronize = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        with torch.no_grad():
            x, forward_cases, inverse_cases = layer_cases(torch, device, batch, side)
            for direction, cases in (("forward", forward_cases), ("inverse", inverse_cases)):
                times = interleaved(cases, rounds, synchronize)
                ours = next(t for name, t in times.items() if name.startswith("dctconv"))
                for name, ms in times.items():
                    rows.append({"device": device, "direction": direction, "method": name, "ms": ms,
                                 "ratio": ms / ours})
        if device == "cpu":
            pixels = x.numpy().reshape(batch, side, side)
            ms = interleaved({"numpy": lambda: forward(pixels, 8)}, rounds)["numpy"]
            rows.append({"device": "cpu", "direction": "forward", "method": "dctconv.forward on numpy (same pixels)",
                         "ms": ms, "ratio": ms / next(r["ms"] for r in rows if r["method"] == "dctconv.forward")})
    return rows


# ---------------------------------------------------------------- 2. JPEG coefficients


def make_jpegs(folder: Path, side: int) -> dict:
    with Image.open(SAMPLES / "astronaut.png") as im:
        colour = im.convert("RGB").resize((side, side), Image.LANCZOS)
    paths = {"grayscale": folder / "gray.jpg", "colour 4:2:0": folder / "colour.jpg"}
    colour.convert("L").save(paths["grayscale"], quality=90)
    colour.save(paths["colour 4:2:0"], quality=90, subsampling=2)
    return paths


def jpeg_reading(rounds: int, side: int) -> list[dict]:
    from dctconv import forward, read_jpeg_coefficients

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for kind, path in make_jpegs(Path(folder), side).items():
            def decode_and_forward(path=path):
                with Image.open(path) as im:
                    if im.mode != "L":
                        im.draft("YCbCr", im.size)
                    pixels = np.asarray(im, dtype=np.float64) - 128
                planes = [pixels] if pixels.ndim == 2 else [pixels[..., k] for k in range(3)]
                return [forward(plane, 8) for plane in planes]

            times = interleaved({"read_jpeg_coefficients": lambda path=path: read_jpeg_coefficients(path),
                                 "Pillow decode + forward": decode_and_forward}, rounds)
            ours = times["read_jpeg_coefficients"]
            for name, ms in times.items():
                rows.append({"file": f"{kind} {side}x{side} q90", "method": name, "ms": ms, "ratio": ms / ours})
    return rows


# ---------------------------------------------------------------- the report


def report(info: dict, layer_rows: list[dict], jpeg_rows: list[dict]) -> str:
    lines = ["# bench_layers", ""]
    lines += [f"Load average at start {info['load at start']}, at end {info['load at end']}, on {info['cpus']} CPUs "
              "(a load above the CPU count means other work shared them: times are slower and noisier, "
              "the interleaved rounds keep the ratios fair). "
              f"torch {info['torch']}, {info['threads']} threads; jpeglib {info['jpeglib']}; "
              f"{info['batch']} images of {info['side']} x {info['side']}, float32, n = 8; "
              f"medians of {info['rounds']} interleaved rounds.", ""]
    if not info["cuda"]:
        lines += ["No GPU here: the table has CPU rows only (the GPU table was not measured).", ""]
    lines += ["## The block DCT as a PyTorch layer", "",
              "| device | direction | method | median ms | time / dctconv's |", "|---|---|---|---:|---:|"]
    for row in layer_rows:
        lines.append(f"| {row['device']} | {row['direction']} | {row['method']} | {row['ms']:.2f} | {row['ratio']:.2f} |")
    lines += ["", "## JPEG coefficients: read them, or decode and transform", "",
              "| file | method | median ms | time / read_jpeg_coefficients |", "|---|---|---:|---:|"]
    for row in jpeg_rows:
        lines.append(f"| {row['file']} | {row['method']} | {row['ms']:.2f} | {row['ratio']:.2f} |")
    lines += ["", "## Targets", ""]
    for device in sorted({row["device"] for row in layer_rows}):
        for direction in ("forward", "inverse"):
            others = [r for r in layer_rows if (r["device"], r["direction"]) == (device, direction)
                      and not r["method"].startswith("dctconv")]
            slowest_ratio = min(r["ratio"] for r in others)
            verdict = "met" if slowest_ratio >= 1 else "missed"
            names = ", ".join(f"{r['method']} {r['ratio']:.2f}x" for r in others)
            lines.append(f"- {device} {direction}: dctconv no slower than the alternatives ({names} its time): {verdict}.")
    for row in jpeg_rows:
        if row["method"] != "read_jpeg_coefficients":
            verdict = "met" if row["ratio"] >= 1 else "missed"
            lines.append(f"- {row['file']}: decoding and transforming takes {row['ratio']:.2f} times as long as "
                         f"reading the coefficients (target: more than 1): {verdict}.")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--side", type=int, default=256)
    parser.add_argument("--jpeg-side", type=int, default=2048)
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite bench_layers.md from bench_layers.json, measuring nothing")
    args = parser.parse_args(argv)
    if args.report_only:
        saved = json.loads((RESULTS / "bench_layers.json").read_text())
        (RESULTS / "bench_layers.md").write_text(report(saved["info"], saved["layers"], saved["jpeg"]))
        return
    import jpeglib
    import torch

    info = {"load at start": load_average(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "jpeglib": getattr(jpeglib, "__version__", "?"), "batch": args.batch, "side": args.side,
            "rounds": args.rounds, "cuda": torch.cuda.is_available(), "cpus": os.cpu_count()}
    layer_rows = layers(args.rounds, args.batch, args.side)
    jpeg_rows = jpeg_reading(args.rounds, args.jpeg_side)
    info["load at end"] = load_average()
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = report(info, layer_rows, jpeg_rows)
    (RESULTS / "bench_layers.md").write_text(text)
    (RESULTS / "bench_layers.json").write_text(json.dumps({"info": info, "layers": layer_rows, "jpeg": jpeg_rows},
                                                          indent=1) + "\n")
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
