"""The ``dctconv`` command line: parse options, call the library once per file, report.

Only this module turns library exceptions into messages and exit codes. It imports
no numpy, scipy or Pillow at top level so that ``dctconv --help`` starts fast.
"""

from __future__ import annotations

import functools
import json
import sys
import traceback
from pathlib import Path

import click

from . import __version__
from .errors import DctconvError, TooManyPixelsError

DEFAULT_MAX_PIXELS = 89_478_485  # == image_io.DEFAULT_MAX_PIXELS, without importing numpy


# ---------------------------------------------------------------- shared options


class _WholeNumber(click.IntRange):
    """click.IntRange whose message for a non-number says "integer", not "integer range"."""

    name = "integer"


def _check_output_dir(ctx, param, value):
    # click.Path(file_okay=False) would catch only DIR itself being a file; a file
    # further up (-o notes.txt/out) would surface later, once per input, as a write error.
    if value is None:
        return value
    existing = value
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        where = "" if existing == value else f", so the folder {value} cannot be created"
        raise click.BadParameter(
            f"{existing} is a file, not a folder{where}; give a folder (it is created when missing)",
            ctx=ctx, param=param,
        )
    return value


def output_dir_option(f):
    return click.option(
        "-o",
        "--output-dir",
        "output_dir",
        required=True,
        type=click.Path(path_type=Path),
        callback=_check_output_dir,
        help="Folder for the output files; created when missing.",
    )(f)


BLOCK_SIZE = _WholeNumber(2, 64)


def block_size_option(f):
    return click.option(
        "--block-size",
        "-n",
        "block_size",
        type=BLOCK_SIZE,
        default=None,
        help="Patch side n (2 to 64); the transform has n*n kernels.  [default: 4]",
    )(f)


def json_option(f):
    return click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")(f)


def max_pixels_option(f):
    return click.option(
        "--max-pixels",
        type=_WholeNumber(1),
        default=DEFAULT_MAX_PIXELS,
        show_default=True,
        help="Refuse larger images (Pillow's decompression-bomb guard); raise it for huge images.",
    )(f)


# ---------------------------------------------------------------- error reporting


def _one_line(text: str) -> str:
    # File names and texts read from files may hold newlines or terminal escapes.
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def _error_line(source, exc) -> str:
    """The one line that reports a failure: ``Error: <source>: <what is wrong>[; the fix]``."""
    message = str(exc)
    if isinstance(exc, TooManyPixelsError):
        message += f"; rerun with --max-pixels {exc.pixels} to allow it"
    prefix = "Error: " if source is None else f"Error: {source}: "
    return _one_line(prefix + message)


def _unexpected_error_line(source, exc: BaseException, debug: bool) -> str:
    """Report an exception dctconv did not raise on purpose: a traceback only with --debug."""
    if debug:
        traceback.print_exception(exc)
    if isinstance(exc, MemoryError):
        return _error_line(source, "not enough memory to process it")
    detail = str(exc).strip()
    detail = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return _error_line(
        source, f"internal error ({detail}); rerun with --debug for the traceback"
    )


def run_each(items, work, *, label: str, debug: bool):
    """Call ``work(item)`` for each item; report failures in one line each and go on.

    Returns the list of results of the items that worked and whether any failed.
    A progress bar (click's) is shown on stderr when there is more than one item.
    The loop runs inside :func:`dctconv.atomic.write_once`: an input whose output
    has the name of one an earlier input wrote in this call is refused, not
    allowed to replace it.
    """
    from .atomic import write_once

    results, failed = [], False

    def one(item):
        nonlocal failed
        run.current = item
        try:
            results.append(work(item))
        except DctconvError as exc:
            failed = True
            click.echo(_error_line(item, exc), err=True)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # an internal bug: still one line, unless --debug
            failed = True
            click.echo(_unexpected_error_line(item, exc, debug), err=True)

    with write_once() as run:
        if len(items) > 1:
            with click.progressbar(items, label=label, file=sys.stderr) as bar:
                for item in bar:
                    one(item)
        else:
            for item in items:
                one(item)
    return results, failed


def _report(results, as_json: bool) -> None:
    for result in results:
        for note in result.notes:
            click.echo(f"Note: {result.source}: {note}", err=True)
    if as_json:
        click.echo(json.dumps({"files": [
            {"input": str(r.source), "outputs": [str(p) for p in r.outputs]} for r in results
        ]}, indent=2))
    else:
        for result in results:
            click.echo(f"{result.source} -> {', '.join(str(p) for p in result.outputs)}")


# ---------------------------------------------------------------- commands


class DctconvGroup(click.Group):
    """A click group after which no Python traceback reaches the user.

    click already turns usage errors into exit 2 and Ctrl-C into "Aborted!". Anything
    else a command lets escape (it should not: run_each catches per-file errors)
    becomes one "Error: ..." line and exit 1; ``--debug`` adds the traceback.
    """

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort,
                KeyboardInterrupt, EOFError, SystemExit):
            raise
        except DctconvError as exc:
            click.echo(_error_line(None, exc), err=True)
        except BrokenPipeError:
            raise  # click's main handles a closed pipe (dctconv ... | head)
        except Exception as exc:
            click.echo(_unexpected_error_line(None, exc, bool(ctx.params.get("debug"))), err=True)
        ctx.exit(1)


@click.group(cls=DctconvGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dctconv")
@click.option("--debug", is_flag=True, help="Show the full traceback of unexpected errors.")
@click.pass_context
def cli(ctx, debug):
    """See the block DCT of an image as a strided convolution, and use it.

    Every n x n patch of a grayscale image is transformed by the orthonormal 2-D
    DCT-II; that is one stride-n convolution with n*n fixed kernels, so an H x W
    image becomes n*n coefficient maps of (H/n) x (W/n).

    \b
    Example:
        dctconv transform photo.png -o out --kernels
        dctconv transform --inverse out/photo_coefficients.npz -o out
    """
    ctx.obj = {"debug": debug}


def _reject_with_inverse(ctx, param, value):
    if value is not None and ctx.params.get("inverse"):
        raise click.BadParameter(
            "the coefficient file records it; drop this option with --inverse", ctx=ctx, param=param
        )
    return value


@cli.command()
@click.argument(
    "inputs", nargs=-1, required=True, metavar="IMAGE...",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@output_dir_option
@click.option("--inverse", is_flag=True, is_eager=True,
              help="Read coefficient files (.npz) and write the reconstructed images.")
@click.option("--block-size", "-n", "block_size", type=BLOCK_SIZE, default=None,
              callback=_reject_with_inverse,
              help="Patch side n (2 to 64); the transform has n*n kernels.  [default: 4]")
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default=None,
              callback=_reject_with_inverse,
              help="Precision of the computation and of the stored coefficients.  [default: float64]")
@click.option("--kernels", is_flag=True, help="Also write kernels_<n>.png, the n*n kernels drawn enlarged.")
@max_pixels_option
@json_option
@click.pass_context
def transform(ctx, inputs, output_dir, inverse, block_size, dtype, kernels, max_pixels, as_json):
    """Forward block DCT of images, or (--inverse) images from coefficient files.

    Forward: for each IMAGE write DIR/<stem>_coefficients.npz (the n*n coefficient
    maps and what is needed to invert them) and DIR/<stem>_maps.png (the maps as an
    n x n mosaic, DC top left). Color images are converted to gray first.

    Inverse: for each coefficient file write DIR/<stem>_reconstruction.png (.tif for
    32-bit and float sources) at the bit depth of the original image.

    \b
    Examples:
        dctconv transform photo.png -o out
        dctconv transform *.png -o out --block-size 8 --kernels
        dctconv transform --inverse out/photo_coefficients.npz -o out
    """
    from .pipeline import invert_file, transform_file, write_kernels_picture

    debug = ctx.obj["debug"]
    block_size = block_size or 4
    if inverse:
        work = functools.partial(
            invert_file, out_dir=output_dir, max_pixels=max_pixels, protected=inputs
        )
    else:
        work = functools.partial(
            transform_file, out_dir=output_dir, block_size=block_size,
            dtype=dtype or "float64", max_pixels=max_pixels, protected=inputs,
        )
    results, failed = run_each(list(inputs), work, label="transform", debug=debug)
    if kernels:
        try:
            path = write_kernels_picture(output_dir, block_size, protected=inputs)
            click.echo(f"kernels -> {path}", err=as_json)
        except DctconvError as exc:
            failed = True
            click.echo(_error_line(output_dir, exc), err=True)
    _report(results, as_json)
    if failed:
        ctx.exit(1)
