"""`evaluate`: parse arguments, call one library function, print. No logic lives here.

One module per command group (judge, rubrics, ...) registers itself on `app`.

Heavy imports (litellm, duckdb, pandas) happen inside commands so `evaluate --help` stays fast.
`evaluate transcript.md` works because a TyperGroup subclass inserts the default command name when
the first argument is not a known command (STACK-NOTES: a callback would swallow subcommands).
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Optional

import click
import typer
from typer.core import TyperGroup



from evaluator.errors import EXIT_INTERNAL

DEFAULT_COMMAND = "judge"


class DefaultCommandGroup(TyperGroup):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=DefaultCommandGroup,
    help="Judge mock technical-interview transcripts against rubrics, with an LLM or an offline baseline.\n\n"
    "Usage: evaluate TRANSCRIPT.md [options]   (same as: evaluate judge TRANSCRIPT.md)",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def console(stderr: bool = False):
    from rich.console import Console

    # Messages on stderr are never hard-wrapped (paths and notices stay greppable in logs).
    return Console(stderr=stderr, highlight=False, soft_wrap=stderr)


def fail(err: Exception, code: int) -> None:
    from rich.markup import escape

    console(stderr=True).print(f"[red]error:[/red] {escape(str(err))}")
    raise typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        from evaluator import __version__

        typer.echo(f"evaluate {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True,
                                                    help="Show the version and exit.")] = None,
) -> None:
    """Judge mock technical-interview transcripts."""


def run() -> None:
    """Console-script entry: usage errors exit 2 with click's message; nothing prints a traceback."""
    try:
        app()
    except KeyboardInterrupt:
        console(stderr=True).print("[red]interrupted[/red]")
        sys.exit(130)
    except Exception as e:  # a bug of ours: say so plainly; the traceback only on request
        if os.environ.get("EVALUATOR_DEBUG"):
            raise
        from rich.markup import escape

        console(stderr=True).print(
            f"[red]internal error:[/red] {escape(type(e).__name__)}: {escape(str(e))}\n"
            "This is a bug in evaluator, not in your input. Run again with EVALUATOR_DEBUG=1 for the "
            "traceback and please report it."
        )
        sys.exit(EXIT_INTERNAL)


# Register the command modules (each imports only typer at import time).
from evaluator.cli import judge as _judge_commands  # noqa: E402,F401
from evaluator.cli import rubrics as _rubrics_commands  # noqa: E402,F401
from evaluator.cli import cohort as _cohort_commands  # noqa: E402,F401
from evaluator.cli import labels as _labels_commands  # noqa: E402,F401
from evaluator.cli import report as _report_commands  # noqa: E402,F401
from evaluator.cli import probe as _probe_commands  # noqa: E402,F401
