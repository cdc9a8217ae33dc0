"""`evaluate rubrics list|show|check`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from evaluator.cli import app, console
from evaluator.errors import EXIT_BAD_INPUT

if TYPE_CHECKING:
    from evaluator.rubrics import Rubric


def _extends_label(r: Rubric) -> str:
    """`default`, or `default (built-in)` when the base is a built-in rubric rather than one in the folder."""
    if not r.extends:
        return ""
    return f"{r.extends} (built-in)" if r.extends_builtin else r.extends

rubrics_app = typer.Typer(help="List, show and validate rubrics.", no_args_is_help=True)
app.add_typer(rubrics_app, name="rubrics")


@rubrics_app.command("list")
def rubrics_list(
    directory: Annotated[Optional[Path], typer.Option("--dir", help="Rubrics folder (env: EVALUATOR_RUBRICS_DIR).")] = None,
) -> None:
    """List the rubrics with their versions, dimensions and exercises."""
    from rich.table import Table

    from evaluator.rubrics import load_all

    rubrics = load_all(directory)
    table = Table()
    for col in ("id", "version", "title", "extends", "dimensions", "exercises"):
        table.add_column(col)
    for r in rubrics:
        table.add_row(r.id, r.version, r.title, _extends_label(r) or "-", ", ".join(r.dimension_ids),
                      ", ".join(r.exercises) or "-")
    console().print(table)


@rubrics_app.command("show")
def rubrics_show(
    rubric_id: Annotated[str, typer.Argument(help="Rubric id or YAML path.")],
    directory: Annotated[Optional[Path], typer.Option("--dir", help="Rubrics folder.")] = None,
    output_format: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
) -> None:
    """Show one resolved rubric (after `extends`) with every anchor."""
    from rich.markup import escape

    from evaluator.rubrics import select_rubric

    r = select_rubric(rubric_id, None, directory)
    if output_format == "json":
        sys.stdout.write(json.dumps({**r.model_dump(mode="json"), "version": r.version}, indent=2) + "\n")
        return
    c = console()
    c.print(f"[bold]{escape(r.title)}[/bold]  [cyan]{escape(r.version)}[/cyan]"
            f"{'  extends ' + escape(_extends_label(r)) if r.extends else ''}")
    if r.description:
        c.print(escape(r.description.strip()))
    c.print(f"scale {r.scale.min}-{r.scale.max} · judge mode {r.judge_mode} · exercises: {', '.join(r.exercises) or '-'}")
    for d in r.dimensions:
        c.print(f"\n[bold]{escape(d.id)}[/bold] — {escape(d.name)}"
                f"{'  [dim](may be not observed)[/dim]' if d.allow_not_observed else ''}")
        c.print(f"  {escape(d.question.strip())}")
        for level, text in d.anchors.items():
            c.print(f"  [cyan]{level}[/cyan] {escape(text.strip())}")


@rubrics_app.command("check")
def rubrics_check(
    directory: Annotated[Optional[Path], typer.Option("--dir", help="Rubrics folder.")] = None,
) -> None:
    """Validate every rubric file; exit 2 if any is invalid."""
    from rich.markup import escape

    from evaluator.rubrics import check_all

    results = check_all(directory)
    c = console()
    bad = 0
    for path, error in results:
        if error:
            bad += 1
            c.print(f"[red]✗[/red] {escape(error)}")
        else:
            c.print(f"[green]✓[/green] {escape(path)}")
    if not results:
        c.print("no rubric files found")
        raise typer.Exit(EXIT_BAD_INPUT)
    c.print(f"{len(results) - bad} valid, {bad} invalid")
    raise typer.Exit(EXIT_BAD_INPUT if bad else 0)
