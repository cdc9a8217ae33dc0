"""Plotly figure specs (plain JSON dicts) built from query rows; plotly.js draws them in the page.

Every string that reaches a chart is passed through `label()`: plotly renders a small subset of HTML
inside text (<b>, <a href>, <br>...), so a candidate called `<a href=javascript:...>` must arrive as
entities and be drawn as the literal text. Specs are embedded with `embed_json()`, which escapes
`<`, `>` and `&` so no string can close the <script type="application/json"> element holding them.
"""

from __future__ import annotations

import html
import json
from datetime import date, datetime, timedelta
from typing import Any

FONT = {"family": "Inter, ui-sans-serif, system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", "size": 12,
        "color": "#1f2937"}
SERIES_COLORS = ["#2563eb", "#d97706", "#059669", "#7c3aed", "#db2777", "#0891b2", "#65a30d", "#dc2626"]
GRID = "#e5e7eb"


def label(value: Any) -> str:
    """A string safe to show as plotly text: HTML entities, so it renders literally."""
    return html.escape("" if value is None else str(value), quote=True)


def wrapped(value: Any, width: int = 18, lines: int = 3) -> str:
    """A long axis label as a few short lines (plotly's <br>, each line escaped by `label`), so a
    dimension or cohort name needs neither a rotated label nor a wide margin; past `lines` lines it
    ends in "…" (the hover shows it whole)."""
    words, out, line = str("" if value is None else value).split(), [], ""
    for word in words:
        while len(word) > width:  # a long unbroken name (a cohort slug) is cut, not left overlong
            if line:
                out.append(line)
                line = ""
            out.append(word[:width])
            word = word[width:]
        if line and len(line) + 1 + len(word) > width:
            out.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    if line:
        out.append(line)
    if len(out) > lines:
        out = out[:lines - 1] + [out[lines - 1][:width - 1] + "…"]
    return "<br>".join(label(part) for part in out)


def _default(o: Any) -> Any:
    if isinstance(o, (date, datetime)):
        return o.isoformat()
    raise TypeError(type(o))


def _iso(value: Any) -> Any:
    """A date as JSON shows it (what `_default` would write, without a callback per value)."""
    return value.isoformat() if isinstance(value, (date, datetime)) else value


def embed_json(value: Any) -> str:
    """JSON for a <script type="application/json"> element: nothing in it can end the element."""
    text = json.dumps(value, default=_default, ensure_ascii=False, separators=(",", ":"))
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def score_colors(lo: int, hi: int) -> dict[int, str]:
    """Red (low) to green (high) for each level of the scale."""
    ramp = ["#d73027", "#f46d43", "#fdae61", "#fee08b", "#d9ef8b", "#a6d96a", "#66bd63", "#1a9850"]
    levels = list(range(lo, hi + 1))
    if len(levels) == 1:
        return {lo: ramp[-1]}
    return {lv: ramp[round(i * (len(ramp) - 1) / (len(levels) - 1))] for i, lv in enumerate(levels)}


def _layout(**extra: Any) -> dict[str, Any]:
    base = {"font": FONT, "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
            "margin": {"l": 40, "r": 16, "t": 12, "b": 36}, "hoverlabel": {"font": {"family": FONT["family"]}}}
    base.update(extra)
    return base


def distribution(rows: list[dict[str, Any]], names: dict[str, dict[str, Any]],
                 scale: tuple[int, int]) -> dict[str, Any]:
    """100%-stacked horizontal bars: the share of each score level per dimension."""
    lo, hi = scale
    colors = score_colors(lo, hi)
    dims = [r["dimension_id"] for r in rows][::-1]
    ylabels = [wrapped(names.get(d, {}).get("name", d), 24) for d in dims]
    by_dim = {r["dimension_id"]: r for r in rows}
    data = []
    for level in range(lo, hi + 1):
        counts = [int((by_dim[d]["counts"] or {}).get(level, 0)) for d in dims]
        totals = [max(1, by_dim[d]["n_scored"]) for d in dims]
        data.append({
            "type": "bar", "orientation": "h", "name": str(level), "y": ylabels,
            "x": [round(100 * c / t, 1) for c, t in zip(counts, totals, strict=True)], "customdata": counts,
            "marker": {"color": colors[level], "line": {"color": "#ffffff", "width": 1}},
            "hovertemplate": f"%{{y}}<br>score {level}: %{{customdata}} (%{{x}}%)<extra></extra>",
        })
    return {"data": data, "layout": _layout(
        barmode="stack", height=max(180, 52 * len(dims) + 70), margin={"l": 10, "r": 24, "t": 8, "b": 56},
        xaxis={"range": [0, 100], "ticksuffix": "%", "gridcolor": GRID, "fixedrange": True, "automargin": True},
        yaxis={"fixedrange": True, "automargin": True},
        legend={"orientation": "h", "y": -0.22, "x": 0, "title": {"text": "score"}, "traceorder": "normal"})}


def heatmap(rows: list[dict[str, Any]], names: dict[str, dict[str, Any]], scale: tuple[int, int],
            links: dict[str, str]) -> dict[str, Any]:
    """Candidates x dimensions, mean score; a click opens the candidate (customdata holds the link)."""
    candidates = sorted({r["candidate"] for r in rows})
    dim_order: dict[str, int] = {}
    for r in rows:
        dim_order[r["dimension_id"]] = min(dim_order.get(r["dimension_id"], 1 << 30), r["position"])
    dims = sorted(dim_order, key=lambda d: (dim_order[d], d))
    cell = {(r["candidate"], r["dimension_id"]): r for r in rows}
    z, text, custom = [], [], []
    for c in candidates:
        z.append([round(cell[(c, d)]["mean"], 2) if (c, d) in cell else None for d in dims])
        text.append([f"{cell[(c, d)]['mean']:.1f}" if (c, d) in cell else "" for d in dims])
        custom.append([[links[c], cell[(c, d)]["n"] if (c, d) in cell else 0] for d in dims])
    lo, hi = scale
    colors = score_colors(lo, hi)
    colorscale = ([[(lv - lo) / (hi - lo), colors[lv]] for lv in range(lo, hi + 1)] if hi > lo
                  else [[0, colors[lo]], [1, colors[lo]]])
    return {"data": [{
        "type": "heatmap", "z": z, "text": text, "texttemplate": "%{text}", "customdata": custom,
        "x": [wrapped(names.get(d, {}).get("name", d), 12, 4) for d in dims],
        "y": [wrapped(c, 22, 2) for c in candidates],
        "zmin": lo, "zmax": hi, "colorscale": colorscale, "xgap": 2, "ygap": 2,
        "colorbar": {"title": {"text": "mean"}, "thickness": 12},
        "hovertemplate": "%{y}<br>%{x}<br>mean %{z} over %{customdata[1]} sessions<extra>click to open</extra>",
    }], "layout": _layout(
        height=max(220, 30 * len(candidates) + 130), margin={"l": 10, "r": 10, "t": 8, "b": 10},
        xaxis={"side": "bottom", "tickangle": 0, "fixedrange": True, "automargin": True},
        yaxis={"autorange": "reversed", "fixedrange": True, "automargin": True}), "click": "customdata0"}


def trend(points: list[dict[str, Any]], series_colors: dict[str, str], scale: tuple[int, int],
          links: dict[str, str]) -> dict[str, Any]:
    """One dimension's scores over time: one line per series (rubric version x judge model), never
    joined across a break; a dashed line and a note at each break; calibrated scores with intervals."""
    lo, hi = scale
    data: list[dict[str, Any]] = []
    by_series: dict[str, list[dict[str, Any]]] = {}
    for p in points:
        by_series.setdefault(p["series"], []).append(p)
    labels: dict[Any, str] = {}  # a candidate's points repeat a few exercises and models: escape each once

    def lab(value: Any) -> str:
        if value not in labels:
            labels[value] = label(value)
        return labels[value]

    for series, pts in by_series.items():
        color = series_colors.get(series, SERIES_COLORS[0])
        data.append({
            "type": "scatter", "mode": "lines+markers", "name": label(series), "legendgroup": label(series),
            "x": [_iso(p["session_date"]) for p in pts], "y": [p["score"] for p in pts],
            "customdata": [[links[p["judgment_id"]], lab(p["exercise"]), lab(p["model"])] for p in pts],
            "line": {"color": color, "width": 2}, "marker": {"size": 8, "color": color},
            "hovertemplate": "%{x}: raw %{y}<br>%{customdata[1]}<br>%{customdata[2]}<extra>click to open</extra>",
        })
        cal = [p for p in pts if p.get("calibrated") is not None]
        if cal:
            bars = [interval(p["calibrated"], p.get("calibrated_half_width"), scale) for p in cal]
            data.append({
                "type": "scatter", "mode": "markers", "name": label(series) + " (calibrated)",
                "legendgroup": label(series), "x": [_iso(p["session_date"]) for p in cal],
                "y": [round(p["calibrated"], 2) for p in cal],
                "error_y": {"type": "data", "symmetric": False, "visible": True, "color": color, "thickness": 1,
                            "array": [b[0] for b in bars], "arrayminus": [b[1] for b in bars]},
                "marker": {"symbol": "diamond-open", "size": 9, "color": color},
                "customdata": [[links[p["judgment_id"]], b[2]] for p, b in zip(cal, bars, strict=True)],
                "hovertemplate": "%{x}: calibrated %{y:.2f} %{customdata[1]}<extra></extra>",
            })
    shapes, notes = [], []
    for p in points:
        if not p["is_break"]:
            continue
        what = []
        if p.get("prev_rubric_version") != p["rubric_version"]:
            what.append("rubric changed")
        if p.get("prev_model") != p["model"]:
            what.append("judge changed")
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": p["session_date"], "x1": p["session_date"],
                       "y0": 0, "y1": 1, "line": {"color": "#6b7280", "width": 1.5, "dash": "dash"}})
        notes.append({"x": p["session_date"], "y": 1, "xref": "x", "yref": "paper", "yanchor": "bottom",
                      "text": label(" & ".join(what) or "break"), "showarrow": False,
                      "font": {"size": 10, "color": "#4b5563"}, "bgcolor": "rgba(255,255,255,0.85)"})
    return {"data": data, "layout": _layout(
        height=230, showlegend=False, shapes=shapes, annotations=notes, margin={"l": 32, "r": 12, "t": 22, "b": 30},
        yaxis={"range": [lo - 0.4, hi + 0.4], "dtick": 1, "gridcolor": GRID, "zeroline": False, "fixedrange": True},
        xaxis={"type": "date", "gridcolor": GRID, "fixedrange": True, "range": date_range(points),
               "tickformat": "%b %-d\n%Y", "hoverformat": "%Y-%m-%d", "nticks": 6, "automargin": True}),
        "click": "customdata0"}


def date_range(points: list[dict[str, Any]]) -> list[str] | None:
    """The x range of a trend: its sessions' days with a margin, at least two weeks wide. Left to
    plotly, one session's date spans a few seconds around midnight and the ticks become clock times."""
    days = sorted({date.fromisoformat(str(p["session_date"])[:10]) for p in points})
    if not days:
        return None
    pad = max(timedelta(days=7), (days[-1] - days[0]) * 0.05)
    return [(days[0] - pad).isoformat(), (days[-1] + pad).isoformat()]


def interval(value: float, half_width: float | None, scale: tuple[int, int]) -> tuple[float, float, str]:
    """Error bar (up, down) of a calibrated score and its hover text. The bar stops at the ends of the
    scale; an interval as wide as half the scale or more says nothing a reader can use, so it is not
    drawn (the hover gives it): drawn, it was a line the height of the chart."""
    lo, hi = scale
    if half_width is None:
        return 0.0, 0.0, "(no interval: no labelled transcripts)"
    text = f"± {half_width:.2f} (95%)"
    if half_width >= (hi - lo) / 2:
        return 0.0, 0.0, text + ", too wide to draw"
    return round(min(half_width, hi - value), 2), round(min(half_width, value - lo), 2), text


def agreement(rows: list[dict[str, Any]], ceiling: list[dict[str, Any]],
              names: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Exact agreement per dimension and judge, with 95% intervals; the human-human ceiling as a mark.
    Horizontal bars: the dimension names sit beside them, wrapped, and fit a phone's width without
    rotated labels running into each other or into the legend."""
    data: list[dict[str, Any]] = []
    # one series per judge, or per judge and rubric version when the rows are split by version
    models = sorted({(str(r["model"]), r.get("rubric_version") or "") for r in rows})
    order = list(dict.fromkeys(r["dimension_id"] for r in rows))[::-1]  # first dimension on top
    dim_label = {d: wrapped(names.get(d, {}).get("name", d), 20, 3) for d in order}
    for i, (m, version) in enumerate(models):
        rs = sorted([r for r in rows if (str(r["model"]), r.get("rubric_version") or "") == (m, version)],
                    key=lambda r: order.index(r["dimension_id"]))
        data.append({
            "type": "bar", "orientation": "h", "name": label(f"{m} · {version}" if version else m),
            "y": [dim_label[r["dimension_id"]] for r in rs],
            "x": [round(100 * r["exact"], 1) for r in rs], "marker": {"color": SERIES_COLORS[i % len(SERIES_COLORS)]},
            "error_x": {"type": "data", "symmetric": False, "color": "#374151",
                        "array": [round(100 * (r["hi"] - r["exact"]), 1) for r in rs],
                        "arrayminus": [round(100 * (r["exact"] - r["lo"]), 1) for r in rs]},
            "customdata": [r["n"] for r in rs],
            "hovertemplate": "%{y}<br>exact agreement %{x}% (n=%{customdata})<extra>%{fullData.name}</extra>",
        })
    ceiling = [r for r in ceiling if r["dimension_id"] in dim_label]
    if ceiling:
        data.append({
            "type": "scatter", "mode": "markers", "name": "human-human ceiling",
            "y": [dim_label[r["dimension_id"]] for r in ceiling], "x": [round(100 * r["exact"], 1) for r in ceiling],
            "marker": {"symbol": "line-ns-open", "size": 22, "color": "#111827", "line": {"width": 3}},
            "customdata": [r["n"] for r in ceiling],
            "hovertemplate": "%{y}<br>two humans agree %{x}% (n=%{customdata})<extra></extra>",
        })
    return {"data": data, "layout": _layout(
        barmode="group", height=max(220, len(order) * (22 * len(models) + 30) + 90),
        margin={"l": 10, "r": 16, "t": 34, "b": 10},
        xaxis={"range": [0, 105], "ticksuffix": "%", "gridcolor": GRID, "fixedrange": True, "automargin": True},
        yaxis={"fixedrange": True, "automargin": True, "categoryorder": "array",
               "categoryarray": [dim_label[d] for d in order]},
        legend={"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom", "traceorder": "normal"})}


def calibration_curve(curve: list[dict[str, Any]], calibrated: list[dict[str, Any]], dimension: str,
                      scale: tuple[int, int]) -> dict[str, Any]:
    """Judge score -> mean human score (with 95% interval) per judge and rubric version, each one's
    stored calibration map (dashed, in its colour), and the diagonal a perfectly calibrated judge
    would follow. Series are named by rubric version when the dimension has several: a judge's
    curves under two versions are two instruments', never one line."""
    lo, hi = scale
    data: list[dict[str, Any]] = [{"type": "scatter", "mode": "lines", "name": "perfect", "x": [lo, hi], "y": [lo, hi],
                                   "line": {"color": "#9ca3af", "dash": "dot"}, "hoverinfo": "skip"}]
    cal = [r for r in calibrated if r["dimension_id"] == dimension]
    series = sorted({(str(r["model"]), str(r["rubric_version"])) for r in [*curve, *cal]})
    by_version = len({v for _, v in series}) > 1

    def name(model: str, version: str) -> str:
        return label(f"{model} · {version}" if by_version else model)

    for i, (m, v) in enumerate(series):
        color = SERIES_COLORS[i % len(SERIES_COLORS)]
        rs = [r for r in curve if (str(r["model"]), str(r["rubric_version"])) == (m, v)]
        if rs:
            data.append({"type": "scatter", "mode": "lines+markers", "name": name(m, v), "legendgroup": name(m, v),
                         "x": [r["judge"] for r in rs], "y": [round(r["mean_human"], 2) for r in rs],
                         "line": {"color": color},
                         "error_y": {"type": "data", "array": [round(r["half_width"], 2) for r in rs], "color": color},
                         "customdata": [r["n"] for r in rs],
                         "hovertemplate": "judge %{x} → humans %{y:.2f} (n=%{customdata})"
                                          "<extra>%{fullData.name}</extra>"})
        cs = [r for r in cal if (str(r["model"]), str(r["rubric_version"])) == (m, v)]
        if cs:
            pooled = " (fitted pooled over several rubric versions)" if any(r.get("pooled") for r in cs) else ""
            data.append({"type": "scatter", "mode": "lines+markers", "name": f"{name(m, v)}: stored calibration",
                         "legendgroup": name(m, v), "x": [r["judge"] for r in cs],
                         "y": [round(r["calibrated"], 2) for r in cs],
                         "line": {"color": color, "dash": "dash"}, "marker": {"symbol": "diamond"},
                         "hovertemplate": f"judge %{{x}} → calibrated %{{y:.2f}}{label(pooled)}"
                                          "<extra>%{fullData.name}</extra>"})
    score_axis = {"range": [lo - 0.3, hi + 0.3], "dtick": 1, "gridcolor": GRID, "fixedrange": True}
    legend = len(series) > 1
    return {"data": data, "layout": _layout(
        height=260 + (30 * len(series) if legend else 0), showlegend=legend,
        margin={"l": 36, "r": 10, "t": 10, "b": 40},
        legend={"orientation": "h", "x": 0, "y": -0.25, "yanchor": "top"},
        xaxis={"title": {"text": "judge score"}, **score_axis},
        yaxis={"title": {"text": "human"}, **score_axis})}


def cost_runs(rows: list[dict[str, Any]], links: dict[str, str] | None = None) -> dict[str, Any]:
    """Cost per run over time, one colour per judge model."""
    data = []
    for i, m in enumerate(sorted({r["model"] or "" for r in rows})):
        rs = sorted([r for r in rows if (r["model"] or "") == m and r["started_at"] is not None],
                    key=lambda r: r["started_at"])
        data.append({"type": "bar", "name": label(m), "x": [r["started_at"] for r in rs],
                     "y": [round(r["cost_usd"] or 0, 4) for r in rs],
                     "marker": {"color": SERIES_COLORS[i % len(SERIES_COLORS)]},
                     "customdata": [[label(r["cohort"] or "-"), r["judgments"], r["calls"]] for r in rs],
                     "hovertemplate": "%{x}<br>$%{y:.4f} · %{customdata[1]} judgments · %{customdata[2]} calls"
                                      "<br>cohort %{customdata[0]}<extra>%{fullData.name}</extra>"})
    return {"data": data, "layout": _layout(
        height=300, barmode="stack", margin={"l": 10, "r": 10, "t": 34, "b": 10},
        yaxis={"tickprefix": "$", "gridcolor": GRID, "fixedrange": True, "automargin": True},
        xaxis={"type": "date", "gridcolor": GRID, "automargin": True},
        legend={"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"})}


def cost_groups(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Cost and tokens per group (cohort or model) as horizontal bars."""
    keys = [wrapped(r["key"], 22, 2) for r in rows][::-1]
    return {"data": [{"type": "bar", "orientation": "h", "y": keys,
                      "x": [round(r["cost_usd"] or 0, 4) for r in rows][::-1],
                      "marker": {"color": SERIES_COLORS[0]},
                      "customdata": [[r["judgments"], r["prompt_tokens"] + r["completion_tokens"]] for r in rows][::-1],
                      "hovertemplate": "%{y}<br>$%{x:.4f} · %{customdata[0]} judgments · "
                                       "%{customdata[1]:,} tokens<extra></extra>"}],
            "layout": _layout(height=max(160, 46 * len(keys) + 60), margin={"l": 10, "r": 16, "t": 8, "b": 10},
                              xaxis={"tickprefix": "$", "gridcolor": GRID, "fixedrange": True, "automargin": True},
                              yaxis={"automargin": True, "fixedrange": True})}
