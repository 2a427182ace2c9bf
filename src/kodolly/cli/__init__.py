"""The ``kodolly`` command: a click group; each module here adds a group of thin commands.

Errors are mapped to messages and exit codes in one place (:class:`KodollyGroup`): a
:class:`~kodolly.errors.KodollyError` prints one line ``kodolly: error: ...`` and exits with its
code; nothing a user feeds kodolly should end in a traceback. Ctrl-C (``KeyboardInterrupt``) prints
``kodolly: interrupted`` and exits with 130, SIGTERM ``kodolly: terminated`` and 143; by then the run has
removed its temporaries (an output set whose commit had already begun is finished first and stays:
:mod:`kodolly.io.commit`).
"""

from __future__ import annotations

import importlib
import os
import signal
import sys

import click

from .. import __version__
from ..errors import KodollyError
from ..procs import Terminated, terminate_as_exception

INTERRUPTED_EXIT = 130  # 128 + SIGINT, what shells report for a command stopped by Ctrl-C
TERMINATED_EXIT = 143  # 128 + SIGTERM

# Modules that contribute commands; each has COMMANDS, a list of click commands or groups.
COMMAND_MODULES = ("convert", "dpo", "hub", "train")


class KodollyGroup(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except KodollyError as exc:
            click.echo(f"kodolly: error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except BrokenPipeError:
            # the reader went away (`kodolly head ... | head`): stop quietly, as cat and grep do
            _silence_stdout()
            ctx.exit(0)
        except OSError as exc:
            click.echo(f"kodolly: error: {exc}", err=True)
            ctx.exit(1)
        except (KeyboardInterrupt, Terminated) as exc:
            if _STANDALONE:  # the kodolly command: a second signal while it exits must not print a traceback
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
            if isinstance(exc, Terminated):
                click.echo("kodolly: terminated", err=True)
                ctx.exit(TERMINATED_EXIT)
            click.echo("kodolly: interrupted", err=True)
            ctx.exit(INTERRUPTED_EXIT)


@click.group(cls=KodollyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kodolly")
def cli() -> None:
    """Korean instruction data to clean, deduplicated Dolly-format datasets, DPO pairs and fine-tunes."""


for _name in COMMAND_MODULES:
    for _command in importlib.import_module(f"{__name__}.{_name}").COMMANDS:
        cli.add_command(_command)


_STANDALONE = False  # True when running as the ``kodolly`` command (not click's test runner or the API)


def main() -> None:
    global _STANDALONE
    _STANDALONE = True
    terminate_as_exception()  # SIGTERM cleans up like Ctrl-C: "kodolly: terminated", exit 143
    cli()


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot raise again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # pragma: no cover - stdout already closed
        pass
