"""The documentation: every command documents itself, the pages are short and linked, and the
listings in them are what the code prints today (docs/generate.py regenerates them)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from hostile import zigzag_mask
from references import ROOT, SAMPLES, reference_blockwise_dct
from dctconv.cli import cli

COMMANDS = sorted(cli.commands)
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]


def _load_generator():
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


generate = _load_generator()
DETERMINISTIC = [name for name, entry in generate.BLOCKS.items() if entry.deterministic]


def test_top_level_help_has_an_example():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "Example" in result.output and "dctconv transform" in result.output


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_with_an_example(name):
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0
    assert re.search(r"Examples?:\n\s+dctconv " + name, result.output), result.output


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_has_help_text(name):
    command = cli.commands[name]
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"{name} {param.opts} has no help"


@pytest.mark.parametrize("name", COMMANDS)
def test_readme_shows_every_command(name):
    assert f"### `dctconv {name}`" in README.read_text()


# --- generated blocks ------------------------------------------------------------------------


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_generated_block_equals_a_fresh_run(name):
    committed = generate.committed_blocks().get(name, [])
    assert committed, f"no page marks the block {name}"
    fresh = generate.BLOCKS[name].render()
    for page, body in committed:
        assert body == fresh, (
            f"{page.relative_to(ROOT)}: block {name} differs from a fresh run; "
            f"run `make docs` (or python docs/generate.py {name}) and commit the result"
        )


def test_every_marked_block_has_a_generator_and_every_generator_a_block():
    committed = generate.committed_blocks()
    assert sorted(set(committed) - set(generate.BLOCKS)) == []
    assert sorted(set(generate.BLOCKS) - set(committed)) == []


def test_every_dependency_says_why_it_is_there():
    names = [name for name, _ in generate.requirements()]
    assert {"click", "numpy", "pytest"} <= set(names)
    missing = sorted(set(names) - set(generate.WHY))
    assert missing == [], "add to WHY in docs/generate.py what each of these does for dctconv"


def test_markers_are_paired():
    for page in PAGES:
        text = page.read_text()
        opened = re.findall(r"^<!-- generated: ([\w.-]+) -->$", text, re.M)
        closed = re.findall(r"^<!-- end: ([\w.-]+) -->$", text, re.M)
        assert opened == closed, f"{page.name}: unpaired generated/end markers"
        assert len(generate.MARKER.findall(text)) == len(opened), page.name


def test_a_generator_replaces_only_its_block(tmp_path, monkeypatch):
    page = tmp_path / "page.md"
    page.write_text(
        "intro\n<!-- generated: one -->\nold\n<!-- end: one -->\n"
        "    <!-- generated: one -->\n    indented example\n    <!-- end: one -->\n"
        "<!-- generated: two -->\nkept\n<!-- end: two -->\n"
    )
    monkeypatch.setattr(generate, "pages", lambda: [page])
    assert generate.write_blocks({"one": "new\n"}) == [page]
    assert page.read_text() == (
        "intro\n<!-- generated: one -->\nnew\n<!-- end: one -->\n"
        "    <!-- generated: one -->\n    indented example\n    <!-- end: one -->\n"
        "<!-- generated: two -->\nkept\n<!-- end: two -->\n"
    )
    assert generate.write_blocks({"one": "new\n"}) == []


# --- the pages ---------------------------------------------------------------------------


def test_readme_is_at_most_12000_bytes():
    size = len(README.read_bytes())
    assert size <= 12_000, f"README.md is {size} bytes; move reference text to docs/"


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_relative_links_resolve(page):
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    targets = [t for t in LINK.findall(text) if not re.match(r"[a-z]+:|#", t)]
    missing = [t for t in targets if not (page.parent / t.split("#")[0]).exists()]
    assert missing == [], f"{page.relative_to(ROOT)} links to missing files"


HEADING = re.compile(r"^#{1,6} +(.+?) *$", re.M)


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the headings of a page: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    found = set()
    for heading in HEADING.findall(text):
        slug = re.sub(r"[^\w\- ]", "", heading.replace("`", "").lower()).replace(" ", "-")
        found.add(slug)
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_link_anchors_name_a_heading_of_their_page(page):
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or "#" not in target:
            continue
        file, anchor = target.split("#", 1)
        linked = (page.parent / file) if file else page
        if linked.suffix == ".md" and linked.exists() and anchor not in anchors(linked):
            broken.append(target)
    assert broken == [], f"{page.relative_to(ROOT)}: links to headings that do not exist"


#: Short names the pages use for things outside dctconv: a module under another name, a
#: class of another library, an array of an example (``x.copy()``), or a library that only an
#: extra the tests do not install brings (torch).
OTHER_NAMES = {"np", "Image", "Figure", "x", "component", "torch"}
#: A backticked name ending in one of these is a file name of an example (``photo_maps.png``) or
#: of another project (``LzmaDec.c``).
EXAMPLE_FILES = {"png", "jpg", "tif", "npz", "dctz", "json", "csv", "md", "txt", "toml", "c", "h"}
CODE = re.compile(r"`([A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)+)(?:\([^`]*\))?`")
PATH = re.compile(r"`((?:dctconv|tests|benchmarks|docs|sample_images)/[\w./-]*|[\w/-]+\.py)`")


def dctconv_names() -> set[str]:
    """Every module and subpackage name of dctconv/ (``transform``, ``_images``, ``io``, ...)."""
    package = ROOT / "dctconv"
    names = {"dctconv"}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package).with_suffix("").parts
        names.update(part for part in parts if part != "__init__")
    return names


def resolve(reference: str) -> bool:
    """Whether ``dctconv.x.y`` (or ``x.y`` inside a subpackage, such as ``_parallel._start_forkserver``) exists."""
    import importlib
    import pkgutil

    import dctconv

    parts = reference.split(".")
    if parts[0] == "dctconv":
        parts = parts[1:]
    packages = [""] + [f"{m.name}." for m in pkgutil.iter_modules(dctconv.__path__) if m.ispkg]
    for prefix in packages:
        for split in range(len(parts), -1, -1):
            try:
                target = importlib.import_module(f"dctconv.{prefix}{'.'.join(parts[:split])}".rstrip("."))
            except ImportError:
                continue
            try:
                for attribute in parts[split:]:
                    target = getattr(target, attribute)
            except AttributeError:
                break
            return True
    return False


def code_references(page: Path) -> tuple[list[str], list[str]]:
    """The dotted names and the file paths that ``page`` puts in backticks (code blocks left out)."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return CODE.findall(text), PATH.findall(text)


@pytest.mark.parametrize("page", PAGES + [ROOT / "docs" / "generate.py"], ids=lambda page: page.name)
def test_every_code_reference_resolves(page):
    """``dctconv.x.y``, ``module.function``, ``path/to/file.py``: each names what the code has today."""
    import importlib.util

    ours = dctconv_names()
    python_files = {path.name for path in ROOT.rglob("*.py") if ".venv" not in path.parts}
    dotted, paths = code_references(page)
    wrong = []
    for reference in dotted:
        first, last = reference.split(".")[0], reference.rsplit(".", 1)[1]
        if last == "py":  # a file: ``_quantize.py``
            if reference not in python_files:
                wrong.append(reference)
        elif first in ours:
            if not resolve(reference):
                wrong.append(reference)
        elif not (last in EXAMPLE_FILES or first in OTHER_NAMES or importlib.util.find_spec(first)):
            wrong.append(reference)  # an old module's name, most likely
    for path in paths:
        if "/" in path:
            if not any((base / path).exists() for base in (ROOT, ROOT / "dctconv")):
                wrong.append(path)
        elif path not in python_files:
            wrong.append(path)
    assert wrong == [], f"{page.relative_to(ROOT)} names code that does not exist"


#: What a reference page does not say: the page of the project's history has dates and
#: issue numbers, and the stories of what was tried.
DIARY = re.compile(r"\b20\d\d-\d\d\b|\b[Ii]ssue \d+|\bwas tried\b|\bthrowaway\b|\bdiary\b|"
                   r"\bcommit [0-9a-f]{7}|\bwent from\b|\bhow it was tuned\b", re.I)


@pytest.mark.parametrize("page", [p for p in PAGES if p.name != "history.md"], ids=lambda page: page.name)
def test_reference_pages_are_in_the_present_tense(page):
    """Hand-written text only: a generated block of benchmark results names the run it comes from
    (its date and commit), which is what a measurement is labelled with, not a diary."""
    text = re.sub(r"\]\([^)]*\)", "]", page.read_text())  # link targets may hold anything
    text = generate.MARKER.sub(lambda m: m["open"] + "\n" * m["body"].count("\n") + m["close"], text)
    found = [f"line {text[:m.start()].count(chr(10)) + 1}: {m[0]!r}" for m in DIARY.finditer(text)]
    assert found == [], f"{page.name}: history belongs in docs/history.md"


def test_the_history_page_dates_its_entries():
    text = (ROOT / "docs" / "history.md").read_text()
    sections = re.split(r"^## ", text, flags=re.M)[1:]
    assert sections
    for section in sections:
        assert re.search(r"\b20\d\d-\d\d-\d\d\b", section), section.split("\n", 1)[0]


def test_errors_md_names_the_commands_that_take_folders(tmp_path):
    """Exit 2 for a folder only where the command takes files alone (tests/hostile.py's COMMANDS say which)."""
    from hostile import COMMANDS as COMMAND_CASES

    row = next(line for line in (ROOT / "docs" / "errors.md").read_text().splitlines() if line.startswith("| 2 |"))
    refused, taken = re.search(r"a folder given to (.+?) \((.+?) take folders", row).groups()
    def named(text):
        return set(re.findall(r"`([a-z -]+)`", text))

    def command_line(case):  # "transform --inverse": the words before the input
        argv = case.argv([tmp_path / "in.png"], tmp_path / "out")  # (some write a companion file beside it)
        return " ".join(argv[: next(i for i, word in enumerate(argv) if word.startswith(str(tmp_path)))])

    assert named(refused) == {command_line(c) for c in COMMAND_CASES if not c.folders}
    assert named(taken) == {command_line(c) for c in COMMAND_CASES if c.folders}


def test_every_page_and_help_says_the_same_of_tif_reconstructions():
    """Which reconstructions are written as .tif: one wording everywhere, and true."""
    from dctconv.io._images import image_suffix

    texts = [page.read_text() for page in PAGES]
    texts += [CliRunner().invoke(cli, [name, "--help"], terminal_width=200).output for name in ("transform", "compress")]
    said = {re.sub(r"\s+", " ", m) for text in texts for m in re.findall(r"\.tif`? for ([^)]*)\)", text)}
    assert said == {"32-bit integer and float sources"}
    assert [image_suffix(mode) for mode in ("L", "I;16", "I", "F")] == [".png", ".png", ".tif", ".tif"]


def test_the_docs_index_links_every_docs_page():
    index = generate.BLOCKS["docs-index"].render()
    for page in PAGES[1:]:
        assert f"[docs/{page.name}](docs/{page.name})" in index


# --- the decoder of docs/formats.md ------------------------------------------------------------


def _decoder_namespace() -> dict:
    text = (ROOT / "docs" / "formats.md").read_text()
    (code,) = [c for c in re.findall(r"```python\n(.*?)```", text, re.S) if "def decode(" in c]
    namespace: dict = {}
    exec(compile(code, "docs/formats.md", "exec"), namespace)
    return namespace


def _decoder():
    namespace = _decoder_namespace()
    return namespace["decode"], namespace["to_8bit"]


def _crop() -> np.ndarray:
    # Odd sides: a decoder must crop the edge padding.
    return np.asarray(Image.open(SAMPLES / "camera.png"))[101:178, 233:323]


def _compressed_npz(path: Path, *, n: int, keep: int, step: float, threshold: float = 0.0) -> Path:
    """A compressed file written from the key table of docs/formats.md, with no dctconv code."""
    pixels = _crop()
    coefficients = reference_blockwise_dct(pixels.astype(np.float64), n)
    mask = zigzag_mask(n, keep)
    kept = coefficients[mask]
    small = np.abs(kept) < threshold
    small[0] = False  # the DC coefficient is always kept
    kept[small] = 0.0
    kept = np.rint(kept / step).astype(np.int32) if step > 0 else kept
    np.savez_compressed(
        path, format_version=1, kind="compressed", block_size=n, image_shape=pixels.shape,
        image_mode="L", source="crop.png", step=float(step), threshold=float(threshold),
        channel_mask=mask, kept=kept,
    )
    return path


@pytest.mark.parametrize(
    "case",
    [
        "transform -n 4",
        "transform -n 8 --dtype float32",
        "compressed n=4 K=6 step=1",
        "compressed n=8 K=10 step=4 T=3",
        "compressed n=4 K=3 step=0",
        "compress --step 0 --keep 5",
        "compress -n 8 --step 0 --keep 20 --threshold 2",
    ],
)
def test_the_decoder_of_formats_md_gives_the_pixels_of_transform_inverse(tmp_path, case):
    decode, to_8bit = _decoder()
    runner = CliRunner()
    if case.split()[0] in ("transform", "compress"):
        image = tmp_path / "crop.png"
        Image.fromarray(_crop()).save(image)
        args = case.split()
        assert runner.invoke(cli, [*args, str(image), "-o", str(tmp_path)]).exit_code == 0
        (npz,) = tmp_path.glob("crop_coefficients.npz" if args[0] == "transform" else "crop_compressed.*")
    else:
        settings = dict(item.split("=") for item in case.split()[1:])
        npz = _compressed_npz(
            tmp_path / "crop_compressed.npz", n=int(settings["n"]), keep=int(settings["K"]),
            step=float(settings["step"]), threshold=float(settings.get("T", 0)),
        )
    out = tmp_path / "inverse"
    result = runner.invoke(cli, ["transform", "--inverse", str(npz), "-o", str(out)])
    assert result.exit_code == 0, result.output
    expected = np.asarray(Image.open(out / "crop_reconstruction.png"))

    decoded = decode(npz)
    assert decoded.shape == expected.shape == (77, 90)
    pixels = to_8bit(decoded)
    # Only an exact .5 tie may round the other way (docs/formats.md says so).
    differ = pixels != expected
    assert np.all(np.abs(pixels.astype(int) - expected)[differ] == 1)
    assert np.allclose(np.abs(decoded[differ] - np.floor(decoded[differ])), 0.5, atol=1e-6)


def test_the_zigzag_of_formats_md_is_jpegs():
    namespace = _decoder_namespace()
    for n in range(2, 10):
        for keep in (1, n, n * n // 2, n * n):
            assert np.array_equal(namespace["zigzag_mask"](n, keep), zigzag_mask(n, keep))


def test_kept_maps_in_zigzag_order_decode_wrongly(tmp_path):
    """The warning of docs/formats.md: the order of the kept maps matters, by up to 255 levels."""
    decode, to_8bit = _decoder()
    npz = _compressed_npz(tmp_path / "right.npz", n=4, keep=6, step=1)
    with np.load(npz, allow_pickle=False) as f:
        arrays = dict(f)
    # Channels in zigzag order for n = 4: 0 1 4 8 5 2; stored ascending: 0 1 2 4 5 8.
    ascending = np.flatnonzero(arrays["channel_mask"])
    zigzag = np.array([0, 1, 4, 8, 5, 2])
    arrays["kept"] = arrays["kept"][np.searchsorted(ascending, zigzag)]
    np.savez_compressed(tmp_path / "zigzag.npz", **arrays)
    error = np.abs(to_8bit(decode(tmp_path / "zigzag.npz")).astype(int) - to_8bit(decode(npz)))
    assert error.max() >= 128


# --- python -m dctconv, --version, shell completion ------------------------------------------


def test_python_m_dctconv_is_the_command_line():
    result = subprocess.run(
        [sys.executable, "-m", "dctconv", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout == "dctconv, version 0.1.0\n"


def test_shell_completion_as_docs_cli_md_shows_it():
    script = Path(sys.executable).with_name("dctconv")
    if not script.exists():
        pytest.skip("no installed dctconv script next to this Python")
    source = subprocess.run(
        [script], env={**os.environ, "_DCTCONV_COMPLETE": "bash_source"},
        capture_output=True, text=True, check=True,
    )
    assert "complete -o nosort -F _dctconv_completion dctconv" in source.stdout
    words = subprocess.run(
        [script],
        env={**os.environ, "_DCTCONV_COMPLETE": "bash_complete", "COMP_WORDS": "dctconv com",
             "COMP_CWORD": "1"},
        capture_output=True, text=True, check=True,
    )
    assert words.stdout.split() == ["plain,compress"]
    assert 'eval "$(_DCTCONV_COMPLETE=bash_source dctconv)"' in (ROOT / "docs" / "cli.md").read_text()
