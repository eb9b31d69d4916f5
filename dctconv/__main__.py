"""``python -m dctconv``: the same command line as the installed ``dctconv`` script."""

import importlib
import os
import sys


def _unshadow() -> None:
    """Import ``dctconv`` from its install even where a folder named ``dctconv`` hides it.

    ``python -m`` puts the current folder first on ``sys.path``. In the folder that
    holds a clone named ``dctconv``, that clone's top folder (no ``__init__.py``) is
    then a namespace package that wins over an editable install, whose finder comes
    after ``sys.path``; only this file, found through that finder, is the real one.
    The entries of ``sys.path`` that hold such a folder are dropped, and the package
    imported again.
    """
    if getattr(sys.modules.get("dctconv"), "__file__", None) is not None:
        return  # a regular package: the install, or a checkout run in place

    def shadows(entry: str) -> bool:
        folder = os.path.join(entry or os.curdir, "dctconv")
        return os.path.isdir(folder) and not os.path.exists(os.path.join(folder, "__init__.py"))

    sys.path[:] = [entry for entry in sys.path if not shadows(entry)]
    for name in [name for name in sys.modules if name == "dctconv" or name.startswith("dctconv.")]:
        del sys.modules[name]
    importlib.invalidate_caches()


if __name__ == "__main__":
    _unshadow()
    from dctconv.cli import cli

    cli(prog_name="dctconv")
