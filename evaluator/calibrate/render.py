"""Terminal tables for agreement and calibration reports (rich). JSON comes from the models."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from evaluator.calibrate.agreement import AgreementReport, MetricSet
from evaluator.calibrate.maps import CalibrationResult, after_mae
from evaluator.calibrate.records import JudgeIdentity

# RMSE and the intervals are in --format json
_COLUMNS = [("n", "n"), ("exact", "exact"), ("within_one", "±1"), ("qwk", "QWK"), ("krippendorff_alpha", "α"),
            ("spearman", "ρ"), ("kendall", "τ"), ("pearson", "r"), ("mae", "MAE"), ("bias", "bias")]
# One compact look for every table this module prints.
_TABLE_STYLE: dict[str, Any] = {"title_justify": "left", "pad_edge": False, "box": box.SIMPLE_HEAD, "show_edge": False,
                                "padding": (0, 1), "collapse_padding": True}


def _fmt(value: float | None, ci: tuple[float, float] | None = None, show_ci: bool = False) -> str:
    if value is None:
        return "–"
    text = f"{value:.2f}"
    if show_ci and ci is not None:
        text += f" [dim][{ci[0]:.2f}, {ci[1]:.2f}][/dim]"
    return text


def _ci(ci: tuple[float, float] | None) -> str:
    return "–" if ci is None else f"{ci[0]:.2f}–{ci[1]:.2f}"


def _row(label: str, m: MetricSet) -> list[str]:
    return [label, str(m.n)] + [_fmt(getattr(m, name)) for name, _ in _COLUMNS[1:]]


def _metric_table(title: str) -> Table:
    table = Table(title=title, **_TABLE_STYLE)
    table.add_column("dimension", no_wrap=True)
    for _, header in _COLUMNS:
        table.add_column(header, justify="right", no_wrap=True, min_width=4)
    return table


_CI_COLUMNS = [("qwk", "QWK"), ("krippendorff_alpha", "α"), ("spearman", "ρ"), ("mae", "MAE"), ("bias", "bias")]


def versions_of(judge: JudgeIdentity | None) -> str:
    """The rubric version(s) a judge's scores were made under, as a title names them ('' for plain files)."""
    versions = judge.rubric_versions if judge is not None else []
    if len(versions) > 1:
        return f", rubric versions {', '.join(versions)} POOLED"
    return f", rubric version {versions[0]}" if versions else ""


def render_agreement(report: AgreementReport, console: Console, versions_apart: bool = False) -> None:
    """Print an agreement report as terminal tables (point estimates, intervals, confusion).
    `versions_apart`: one of several reports, one per rubric version: headed by its version."""
    judge = report.judge.label if report.judge else "judge file"
    at_level = " at system level" if report.level == "system" else ""
    if versions_apart and report.judge is not None:
        console.rule(f"[bold]rubric version {escape(', '.join(report.judge.rubric_versions))}[/bold]", align="left")
    table = _metric_table(f"Judge ({escape(judge + versions_of(report.judge))}) vs human ({report.human}){at_level}")
    for dim, d in report.dimensions.items():
        table.add_row(*_row(dim, d.judge_vs_human))
    table.add_row(*_row(f"[bold]{escape(report.pooled_key)}[/bold]", report.overall.judge_vs_human))
    console.print(table)
    if any(d.calibrated is not None for d in report.dimensions.values()):
        cal = _metric_table("Calibrated judge vs human (same pairs, scores after the calibration)")
        for dim, d in [*report.dimensions.items(), (f"[bold]{escape(report.pooled_key)}[/bold]", report.overall)]:
            if d.calibrated is not None:
                cal.add_row(*_row(dim, d.calibrated))
        console.print(cal)
    if any(d.leave_one_out is not None for d in report.dimensions.values()):
        loo = Table(title="Ceiling, like for like: each rater vs the mean of the other raters, and the judge vs "
                          "that same mean", title_justify="left", pad_edge=False, box=box.SIMPLE_HEAD,
                    show_edge=False, padding=(0, 1), collapse_padding=True)
        for col in ("dimension", "n", "rater r", "judge r", "rater MAE", "judge MAE", "rater QWK", "judge QWK"):
            loo.add_column(col, justify="left" if col == "dimension" else "right", no_wrap=True)
        for dim, d in [*report.dimensions.items(), (f"[bold]{escape(report.pooled_key)}[/bold]", report.overall)]:
            if d.leave_one_out is not None:
                h, j = d.leave_one_out.human, d.leave_one_out.judge
                loo.add_row(dim, str(h.n), _fmt(h.pearson), _fmt(j.pearson), _fmt(h.mae), _fmt(j.mae), _fmt(h.qwk),
                            _fmt(j.qwk))
        console.print(loo)
    if any(d.grouped is not None for d in report.dimensions.values()):
        grp = Table(title="Within groups, then averaged over groups", title_justify="left", pad_edge=False,
                    box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1), collapse_padding=True)
        for col in ("dimension", "groups", "used (τ)", "τ", "ρ", "r", "MAE"):
            grp.add_column(col, justify="left" if col == "dimension" else "right", no_wrap=True)
        for dim, d in report.dimensions.items():
            g = d.grouped
            if g is not None:
                grp.add_row(dim, str(g.n_groups), f"{g.used['kendall']} ({g.skipped['kendall']} skipped)",
                            _fmt(g.mean["kendall"]), _fmt(g.mean["spearman"]), _fmt(g.mean["pearson"]),
                            _fmt(g.mean["mae"]))
        console.print(grp)
    unit = "systems" if report.level == "system" else "transcripts"
    cis = Table(title=f"95% intervals (bootstrap over {unit}, {report.n_bootstrap} resamples; all in --format json)",
                **_TABLE_STYLE)
    cis.add_column("dimension", no_wrap=True)
    for _, header in _CI_COLUMNS:
        cis.add_column(header, justify="right", no_wrap=True)
    for dim, d in [*report.dimensions.items(), (f"[bold]{escape(report.pooled_key)}[/bold]", report.overall)]:
        cis.add_row(dim, *[_ci(getattr(d.judge_vs_human, f"{name}_ci")) for name, _ in _CI_COLUMNS])
    console.print(cis)
    if report.overall.human_human is not None:
        hh = _metric_table(f"Human vs human: the ceiling (raters {', '.join(report.overall.raters)})")
        for dim, d in report.dimensions.items():
            if d.human_human is not None:
                hh.add_row(*_row(dim, d.human_human))
        hh.add_row(*_row(f"[bold]{escape(report.pooled_key)}[/bold]", report.overall.human_human))
        console.print(hh)
    s = report.overall.statuses
    console.print(f"not observed: both {s.both_not_observed}, judge only {s.judge_not_observed_human_scored}, "
                  f"human only {s.human_not_observed_judge_scored}; no judge score {s.no_judge_score}, "
                  f"no human label {s.no_human_label} (outside the score statistics)")
    cm = report.overall.confusion
    conf = Table(title="Confusion, overall (rows human, columns judge)", **_TABLE_STYLE)
    conf.add_column("h\\j")
    for level in cm.labels:
        conf.add_column(str(level), justify="right")
    for level, row in zip(cm.labels, cm.matrix, strict=True):
        conf.add_row(str(level), *[str(v) if v else "·" for v in row])
    console.print(conf)
    for note in report.notes:
        console.print(f"[yellow]note:[/yellow] {escape(note)}")
    console.print(f"[dim]pairing: {escape(report.definitions.get('pairing', ''))}; "
                  f"{escape(report.definitions.get('exact', ''))}; alpha: "
                  f"{escape(report.definitions.get('krippendorff_alpha', ''))}; a dash is undefined "
                  "(--format json gives the reason)[/dim]")


def render_calibration(result: CalibrationResult, console: Console, stored: bool, n_calibrated: int,
                       plain: bool = False, out: str | None = None) -> None:
    """Print the maps' held-out comparison, which one is used, and the warnings."""
    judge = result.judge.label if result.judge else "judge file"
    table = Table(title=f"Calibration {result.id} ({escape(judge + versions_of(result.judge))}): held-out agreement, "
                        f"{result.settings.folds}-fold cross-validation"
                        + (f" holding out whole {escape(result.settings.cv_group_by)} groups"
                           if result.settings.cv_group_by else ""), title_justify="left", pad_edge=False,
                  box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1), collapse_padding=True)
    for col in ("dimension", "n", "method", "MAE", "95% CI", "exact", "QWK", "ρ", "use"):
        table.add_column(col, justify="left" if col in ("dimension", "method", "use") else "right", no_wrap=True)
    for dim, c in result.dimensions.items():
        if c.status == "refused":
            table.add_row(dim, str(c.n), f"[yellow]refused: n < {result.settings.min_labels}[/yellow]", "", "", "", "",
                          "", "")
            continue
        for m in c.maps:
            if m.cv is None:  # a fitted map always has its cross-validation; nothing to show without one
                continue
            label = {"identity": "raw", "isotonic": "isotonic", "multi_ridge": "multi", "ordinal": "ordinal"}[m.method]
            rows = [(label, m.cv.after, m.chosen and not m.rater_offsets)]
            if m.cv_with_offsets is not None:
                rows.append((label + " + raters", m.cv_with_offsets.after, m.chosen and bool(m.rater_offsets)))
            for text, after, used in rows:
                table.add_row(dim if m.method == "identity" and text == "raw" else "", str(m.n), text, _fmt(after.mae),
                              _ci(after.mae_ci), _fmt(after.exact), _fmt(after.qwk), _fmt(after.spearman),
                              "[green]✓[/green]" if used else "")
    console.print(table)
    for dim, c in result.dimensions.items():
        iso, multi = c.map("isotonic"), c.map("multi_ridge")
        chosen = c.map(c.chosen)
        if chosen is not None and chosen.rater_offsets:
            console.print(f"{dim}: per-rater offsets apply where the raters are known: "
                          + ", ".join(f"{r} {v:+.2f}" for r, v in sorted(chosen.rater_offsets.items())[:8]))
        if iso and multi:
            better = after_mae(multi.cv) < after_mae(iso.cv) - 1e-9
            console.print(f"{dim}: multi-signal {'beats' if better else 'does not beat'} the per-dimension map "
                          f"(held-out MAE {after_mae(multi.cv):.3f} vs {after_mae(iso.cv):.3f})")
    for w in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(w)}")
    if stored and not plain:
        console.print(f"stored as {result.id}; calibrated scores written beside raw ones for {n_calibrated} "
                      "judgment(s) (`evaluate calibrated` lists them)")
    elif stored:
        console.print(f"kept in the store as {result.id} (apply it with --calibration {result.id})")
    elif out is None:
        console.print("[dim]plain files: the calibration is reported, not stored (--out FILE writes it, "
                      "--save keeps it by id)[/dim]")
    if out is not None:
        console.print(f"written to {out} (apply it: evaluate agreement --judge J --human H --calibration {out})")
