"""Present a judgment: one JSON document for programs, a rich table for people."""

from __future__ import annotations

from typing import Any

from evaluator.errors import EXIT_NOT_FULLY_SCORED, EXIT_OK
from evaluator.models import Member, Usage
from evaluator.pipeline import EvaluateResult
from evaluator.safety import for_terminal, redact, redact_value

SCHEMA_VERSION = 1


def exit_code(result: EvaluateResult) -> int:
    """Scripts must tell "judged" from "judged but some dimension unscored" without parsing the output."""
    return EXIT_OK if result.judgment.status == "scored" else EXIT_NOT_FULLY_SCORED


def usage_by_juror(members: list[Member]) -> dict[str, dict[str, Any]]:
    """Calls, tokens and cost per juror paid in this run (reused samples cost nothing now)."""
    out: dict[str, dict[str, Any]] = {}
    for m in members:
        u = out.setdefault(m.juror, {"samples": 0, "reused": 0, **Usage().model_dump()})
        u["samples"] += 1
        if m.judgment_id is not None:
            u["reused"] += 1
            continue
        mu = m.judgment.usage
        for k in ("calls", "prompt_tokens", "completion_tokens", "latency_ms"):
            u[k] += getattr(mu, k)
        u["cost_usd"] = None if u["cost_usd"] is None or mu.cost_usd is None else u["cost_usd"] + mu.cost_usd
    return out


def member_summary(m: Member) -> dict[str, Any]:
    """One member of an aggregate in the JSON output: who, which sample, reused or new, its scores."""
    return {"juror": m.juror, "sample": m.sample, "reused": m.judgment_id is not None,
            "judgment_id": m.judgment_id, "status": m.judgment.status,
            "scores": {d.id: d.score for d in m.judgment.dimensions}}


def spread_note(stats: dict[str, Any] | None) -> str:
    """Under an aggregate's score: the members' range and agreement, and what is flagged."""
    if not stats or stats.get("min") is None:
        return ""
    note = f"\n[dim]{stats['min']}-{stats['max']} · {stats['n_scored']}/{stats['n']}[/dim]"
    if stats.get("unstable"):
        note += "\n[yellow]unstable[/yellow]"
    if stats.get("disagree"):
        note += "\n[yellow]jurors disagree[/yellow]"
    return note


def to_document(result: EvaluateResult) -> dict[str, Any]:
    """The documented `--format json` shape (README: "JSON output"), secrets redacted (a provider's
    error may echo the API key into a reason). JSON escapes control characters itself."""
    doc = redact_value(_document(result))
    assert isinstance(doc, dict)
    return doc


def _document(result: EvaluateResult) -> dict[str, Any]:
    j, t, r = result.judgment, result.transcript, result.rubric
    return {
        "schema_version": SCHEMA_VERSION,
        "status": j.status,
        "reason": j.reason,
        "transcript": {
            "source": t.source, "hash": t.content_hash, "title": t.title, "candidate": t.candidate,
            "exercise": t.exercise, "date": t.session_date, "turns": len(t.turns),
            "code_files": [cf.name for cf in t.code_files], "metadata": t.metadata,
        },
        "rubric": {"id": r.id, "version": r.version, "title": r.title, "scale": [r.scale.min, r.scale.max]},
        "judge": {"kind": j.judge.kind, "model": j.judge.model, "prompt_version": j.judge.prompt_version,
                  "params": j.judge.params, "note": j.judge.note},
        "dimensions": [
            {
                "id": d.id, "name": r.dimension(d.id).name, "score": d.score, "status": d.status,
                "evidence": [e.model_dump() for e in d.evidence], "rationale": d.rationale,
                "reason": d.reason, "dropped_evidence": d.dropped_evidence,
                # --logprobs: probability per scale level at the score's token, and the weighted score
                "distribution": None if d.distribution is None else {str(k): v for k, v in d.distribution.items()},
                "expected_score": d.expected_score, "distribution_note": d.distribution_note,
                "ensemble": d.ensemble,  # --samples/--jury: spread, agreement, unstable, jurors, disagree
            }
            for d in j.dimensions
        ],
        "flags": sorted({f.kind for f in j.flags}),
        "flag_details": [f.model_dump() for f in j.flags],
        "warnings": j.warnings + [f.detail for f in j.flags if f.kind == "truncated"],
        "truncation": j.truncation,
        "usage": {**j.usage.model_dump(), "wall_seconds": round(result.wall_seconds, 3),
                  **({"by_juror": usage_by_juror(j.members)} if j.members else {})},
        "kind": j.kind,
        "members": [member_summary(m) for m in j.members],
        "cache": {"key": j.cache_key, "hit": result.cached},
        "store": {"db": result.db_path, "judgment_id": result.judgment_id},
    }


def escape(text: str) -> str:
    """Printable text: no secret, no terminal control sequence, no rich markup."""
    from rich.markup import escape as markup_escape

    return markup_escape(for_terminal(redact(text)))


_STATUS_STYLE = {"scored": "green", "partial": "yellow", "unscored": "red"}


def render_terminal(result: EvaluateResult, console) -> None:
    """A readable table: dimension, score or status, one quote, rationale; then flags and usage.
    Every string from outside (transcript, file names, the model's reply, provider errors) goes through
    `escape`, which also strips terminal escape sequences and redacts secrets."""
    from rich.table import Table

    j, r = result.judgment, result.rubric
    for notice in result.notices:
        console.print(f"[dim]{escape(notice)}[/dim]")
    t = result.transcript
    who = " · ".join(str(x) for x in (t.candidate, t.exercise, t.session_date) if x)
    console.print(
        f"[bold]{escape(t.source)}[/bold]{'  ' + escape(who) if who else ''}\n"
        f"rubric [cyan]{escape(r.version)}[/cyan] · judge [cyan]{escape(j.judge.kind)}"
        f"{' ' + escape(j.judge.model) if j.judge.model else ''}[/cyan] · "
        f"status [{_STATUS_STYLE[j.status]}]{j.status}[/{_STATUS_STYLE[j.status]}]"
    )
    table = Table(show_lines=True, expand=True)
    table.add_column("dimension", style="bold", no_wrap=True)
    table.add_column("score", justify="center", no_wrap=True)
    table.add_column("evidence", ratio=2)
    table.add_column("rationale", ratio=3)
    for d in j.dimensions:
        if d.status == "scored":
            score = f"{d.score}/{r.scale.max}"
            if d.expected_score is not None:  # --logprobs: the probability-weighted score beside it
                score += f"\n[dim]E {d.expected_score:.2f}[/dim]"
            score += spread_note(d.ensemble)
        elif d.status == "not_observed":
            score = "[dim]not observed[/dim]"
        else:
            score = "[red]unscored[/red]"
        quote = d.evidence[0] if d.evidence else None
        ev = f"“{escape(quote.quote)}” [dim]({escape(quote.source or '?')})[/dim]" if quote else "[dim]—[/dim]"
        more = f" [dim]+{len(d.evidence) - 1} more[/dim]" if len(d.evidence) > 1 else ""
        if d.status != "unscored":
            why = escape(d.rationale)
        elif j.reason and d.reason == j.reason:
            why = "[red]see below[/red]"  # one shared failure is printed once, not per dimension
        else:
            why = f"[red]{escape(d.reason or '')}[/red]"
        table.add_row(escape(d.id), score, ev + more, why)
    console.print(table)
    if j.reason:
        console.print(f"[red]unscored:[/red] {escape(j.reason)}")
    for f in j.flags:
        console.print(f"[yellow]flag[/yellow] {escape(f.kind)}: {escape(f.detail)}"
                      f"{f' [dim]({escape(f.source)})[/dim]' if f.source else ''}")
    for w in j.warnings:
        console.print(f"[yellow]warning[/yellow] {escape(w)}")
    u = j.usage
    cost = "unknown" if u.cost_usd is None else f"${u.cost_usd:.4f}"
    cached = " (cached: no calls made)" if result.cached else ""
    stored = f" · stored in {escape(result.db_path)}" if result.db_path and not result.cached else ""
    for juror, ju in (usage_by_juror(j.members) if j.members else {}).items():
        jcost = "unknown" if ju["cost_usd"] is None else f"${ju['cost_usd']:.4f}"
        console.print(f"[dim]  {escape(juror)}: {ju['calls']} call(s), {ju['reused']} sample(s) reused, "
                      f"cost {jcost}[/dim]")
    console.print(
        f"[dim]usage: {u.calls} call(s), {u.prompt_tokens} prompt + {u.completion_tokens} completion tokens, "
        f"cost {cost}, {result.wall_seconds:.2f}s{cached}{stored}[/dim]"
    )
