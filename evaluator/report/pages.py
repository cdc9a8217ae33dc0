"""What every page shares, in the static report and the server: links, the page frame, Jinja
templates, formats, and the judgment view's data. The views themselves are in `views` (one registry).
Templates autoescape every value; nothing taken from a transcript, code file or model reply is ever
marked safe.
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
from evaluator.report.queries import Filters

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
    """Where each view lives: relative files for the static report, query URLs for the server, both
    read off the view registry (`views.VIEWS`). `links.<view>(...)` is the link to a view, its
    parameters given in the order the view declares them (`links.candidate(name)`,
    `links.judgments(page)`)."""

    static: bool
    depth: int = 0
    filters: Filters = field(default_factory=Filters)

    def at(self, depth: int) -> Links:
        return Links(self.static, depth, self.filters)

    def url(self, key: str, **params: Any) -> str:
        """The link to view `key` with these parameters. Served: the current filters carried along; a
        parameter named like a filter replaces it (None drops it: `overview(cohort=None)` is every
        cohort)."""
        from evaluator.report.views import VIEWS

        view = VIEWS[key]
        if self.static:
            return "../" * self.depth + view.path(params)
        merged = {k: v for k, v in self.filters.active().items() if k not in params}
        merged.update({k: str(v) for k, v in params.items() if v is not None and v != view.default(k)})
        return view.route + (("?" + urlencode(merged)) if merged else "")

    def __getattr__(self, key: str) -> Any:
        from evaluator.report.views import VIEWS

        if key.startswith("_") or key not in VIEWS:
            raise AttributeError(key)
        names = [p.name for p in VIEWS[key].params]
        # Positional arguments name the view's leading parameters; the rest may come as keywords.
        return lambda *args, **kw: self.url(key, **dict(zip(names, args, strict=False)), **kw)

    def asset(self, name: str) -> str:
        return "../" * self.depth + f"assets/{name}" if self.static else f"/assets/{name}"


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
    """One shared Jinja environment: templates compile once per process, not once per page served."""
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
        """The context of base.html: the navigation bar and the filter form come from the registry."""
        from evaluator.report.views import VIEWS, navigation

        view = VIEWS.get(active)
        lit = (view.lights or view.key) if view else None
        return {"links": self.links, "options": self.options, "filters": self.filters,
                "active_filters": self.filters.active(), "active": active, "title": title, "db": self.db,
                "built_at": self.built_at, "serve": self.serve, "names": self.names, "slug": slug,
                "nav": [(v.nav, self.links.url(v.key), v.key == lit) for v in navigation()],
                "form_route": (view.form_route or view.route) if view else "/"}


def render(template: str, **context: Any) -> str:
    """Views name a template and hand over data; they never touch Jinja directly."""
    return environment().get_template(template).render(**context)


def dim_name(names: dict[str, dict[str, Any]], dim_id: str) -> str:
    """A dimension no longer in any stored rubric still shows, under its id."""
    return names.get(dim_id, {}).get("name", dim_id)


# -- the judgment view's data -------------------------------------------------------------------


def judgment_context(site: Site, scale: tuple[int, int]) -> dict[str, Any]:
    """The served page and the static report label and colour a judgment from this one source."""
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


def render_message(site: Site, title: str, message: str, status: str = "") -> str:
    """Errors and empty states keep the report's frame and navigation instead of a bare text page."""
    return render("message.html", **site.frame("", title), message=message, status=status)
