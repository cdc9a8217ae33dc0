"""Rich progress bar and end-of-run summary for cohort runs (presentation only); the model client
loading notice."""

from __future__ import annotations

from typing import Any

from evaluator.output import escape  # rich markup, terminal controls and secrets removed


class CohortProgress:
    """A live bar on stderr: done, cached, failed, in flight, ETA, tokens and cost so far.

    Silent when stderr is not a terminal (CI logs, pipes), so JSON output stays clean."""

    def __init__(self, console, enabled: bool = True) -> None:
        self.console = console
        self.enabled = enabled and console.is_terminal
        self.progress: Any = None  # a rich Progress while the bar is shown
        self.task: Any = None

    def __enter__(self) -> CohortProgress:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("[bold]judging[/bold]"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                TextColumn("{task.fields[detail]}"), console=self.console, transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task("cohort", total=None, detail="")
        return self

    def update(self, c: Any) -> None:
        if not self.progress:
            return
        cost = "cost ?" if c.cost_usd is None else f"${c.cost_usd:.4f}"
        detail = (f"cached {c.cached} · failed {c.failed} · in flight {c.in_flight} · "
                  f"{c.prompt_tokens + c.completion_tokens:,} tok · {cost}")
        self.progress.update(self.task, completed=c.done, total=c.total or None, detail=detail)

    def notice(self, message: str) -> None:
        """A one-line message shown at once, above the bar (or plainly when there is no bar)."""
        self.console.print(f"[yellow]{escape(message)}[/yellow]")

    def __exit__(self, *exc: object) -> None:
        if self.progress:
            self.progress.stop()


def _listed(console, colour: str, label: str, rows: list[tuple[str, str]], limit: int = 20) -> None:
    for item, text in rows[:limit]:
        console.print(f"[{colour}]{label}[/{colour}] {escape(item)}: {escape(text or '')}")
    if len(rows) > limit:
        console.print(f"[{colour}]... and {len(rows) - limit} more ({label}; see --format json)[/{colour}]")


def render_summary(s: Any, console: Any) -> None:
    """The end of a cohort run (or its dry-run estimate) for people; --format json has it all."""
    from rich.table import Table

    if s.dry_run:
        e = s.estimate or {}
        cost = "unknown (no price for this model: give --price-in/--price-out)" if e.get("cost_usd") is None else f"${e['cost_usd']:.4f}"
        console.print(f"[bold]dry run[/bold] · cohort {escape(s.cohort)} · {s.total} transcript(s): "
                      f"{s.cached} already judged or duplicates, {e.get('to_judge', 0)} to judge, {s.failed} unreadable")
        console.print(f"estimate: {e.get('calls', 0)} call(s), {e.get('prompt_tokens', 0):,} prompt tokens, "
                      f"~{e.get('completion_tokens', 0):,} completion tokens ({escape(e.get('completion_tokens_note', ''))}), cost {cost}")
        if e.get("worst_case_usd"):
            console.print(f"worst case ${e['worst_case_usd']:.4f} (every repair made, every reply --max-tokens "
                          "long): what --max-cost reserves while a judgment runs")
    else:
        judge = s.judge.get("kind", "?") + (f" {s.judge['model']}" if s.judge.get("model") else "")
        console.print(f"[bold]cohort {escape(s.cohort)}[/bold] · run {escape((s.run_id or '')[:8])} · judge {escape(judge)} · {s.status}")
        console.print(f"{s.total} transcript(s): [green]{s.scored} scored[/green] ({s.cached} from cache), "
                      f"[yellow]{s.partial} partial[/yellow], [red]{s.unscored} unscored, {s.failed} failed[/red]"
                      f"{f', {s.skipped} not judged' if s.skipped else ''}")
        if s.reread:
            from evaluator.store.texts import refused_notice

            console.print(f"[yellow]{escape(refused_notice(s.reread))}[/yellow]")
        if s.skipped:
            from evaluator.batch.budget import RERUN_CANNOT_HELP

            again = "" if RERUN_CANNOT_HELP in (s.message or "") else ": run the same command again to judge them"
            console.print(f"[yellow]{s.skipped} transcript(s) not judged by this run[/yellow] (why: below){again}.")
        if s.dimensions:
            t = Table(title="per dimension (scored judgments)")
            for col in ("dimension", "n", "mean", "median", "distribution", "not observed", "unscored"):
                t.add_column(col)
            for dim, d in s.dimensions.items():
                dist = " ".join(f"{k}:{v}" for k, v in d["distribution"].items()) or "-"
                t.add_row(escape(dim), str(d["count"]), "-" if d["mean"] is None else f"{d['mean']:.2f}",
                          "-" if d["median"] is None else str(d["median"]), dist, str(d["not_observed"]), str(d["unscored"]))
            console.print(t)
        _listed(console, "red", "failed", [(f["item"], f["error"]) for f in s.failures])
        _listed(console, "yellow", "not fully scored",
                [(n["item"], f"{n['status']}: {n['reason'] or 'see the stored judgment'}") for n in s.not_scored])
        _listed(console, "yellow", "warning", [(w["item"], w["warning"]) for w in s.warnings])
        cost = "unknown" if s.cost_usd is None else f"${s.cost_usd:.4f}"
        console.print(f"[dim]{s.calls} model call(s), {s.prompt_tokens:,} prompt + {s.completion_tokens:,} completion "
                      f"tokens, cost {cost}, {s.wall_seconds:.1f}s · stored in {escape(s.db or '')}[/dim]")
    if s.message:
        console.print(f"[yellow]{escape(s.message)}[/yellow]")


def render_runs(runs: list[dict[str, Any]], console) -> None:
    """`evaluate runs` as a table (newest first); --format json has every column."""
    from rich.table import Table

    if not runs:
        console.print("no runs stored yet")
        return
    colours = {"completed": "green", "running": "cyan", "interrupted": "yellow", "aborted": "red", "killed": "red"}
    t = Table(title="runs (newest first)", box=None, padding=(0, 1), pad_edge=False, header_style="bold")
    numeric = ("scored", "other", "cost")  # cached, calls and tokens: --format json
    for col in ("run", "started (UTC)", "status", *numeric, "cohort", "judge"):
        t.add_column(col, no_wrap=col not in ("cohort", "judge"), justify="right" if col in numeric else "left",
                     overflow="fold")

    def n(value: Any) -> str:
        return "-" if value is None else str(value)

    for r in runs:
        status = r["status"] or "?"
        judge = r["judge_kind"] + (f" {r['model']}" if r["model"] else "")
        other = None if r["total"] is None else r["total"] - (r["scored"] or 0)  # partial, unscored, failed, skipped
        cost = "-" if r["cost_usd"] is None else "$0" if not r["cost_usd"] else f"${r['cost_usd']:.4f}"
        t.add_row(r["id"][:8], f"{r['started_at']:%m-%d %H:%M}", f"[{colours.get(status, 'white')}]{escape(status)}[/]",
                  f"{n(r['scored'])}/{n(r['total'])}", n(other), cost,
                  escape(r["cohort"] or "-"), escape(judge))
    console.print(t)


def model_client_notice(options: Any, console: Any) -> None:
    """On a terminal, say "loading the model client (litellm)..." when the judge first needs litellm
    (5-25 s on a cold disk), so the wait is explained rather than a bar stuck at 0/?. Nothing is
    loaded here: a run whose judgments are all cached never imports litellm, and says nothing.
    Nothing for the baseline judge, nor when stderr is not a terminal (logs stay clean)."""
    import sys

    if not getattr(options, "model", None) or not console.is_terminal or "litellm" in sys.modules:
        return
    from evaluator.judge.litellm_client import on_client_load

    on_client_load(lambda: console.print("[dim]loading the model client (litellm)...[/dim]"))
