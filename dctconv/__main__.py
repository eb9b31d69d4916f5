"""``python -m dctconv``: the same command line as the installed ``dctconv`` script."""

from dctconv.cli import cli

if __name__ == "__main__":
    cli(prog_name="dctconv")
