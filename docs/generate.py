"""Regenerate the listings, tables and pictures of README.md and docs/ from real runs.

Every number in the documentation that a program can produce is produced here, never
typed. A page marks each generated part with a pair of comments::

    <!-- generated: verify-n4 -->
    ...replaced by the output of the generator named verify-n4...
    <!-- end: verify-n4 -->

and this script replaces what lies between them. Pictures are written straight into
docs/images/. Usage (``make docs`` runs the first form)::

    python docs/generate.py                    # every block and every picture
    python docs/generate.py verify-n4 help     # only these (blocks or pictures)
    python docs/generate.py --check            # exit 1 if a deterministic block is stale
    python docs/generate.py --list             # the registered names

Adding a generator: write a function returning the block's Markdown (ending in a
newline) and decorate it with ``@block("name")``; pass ``deterministic=False`` when a
fresh run may legitimately differ (file sizes that depend on zlib, timings), so that
tests/test_docs.py does not compare it. Then put the two marker comments in the page
and run ``python docs/generate.py name``. A function that writes pictures takes the
images folder and is decorated with ``@picture("name")``. Timing numbers are read from
committed files in benchmarks/results/, never measured here.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import functools
import json
import os
import re
import shutil
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
IMAGES = DOCS / "images"
RESULTS = ROOT / "benchmarks" / "results"
CAMERA = ROOT / "sample_images" / "camera.png"

# Markers start a line: an indented example of one (docs/development.md) is not a block.
MARKER = re.compile(
    r"^(?P<open><!-- generated: (?P<name>[\w.-]+) -->\n)(?P<body>.*?)^(?P<close><!-- end: (?P=name) -->)",
    re.S | re.M,
)


@dataclass(frozen=True)
class Block:
    name: str
    render: Callable[[], str]
    deterministic: bool


BLOCKS: dict[str, Block] = {}
PICTURES: dict[str, Callable[[Path], None]] = {}


def block(name: str, *, deterministic: bool = True):
    """Register ``function() -> str`` as the generator of the blocks marked ``name``."""

    def register(function):
        if name in BLOCKS or name in PICTURES:
            raise ValueError(f"generator {name!r} registered twice")
        BLOCKS[name] = Block(name, function, deterministic)
        return function

    return register


def picture(name: str):
    """Register ``function(images_dir) -> None`` as a generator of pictures in docs/images/."""

    def register(function):
        if name in BLOCKS or name in PICTURES:
            raise ValueError(f"generator {name!r} registered twice")
        PICTURES[name] = function
        return function

    return register


# --- pages and their marked blocks -------------------------------------------------------


def pages() -> list[Path]:
    """README.md and every Markdown page of docs/."""
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def committed_blocks() -> dict[str, list[tuple[Path, str]]]:
    """Every marked block in the pages: name -> [(page, body as committed)]."""
    found: dict[str, list[tuple[Path, str]]] = {}
    for page in pages():
        for match in MARKER.finditer(page.read_text(encoding="utf-8")):
            found.setdefault(match["name"], []).append((page, match["body"]))
    return found


def write_blocks(rendered: dict[str, str]) -> list[Path]:
    """Replace the bodies of the blocks named in ``rendered``; return the pages changed."""
    changed = []
    for page in pages():
        text = page.read_text(encoding="utf-8")
        new = MARKER.sub(
            lambda m: m["open"] + rendered[m["name"]] + m["close"] if m["name"] in rendered else m[0],
            text,
        )
        if new != text:
            page.write_text(new, encoding="utf-8")
            changed.append(page)
    return changed


# --- running the command line in this process --------------------------------------------


def run_cli(*args: str, expect: int = 0, stderr: bool = False) -> str:
    """stdout (and with ``stderr``, stderr too, as a terminal shows them) of ``dctconv ARGS``
    run in this process, at a fixed 80-column width."""
    from click.testing import CliRunner

    from dctconv.cli import cli

    result = CliRunner().invoke(
        cli, list(args), prog_name="dctconv", terminal_width=80, max_content_width=80
    )
    if result.exit_code != expect:
        raise RuntimeError(
            f"dctconv {' '.join(args)} exited {result.exit_code}, expected {expect}:\n{result.output}"
        )
    return result.output if stderr else result.stdout


@contextlib.contextmanager
def _working_directory(folder):
    """Run the commands in ``folder``, so that the transcript shows short relative paths."""
    previous = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


def fenced(text: str, language: str = "") -> str:
    return f"```{language}\n{text.rstrip()}\n```\n"


def command_names() -> list[str]:
    from dctconv.cli import cli

    return sorted(cli.commands)


# --- the command line: --help of every command ---------------------------------------------


@block("help")
def _help_top() -> str:
    return fenced("$ dctconv --help\n" + run_cli("--help"))


def _help_of(command: str) -> Callable[[], str]:
    def render() -> str:
        return fenced(f"$ dctconv {command} --help\n" + run_cli(command, "--help"))

    render.__name__ = f"_help_{command}"
    return render


for _command in command_names():
    block(f"help-{_command}")(_help_of(_command))


@block("input-formats")
def _input_formats() -> str:
    """The image formats dctconv opens (its allowlist; a folder's suffixes follow from it)."""
    from dctconv.io import _images as image_io

    return "Image formats read: " + ", ".join(image_io.IMAGE_FORMATS) + ".\n"


# --- errors: every exception class, and real error lines -------------------------------------


# Not compared by the tests, as the modules below: a helper adding an exception class should
# not have to regenerate this page; `make docs` lists it.
@block("error-classes", deterministic=False)
def _error_classes() -> str:
    """Every exception the library raises on purpose, with what it means (its docstring)."""
    import inspect

    from dctconv import errors

    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass)
               if issubclass(c, errors.DctconvError) and c.__module__ == errors.__name__]
    classes.sort(key=lambda c: (c is not errors.DctconvError, c.__name__))
    rows = ["| class | is a | raised when |", "|---|---|---|"]
    for cls in classes:
        bases = ", ".join(f"`{b.__name__}`" for b in cls.__bases__ if b is not Exception)
        rows.append(f"| `{cls.__name__}` | {bases or '`Exception`'} | {_first_line(cls.__doc__)} |")
    return "\n".join(rows) + "\n"


@block("error-examples")
def _error_examples() -> str:
    """Error lines of real runs on small hostile inputs made here."""
    import numpy as np
    import tifffile
    from PIL import Image

    lines = []

    def errors_of(*args, expect=1):
        output = run_cli(*args, expect=expect, stderr=True)
        lines.extend(line for line in output.splitlines() if line.startswith("Error"))

    with tempfile.TemporaryDirectory() as tmp, _working_directory(tmp):
        Path("scan.png").write_bytes(b"")
        Path("notes.png").write_text("shopping list\n")
        Path("drawing.png").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n")
        os.mkfifo("pipe.png")
        tifffile.imwrite("counts.tif", np.array([[0, 2**31]], dtype=np.uint32))
        errors_of("transform", "scan.png", "notes.png", "drawing.png", "pipe.png", "counts.tif", "-o", "out",
                  "--jobs", "1")
        pixels = np.zeros((8, 8), np.uint8)
        Image.fromarray(pixels).save("x.png")
        Path("a").mkdir()
        Image.fromarray(pixels).save("a/x.png")
        errors_of("transform", "x.png", "a/x.png", "-o", "out", "--jobs", "1")
        long_name = "s" * 245 + ".png"
        Image.fromarray(pixels).save(long_name)
        errors_of("transform", long_name, "-o", "out")
        np.savez("evil_coefficients.npz", format_version=np.array(1), block_size=np.array(4),
                 image_shape=np.array([8, 8]), source=np.array("x" * 5000),
                 coefficients=np.zeros((16, 2, 2)))
        errors_of("transform", "--inverse", "evil_coefficients.npz", "-o", "out")
        run_cli("transform", "x.png", "-o", "out")
        np.savez("edited_coefficients.npz", **{**np.load("out/x_coefficients.npz"), "image_mode": np.array("I;16")})
        errors_of("verify", "edited_coefficients.npz", "x.png")
        Path("photos").mkdir()
        errors_of("compress", "photos", "-o", "out")
    return fenced("\n".join(lines).replace("s" * 245, "sss...sss"))


# --- the code: modules and public API ---------------------------------------------------------
# Not compared by the tests: a helper adding a module or a public name should not have to
# regenerate the docs; `make docs` lists it.


def _first_line(doc) -> str:
    line = (doc or "").strip().split("\n")[0]
    # Sphinx roles read better as plain code in Markdown.
    return re.sub(r":\w+:`([^`]+)`", r"`\1`", line.replace("``", "`"))


@block("modules", deterministic=False)
def _modules() -> str:
    """One line per module of dctconv/ and its subpackages, in folder order: its docstring's first line."""
    import ast

    rows = ["| module | what it is for |", "|---|---|"]
    package = ROOT / "dctconv"
    paths = sorted(package.rglob("*.py"), key=lambda p: (len(p.relative_to(package).parts) > 1, p.parts))
    for path in paths:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        summary = _first_line(doc).replace("|", "\\|")
        name = ".".join(path.relative_to(package).with_suffix("").parts).removesuffix(".__init__")
        rows.append(f"| `{name}` | {summary} |")
    return "\n".join(rows) + "\n"


@block("public-api", deterministic=False)
def _public_api() -> str:
    """The names ``import dctconv`` offers, with the first line of each docstring."""
    import dctconv

    names = [name for name in dctconv.__all__ if not name.startswith("_")]
    return "".join(f"- `dctconv.{name}`: {_first_line(getattr(dctconv, name).__doc__)}\n" for name in names)


# --- dependencies: from pyproject.toml, each with why it is there ---------------------------------

#: Why each dependency is there. tests/test_docs.py fails for a dependency of pyproject.toml
#: missing here: add a line saying what it does for dctconv.
WHY = {
    "click": "the command line: options, validation of paths and ranges, progress bars, shell "
    "completion, testing with CliRunner",
    "numpy": "the arrays, and the matrix products that are the convolution",
    "pillow": "reading and writing images in the common formats and bit depths; JPEG and WebP "
    "the other codecs the sweep compares with; the labels of the maps, kernels and error "
    "pictures (`ImageDraw`, no matplotlib needed). Gray PNGs (8-bit reconstructions, the maps and "
    "error pictures) are the exception: `io._images.png_bytes` writes them with zlib and one PNG "
    "filter for every row, because Pillow's encoder tries every filter on every row with no setting "
    "to fix one, and that search was the largest share of writing a 4096² compress's pictures; the "
    "tests read its files back with Pillow and with libpng (imagecodecs)",
    "scipy": "`scipy.fft` and `scipy.signal`: the independent references that `verify` checks against",
    "scikit-image": "PSNR and SSIM as its well-tested functions compute them (`measure._metrics` "
    "repeats their operations without importing `skimage.metrics`, which imports `scipy.stats`; the "
    "tests compare to the last bit); `skimage.util.montage` lays out the maps and kernels mosaics, "
    "`skimage.measure.block_reduce` averages large float images down for the summary picture "
    "(integer ones are summed as integers, tested against it)",
    "matplotlib": "the rate-distortion figure of `compress --sweep`; its DejaVu Sans font (found "
    "without importing matplotlib) for the labels Pillow draws; the summary picture's colour maps "
    "(inferno, Blues), tabulated in `measure._summary` and compared with matplotlib's by the tests",
    "constriction": "the range coder of the files written before the adaptive engine (MODL, WORD: "
                    "`codec/_entropy.py`), kept so that they still decode",
    "numba": "the codec's entropy engine (`codec/_engine.py`): its per-coefficient loops (adaptive binary "
             "range coding, contexts from decoded neighbours) compiled to machine code at first use and "
             "cached; wheels wherever numpy has them, no compiler at install (see \"The compiled engine\"); "
             "also the encoder's rate-distortion decisions (`codec/_rdoq.py`; `--block-size auto` measures each block's bits in the engine itself) and the "
             "SSIM's window means (`measure/_ssim.py`)",
    "bjontegaard": "the BD-rates of the sweep (Bjontegaard delta rate)",
    "pytest": "the test runner",
    "hypothesis": "property tests over random sizes, block sizes and dtypes",
    "pytest-xdist": "`make test` runs the suite in two processes, half the time on two cores",
    "threadpoolctl": "the benchmarks report which BLAS (and which CPU kernel of it) numpy runs",
    "dask": "`--scheduler`: each file a task on a dask.distributed cluster (`runtime/_cluster.py`)",
    "array-api-compat": "`forward`, `inverse` and `dct_kernels` on PyTorch, JAX, CuPy, dask and other "
    "array-API arrays, computed by their own library (docs/layers.md); small, pure Python",
    "array-api-strict": "the strict reference implementation of the array API: the tests show the "
    "array-API path uses nothing outside the standard",
    "jax": "the gradients of the array-API path checked with JAX's `grad` in CI (CPU build, about "
    "380 MB installed)",
    "jaxlib": "JAX's CPU backend (what `jax[cpu]` installs)",
    "imagecodecs": "the `--sweep` of 16-bit, 32-bit and float images against SZ3, ZFP, JPEG-LS, JPEG 2000, "
                   "JPEG XL and PNG (and JPEG XL on 8-bit images), each file decoded again by the same library: "
                   "the codecs of scientific imaging in one well-kept package, the one tifffile and zarr use "
                   "(an extra, `dctconv[science]`: about 80 MB of compiled codecs installed; the test extra "
                   "includes it as `dctconv[science]`, which pip resolves to this extra)",
    "jpeglib": "`read_jpeg_coefficients` and `transform --from-jpeg`: the quantized DCT coefficients "
    "straight from libjpeg's own decoder, in process (an extra: its wheel is 22 MB, several libjpeg builds)",
    "torch": "`make test-torch` only: the PyTorch tests and `bench_layers.py` (the CPU build; CUDA "
    "builds are gigabytes, so `make test` leaves it out)",
    "torch-dct": "`bench_layers.py`: the FFT-based DCT PyTorch users reach for, compared over unfolded blocks",
}


def requirements() -> list[tuple[str, str]]:
    """(package name, "" or the extra that installs it) for every requirement of pyproject.toml."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    text = re.sub(r"#[^\n]*", "", text)
    found = []

    def names(listing: str) -> list[str]:
        return [re.match(r"[A-Za-z0-9_.-]+", item)[0].lower() for item in re.findall(r'"([^"]+)"', listing)]

    core = re.search(r"^dependencies\s*=\s*\[(.*?)\]", text, re.M | re.S)
    found += [(name, "") for name in names(core[1])] if core else []
    extras = re.search(r"^\[project\.optional-dependencies\]\n(.*?)(?=^\[|\Z)", text, re.M | re.S)
    # A listing ends with the "]" that ends a line: "dctconv[science]" holds one too.
    listed = dict(re.findall(r"^([\w-]+)\s*=\s*\[(.*?)\]\s*$", extras[1] if extras else "", re.M | re.S))
    for extra, listing in listed.items():
        # "dctconv[science]" in an extra: that extra's packages, installed by this one too.
        for item in re.findall(r'"([^"]+)"', listing):
            own = re.fullmatch(r"dctconv\[([\w-]+)\]", item)
            found += [(name, extra) for name in names(listed.get(own[1], "") if own else f'"{item}"')]
    return found


# Not compared by the tests (a new dependency adds a row); test_docs checks that WHY covers all.
@block("dependencies", deterministic=False)
def _dependencies() -> str:
    rows = ["| package | installed by | why |", "|---|---|---|"]
    for name, extra in requirements():
        where = f"`pip install \".[{extra}]\"`" if extra else "always"
        rows.append(f"| {name} | {where} | {WHY.get(name, 'not documented')} |")
    return "\n".join(rows) + "\n"


# --- README: the list of docs pages -----------------------------------------------------------

#: What each page is for, in README's list; a page not named here is listed by its title.
PAGE_SUMMARIES = {
    "cli.md": "every option of every command, input images, `--version`, shell completion",
    "compress.md": "quantization (quality, step, keep, threshold), the metrics, the sweep and its BD-rates",
    "codec.md": "how the codec works: quantization tables, the entropy model, its numbers",
    "verify.md": "the ten checks, their tolerances and why every check can fail",
    "formats.md": "every file dctconv writes, key by key, with a decoder in a few lines of numpy and scipy",
    "errors.md": "exit codes, error messages, what a failed run leaves",
    "performance.md": "benchmarks against scipy and `x.copy()`, the machine",
    "scale.md": "running on many machines with dask",
    "development.md": "tests, layout, dependencies and why, how the numbers in these pages are generated",
    "layers.md": "the transform on PyTorch, JAX and other array libraries, layouts, gradients, JPEG coefficients",
    "science.md": "16-bit, 32-bit and float images: data range, error bound, lossless, NaN, against SZ3 and JPEG-LS",
    "history.md": "the measurements behind the tuning choices, the alternatives measured and the designs replaced (the codec's former coder), with their dates",
}


# Not compared by the tests: a helper adding a page should not have to regenerate README;
# `make docs` lists it.
@block("docs-index", deterministic=False)
def _docs_index() -> str:
    names = sorted(page.name for page in DOCS.glob("*.md"))
    order = [name for name in PAGE_SUMMARIES if name in names]
    order += [name for name in names if name not in PAGE_SUMMARIES]
    lines = []
    for name in order:
        summary = PAGE_SUMMARIES.get(name)
        if summary is None:
            title = (DOCS / name).read_text(encoding="utf-8").split("\n", 1)[0]
            summary = title.lstrip("# ").strip() or name
        lines.append(f"- [docs/{name}](docs/{name}): {summary}.")
    return "\n".join(lines) + "\n"


# --- verify -------------------------------------------------------------------------------


@block("verify-n4")
def _verify_n4() -> str:
    return fenced(run_cli("verify", "-n", "4"))


@block("verify-camera-n8")
def _verify_camera_n8() -> str:
    output = run_cli("verify", str(CAMERA), "-n", "8")
    rows = [line for line in output.splitlines() if "camera.png" in line]
    return fenced("\n".join(rows))


@block("verify-file")
def _verify_file() -> str:
    """A transform file checked against its image, and against the image with one block changed."""
    import numpy as np
    from PIL import Image

    transcript = []

    def run(*args: str, expect: int) -> None:
        transcript.append("$ dctconv " + " ".join(args))
        transcript.append(run_cli(*args, expect=expect, stderr=True).rstrip())

    with tempfile.TemporaryDirectory(prefix="dctconv-docs-") as folder, _working_directory(folder):
        shutil.copy(CAMERA, "camera.png")
        pixels = np.asarray(Image.open("camera.png")).copy()
        pixels[80:84, 148:152] = 255 - pixels[80:84, 148:152]
        Image.fromarray(pixels).save("camera_edited.png")
        Image.fromarray(pixels[:303, :384]).save("camera_cropped.png")
        run("transform", "camera.png", "-o", "out", expect=0)
        run("verify", "out/camera_coefficients.npz", "camera.png", expect=0)
        run("verify", "out/camera_coefficients.npz", "camera_edited.png", expect=1)
        run("verify", "out/camera_coefficients.npz", "camera_cropped.png", expect=1)
    return fenced("\n".join(transcript))


# Not compared by the tests: it runs verify 30 times (about a minute).
@block("verify-margin", deterministic=False)
def _verify_margin() -> str:
    """How far below its tolerance every check's error stays, over block sizes 2 to 16."""
    samples = sorted(str(path) for path in CAMERA.parent.glob("*.png"))
    checks = []
    for n in range(2, 17):
        for images in ([], samples):
            report = json.loads(run_cli("verify", *images, "-n", str(n), "--json"))
            checks += report["checks"]
    failed = [check for check in checks if not check["passed"]]
    measured = [c for c in checks if c["max_error"] and c["tolerance"]]
    zeros = sum(c["max_error"] == 0 for c in checks)
    ratios = sorted((c["tolerance"] / c["max_error"], i) for i, c in enumerate(measured))
    worst = measured[ratios[0][1]]
    share = lambda factor: 100 * sum(r >= factor for r, _ in ratios) / len(ratios)
    return (
        f"`dctconv verify` at every block size from 2 to 16, on the built-in images and on the "
        f"{len(samples)} sample images: {len(checks):,} checks, "
        + (f"{len(failed)} FAILED" if failed else "all passed")
        + f". The closest call is `{worst['name']}` at n = {worst['block_size']} "
        f"({worst['input']}): error {worst['max_error']:.2g} against the tolerance "
        f"{worst['tolerance']:.2g}, {ratios[0][0]:.1f} times below it. Of the "
        f"{len(measured):,} checks with a nonzero error, {share(10):.0f} % are at least 10 times "
        f"below their tolerance and {share(1000):.0f} % at least 1000 times; "
        f"{zeros:,} have an error of exactly 0.\n"
    )


# --- compress -----------------------------------------------------------------------------


@block("compress-steps")
def _compress_steps() -> str:
    """The steps of the default quality 75 at n = 4 and n = 8, for 8-bit images."""
    from dctconv.codec._quantize import DEFAULT_QUALITY, step_table

    parts = []
    for n in (4, 8):
        table = step_table(n, quality=DEFAULT_QUALITY).reshape(n, n).astype(int)
        rows = ["| x \\ y | " + " | ".join(map(str, range(n))) + " |", "|---" * (n + 1) + "|"]
        rows += [f"| {x} | " + " | ".join(map(str, table[x])) + " |" for x in range(n)]
        parts.append(f"n = {n}, quality {DEFAULT_QUALITY} (row frequency x down, column frequency y across):\n\n"
                     + "\n".join(rows) + "\n")
    return "\n".join(parts)


@functools.cache
def _compressed_camera() -> Path:
    """camera.png through ``dctconv compress --sweep`` at the defaults, as ``make demo`` runs it."""
    folder = Path(tempfile.mkdtemp(prefix="dctconv-docs-"))
    run_cli("compress", str(CAMERA), "-o", str(folder), "--sweep", "--jobs", "1")
    return folder


@block("compress-camera", deterministic=False)
def _compress_camera() -> str:
    """The default compress of camera.png, and the BD-rates its sweep prints."""
    folder = _compressed_camera()
    metrics = json.loads((folder / "camera_metrics.json").read_text())
    sweep = json.loads((folder / "camera_sweep.json").read_text())
    lines = [
        f"At the defaults (4 x 4 blocks, quality {metrics['quality']}) `camera.png` takes "
        f"{metrics['bits_per_pixel']:.3f} bits per pixel ({metrics['compressed_bytes']:,} bytes) for "
        f"{metrics['psnr_db']:.2f} dB PSNR (SSIM {metrics['ssim']:.4f}). BD-rates of dctconv (quality "
        "5 .. 95, 4 x 4 blocks) against each curve of its sweep (negative: dctconv needs fewer bits "
        "for the same quality):",
        "",
        "| against | at equal PSNR | at equal SSIM | PSNR range shared |",
        "|---|---|---|---|",
    ]

    def percent(value):
        return "n/a" if value is None else f"{value:+.1f} %"

    for anchor, rates in sweep["bd_rates"].items():
        lines.append(f"| {sweep['curves'][anchor]['label']} | {percent(rates['psnr_percent'])} | "
                     f"{percent(rates['ssim_percent'])} | {100 * rates['psnr_overlap']:.0f} % |")
    return "\n".join(lines) + "\n"


# --- science ------------------------------------------------------------------------------


def _science_images():
    """tests/science_images.py: the synthetic micrographs, elevation maps and fields of the tests."""
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        import science_images
    finally:
        sys.path.remove(str(ROOT / "tests"))
    return science_images


def _science_transcript(prepare, commands) -> str:
    """Run ``prepare()`` and then each (args, expect, stderr) in a fresh folder: the transcript."""
    transcript = []
    with tempfile.TemporaryDirectory(prefix="dctconv-docs-") as folder, _working_directory(folder):
        prepare()
        for args, expect, with_stderr in commands:
            transcript.append("$ dctconv " + " ".join(args))
            output = run_cli(*args, expect=expect, stderr=with_stderr)
            # The progress line of a multi-file run is for terminals, not for this page.
            transcript.append("\n".join(line for line in output.rstrip().splitlines()
                                        if not line.startswith("compress ")))
    return fenced("\n".join(transcript))


@block("science-micrograph")
def _science_micrograph() -> str:
    """A stack of three 16-bit micrographs (12-bit camera), one range for the series, a bound of 4 counts."""
    import numpy as np
    from PIL import Image

    images = _science_images()

    def prepare():
        os.mkdir("stack")
        for z in range(3):
            Image.fromarray(images.micrograph((96, 96), seed=30 + z)).save(f"stack/cell_z{z}.png")

    files = [f"stack/cell_z{z}.png" for z in range(3)]
    return _science_transcript(prepare, [
        (("compress", *files, "-o", "out", "--data-range", "0:4095", "--max-error", "4", "--no-pictures",
          "--jobs", "1"), 0, False),
        (("verify", "out/cell_z1_compressed.dctz", "stack/cell_z1.png"), 0, False),
    ])


@block("science-dem")
def _science_dem() -> str:
    """A 16-bit elevation map (0..840): the default, a bound of 2 m, lossless."""
    from PIL import Image

    images = _science_images()

    def prepare():
        Image.fromarray(images.terrain((128, 128), low=0, high=840, seed=40)).save("dem.png")

    return _science_transcript(prepare, [
        (("compress", "dem.png", "-o", "default", "--no-pictures"), 0, False),
        (("compress", "dem.png", "-o", "bound", "--max-error", "2", "--no-pictures"), 0, False),
        (("compress", "dem.png", "-o", "lossless", "--max-error", "0", "--no-pictures"), 0, False),
        (("verify", "lossless/dem_compressed.dctz", "dem.png"), 0, False),
    ])


@block("science-field")
def _science_field() -> str:
    """A float32 field in metres with NaN no-data pixels, at a bound of 5 cm."""
    import numpy as np
    from PIL import Image

    images = _science_images()

    def prepare():
        field = images.terrain((128, 128), low=236.0, high=1076.0, seed=41, dtype=np.float32)
        Image.fromarray(images.with_holes(field, count=3, radius=12, seed=42)).save("field.tif")

    return _science_transcript(prepare, [
        (("compress", "field.tif", "-o", "out", "--max-error", "0.05", "--no-pictures"), 0, True),
    ])


@block("science-steps")
def _science_steps() -> str:
    """How encode chooses its steps under a bound alone: the candidates, from the code."""
    from dctconv.codec import _bound

    qualities = ", ".join(map(str, _bound.TRIAL_QUALITIES))
    factors = ", ".join(f"{f:g}" for f in _bound.STEP_FACTORS)
    deltas = " and then ".join(f"{d}" for d in _bound.REFINE_DELTAS)
    return (f"the qualities {qualities} (steps over the data range) and the flat steps {factors} times E "
            f"(times max(E, 1/2) for integers) and no DCT levels at all (a flat step that rounds every level to "
            f"0: the residual is then the image itself, quantized to the bound, and ADRP predicts it pixel by "
            f"pixel as JPEG-LS does), each tried on the central {_bound.TRIAL_SIDE} x "
            f"{_bound.TRIAL_SIDE} pixels of the image (all of it when smaller); when a quality gives the "
            f"smallest file, the qualities {deltas} on either side of the best so far are tried too. The "
            "candidate whose file is smallest, residual included (in the trial, coded in ADRS under DCT levels and "
            "in ADRP with none), is used for the whole image, whose file holds the smaller of the two codings of "
            "its residual.\n")


@block("science-limits")
def _science_limits() -> str:
    """Where dctconv misses its targets against SZ3 and JPEG-LS, from bench_science.json, and why."""
    results = json.loads(_results("bench_science.json"))
    bounds, lossless = results["bounds"], results["lossless"]
    missed = sorted((r for r in bounds["rows"] if r["over_better"] > 1), key=lambda r: -r["over_better"])
    names = {"sz3": "SZ3", "jpegls": "JPEG-LS"}
    lines = []
    if missed:
        listed = "; ".join(f"{r['image']} at {100 * r['share']:g} % ({100 * (r['over_better'] - 1):.1f} % larger than "
                           f"{names[r['better_anchor']]})" for r in missed)
        lines.append(f"At the default block size dctconv is larger than the better anchor in {len(missed)} of "
                     f"{len(bounds['rows'])} cases: {listed}.")
    else:
        lines.append(f"At the default block size dctconv is no larger than the better anchor in any of the "
                     f"{len(bounds['rows'])} cases.")
    worst = max(lossless["rows"], key=lambda r: r["over_jpegls"])
    best_jxl = min(r["jpegxl_bpp"] / r["dctconv_bpp"] for r in lossless["rows"])
    lines.append(
        f"Lossless, dctconv is {100 * (lossless['geometric_mean_over_jpegls'] - 1):+.1f} % against JPEG-LS on "
        f"average (worst {worst['image']}, {100 * (worst['over_jpegls'] - 1):+.1f} %), and JPEG XL's lossless mode "
        f"is smaller than both (down to {100 * best_jxl:.0f} % of dctconv's size). With 8 x 8 blocks (`-n 8`) the "
        f"averages are {bounds['n8_geometric_mean_over_better']:.3f} of the better anchor under a bound and "
        f"{lossless['n8_geometric_mean_over_jpegls']:.3f} of JPEG-LS lossless.")
    rows = bounds["rows"] + lossless["rows"]
    bare = [r for r in rows if r["chosen"].startswith("no levels")]
    kept = sorted({f"{r['image']} at {100 * r['share']:g} %" for r in bounds["rows"]
                   if not r["chosen"].startswith("no levels")})
    lines.append("")
    lines.append(
        f"Which coding wins: the encoder's trial chooses no DCT levels at all in {len(bare)} of the {len(rows)} "
        f"files above (the `chosen` columns), every lossless one included; DCT levels win in the others "
        f"({'; '.join(kept) if kept else 'none'}). Against the same "
        f"encoder with its residual in ADRS only, the files are {bounds['geometric_mean_over_before']:.3f} of "
        f"that size under a bound and {lossless['geometric_mean_over_before']:.3f} lossless (geometric means).")
    lines.append("")
    lines.append(
        "What limits it: at a bound of a few units, and losslessly, the image is best coded pixel by pixel, "
        "as JPEG-LS codes it: each value predicted from its decoded neighbours by LOCO-I's median edge "
        "detector, the prediction's bias corrected per context of local gradients, and the error coded. dctconv "
        "does this in section ADRP with the engine's adaptive binary contexts, which is where it gains on "
        "JPEG-LS's Golomb codes; what is left is the predictor. One fixed predictor per pixel "
        "cannot follow every texture: JPEG XL's lossless mode blends several predictors by their recent errors "
        "and learns a context tree per image, and is smaller still (above). On photon-noise-limited data "
        "(the micrograph) every coder is near the noise's own entropy, and the differences are a few per cent. "
        "As the bound grows the DCT levels take over on smooth fields (the DCT rows above), and larger blocks "
        "help more there (the -n 8 columns); 8 x 8 blocks are the user's choice (`-n 8`), not the encoder's. "
        "A file with no levels shows them as what it holds: one flat step far above any coefficient, K = 1, "
        "0 % nonzero.")
    return "\n".join(lines) + "\n"


@block("bench-science")
def _bench_science() -> str:
    text = _results("bench_science.md")
    return _demote(text.split("\n", 1)[1].strip(), 1) + "\n"


# --- formats ------------------------------------------------------------------------------


@block("codec-file-layout")
def _codec_file_layout() -> str:
    """The byte layout of the codec's file, as the docstring of dctconv.codec._dctz states it."""
    import textwrap

    from dctconv.codec import _dctz as codec_file

    doc = codec_file.__doc__
    start = doc.index("::\n\n") + 4
    end = doc.index("\n\n", start)
    # The paragraph after the table says how the sections are filled in a special case.
    after = doc[end + 2 :].split("\n\n")[0]
    return fenced(textwrap.dedent(doc[start:end])) + "\n" + " ".join(after.split()) + "\n"


# --- benchmarks: from the committed results files, never re-measured here ------------------


def _results(name: str) -> str:
    return (RESULTS / name).read_text(encoding="utf-8")


def _demote(text: str, by: int) -> str:
    return re.sub(r"^#+", lambda m: "#" * (len(m[0]) + by), text, flags=re.M)


@block("bench-transform")
def _bench_transform() -> str:
    text = _results("bench_transform.md")
    return text.split("\nAll cases:")[0].rstrip() + "\n"


#: Modules of the flat layout before 36d2045, as a results file recorded before it names them,
#: and where the same functions live now: the pages name code that exists.
_MOVED_MODULES = {"image_io": "io._images", "coefficient_file": "io._npz", "pictures": "measure._mosaics",
                  "pipeline": "runtime._jobs", "plots": "measure._figures", "metrics": "measure._metrics"}


def _current_names(text: str) -> str:
    """Function names of an older results file under their modules of today (image_io: io._images)."""
    return re.sub(r"`(\w+)\.(\w+)`", lambda m: f"`{_MOVED_MODULES.get(m[1], m[1])}.{m[2]}`", text)


@block("bench-cli")
def _bench_cli() -> str:
    text = _results("bench_cli.md")
    # Section 5, the large image, is shown once, from its own run (bench-large).
    text = re.sub(r"^## A large image\n.*?(?=^## |^\(load average at the end|\Z)", "", text, flags=re.M | re.S)
    # The file's own title line would repeat the page's heading.
    return _current_names(_demote(text.split("\n", 1)[1].strip(), 1)) + "\n"


@block("bench-layers")
def _bench_layers() -> str:
    text = _results("bench_layers.md")
    return _demote(text.split("\n", 1)[1].strip(), 1) + "\n"


@block("bench-codec")
def _bench_codec() -> str:
    text = _results("bench_codec.md")
    return _demote(text.split("\n", 1)[1].strip(), 1) + "\n"


@block("tune-rdoq")
def _tune_rdoq() -> str:
    text = _results("tune_rdoq.md")
    return text.split("\n", 2)[2].strip() + "\n"  # below its title: the page's paragraph introduces it


@block("bench-compress")
def _bench_compress() -> str:
    """The compress command's speed from bench_codec.json, beside the encode and WebP's encode."""
    speed = json.loads(_results("bench_codec.json"))["speed"]
    seconds, webp = speed["median_seconds"], speed["median_seconds"]["webp_encode"]
    ratio = speed["compress_over_webp"]
    rows = [
        ("`dctconv compress PHOTO.png -o DIR` (a new process, every output)", seconds["compress"]),
        ("`dctconv.encode(image)` alone (in the benchmark's process)", seconds["encode"]),
        ("Pillow's WebP encode (method 6, quality 75)", webp),
    ]
    lines = [
        f"{speed['side']} x {speed['side']} 8-bit photo, median of {speed['rounds']} interleaved rounds "
        f"(load average {speed['load_average']['start'][0]:.2f} at the start, "
        f"{speed['load_average']['end'][0]:.2f} at the end):",
        "",
        "| run | s | over WebP's encode |",
        "|---|---:|---:|",
        *(f"| {name} | {value:.2f} | {value / webp:.2f} |" for name, value in rows),
        "",
        f"Target (issue 19): compress with every output within 2 times WebP's encode: "
        f"{'met' if ratio <= 2 else f'**missed** ({ratio:.2f} times)'}.",
    ]
    return "\n".join(lines) + "\n"


@block("bench-compress-stages")
def _bench_compress_stages() -> str:
    """Where the time of one compress of the photo goes: the timed functions of bench_codec.json, in time order."""
    speed = json.loads(_results("bench_codec.json"))["speed"]
    profile = speed.get("compress_stages")
    if profile is None:
        return "Not measured yet: `python benchmarks/bench_codec.py --only speed`.\n"
    events = sorted(profile["events"], key=lambda e: e["start"])
    whole = next(e for e in events if e["function"] == "runtime._jobs.compress_file")
    # The warm-up runs the timed functions on a tiny image: its own row covers them.
    warm = [(e["start"], e["start"] + e["seconds"]) for e in events if e["function"] == "runtime._jobs._import_all"]
    events = [e for e in events if e["main"] or e["function"] == "runtime._jobs._import_all"
              or not any(start <= e["start"] < end for start, end in warm)]
    lines = [
        f"One `dctconv compress PHOTO.png -o DIR` of the {speed['side']} x {speed['side']} photo in a new process, "
        f"{profile['wall']:.2f} s from its start to its exit (load average {profile['load_average'][0]:.2f}), "
        f"at most {profile['max_rss_mib']:.0f} MiB resident; its functions timed where they are called "
        "(seconds from the process's start; \"second\": the thread beside the main one, "
        "`runtime._background`):",
        "",
        "| step | function | thread | starts at | s |",
        "|---|---|---|---:|---:|",
        f"| start-up: Python, imports, the command line | | main | 0.00 | {whole['start']:.2f} |",
    ]
    for event in events:
        thread = "main" if event["main"] else "second"
        lines.append(f"| {event['what']} | `{event['function']}` | {thread} | {event['start']:.2f} "
                     f"| {event['seconds']:.2f} |")
    end = whole["start"] + whole["seconds"]
    lines.append(f"| the result printed, the process's exit | | main | {end:.2f} | {profile['wall'] - end:.2f} |")
    return "\n".join(lines) + "\n"


@block("bench-first-call")
def _bench_first_call() -> str:
    """The first call's latency (numba compiling, or loading its cache) from bench_codec.json."""
    latency = json.loads(_results("bench_codec.json")).get("latency")
    if latency is None:
        return "Not measured yet: `python benchmarks/bench_codec.py --only latency`.\n"
    cold, warm = latency["cold"], latency["warm"]
    load = latency["load_average"]
    return "\n".join([
        f"A new process encoding and decoding a 64 x 64 image, median of {latency['rounds']} "
        f"(load average {load['start'][0]:.2f} at the start, {load['end'][0]:.2f} at the end):",
        "",
        "| numba cache | import dctconv + numpy | first encode | first decode |",
        "|---|---:|---:|---:|",
        f"| empty: the engine compiles | {cold[0]:.2f} s | {cold[1]:.2f} s | {cold[2]:.2f} s |",
        f"| written: its machine code is loaded | {warm[0]:.2f} s | {warm[1]:.2f} s | {warm[2]:.2f} s |",
    ]) + "\n"


@block("bench-large")
def _bench_large() -> str:
    text = _results("large/bench_cli.md").split("\n", 1)[1].strip()
    # Its one section's heading is the page's own ("A large image").
    return re.sub(r"\A## [^\n]*\n+", "", text) + "\n"


def _duration(seconds: float) -> str:
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.0f} h"
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


@block("scale-batch")
def _scale_batch() -> str:
    """bench_batch's table, then files/s per worker and what that makes of a million images."""
    text = _demote(_results("bench_batch.md").split("\n", 1)[1].strip(), 1)
    data = json.loads(_results("bench_batch.json"))
    machine, runs = data["machine"], data["runs"]
    workers = (1, 10, 100, 1000)
    lines = [
        f"Measured on {machine['cpus']} CPUs (load average {machine['load_at_start']} at the start), "
        f"{machine['files']:,} files of {machine['side']} x {machine['side']} "
        "(benchmarks/results/bench_batch.md):", "", text, "",
        "Per worker (the two-worker cluster's rate halved; --jobs 2 halved for one local process), and the "
        "time for 1,000,000 such images on N workers if the rate per worker held:", "",
        "| command | files/s per worker | " + " | ".join(f"N = {n:,}" for n in workers) + " |",
        "|---|---:|" + "---:|" * len(workers),
    ]
    for command in ("transform", "compress"):
        for place, label in ((f"{command} --no-pictures --scheduler (2 workers)", "dask worker"),
                             (f"{command} --no-pictures --jobs 2", "--jobs process")):
            rate = runs[place]["files_per_s"] / 2
            lines.append(f"| `{command} --no-pictures` ({label}) | {rate:.0f} | "
                         + " | ".join(_duration(1e6 / (rate * n)) + (" †" if rate * n > SCHEDULER_BOUND else "")
                                      for n in workers) + " |")
    lines += ["", f"† More than {SCHEDULER_BOUND:,} files/s in all: one dask scheduler would be the limit "
              "(see below), not the workers."]
    return "\n".join(lines) + "\n"


#: Tasks per second past which one dask scheduler, not its workers, limits a batch: dask's
#: documentation puts the scheduler's overhead at up to about 1 ms per task.
SCHEDULER_BOUND = 1000


@block("bench-faults")
def _bench_faults() -> str:
    # The file's own title line would repeat the page's heading.
    return _results("bench_faults.md").split("\n", 1)[1].strip() + "\n"


@block("bench-faults-decode", deterministic=False)
def _bench_faults_decode() -> str:
    return _results("bench_faults_decode.md").split("\n", 1)[1].strip() + "\n"


# --- pictures -----------------------------------------------------------------------------


@picture("pictures-transform")
def _pictures_transform(images: Path) -> None:
    """The 16 kernels and the maps of camera.png, as ``dctconv transform --kernels`` draws them."""
    with tempfile.TemporaryDirectory(prefix="dctconv-docs-") as folder:
        run_cli("transform", str(CAMERA), "-o", folder, "--kernels")
        shutil.copy(Path(folder) / "kernels_4.png", images / "kernels_4.png")
        shutil.copy(Path(folder) / "camera_maps.png", images / "camera_maps.png")


@picture("pictures-compress")
def _pictures_compress(images: Path) -> None:
    """The summary and sweep figures of camera.png, as ``make demo`` writes them."""
    folder = _compressed_camera()
    for name in ("camera_summary.png", "camera_sweep.png"):
        shutil.copy(folder / name, images / name)


@picture("pictures-science")
def _pictures_science(images: Path) -> None:
    """The sweep of a 16-bit elevation map (0..840, 256 x 256) and of a float field against the codecs of science."""
    import numpy as np
    from PIL import Image

    science = _science_images()
    with tempfile.TemporaryDirectory(prefix="dctconv-docs-") as folder:
        folder = Path(folder)
        Image.fromarray(science.terrain((256, 256), low=0, high=840, seed=40)).save(folder / "dem16.png")
        run_cli("compress", str(folder / "dem16.png"), "-o", str(folder / "out"), "--sweep", "--jobs", "1")
        shutil.copy(folder / "out" / "dem16_sweep.png", images / "science_dem16_sweep.png")


# --- the command --------------------------------------------------------------------------


def stale(names=None) -> list[str]:
    """Names of the deterministic blocks whose committed text differs from a fresh run."""
    committed = committed_blocks()
    out = []
    for name, entry in BLOCKS.items():
        if (names and name not in names) or not entry.deterministic:
            continue
        fresh = entry.render()
        if any(body != fresh for _, body in committed.get(name, [])):
            out.append(name)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="generators to run (default: all)")
    parser.add_argument("--check", action="store_true", help="only report stale deterministic blocks")
    parser.add_argument("--list", action="store_true", help="list the generators and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, entry in BLOCKS.items():
            print(f"{name}  (block{'' if entry.deterministic else ', not compared by the tests'})")
        for name in PICTURES:
            print(f"{name}  (pictures)")
        return 0
    unknown = [name for name in args.names if name not in BLOCKS and name not in PICTURES]
    if unknown:
        parser.error(f"no generator named {', '.join(unknown)}; see --list")
    committed = committed_blocks()
    orphans = sorted(set(committed) - set(BLOCKS))
    if orphans:
        print(f"error: pages mark blocks no generator makes: {', '.join(orphans)}", file=sys.stderr)
    if args.check:
        names = stale(args.names)
        for name in names:
            print(f"stale: {name} (run: python docs/generate.py {name})")
        return 1 if names or orphans else 0
    wanted = args.names or [*BLOCKS, *PICTURES]
    missing = [name for name in wanted if name in BLOCKS and name not in committed]
    for name in missing:
        print(f"warning: no page marks the block {name}", file=sys.stderr)
    # One failing generator (a command whose output changed shape) must not stop the others:
    # its blocks and pictures stay as they were, and the run exits 1 naming it.
    failed = list(orphans)
    rendered = {}
    for name in wanted:
        try:
            if name in BLOCKS:
                rendered[name] = BLOCKS[name].render()
            else:
                PICTURES[name](IMAGES)
                print(f"pictures: {name}")
        except Exception:
            failed.append(name)
            print(f"error: generator {name} failed:", file=sys.stderr)
            traceback.print_exc()
    for page in write_blocks(rendered):
        print(f"updated {page.relative_to(ROOT)}")
    if _compressed_camera.cache_info().currsize:
        shutil.rmtree(_compressed_camera(), ignore_errors=True)
    if failed:
        print(f"error: left as they were: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
