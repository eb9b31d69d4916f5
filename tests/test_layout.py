"""The package's rooms: imports run downward, only the command line imports click, and the
modules inside the subpackages are private by name (docs/development.md, "The layout").

The imports are read from the source with ``ast`` (function-level imports included: a
lazy import is a dependency too), not by importing, so a module that is never imported
by the suite is checked as well.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from references import ROOT
from dctconv.cli import cli

PACKAGE = ROOT / "dctconv"

#: The layers, top to bottom; a module may import its own layer's and lower layers' modules.
#: The four rooms of the middle layer stand side by side (the codec reads files through
#: io's safe opening, io's readers use the codec's zigzag checks).
RANK = {"cli": 3, "runtime": 2, "codec": 1, "io": 1, "measure": 1, "verify": 1}
CORE = 0

#: Upward imports that are the point of their module.
ENTRY_POINTS = {("dctconv.__main__", "dctconv.cli")}  # ``python -m dctconv`` is the command line


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str) -> set[str]:
    """Every module ``name`` imports, anywhere in it, as absolute names."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
                # ``from . import x`` imports the module x; ``from .x import y`` the module x.
                found.update(f"{stem}.{alias.name}" for alias in node.names) if node.module is None \
                    else found.add(stem)
            else:
                found.add(node.module)
    return found


def layer(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in RANK else None


def rank(name: str) -> int:
    room = layer(name)
    return CORE if room is None else RANK[room]


def test_the_import_direction_is_downward():
    upward = []
    for name in MODULES:
        for target in imports(name):
            if not target.startswith("dctconv") or (name, target) in ENTRY_POINTS:
                continue
            if rank(target) > rank(name):
                upward.append(f"{name} imports {target}")
    assert upward == [], "a lower layer imports a higher one (docs/development.md, The layout)"


@pytest.mark.parametrize("room", ["codec", "io", "measure", "verify"])
def test_the_library_rooms_import_neither_the_command_line_nor_the_runtime(room):
    wrong = [f"{name} imports {target}" for name in MODULES if layer(name) == room
             for target in imports(name) if layer(target) in ("cli", "runtime")]
    assert wrong == []


def test_only_the_command_line_imports_click():
    wrong = [f"{name} imports {target}" for name in MODULES if layer(name) != "cli" and name != "dctconv.__main__"
             for target in imports(name) if target.split(".")[0] == "click"]
    assert wrong == []


def test_modules_inside_the_subpackages_are_private_by_name():
    """The public API is ``import dctconv`` and the top-level modules; inside a subpackage only the
    command modules of cli/ carry public names, each the name of its command."""
    commands = {f"dctconv.cli.{name}" for name in cli.commands}
    public = [name for name in MODULES if layer(name) and name.count(".") == 2
              and not name.rsplit(".", 1)[1].startswith("_") and name not in commands]
    assert public == []
    assert commands <= set(MODULES), "a command without a module of its own"


def test_the_checks_see_every_subpackage():
    # A new subpackage must be given its place in RANK, or the rules above pass it by.
    rooms = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert rooms == set(RANK)
