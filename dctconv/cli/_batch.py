"""Batch plumbing of the commands: the input files, where they run, and each failure in one line."""

from __future__ import annotations

import functools
import sys
import traceback
from pathlib import Path

import click

from ..errors import DctconvError
from ..runtime._parallel import Interrupted
from ..runtime._parallel import run_each as _run_each_here
from ._report import error_line, one_line


def unexpected_error_line(source, exc: BaseException, debug: bool) -> str:
    """Report an exception dctconv did not raise on purpose: a traceback only with --debug."""
    if debug:
        traceback.print_exception(exc)
    if isinstance(exc, MemoryError):
        return error_line(source, "not enough memory to process it")
    if isinstance(exc, ImportError):
        return error_line(source, import_failure(exc))
    detail = str(exc).strip()
    detail = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return error_line(
        source, f"internal error ({detail}); rerun with --debug for the traceback"
    )


#: What the loader says when a memory limit (ulimit -v) stops it mapping a compiled module.
_NO_MEMORY_TO_LOAD = ("failed to map segment from shared object", "cannot allocate memory")


def _package_of(exc: BaseException) -> str | None:
    """The installed package an ImportError comes from ("numpy"), by its file or its name."""
    path = Path(getattr(exc, "path", None) or "")
    for folder in ("site-packages", "dist-packages"):
        if folder in path.parts[:-1]:
            return path.parts[path.parts.index(folder) + 1]
    name = getattr(exc, "name", None)
    return name.split(".")[0] if name else None


def import_failure(exc: ImportError) -> str:
    """Why a library could not be imported: most often a memory limit, else a broken install."""
    chain, cause = [], exc
    while cause is not None and len(chain) < 10:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    module = next(filter(None, map(_package_of, chain)), "a library dctconv needs")
    text = " ".join(str(e) for e in chain).lower()
    if any(isinstance(e, MemoryError) for e in chain) or any(words in text for words in _NO_MEMORY_TO_LOAD):
        return f"not enough memory to load {module}; raise the memory limit (ulimit -v) or free memory"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"cannot load {module} ({first}); reinstall dctconv's dependencies (make install)"


def report_failure(item, exc: BaseException, debug: bool) -> None:
    if isinstance(exc, DctconvError):
        click.echo(error_line(item, exc), err=True)
    else:  # an internal bug: still one line, unless --debug
        click.echo(unexpected_error_line(item, exc, debug), err=True)


def run_each(ctx, items, work, *, label: str, cluster: bool = False, skip=None, **options):
    """:func:`dctconv.runtime._parallel.run_each`, each failure reported in one line as it happens.

    With ``cluster`` and --scheduler or --scheduler-file given, the files are tasks
    on that dask cluster (:mod:`dctconv.runtime._cluster`); the connection is made, or
    refused in one line, before the first file. ``skip(items)`` (--skip-existing,
    :func:`skip_up_to_date`) gives the items left to do; it is applied after the
    inputs whose outputs would collide are refused, so that a skipped input still
    keeps a later one of the same name from overwriting its outputs.
    """
    refused = []
    if skip is not None:
        output_name = options.get("output_name")
        if output_name is not None:
            from ..runtime._parallel import refuse_same_output_names

            items, refused = refuse_same_output_names(items, output_name)
            for item, exc in refused:
                report_failure(item, exc, debug=bool(ctx.obj["debug"]))
        items = skip(items)
    try:
        results, failed = _run_each(ctx, items, work, label=label, cluster=cluster, **options)
        return results, failed or bool(refused)
    except Interrupted as stop:
        if stop.total > 1:
            click.echo(interrupted_line(stop), err=True)
        raise


#: How many finished files the line after an interrupt names.
_NAMED = 10


def interrupted_line(stop: Interrupted) -> str:
    """The line that says which files a run finished before Ctrl-C or SIGTERM stopped it."""
    done = len(stop.finished)
    if not done:
        return f"Note: interrupted before any of the {stop.total} files finished; none left outputs"
    names = ", ".join(str(item) for item in stop.finished[:_NAMED])
    if done > _NAMED:
        names += f" and {done - _NAMED} more"
    return one_line(
        f"Note: interrupted; {done} of {stop.total} files finished, their outputs complete: {names}; "
        "the others left none (--skip-existing resumes the run)"
    )


def _progress_bar(length: int, label: str):
    """click's progress bar on stderr: how many of the files have finished."""
    return click.progressbar(length=length, label=label, file=sys.stderr)


def _run_each(ctx, items, work, *, label: str, cluster: bool = False, **options):
    report = functools.partial(report_failure, debug=bool(ctx.obj["debug"]))
    place = ctx.meta.get("dctconv.place", {})
    if not (cluster and ("scheduler" in place or "scheduler_file" in place)):
        # Temporaries that killed runs (SIGKILL, a crash) of this machine left in the output
        # folders go before and after the run, as a cluster run's do.
        folders = ctx.meta.get("dctconv.output_dirs", ())
        _remove_stale_temporaries(folders)
        try:
            return _run_each_here(items, work, label=label, on_failure=report, progress=_progress_bar, **options)
        finally:
            _remove_stale_temporaries(folders)
    from ..runtime._cluster import WORKER_TIMEOUT, connect, map_on_cluster, silence_logging

    silence_logging()
    client = connect(place.get("scheduler"), scheduler_file=place.get("scheduler_file"))
    try:
        def backend(items, work, **_):  # jobs and preload are the workers' business
            return map_on_cluster(items, work, client=client, label=f"dctconv-{label}",
                                  worker_timeout=ctx.meta.get("dctconv.worker_timeout", WORKER_TIMEOUT),
                                  output_dirs=ctx.meta.get("dctconv.output_dirs", ()))

        return _run_each_here(items, work, label=label, on_failure=report, backend=backend, progress=_progress_bar,
                              **options)
    finally:
        client.close(timeout=5)


def on_cluster(ctx) -> bool:
    """Whether --scheduler or --scheduler-file was given."""
    return bool(ctx.meta.get("dctconv.place", {}).keys() & {"scheduler", "scheduler_file"})


def for_workers(ctx, inputs, output_dir):
    """``inputs`` and ``output_dir``, made absolute when they go to a cluster's workers.

    The workers do not share this process's working folder, so a relative path
    would name another file there (or none). The output folder is also where every
    run, here or on a cluster, removes the temporaries that killed processes of this
    machine left (``Path()``, which ``verify`` gives, writes nothing: none).
    """
    if output_dir != Path():
        ctx.meta.setdefault("dctconv.output_dirs", []).append(output_dir.absolute())
    if not on_cluster(ctx):
        return list(inputs), output_dir
    return [path.absolute() for path in inputs], output_dir.absolute()


def _remove_stale_temporaries(folders) -> None:
    """:func:`dctconv.io._atomic.remove_stale_temporaries` in each output folder of a run here."""
    from ..io._atomic import remove_stale_temporaries

    for folder in folders:
        remove_stale_temporaries(folder)


def skip_up_to_date(items, *, command: str, work, out_dir, stem_of):
    """The items not up to date (:func:`dctconv.runtime._records.up_to_date`), with a note of how many were skipped.

    ``work`` is the ``functools.partial`` of the per-file function: its keywords are
    the settings the records are compared with.
    """
    from ..runtime._records import settings_of, up_to_date

    settings = settings_of(command, work.keywords)
    left = [item for item in items
            if not up_to_date(item, out_dir=out_dir, stem=stem_of(item), command=command, settings=settings)]
    if len(left) < len(items):
        click.echo(f"Note: skipped {len(items) - len(left)} of {len(items)} inputs whose outputs are there, "
                   "whole, and made from the same content with the same settings (--skip-existing)", err=True)
    return left


def input_files(paths, *, coefficient_files: bool = False) -> tuple[list[Path], list[str], list[str]]:
    """The files to process: each folder replaced by its files, each file once.

    A folder stands for the files directly in it (sorted by name, not recursive,
    hidden files skipped) that are images, or with ``coefficient_files`` coefficient
    and compressed files, by their content (:func:`dctconv.io._kinds.kind_of`). A
    file given again (the same path, or another name of it) is processed once, with a note.

    Returns the files, one error line (:func:`error_line`) per folder that holds
    none, and the note lines.
    """
    files, errors, notes, seen = [], [], [], set()
    for path in paths:
        if path.is_dir():
            from ..io import _kinds as kinds

            wanted = kinds.COEFFICIENT_KINDS if coefficient_files else (kinds.IMAGE,)
            found = kinds.files_in(path, wanted)
            if not found:
                if coefficient_files:
                    what = "no coefficient file (.npz) or compressed file (.dctz)"
                else:
                    from ..io._images import FORMAT_NAMES

                    what = f"no image file in a format dctconv reads ({FORMAT_NAMES})"
                errors.append(error_line(path, f"folder holds {what}"))
        else:
            found = [path]
        for file in found:
            key = file.resolve()
            if key in seen:
                notes.append(one_line(f"Note: {file}: given more than once; processed once"))
            else:
                seen.add(key)
                files.append(file)
    return files, errors, notes
