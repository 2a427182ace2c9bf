"""The ``kodolly`` command: a click group; each module here adds a group of thin commands.

Errors are mapped to messages and exit codes in one place (:class:`KodollyGroup`): a
:class:`~kodolly.errors.KodollyError` prints one line ``kodolly: error: ...`` and exits with its
code; nothing a user feeds kodolly should end in a traceback.
"""

from __future__ import annotations

import importlib

import click

from .. import __version__
from ..errors import KodollyError

# Modules that contribute commands; each has COMMANDS, a list of click commands or groups.
COMMAND_MODULES = ("convert", "dpo", "head", "hub", "train")


class KodollyGroup(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except KodollyError as exc:
            click.echo(f"kodolly: error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except OSError as exc:
            click.echo(f"kodolly: error: {exc}", err=True)
            ctx.exit(1)


@click.group(cls=KodollyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kodolly")
def cli() -> None:
    """Korean instruction data to clean, deduplicated Dolly-format datasets, DPO pairs and fine-tunes."""


for _name in COMMAND_MODULES:
    for _command in importlib.import_module(f"{__name__}.{_name}").COMMANDS:
        cli.add_command(_command)


def main() -> None:
    cli()
