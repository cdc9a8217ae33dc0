"""The terminal view of a probe run: movement per perturbation and dimension, then test-retest."""

from __future__ import annotations

from typing import Any

from evaluator.judge.perturb import INVARIANCE_LIMIT


def _num(x: float | None, signed: bool = False) -> str:
    return "–" if x is None else (f"{x:+.2f}" if signed else f"{x:.2f}")


def render_probe(result: Any, console: Any) -> None:
    """Print how scores moved under each perturbation, and which perturbations failed or were skipped."""
    from rich.markup import escape
    from rich.table import Table

    s = result.summary
    table = Table(title=f"Score movement under perturbation ({s['model']}, {s['n_transcripts']} transcript(s))")
    for col, justify in (("Perturbation", "left"), ("Dimension", "left"), ("n", "right"), ("Mean Δ", "right"),
                         ("Mean |Δ|", "right"), ("", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for m in s["movements"]:
        flag = (f"[red]moves (|Δ| ≥ {INVARIANCE_LIMIT})[/red]" if m["flagged"]
                else ("" if m["invariant"] else "[dim]sensitivity: expected to move[/dim]"))
        table.add_row(m["perturbation"], m["dimension_id"], str(m["n"]), _num(m["mean_delta"], True),
                      _num(m["mean_abs_delta"]), flag)
    console.print(table)
    retest = Table(title=f"Test-retest (same input, same settings, K={s['retest']})")
    for col in ("Dimension", "n", "Agreement", "Mean spread", "Mean SD"):
        retest.add_column(col, justify="left" if col == "Dimension" else "right")
    for r in s["retest_stats"]:
        retest.add_row(r["dimension_id"], str(r["n"]), "–" if r["agreement"] is None else f"{r['agreement']:.0%}",
                       _num(r["spread"]), _num(r["sd"]))
    console.print(retest)
    for n in s["notes"]:
        kind = "failed" if n["failed"] else "skipped"
        console.print(f"[dim]{kind}: {escape(n['perturbation'])} on {escape(str(n['source']))}: "
                      f"{escape(str(n['why']))}[/dim]")
    cost = "unknown" if s["cost_usd"] is None else f"${s['cost_usd']:.4f}"
    console.print(f"{result.judged} judged, {result.reused} reused from the store; {s['calls']} calls, cost {cost}. "
                  f"Stored as probe {result.probe_id[:8]} in {escape(result.db_path)}.")
