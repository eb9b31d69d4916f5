"""The ``dctconv`` command line: parse options, call the library once per file, report.

One module per command (:mod:`.transform`, :mod:`.compress`, :mod:`.verify`) over a
small shared core: :mod:`._options` (the options shared by the commands),
:mod:`._batch` (input files, where they run, each failure in one line) and
:mod:`._report` (what is printed, the tables). Only this package turns library
exceptions into messages and exit codes. None of it imports numpy, scipy or Pillow
at top level, so that ``dctconv --help`` starts fast.
"""

from __future__ import annotations

import click

from .. import __version__
from ..errors import DctconvError
from ..runtime._parallel import sigterm_as_ctrl_c
from ._options import DctconvCommand
from ._report import error_line


class DctconvGroup(click.Group):
    """A click group after which no Python traceback reaches the user.

    click already turns usage errors into exit 2 and Ctrl-C into "Aborted!". Anything
    else a command lets escape (it should not: run_each catches per-file errors)
    becomes one "Error: ..." line and exit 1; ``--debug`` adds the traceback.
    """

    command_class = DctconvCommand

    def invoke(self, ctx):
        try:
            with sigterm_as_ctrl_c():  # SIGTERM stops any run as Ctrl-C does: "Aborted!", exit 1
                return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort,
                KeyboardInterrupt, EOFError, SystemExit):
            raise
        except DctconvError as exc:
            click.echo(error_line(None, exc), err=True)
        except BrokenPipeError:
            raise  # click's main handles a closed pipe (dctconv ... | head)
        except Exception as exc:
            from ._batch import unexpected_error_line

            click.echo(unexpected_error_line(None, exc, bool(ctx.params.get("debug"))), err=True)
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


# The package's attributes transform, compress and verify are the modules (for
# monkeypatch and imports by name); the commands are registered from them.
from . import compress, transform, verify  # noqa: E402

cli.add_command(transform.transform)
cli.add_command(compress.compress)
cli.add_command(verify.verify)
