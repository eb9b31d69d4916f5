"""Options shared by the commands, each a decorator, and the checks they run when parsed."""

from __future__ import annotations

import math
from pathlib import Path

import click

from ..limits import DEFAULT_BLOCK_SIZE, DEFAULT_MAX_PIXELS, MAX_BLOCK_SIZE, MIN_BLOCK_SIZE


class WholeNumber(click.IntRange):
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


class BlockSize(WholeNumber):
    """A block size from MIN_BLOCK_SIZE to MAX_BLOCK_SIZE, or ``auto`` (returned as the string "auto")."""

    def convert(self, value, param, ctx):
        if isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"
        return super().convert(value, param, ctx)


BLOCK_SIZE = BlockSize(MIN_BLOCK_SIZE, MAX_BLOCK_SIZE)
BLOCK_SIZE_RANGE = f"{MIN_BLOCK_SIZE} to {MAX_BLOCK_SIZE}"


def _one_block_size(callback):
    """The callback of a command that keeps one block size per file: ``auto`` is refused in one line."""

    def check(ctx, param, value):
        if value == "auto":
            raise click.BadParameter(
                f"{ctx.command.name} takes one block size per file; auto (block sizes chosen per region) is "
                f"for compress: give a number from {BLOCK_SIZE_RANGE}", ctx=ctx, param=param,
            )
        return value if callback is None else callback(ctx, param, value)

    return check


def block_size_option(
    f=None, *, help=f"Patch side n ({BLOCK_SIZE_RANGE}); the transform has n*n kernels.  [default: {DEFAULT_BLOCK_SIZE}]",
    callback=None, auto: bool = False,
):
    """``@block_size_option``, or ``@block_size_option(help=..., callback=...)`` for a command
    whose default differs or that checks the value against another option; ``auto``: the
    command takes ``--block-size auto`` (the others refuse it in one line)."""

    def decorate(f):
        return click.option(
            "--block-size",
            "-n",
            "block_size",
            type=BLOCK_SIZE,
            default=None,
            callback=callback if auto else _one_block_size(callback),
            metavar="N|auto" if auto else None,
            help=help,
        )(f)

    return decorate if f is None else decorate(f)


def json_option(f):
    return click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")(f)


def max_pixels_option(f):
    return click.option(
        "--max-pixels",
        type=WholeNumber(1),
        default=DEFAULT_MAX_PIXELS,
        show_default=True,
        help="Refuse larger images (Pillow's decompression-bomb guard); raise it for huge images.",
    )(f)


def jobs_option(f):
    return click.option(
        "--jobs",
        "-j",
        type=click.IntRange(1),
        default=None,
        callback=_one_place,
        help="Files processed at once, each in its own process; the output is the same "
             "for any value.  [default: the number of CPUs]",
    )(f)


_PLACE_OPTIONS = {"scheduler": "--scheduler", "scheduler_file": "--scheduler-file", "jobs": "--jobs"}


def _one_place(ctx, param, value):
    """--scheduler, --scheduler-file and --jobs > 1 each say where the files are processed: one at most.

    Each of the three has this callback; the values are kept in ``ctx.meta`` (the
    scheduler options are not passed to the commands; :func:`dctconv.cli._batch.run_each`
    reads them).
    """
    chosen = ctx.meta.setdefault("dctconv.place", {})
    if value is not None and not (param.name == "jobs" and value == 1):
        chosen[param.name] = value
    if len(chosen) > 1:
        if "jobs" in chosen:
            other = next(_PLACE_OPTIONS[name] for name in chosen if name != "jobs")
            message = (f"--jobs runs the files in processes here and {other} on a dask cluster; "
                       "give only one of them")
        else:
            message = "give the scheduler's address (--scheduler) or its file (--scheduler-file), not both"
        raise click.BadParameter(message, ctx=ctx, param=param)
    return value


def _worker_timeout(ctx, param, value):
    """Kept in ``ctx.meta`` for :func:`dctconv.cli._batch.run_each`, as the scheduler options are."""
    ctx.meta["dctconv.worker_timeout"] = value
    return value


def cluster_options(f):
    """``--scheduler ADDRESS``, ``--scheduler-file FILE`` and ``--worker-timeout SECONDS``: each file a
    task on a dask cluster."""
    from ..runtime._cluster import WORKER_TIMEOUT

    f = click.option(
        "--worker-timeout", type=click.FloatRange(0, min_open=True), default=WORKER_TIMEOUT, show_default=True,
        expose_value=False, callback=_worker_timeout, metavar="SECONDS",
        help="With --scheduler: end the run (exit 1, naming the files done and not done) once the "
             "cluster has had no worker for SECONDS.",
    )(f)
    f = click.option(
        "--scheduler-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
        expose_value=False, callback=_one_place, metavar="FILE",
        help="As --scheduler, with the address read from FILE (dask scheduler --scheduler-file FILE).",
    )(f)
    return click.option(
        "--scheduler", metavar="ADDRESS", default=None, expose_value=False, callback=_one_place,
        help="Process each file as a task on the dask cluster whose scheduler is at ADDRESS "
             "(such as tcp://10.0.0.5:8786). Its workers must see the files at the same paths "
             "(a shared file system); paths are made absolute. Needs "
             "pip install \"dctconv[distributed]\".",
    )(f)


def skip_existing_option(f):
    return click.option(
        "--skip-existing", is_flag=True,
        help="Skip an input whose outputs are all there, whole, and were made from its present content "
             "with these settings (to resume an interrupted batch; docs/scale.md).",
    )(f)


def no_pictures_option(f):
    return click.option(
        "--no-pictures", is_flag=True,
        help="Write only the data outputs, none of the pictures (faster for many small files).",
    )(f)


def finite(ctx, param, value):
    """Callback of a float option: refuse inf and nan."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number.", ctx=ctx, param=param)
    return value


class DctconvCommand(click.Command):
    """A click command whose summary in ``dctconv --help`` is its docstring's first line, whole."""

    def get_short_help_str(self, limit: int = 45) -> str:
        # click cuts the summary at about 45 characters and adds "..."; the list of
        # commands wraps long lines instead.
        if self.short_help or not self.help:
            return super().get_short_help_str(limit)
        return self.help.strip().splitlines()[0].strip()


def command(f):
    """``@command``: a dctconv command (:class:`DctconvCommand`) named after the function."""
    return click.command(cls=DctconvCommand)(f)
