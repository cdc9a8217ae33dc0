"""Page rendering shared by the static report and the server: links, contexts, Jinja templates.

A view is `render_<view>(con, schema, filters, links, ...)` -> HTML. Queries come from `queries`,
charts from `charts`; this module only shapes rows for the templates. Templates autoescape every
value; nothing taken from a transcript, code file or model reply is ever marked safe.
"""

from __future__ import annotations

import hashlib
import json
import re
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, select_autoescape

from evaluator.report import charts
from evaluator.report import queries as q
from evaluator.report.queries import Filters, Schema

PAGE_SIZE = 100


# -- links -----------------------------------------------------------------------------------------


@lru_cache(maxsize=65536)
def slug(value: str) -> str:
    """A file-name-safe, collision-free name for any string (candidate and cohort names are free text)."""
    base = re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")[:40] or "x"
    return f"{base}-{hashlib.sha1(value.encode()).hexdigest()[:8]}"


SAFE_ID = re.compile(r"[A-Za-z0-9-]{1,64}")


@lru_cache(maxsize=1 << 17)
def safe_id(value: str) -> str:
    """A judgment id as it appears in file names and URLs (report.js accepts only this alphabet)."""
    return value if SAFE_ID.fullmatch(value) else slug(value)


@dataclass
class Links:
    """Where each view lives: relative files for the static report, query URLs for the server."""

    static: bool
    depth: int = 0
    filters: Filters = field(default_factory=Filters)

    def _root(self) -> str:
        return "../" * self.depth

    def _url(self, path: str, **params: Any) -> str:
        merged = {**self.filters.active(), **{k: v for k, v in params.items() if v is not None}}
        return path + (("?" + urlencode(merged)) if merged else "")

    def at(self, depth: int) -> Links:
        return Links(self.static, depth, self.filters)

    def overview(self, cohort: str | None = None) -> str:
        if self.static:
            return self._root() + (f"cohort/{slug(cohort)}.html" if cohort else "index.html")
        base = Filters(**{**self.filters.__dict__, "cohort": cohort})
        return Links(False, 0, base)._url("/")

    def candidate(self, name: str) -> str:
        if self.static:
            return self._root() + f"candidate/{slug(name)}.html"
        return self._url("/candidate", name=name)

    def judgment(self, judgment_id: str) -> str:
        """The judgment view. Static: one page, judgment.html, that draws the judgment named by `?id=`
        from the data file that holds it (see `data_file_of`)."""
        if self.static:
            return self._root() + f"judgment.html?id={safe_id(judgment_id)}"
        return self._url("/judgment", id=judgment_id)

    def judgments(self, page: int = 1) -> str:
        if self.static:
            return self._root() + f"judgments/{page}.html"
        return self._url("/judgments", page=page if page > 1 else None)

    def quality(self) -> str:
        return self._root() + "quality.html" if self.static else self._url("/quality")

    def cost(self) -> str:
        return self._root() + "cost.html" if self.static else self._url("/cost")

    def asset(self, name: str) -> str:
        return self._root() + f"assets/{name}" if self.static else f"/assets/{name}"


# -- templates -------------------------------------------------------------------------------------


def _fmt_num(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def _fmt_cost(value: Any) -> str:
    if value is None:
        return "unknown"
    return f"${value:,.4f}" if value < 1 else f"${value:,.2f}"


def _fmt_cost_of(value: Any, unknown: int | None = 0) -> str:
    """A sum of costs of which `unknown` were not priced: an unknown price is never a zero, so the
    sum is "unknown" when none is known and "at least $X" when only some are."""
    if not unknown:
        return _fmt_cost(value)
    return "unknown" if value is None else f"at least {_fmt_cost(value)}"


def _fmt_pct(value: Any) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def _fmt_date(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


class _Environment(Environment):
    """Jinja, reading `row.name` from a dict by key first. Templates write `r.name` for query rows
    (dicts); Jinja's own order (attribute, then key) raises and catches an AttributeError for every
    field, which dominated rendering tables of thousands of rows. Only a dict with a key named like a
    dict method (`items`, `get`...) would read differently: no query row has one."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = _Environment(loader=PackageLoader("evaluator.report", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(num=_fmt_num, cost=_fmt_cost, cost_of=_fmt_cost_of, pct=_fmt_pct, date=_fmt_date,
                       json=charts.embed_json,
                       short=lambda v, n=12: (str(v)[:n] + "…") if v and len(str(v)) > n else (v or ""))
    return env


@dataclass
class Site:
    """What every page's frame needs: the navigation, the filter choices, how it was made."""

    links: Links
    options: dict[str, Any]
    filters: Filters
    names: dict[str, dict[str, Any]]
    db: str
    built_at: str
    serve: bool

    def frame(self, active: str, title: str) -> dict[str, Any]:
        return {"links": self.links, "options": self.options, "filters": self.filters,
                "active_filters": self.filters.active(), "active": active, "title": title, "db": self.db,
                "built_at": self.built_at, "serve": self.serve, "names": self.names, "slug": slug}


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def dim_name(names: dict[str, dict[str, Any]], dim_id: str) -> str:
    return names.get(dim_id, {}).get("name", dim_id)


# -- views -----------------------------------------------------------------------------------------


def render_overview(con, schema: Schema, site: Site, cohort: str | None = None) -> str:
    f = Filters(**{**site.filters.__dict__, "cohort": cohort}) if cohort is not None else site.filters
    scale = q.score_scale(con, schema, f)
    totals = q.overview_totals(con, schema, f)
    dist = q.dimension_distribution(con, schema, f)
    heat = q.heatmap(con, schema, f)
    cands = q.candidates_summary(con, schema, f)
    links = site.links
    cand_links = {c["candidate"]: links.candidate(c["candidate"]) for c in cands}
    return render(
        "overview.html", **site.frame("overview", cohort or "All cohorts"), cohort=cohort, totals=totals,
        scale=scale, distribution=dist, weakest=q.weakest_dimensions(con, schema, f),
        coverage=q.coverage(con, schema, f), candidates=cands,
        dist_chart=charts.distribution(dist, site.names, scale) if dist else None,
        heat_chart=charts.heatmap(heat, site.names, scale, cand_links) if heat else None,
    )


def series_palette(rows: list[dict[str, Any]]) -> dict[str, str]:
    """A stable colour per series, in order of first appearance."""
    palette: dict[str, str] = {}
    for r in sorted(rows, key=lambda r: (r["session_date"], r["created_at"])):
        if r["series"] not in palette:
            palette[r["series"]] = charts.SERIES_COLORS[len(palette) % len(charts.SERIES_COLORS)]
    return palette


def render_candidate(site: Site, name: str, trend: list[dict[str, Any]], sessions: list[dict[str, Any]],
                     changes: list[dict[str, Any]], scale: tuple[int, int]) -> str:
    links = site.links
    palette = series_palette(trend)
    judgment_links = {jid: links.judgment(jid) for jid in {r["judgment_id"] for r in trend}}
    dims: dict[str, list[dict[str, Any]]] = {}
    for r in trend:
        dims.setdefault(r["dimension_id"], []).append(r)
    panels = []
    for dim_id, pts in dims.items():
        latest = pts[-1]
        same_series = [p for p in pts if p["series"] == latest["series"]]
        delta = latest["score"] - same_series[0]["score"] if len(same_series) > 1 else None
        panels.append({"id": dim_id, "name": dim_name(site.names, dim_id), "latest": latest["score"],
                       "delta": delta, "n": len(pts), "breaks": sum(p["is_break"] for p in pts),
                       "calibrated": latest.get("calibrated"),
                       "chart": charts.trend(pts, palette, scale, judgment_links)})
    return render(
        "candidate.html", **site.frame("candidate", name), name=name, panels=panels, sessions=sessions,
        palette=palette, improvements=[c for c in changes if c["kind"] == "improvement"],
        regressions=[c for c in changes if c["kind"] == "regression"],
        has_calibration=any(r.get("calibrated") is not None for r in trend),
    )


def render_candidate_live(con, schema: Schema, site: Site, name: str) -> str:
    f = site.filters
    return render_candidate(site, name, q.candidate_trend(con, schema, f, name),
                            q.candidate_sessions(con, schema, f, name), q.candidate_changes(con, schema, f, name),
                            q.score_scale(con, schema, f))


def render_judgments(con, schema: Schema, site: Site, page: int, data: dict[str, Any] | None = None) -> str:
    data = data or q.judgments_page(con, schema, site.filters, page, PAGE_SIZE)
    return render("judgments.html", **site.frame("judgments", "Judgments"), data=data)


def render_judgment(site: Site, context: dict[str, Any], payload: str | None = None, files: int = 1) -> str:
    """The judgment view's page; report.js draws the judgment into it. `context` is what every
    judgment shares (dimension names, score colours, links); `payload` one judgment's JSON
    (`judgment_payload`), embedded by the server. The static report has one such page,
    judgment.html, without a payload: it loads the data file (of `files`) that holds the judgment
    named by its `?id=`. Both travel in attributes, decoded by the HTML parser, never as markup."""
    title = "Judgment"
    if payload is not None:
        j = json.loads(payload)["j"]
        title = j.get("title") or j.get("source") or j.get("id") or title
    return render("judgment.html", **site.frame("judgment", title), context=context, payload=payload, files=files)


def judgment_context(site: Site, scale: tuple[int, int]) -> dict[str, Any]:
    return {"names": {k: str(v.get("name", k)) for k, v in site.names.items()},
            "colors": {str(k): v for k, v in charts.score_colors(*scale).items()},
            "scale": list(scale), "overview_url": site.links.overview()}


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=charts._default)


def _js_text(text: str) -> str:
    """JSON as a JavaScript literal: only U+2028 and U+2029 differ (line ends in older engines)."""
    if "\u2028" in text or "\u2029" in text:
        text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return text


NO_TEXT = ("This judgment was stored before the store kept the transcripts' text, so only its quotes are "
           "shown. Judge the transcript again (evaluate FILE --force) to see them highlighted in the text.")


def judgment_payload(site: Site, row: q.JudgmentDoc) -> str:
    """One judgment's data for report.js, as JSON text: the stored judgment as DuckDB wrote it
    (`j`, each quote with the span the verifier found), the link to its candidate, and the text it
    was judged on as stored (`t`: turns and code), or why there is none (`t_note`). report.js
    highlights each quote at its stored span: nothing is matched again, no source file is read."""
    text = row.text if row.text is not None else "null"
    note = "null" if row.text is not None else _json_text(NO_TEXT)
    return (f'{{"candidate_url":{_json_text(site.links.candidate(row.candidate))},'
            f'"t":{text},"t_note":{note},"j":{row.doc}}}')


JUDGMENTS_PER_FILE = 25  # on average, in the static report's judgment data files


def data_file_count(judgments: int) -> int:
    """How many data files the static report spreads its judgments over (about 25 a file: few files
    to create, and opening one judgment loads a few dozen kB, not the whole report)."""
    return max(1, -(-judgments // JUDGMENTS_PER_FILE))


def data_file_of(safe: str, files: int) -> int:
    """Which data file holds the judgment with this safe id: CRC-32 of its (ASCII) characters modulo
    the number of files. report.js computes the same from the page's ?id=, so links need only the id."""
    return zlib.crc32(safe.encode("ascii")) % files


def judgment_script(entries: list[tuple[str, str]]) -> str:
    """A static data file, judgment/<n>.js: a script (a page opened from disk may load scripts but
    not fetch JSON) that files each judgment's JSON (`judgment_payload`) under its safe id."""
    lines = ["(function (J) {\n"]
    lines += [f"J[{_json_text(safe)}] = {_js_text(payload)};\n" for safe, payload in entries]
    lines.append("})(window.EvaluatorJudgments = window.EvaluatorJudgments || Object.create(null));\n")
    return "".join(lines)


def render_quality(con, schema: Schema, site: Site) -> str:
    f = site.filters
    data = q.judge_quality(con, schema, f)
    scale = q.score_scale(con, schema, f)
    curves = []
    for dim_id in sorted({r["dimension_id"] for r in data["curve"]} | {r["dimension_id"] for r in data["calibrated_curve"]}):
        curves.append({"id": dim_id, "name": dim_name(site.names, dim_id),
                       "chart": charts.calibration_curve([r for r in data["curve"] if r["dimension_id"] == dim_id],
                                                         data["calibrated_curve"], dim_id, scale)})
    return render("quality.html", **site.frame("quality", "Judge quality"), data=data, curves=curves,
                  agreement_chart=charts.agreement(data["agreement"], data["ceiling"], site.names) if data["agreement"] else None)


def render_cost(con, schema: Schema, site: Site) -> str:
    f = site.filters
    runs = q.cost_by_run(con, schema, f)
    by_cohort = q.cost_by(con, schema, f, "cohort")
    by_model = q.cost_by(con, schema, f, "model")
    by_month = q.cost_by(con, schema, f, "month")
    total = {k: sum((r[k] or 0) for r in by_model) for k in ("judgments", "calls", "prompt_tokens", "completion_tokens")}
    # Unknown prices are not zeros: the total is over the known costs (None if none is known), and
    # the mean per judgment only over the judgments whose cost is known.
    known = [r["cost_usd"] for r in by_model if r["cost_usd"] is not None]
    total["cost_usd"] = sum(known) if known else None
    total["cost_unknown"] = sum(r["cost_unknown"] for r in by_model)
    total["cost_known"] = total["judgments"] - total["cost_unknown"]
    total["cost_per_judgment"] = total["cost_usd"] / total["cost_known"] if total["cost_known"] and known else None
    total["runs"] = len({r["run_id"] for r in runs})
    paid = any((r["cost_usd"] or 0) > 0 for r in runs)
    return render("cost.html", **site.frame("cost", "Cost"), runs=runs, by_cohort=by_cohort, by_model=by_model,
                  by_month=by_month, total=total,
                  runs_chart=charts.cost_runs(runs) if paid else None,
                  cohort_chart=charts.cost_groups(by_cohort) if paid else None)


def render_message(site: Site, title: str, message: str, status: str = "") -> str:
    return render("message.html", **site.frame("", title), message=message, status=status)
