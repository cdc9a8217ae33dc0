"""Every view of the report, registered once.

A view is one `View` entry here plus its template: its served route and parameters (each bounded),
the file it is in the static report, how it renders live, which pages the static build writes for
it, and its place in the navigation. The server's routes (`serve`), the static build (`build`), the
links between pages (`pages.Links`, `links.<view>(...)`) and the navigation bar (base.html) all read
`VIEWS`: adding a view touches this module and its template, nothing else.
"""

from __future__ import annotations

import shlex
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from evaluator.report import charts, pages
from evaluator.report import queries as q
from evaluator.report.pages import Site, dim_name, render, safe_id, slug
from evaluator.report.queries import Filters

PAGE_SIZE = 100  # judgments per page of the list
MAX_PAGE = 1_000_000  # a page number past this is a bad request, not a query
MAX_TEXT = 1_000  # characters of a text parameter (a name, an id)


class BadParameter(ValueError):
    """A request parameter out of its bounds: the server answers 400 with this message."""


@dataclass(frozen=True)
class Param:
    """One parameter of a view: text, or a whole number within [lo, hi]."""

    name: str
    kind: type = str
    required: bool = False
    default: Any = None
    lo: int = 1
    hi: int = MAX_PAGE

    def parse(self, raw: list[str] | None) -> Any:
        values = [v for v in raw or [] if v != ""]
        if not values:
            if self.required:
                raise BadParameter(f"the page needs a {self.name} parameter")
            return self.default
        if len(values) > 1:
            raise BadParameter(f"{self.name} is given {len(values)} times: give it once")
        value = values[0]
        if self.kind is int:
            if not (value.isascii() and value.isdigit() and len(value) <= len(str(self.hi))) or \
                    not self.lo <= int(value) <= self.hi:
                raise BadParameter(f"{self.name} must be a whole number from {self.lo} to {self.hi:,}, "
                                   f"got {value[:40]!r}")
            return int(value)
        if len(value) > MAX_TEXT:
            raise BadParameter(f"{self.name} is longer than {MAX_TEXT:,} characters")
        return value


@dataclass
class Live:
    """One served request: a read-only connection, the page frame, the view's parsed parameters."""

    con: Any
    schema: q.Schema
    site: Site
    params: dict[str, Any]


@dataclass
class Static:
    """The static build: the connection, the page frame at the report's root and one folder down,
    and `write(relative path, text)`. Views record counts for the build's result in `counts`."""

    con: Any
    schema: q.Schema
    site: Site
    deep: Site
    filters: Filters
    write: Callable[[str, str], None]
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def cohorts(self) -> list[str]:
        """The cohorts that get a page: every one, or the one the report is built for."""
        return self.site.options["cohort"] if self.filters.cohort is None else [self.filters.cohort]


@dataclass(frozen=True)
class View:
    """One view. `path(params)`: its file in the static report; `live(request)`: (status, html) for
    the server; `build(static)`: writes its pages into the static report. `nav`: its label in the
    navigation bar (None: reached by links only); `lights`: the bar entry lit while it shows;
    `form_route`: where the filter bar submits from it (a view that needs a parameter sends the
    filters to the overview)."""

    key: str
    route: str
    path: Callable[[dict[str, Any]], str]
    live: Callable[[Live], tuple[int, str]]
    build: Callable[[Static], None]
    params: tuple[Param, ...] = ()
    nav: str | None = None
    lights: str | None = None
    form_route: str | None = None

    def default(self, name: str) -> Any:
        return next((p.default for p in self.params if p.name == name), None)


VIEWS: dict[str, View] = {}


def register(view: View) -> View:
    """Two views on one key or route would shadow each other silently, so registration refuses it."""
    if view.key in VIEWS or any(v.route == view.route for v in VIEWS.values()):
        raise ValueError(f"view {view.key} ({view.route}) is registered twice")
    VIEWS[view.key] = view
    return view


def route(path: str) -> View | None:
    """The server dispatches a request path through the same registry the static build walks."""
    return next((v for v in VIEWS.values() if v.route == path), None)


def navigation() -> list[View]:
    """The navigation bar's entries, in registration order."""
    return [v for v in VIEWS.values() if v.nav]


def not_found(site: Site, title: str, message: str) -> tuple[int, str]:
    """A bad link or an over-narrow filter gets a framed 404 page the user can navigate away from."""
    return HTTPStatus.NOT_FOUND, pages.render_message(site, title, message)


# -- overview (all cohorts, or one) -----------------------------------------------------------------


def series_note(rows: list[dict[str, Any]], site: Site, cohort: str | None) -> dict[str, Any]:
    """What the overview's scores show of each rubric (its newest version in scope, that version's
    main judge) and what they leave out, each left-out series with the report options that show it
    (and, served, a link to the overview filtered so). Why not pool: a score of 3 under an edited
    anchor, or from another judge, is another measurement; why not one chart per series: the
    candidate pages already draw every series apart, and the overview answers "how is this cohort
    doing" with the current instrument."""
    shown = [r for r in rows if r["shown"]]
    left = [r for r in rows if not r["shown"]]
    for r in left:
        args = {"rubric_version": r["rubric_version"], "model": r["model"]}
        r["options"] = " ".join(f"--{k.replace('_', '-')} {shlex.quote(str(v))}" for k, v in args.items())
        r["link"] = None if site.links.static else site.links.overview(cohort, **args)
    return {"shown": shown, "left": left, "judgments": sum(r["judgments"] for r in left)}


def render_overview(con, schema: q.Schema, site: Site, cohort: str | None = None) -> str:
    """One renderer for the served overview and the static index and cohort pages, so they never differ."""
    f = Filters(**{**site.filters.__dict__, "cohort": cohort}) if cohort is not None else site.filters
    scale = q.score_scale(con, schema, f, one_series=True)
    totals = q.overview_totals(con, schema, f, one_series=True)
    dist = q.dimension_distribution(con, schema, f, one_series=True)
    heat = q.heatmap(con, schema, f, one_series=True)
    cands = q.candidates_summary(con, schema, f, one_series=True)
    cand_links = {c["candidate"]: site.links.candidate(c["candidate"]) for c in cands}
    return render(
        "overview.html", **site.frame("overview", cohort or "All cohorts"), cohort=cohort, totals=totals,
        series=series_note(q.series_shown(con, schema, f), site, cohort),
        scale=scale, distribution=dist, weakest=q.weakest_dimensions(con, schema, f, one_series=True),
        coverage=q.coverage(con, schema, f), candidates=cands,
        dist_chart=charts.distribution(dist, site.names, scale) if dist else None,
        heat_chart=charts.heatmap(heat, site.names, scale, cand_links) if heat else None,
    )


def _build_overview(b: Static) -> None:
    b.write("index.html", render_overview(b.con, b.schema, b.site))
    for cohort in b.cohorts:
        b.write(f"cohort/{slug(cohort)}.html", render_overview(b.con, b.schema, b.deep, cohort))


register(View(
    key="overview", route="/", nav="Overview", params=(Param("cohort"),),
    path=lambda p: f"cohort/{slug(p['cohort'])}.html" if p.get("cohort") else "index.html",
    live=lambda r: (HTTPStatus.OK, render_overview(r.con, r.schema, r.site, r.site.filters.cohort)),
    build=_build_overview))


# -- candidate ----------------------------------------------------------------------------------------


def series_palette(rows: list[dict[str, Any]]) -> dict[str, str]:
    """A stable colour per series, in order of first appearance."""
    palette: dict[str, str] = {}
    for r in sorted(rows, key=lambda r: (r["session_date"], r["created_at"])):
        if r["series"] not in palette:
            palette[r["series"]] = charts.SERIES_COLORS[len(palette) % len(charts.SERIES_COLORS)]
    return palette


def render_candidate(site: Site, name: str, trend: list[dict[str, Any]], sessions: list[dict[str, Any]],
                     changes: list[dict[str, Any]], scale: tuple[int, int]) -> str:
    """Takes already-queried rows so the static build can query once per filter set and render many pages."""
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


def _live_candidate(r: Live) -> tuple[int, str]:
    f, name = r.site.filters, r.params["name"]
    sessions = q.candidate_sessions(r.con, r.schema, f, name)
    if not sessions:
        return not_found(r.site, "No such candidate", f"No judged session of {name!r} matches these filters.")
    trend = q.candidate_trend(r.con, r.schema, f, name)
    changes = q.candidate_changes(r.con, r.schema, f, name)
    return HTTPStatus.OK, render_candidate(r.site, name, trend, sessions, changes, q.score_scale(r.con, r.schema, f))


def _group(rows: list[dict[str, Any]], key: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        out[r[key]].append(r)
    return out


def _candidate_pages(b: Static, filters: Filters, only: set[str] | None = None) -> set[str]:
    """candidate/<slug>.html for every candidate in scope (or only those named in `only`): three
    whole-store queries, partitioned. Returns the names written."""
    con, schema = b.con, b.schema
    scale = q.score_scale(con, schema, filters)
    trend = _group(q.candidate_trend(con, schema, filters), "candidate")
    sessions = _group(q.candidate_sessions(con, schema, filters), "candidate")
    changes = _group(q.candidate_changes(con, schema, filters), "candidate")
    names = set(sessions) if only is None else set(sessions) & only
    for name in names:
        b.write(f"candidate/{slug(name)}.html", render_candidate(b.deep, name, trend.get(name, []), sessions[name],
                                                                 changes.get(name, []), scale))
    return names


def _build_candidates(b: Static) -> None:
    # One page per candidate name that any page links to. A cohort manifest may name a transcript's
    # candidate differently per cohort (cohort_members.candidate), so a cohort page can link to a
    # name the whole scope does not use: that name's page shows it as that cohort names it.
    written = _candidate_pages(b, b.filters)
    for cohort in b.cohorts:
        cohort_filters = Filters(**{**b.filters.__dict__, "cohort": cohort})
        missing = set(q.candidate_names(b.con, b.schema, cohort_filters)) - written
        if missing:
            written |= _candidate_pages(b, cohort_filters, only=missing)


register(View(
    key="candidate", route="/candidate", lights="overview", form_route="/", params=(Param("name", required=True),),
    path=lambda p: f"candidate/{slug(p['name'])}.html", live=_live_candidate, build=_build_candidates))


# -- the list of judgments ------------------------------------------------------------------------------


def render_judgments(site: Site, data: dict[str, Any]) -> str:
    """The list page is a shell; its rows arrive as `data` so server and static build share the template."""
    return render("judgments.html", **site.frame("judgments", "Judgments"), data=data)


def _live_judgments(r: Live) -> tuple[int, str]:
    page = r.params["page"]
    data = q.judgments_page(r.con, r.schema, r.site.filters, page, PAGE_SIZE)
    if page > data["pages"]:
        return not_found(r.site, "No such page", f"There is no page {page}: the list of judgments has "
                                                 f"{data['pages']} page{'s' if data['pages'] != 1 else ''}.")
    return HTTPStatus.OK, render_judgments(r.site, data)


def _build_judgments(b: Static) -> None:
    everything = q.judgments_page(b.con, b.schema, b.filters, 1, None)
    total = everything["total"]
    n_pages = max(1, -(-total // PAGE_SIZE))
    for page in range(1, n_pages + 1):
        b.write(f"judgments/{page}.html", render_judgments(b.deep, {
            "rows": everything["rows"][(page - 1) * PAGE_SIZE:page * PAGE_SIZE], "total": total, "page": page,
            "size": PAGE_SIZE, "pages": n_pages}))


register(View(
    key="judgments", route="/judgments", nav="Judgments", params=(Param("page", int, default=1),),
    path=lambda p: f"judgments/{p.get('page') or 1}.html", live=_live_judgments, build=_build_judgments))


# -- one judgment ------------------------------------------------------------------------------------------


def render_judgment(site: Site, context: dict[str, Any], payload: str | None = None, files: int = 1) -> str:
    """The judgment view's page; report.js draws the judgment into it. `context` is what every
    judgment shares (dimension names, score colours, links); `payload` one judgment's JSON
    (`pages.judgment_payload`), embedded by the server. The static report has one such page,
    judgment.html, without a payload: it loads the data file (of `files`) that holds the judgment
    named by its `?id=`. Both travel in attributes, decoded by the HTML parser, never as markup."""
    import json

    title = "Judgment"
    if payload is not None:
        j = json.loads(payload)["j"]
        title = j.get("title") or j.get("source") or j.get("id") or title
    return render("judgment.html", **site.frame("judgment", title), context=context, payload=payload, files=files)


def _live_judgment(r: Live) -> tuple[int, str]:
    docs = q.judgment_docs(r.con, r.schema, [r.params["id"]])
    if not docs:
        return not_found(r.site, "No such judgment", f"No judgment with id {r.params['id']} in the store.")
    # the static report's page and script, with this judgment's data embedded
    context = pages.judgment_context(r.site, q.score_scale(r.con, r.schema, Filters()))
    return HTTPStatus.OK, render_judgment(r.site, context, pages.judgment_payload(r.site, docs[0]))


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def write_judgment_data(b: Static, ids: list[str]) -> int:
    """The judgments' data files, judgment/<n>.js (`pages.data_file_count` of them, each judgment in
    the one `pages.data_file_of` names), drawn by the shared judgment.html. DuckDB writes each
    judgment's JSON and its transcript's stored text, 5,000 judgments a query: Python only joins
    strings (no source file is read, nothing is matched again). Each judgment's candidate link uses
    the name its candidate page was written under (the build's scope). Returns the number of files."""
    files = pages.data_file_count(len(ids))
    by_file: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for chunk in _chunks(ids, 5000):
        for row in q.judgment_docs(b.con, b.schema, chunk, b.filters):
            safe = safe_id(row.id)
            by_file[pages.data_file_of(safe, files)].append((safe, pages.judgment_payload(b.site, row)))
    for n in range(files):
        b.write(f"judgment/{n}.js", pages.judgment_script(by_file.get(n, [])))
    return files


def _build_judgment(b: Static) -> None:
    ids = q.judgment_ids(b.con, b.schema, b.filters)
    context = pages.judgment_context(b.site, q.score_scale(b.con, b.schema, b.filters))
    b.write("judgment.html", render_judgment(b.site, context, files=pages.data_file_count(len(ids))))
    b.counts["judgments"] = len(ids)
    b.counts["data_files"] = write_judgment_data(b, ids)


register(View(
    key="judgment", route="/judgment", lights="judgments", form_route="/", params=(Param("id", required=True),),
    path=lambda p: f"judgment.html?id={safe_id(p['id'])}", live=_live_judgment, build=_build_judgment))


# -- judge quality -------------------------------------------------------------------------------------------


def cv_summary(cv: Any) -> str:
    """A stored calibration's cross-validated result as people read it: held-out mean absolute error
    and exact agreement, raw -> calibrated (the stored JSON keeps every metric at full precision)."""
    import json

    try:
        data = json.loads(cv) if isinstance(cv, str) else cv
        before, after = data["before"], data["after"]
    except (TypeError, ValueError, KeyError):
        return "–"
    parts = []
    for key, label, fmt in (("mae", "MAE", pages._fmt_num), ("exact", "exact", pages._fmt_pct)):
        if isinstance(before.get(key), int | float) and isinstance(after.get(key), int | float):
            parts.append(f"{label} {fmt(float(before[key]))} → {fmt(float(after[key]))}")
    folds = f" ({data['folds']}-fold)" if isinstance(data.get("folds"), int) else ""
    return (" · ".join(parts) + folds) if parts else "–"


def cohort_quality(con, schema: q.Schema, site: Site) -> dict[str, Any]:
    """On the all-cohorts page: each cohort's judges, rubric versions and labelled transcripts, and
    whether pooling compares like with like (everything in scope, judgments in no cohort included,
    made by one judge under one rubric version). Cohorts judged differently are read on their own pages.
    The judgments in no cohort (`evaluate FILE`) are pooled too, so they get a row of their own
    (`cohort` None: they have no page)."""
    rows = []
    for cohort in site.options["cohort"]:
        scope = q.judged_with(con, schema, Filters(**{**site.filters.__dict__, "cohort": cohort}))
        if scope["judgments"]:
            rows.append({"cohort": cohort, **scope})
    loose = q.judged_with(con, schema, site.filters, no_cohort=True)
    if loose["judgments"]:
        rows.append({"cohort": None, **loose})
    pooled = q.judged_with(con, schema, site.filters)
    return {"rows": rows, "alike": len(pooled["models"]) == 1 and len(pooled["rubric_versions"]) == 1}


def render_quality(con, schema: q.Schema, site: Site, cohort: str | None = None) -> str:
    """Whether the judge can be trusted (agreement, calibration, probes, reliability) on one page, for
    one cohort (as its overview page is) or for all of them, where the page says what it pools and
    links to each cohort's own page."""
    f = Filters(**{**site.filters.__dict__, "cohort": cohort}) if cohort is not None else site.filters
    data = q.judge_quality(con, schema, f)
    scale = q.score_scale(con, schema, f)
    curves = []
    dim_ids = {r["dimension_id"] for r in data["curve"]} | {r["dimension_id"] for r in data["calibrated_curve"]}
    for dim_id in sorted(dim_ids):
        raw_curve = [r for r in data["curve"] if r["dimension_id"] == dim_id]
        curves.append({"id": dim_id, "name": dim_name(site.names, dim_id),
                       "chart": charts.calibration_curve(raw_curve, data["calibrated_curve"], dim_id, scale)})
    for row in data["calibrations"]:
        row["cv_summary"] = cv_summary(row.pop("cv"))
    probes = q.probe_runs(con)
    from evaluator.report.reliability import reliability

    scope = f.cohort
    by_cohort = cohort_quality(con, schema, site) if scope is None and site.options["cohort"] else None
    return render("quality.html", **site.frame("quality", f"Judge quality · {scope or 'All cohorts'}"),
                  cohort=scope, by_cohort=by_cohort, judged=q.judged_with(con, schema, f), data=data, curves=curves,
                  probes=probes,
                  reliability=reliability(con, schema, f),
                  agreement_chart=(charts.agreement(data["agreement"], data["ceiling"], site.names)
                                   if data["agreement"] else None))


def _build_quality(b: Static) -> None:
    b.write("quality.html", render_quality(b.con, b.schema, b.site))
    for cohort in b.cohorts:
        b.write(f"quality/{slug(cohort)}.html", render_quality(b.con, b.schema, b.deep, cohort))


register(View(
    key="quality", route="/quality", nav="Judge quality", params=(Param("cohort"),),
    path=lambda p: f"quality/{slug(p['cohort'])}.html" if p.get("cohort") else "quality.html",
    live=lambda r: (HTTPStatus.OK, render_quality(r.con, r.schema, r.site, r.site.filters.cohort)),
    build=_build_quality))


# -- cost ---------------------------------------------------------------------------------------------------


def render_cost(con, schema: q.Schema, site: Site) -> str:
    """What judging cost, by run, cohort, model and month; unknown prices stay unknown, never zero."""
    f = site.filters
    runs = q.cost_by_run(con, schema, f)
    by_cohort = q.cost_by(con, schema, f, "cohort")
    by_model = q.cost_by(con, schema, f, "model")
    by_month = q.cost_by(con, schema, f, "month")
    total = {k: sum((r[k] or 0) for r in by_model)
             for k in ("judgments", "calls", "prompt_tokens", "completion_tokens")}
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


register(View(
    key="cost", route="/cost", nav="Cost", path=lambda p: "cost.html",
    live=lambda r: (HTTPStatus.OK, render_cost(r.con, r.schema, r.site)),
    build=lambda b: b.write("cost.html", render_cost(b.con, b.schema, b.site))))
