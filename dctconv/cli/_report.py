"""What the commands print: lines with file names made printable, error lines, and tables."""

from __future__ import annotations

import json

import click

from ..errors import TooManyPixelsError, printable


def one_line(text: str) -> str:
    """``text`` as one printable line: file names and texts read from files may hold newlines or escapes."""
    return printable(text)


def echo(line: str, *, err: bool = False) -> None:
    """Print a line that holds file names (or text read from a file), control characters escaped."""
    click.echo(one_line(line), err=err)


def echo_lines(lines) -> None:
    """Print lines already made printable (:func:`error_line`, notes) on stderr."""
    for line in lines:
        click.echo(line, err=True)


def error_line(source, exc) -> str:
    """The one line that reports a failure: ``Error: <source>: <what is wrong>[; the fix]``."""
    message = str(exc)
    if isinstance(exc, TooManyPixelsError):
        message += f"; rerun with --max-pixels {exc.pixels} to allow it"
    prefix = "Error: " if source is None else f"Error: {source}: "
    return one_line(prefix + message)


def table(rows, *, align: str, rule: bool = False) -> list[str]:
    """Rows of cells as aligned lines: ``align`` has one letter per column, ``l`` or ``r``.

    The first row is the header; with ``rule`` a line of dashes follows it. Columns
    are two spaces apart and no line ends in spaces.
    """
    rows = [tuple(row) for row in rows]
    if rule:
        widths = [max(len(row[i]) for row in rows) for i in range(len(align))]
        rows.insert(1, tuple("-" * w for w in widths))
    widths = [max(len(row[i]) for row in rows) for i in range(len(align))]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) if side == "l" else cell.rjust(width)
                 for cell, width, side in zip(row, widths, align, strict=True)]
        lines.append("  ".join(cells).rstrip())
    return lines


def notes(results) -> None:
    """Each result's notes on stderr, as ``Note: <input>: <note>``."""
    for result in results:
        for note in result.notes:
            echo(f"Note: {result.source}: {note}", err=True)


def file_list(results, as_json: bool) -> None:
    """The inputs and what each produced: ``input -> output, ...`` lines, or ``{"files": [...]}``."""
    notes(results)
    if as_json:
        click.echo(json.dumps({"files": [
            {"input": str(r.source), "outputs": [str(p) for p in r.outputs]} for r in results
        ]}, indent=2))
    else:
        for result in results:
            echo(f"{result.source} -> {', '.join(str(p) for p in result.outputs)}")
