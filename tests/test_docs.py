"""Every command documents itself with an example, and the README names every command."""

import re

import click
import pytest
from click.testing import CliRunner

from references import ROOT
from dctconv.cli import cli

COMMANDS = sorted(cli.commands)


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
    assert f"dctconv {name}" in (ROOT / "README.md").read_text()
