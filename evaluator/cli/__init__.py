"""`evaluate`: parse arguments, call one library function, print. No logic lives here.

One module per command group (judge, rubrics, ...) registers itself on `app`.

Heavy imports (litellm, duckdb, pandas) happen inside commands so `evaluate --help` stays fast.
`evaluate transcript.md` works because a TyperGroup subclass inserts the default command name when
the first argument is not a known command (STACK-NOTES: a callback would swallow subcommands).

Errors are handled in one place, `DefaultCommandGroup.invoke`: a library `EvaluatorError` becomes its
message and exit code (as JSON on stdout under `--format json`). A closed stdout pipe (`| head`) exits
141 quietly wherever it is met: help and `--version` (printed while arguments are parsed), a command's
output, rich's consoles (typer's help panels included) and the last flush at exit (`_output_closed`).
"""

from __future__ import annotations

import copy
import difflib
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional

# pydantic looks for plugins at its first model by reading the entry points of every installed
# distribution (~40 ms, a tenth of a cached re-run); the tool uses none. Set the variable to
# anything else (an empty value included) to have them loaded.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
# DuckDB's bundled jemalloc (Linux) keeps freed pages before giving them back (a decay of a second
# here, and with no background thread, DuckDB's default, applied only as it allocates again): each
# store session of a cohort run (one a second or so) held 25-45 MiB of such pages at its peak on top
# of what it used (a decay of 250 ms changed nothing measurable). Given back at once, the peak of a
# batch collect fell by ~20 MiB at 1,000 and 10,000 transcripts alike (benchmarks/batch_bench.py).
# jemalloc reads this variable when DuckDB is loaded, so it is set before anything imports it; a
# value of the user's own is kept. (Where DuckDB has no jemalloc, macOS and Windows, nothing reads it.)
os.environ.setdefault("DUCKDB_JE_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")

import typer  # noqa: E402
from typer.core import TyperGroup  # noqa: E402

try:  # typer >= 0.2x ships its own copy of click, whose classes are not click's
    from typer._click.core import Context, Parameter, ParameterSource
    from typer._click.exceptions import BadParameter, ClickException, UsageError
    from typer._click.globals import get_current_context
except ImportError:  # pragma: no cover - an older typer on the real click
    from click import (  # type: ignore[assignment,no-redef]
        BadParameter,
        ClickException,
        Context,
        Parameter,
        ParameterSource,
        UsageError,
        get_current_context,
    )

from evaluator.errors import EXIT_CODES, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OUTPUT_CLOSED, EvaluatorError

DEFAULT_COMMAND = "judge"
_JSON_KEY = "evaluate.json_errors"
_CONFIG_KEY = "evaluate.config_file"


def _wants_json(args: list[str]) -> bool:
    """`--format json` anywhere on the command line (also `-f json`, `--format=json`): errors are JSON too.

    Read from the raw arguments because a usage error can happen before the option is parsed.
    """
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg in ("--format", "-f") and i + 1 < len(args) and args[i + 1] == "json":
            return True
        if arg in ("--format=json", "-fjson"):
            return True
    return False


def _metavar(param: Parameter) -> str:
    """A word for the help text (`--db DB`, `--max-tokens N`), never typer's `<list[Path]>` or `<bool>`."""
    if getattr(param, "is_flag", False):
        return ""
    descriptor = getattr(param, "type_descriptor", None)
    annotation = getattr(descriptor, "annotation", None)
    if annotation is int:
        return "N"
    if annotation is float:
        return "NUMBER"
    return (param.name or "value").upper()


def _name_metavars(command: Any) -> None:
    for param in command.params:
        if param.metavar is None:
            param.metavar = _metavar(param)
        if getattr(param, "param_type_name", "") == "argument":  # its name says it: no `<list[str]>` beside it
            setattr(param, "display_type_rich", lambda ctx: None)  # noqa: B010
    make_help = command.get_help_option

    def help_option(ctx: Context) -> Any:
        option = make_help(ctx)
        if option is not None:
            option.metavar = ""  # a flag: no `<bool>`
        return option

    setattr(command, "get_help_option", help_option)  # noqa: B010
    for sub in getattr(command, "commands", {}).values():
        _name_metavars(sub)


class DefaultCommandGroup(TyperGroup):
    """The root group: default command, did-you-mean for mistyped commands, one error handler."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _name_metavars(self)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        _closed_output_ends_every_console()
        return super().main(*args, **kwargs)

    def make_context(self, info_name: str | None, args: list[str], parent: Context | None = None,
                     **extra: Any) -> Context:
        """`--help` and `--version` print here, while arguments are parsed, outside `invoke`."""
        try:
            return self._make_context(info_name, args, parent, **extra)
        except BrokenPipeError:
            _output_closed()

    def _make_context(self, info_name: str | None, args: list[str], parent: Context | None, **extra: Any) -> Context:
        """The project config file becomes click's `default_map` (flag > env > config > default)."""
        if parent is None and "default_map" not in extra and not os.environ.get("_EVALUATE_COMPLETE"):
            from evaluator.config import apply_settings, default_map, load_settings

            try:
                config, settings = load_settings()
            except EvaluatorError as e:  # no context yet: fail() cannot ask it about --format json
                _error(str(e), e.exit_code, _wants_json(args))
            apply_settings(settings)
            extra["default_map"] = default_map(settings, self.commands)
            ctx = super().make_context(info_name, args, parent=parent, **extra)
            ctx.meta[_CONFIG_KEY] = config
            return ctx
        return super().make_context(info_name, args, parent=parent, **extra)

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        ctx.meta[_JSON_KEY] = _wants_json(args)
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            _refuse_mistyped_command(args[0], sorted(self.commands))
        own = {name for p in self.get_params(ctx) for name in (*getattr(p, "opts", ()), *getattr(p, "secondary_opts", ()))}
        if args and args[0] not in self.commands and args[0].split("=")[0] not in own:
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except EvaluatorError as e:
            fail(e, e.exit_code)
        except ClickException as e:
            if isinstance(e, BadParameter):
                _name_the_config_file(e, ctx.meta.get(_CONFIG_KEY))
            if not ctx.meta.get(_JSON_KEY):
                raise
            fail(e.format_message(), e.exit_code)
        except BrokenPipeError:
            _output_closed()


def _name_the_config_file(error: BadParameter, config: Path | None) -> None:
    """A bad value that came from the config file (click's default_map) is reported as the flag it stands
    for; say where it was set, or the user looks for a `--max-tokens` they never typed."""
    param, sub = error.param, error.ctx
    if config is None or param is None or sub is None or param.name is None:
        return
    if sub.get_parameter_source(param.name) == ParameterSource.DEFAULT_MAP:
        key = "rubrics_dir" if param.name == "directory" else param.name
        error.message = f"{error.message} (set by '{key}' in {config})"


def _refuse_mistyped_command(word: str, commands: list[str]) -> None:
    """`evaluate reprot` is a typo, not a transcript named `reprot`: say which command was meant.

    Only for a word that is not an existing file, has no path or suffix, and is close to a command.
    """
    if os.sep in word or "." in word or Path(word).exists():
        return
    close = difflib.get_close_matches(word, commands, n=1, cutoff=0.6)
    if close:
        raise UsageError(f"no command or file named '{word}'. Did you mean `evaluate {close[0]}`?")


def _emit_json_error(message: str, code: int) -> NoReturn:
    """The error is already on stderr: a reader gone from stdout does not change its exit code."""
    try:
        sys.stdout.write(json.dumps({"error": message, "exit_code": code}, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    raise typer.Exit(code)


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush of what is buffered cannot fail again
    (Python would print "Exception ignored ... BrokenPipeError" and exit 120)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # not a real file descriptor (a test runner's buffer)
        pass


def _output_closed() -> NoReturn:
    """Stdout was closed by the reader (`evaluate X | head -1`): not a judgment status. Exit 141
    (128 + SIGPIPE, what a shell reports for a process killed by a closed pipe), quietly.

    SystemExit rather than typer.Exit: it also ends the process where click is not there to turn an
    Exit into one (the final flush in `run`).
    """
    _silence_stdout()
    raise SystemExit(EXIT_OUTPUT_CLOSED)


def _console_output_closed(self: Any) -> NoReturn:
    self.quiet = True  # what rich's own hook does: print nothing more
    _output_closed()


def _closed_output_ends_every_console() -> None:
    """A print to a closed pipe ends in rich's `Console.on_broken_pipe`, whose default exits 1 (a judgment
    status here). Every console of the process gets ours, typer's (help, usage errors) included: rich
    documents the method as the one to override, and typer makes its consoles itself."""
    from rich.console import Console

    Console.on_broken_pipe = _console_output_closed  # type: ignore[method-assign]


def _exit_codes_help() -> str:
    rows = "\n\n".join(f"{code}: {meaning}" for code, meaning in EXIT_CODES.items())
    return f"Exit codes:\n\n{rows}"


app = typer.Typer(
    cls=DefaultCommandGroup,
    help="Judge mock technical-interview transcripts against rubrics, with an LLM or an offline baseline.\n\n"
    "Usage: evaluate TRANSCRIPT.md [options]   (same as: evaluate judge TRANSCRIPT.md)",
    epilog=_exit_codes_help(),
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def console(stderr: bool = False) -> Any:
    """A rich console; messages on stderr are never hard-wrapped (paths stay greppable in logs)."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=stderr)


def json_errors() -> bool:
    """True when this command was given `--format json` (its errors are JSON documents too)."""
    ctx = get_current_context(silent=True)
    return bool(ctx and ctx.find_root().meta.get(_JSON_KEY))


def fail(err: Exception | str, code: int) -> NoReturn:
    """End the command with a clear message and exit code: `error: ...` on stderr, and under
    `--format json` also a `{"error", "exit_code"}` document on stdout (for the program reading it).
    """
    _error(str(err), code, json_errors())


def _error(message: str, code: int, as_json: bool) -> NoReturn:
    from rich.markup import escape

    console(stderr=True).print(f"[red]error:[/red] {escape(message)}")
    if as_json:
        _emit_json_error(message, code)
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


def _for_this_process(args: list[str]) -> typer.Typer:
    """The app with only the command this process runs, when the first argument names one exactly.
    typer turns every registered command into click objects before it parses anything (parameters,
    callbacks, help: ~18 ms for the 18 commands, a twentieth of a fully cached cohort re-run), and
    a process runs one. Anything else (root options, help, a transcript for the default command, a
    mistyped name that gets a suggestion, shell completion) gets them all. A copy: `app` itself stays
    whole for whoever imports it."""
    if not args or os.environ.get("_EVALUATE_COMPLETE"):
        return app
    from typer.main import get_command_name

    commands = [c for c in app.registered_commands
                if (c.name or get_command_name(getattr(c.callback, "__name__", ""))) == args[0]]
    groups = [g for g in app.registered_groups if g.name == args[0]]
    if not commands and not groups:
        return app
    only = copy.copy(app)
    only.registered_commands, only.registered_groups = commands, groups
    return only


def run() -> None:
    """Console-script entry: usage errors exit 2 with click's message; nothing prints a traceback."""
    try:
        try:
            _for_this_process(sys.argv[1:])()
        except SystemExit:
            _deliver_stdout()
            raise
        _deliver_stdout()
    except KeyboardInterrupt:
        console(stderr=True).print("[red]interrupted[/red]")
        sys.exit(EXIT_INTERRUPTED)
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


def _deliver_stdout() -> None:
    """Flush what is still buffered for stdout (a short JSON document is written at exit, not at
    `write`): a reader gone by then is a closed pipe like any other, 141 and no noise."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _output_closed()
    except (OSError, ValueError):  # stdout closed by the caller (`>&-`): nothing to deliver
        pass


# Register the command modules (each imports only typer at import time).
from evaluator.cli import batches as _batches_commands  # noqa: E402,F401
from evaluator.cli import cohort as _cohort_commands  # noqa: E402,F401
from evaluator.cli import judge as _judge_commands  # noqa: E402,F401
from evaluator.cli import labels as _labels_commands  # noqa: E402,F401
from evaluator.cli import probe as _probe_commands  # noqa: E402,F401
from evaluator.cli import report as _report_commands  # noqa: E402,F401
from evaluator.cli import rubrics as _rubrics_commands  # noqa: E402,F401
from evaluator.cli import store as _store_commands  # noqa: E402,F401
