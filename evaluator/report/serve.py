"""`evaluate report --serve`: the report's views served live from the store on 127.0.0.1, read-only.

Each request opens its own read-only DuckDB connection and closes it before answering, so a cohort
writer (which opens, writes and closes per commit) is never shut out for longer than one page; while
the writer holds the file, opening is retried with backoff for up to a few seconds, then the page
says the store is busy (503, Retry-After) instead of failing. Only GET and HEAD are answered, only for
one Host header naming this machine and the port served (no DNS rebinding), with the same
Content-Security-Policy as the files. Routes and their parameters come from the view registry
(`views.VIEWS`); every parameter is bounded, and a bad one is a 400 naming it, never a traceback.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import webbrowser
from datetime import date
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from evaluator.errors import BadInput, EvaluatorError, StoreError
from evaluator.report import build, pages, views
from evaluator.report import queries as q
from evaluator.report.queries import Filters
from evaluator.store.db import StoreLocked

CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "font-src 'self' data:; connect-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
# 127.0.0.1, localhost or [::1], with an optional port: nothing before or after (no user@, no path)
_HOST = re.compile(r"(?:127\.0\.0\.1|localhost|\[::1\])(?::(?P<port>[0-9]{1,5}))?", re.IGNORECASE)
_FILTER_KEYS = ("cohort", "candidate", "exercise", "since", "until", "rubric_version", "model")


def parse_date(value: str | None, what: str) -> date | None:
    """A date from a URL parameter; a bad one is the user's error (BadInput), not a crash."""
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadInput(f"{what} must be a date like 2026-03-01, got {value!r}") from None


def filters_from_query(query: dict[str, list[str]], base: Filters) -> Filters:
    """Filters from the URL; the command line's filters are the defaults the URL can change."""
    values = {k: (query.get(k, [""])[0] or None) for k in _FILTER_KEYS if k in query}
    for k, v in values.items():
        if v is not None and len(v) > views.MAX_TEXT:
            raise BadInput(f"{k} is longer than {views.MAX_TEXT:,} characters")
    merged = {**base.__dict__, **values}
    merged["since"] = parse_date(values["since"], "since") if "since" in values else base.since
    merged["until"] = parse_date(values["until"], "until") if "until" in values else base.until
    return Filters(**merged)


class ReportServer(ThreadingHTTPServer):
    """The local report server: the store path and the command line's filters, shared by every request."""

    daemon_threads = True

    def __init__(self, db: Path, port: int, filters: Filters) -> None:
        self.db = db
        self.base_filters = filters
        self.assets: dict[str, bytes] = {name: build.asset_bytes(name) for name in build.ASSETS}
        super().__init__(("127.0.0.1", port), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


class Handler(BaseHTTPRequestHandler):
    """Serves report pages rendered live from the store, refusing foreign Host headers."""

    server: ReportServer
    server_version = "evaluator-report"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:
        if os.environ.get("EVALUATOR_REPORT_LOG"):
            super().log_message(format, *args)

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Cache-Control", "no-store" if content_type.startswith("text/html") else "max-age=3600")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _refuse(self) -> None:
        self._send(HTTPStatus.METHOD_NOT_ALLOWED, b"read-only: GET and HEAD only\n", "text/plain; charset=utf-8",
                   {"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse

    def do_HEAD(self) -> None:
        self.do_GET()

    def _allowed_host(self) -> str | None:
        """Why this request's Host is refused, or None. DNS-rebinding guard: exactly one Host header,
        naming this machine (127.0.0.1, localhost or [::1]) and the port served, nothing else
        ("localhost:8765@evil.com", "evil.com", a second Host header are all refused)."""
        hosts = self.headers.get_all("Host") or []
        if len(hosts) != 1:
            return "exactly one Host header is required" if hosts else "the request has no Host header"
        port = self.server.server_address[1]
        m = _HOST.fullmatch(hosts[0].strip())
        if m is None:
            return f"unknown host {hosts[0][:100]!r}: open the report at http://127.0.0.1:{port}/"
        if (int(m["port"]) if m["port"] else 80) != port:
            return f"the Host header names another port: open the report at http://127.0.0.1:{port}/"
        return None

    def do_GET(self) -> None:
        refused = self._allowed_host()
        if refused:
            self._send(HTTPStatus.BAD_REQUEST, (refused + "\n").encode(), "text/plain; charset=utf-8")
            return
        url = urlsplit(self.path)
        if url.path.startswith("/assets/"):
            name = url.path[len("/assets/"):]
            body = self.server.assets.get(name)
            if body is None:
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")
                return
            kind = "text/css" if name.endswith(".css") else "text/javascript"
            self._send(HTTPStatus.OK, body, f"{kind}; charset=utf-8")
            return
        if url.path == "/favicon.ico":
            self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
            return
        try:
            status, html, extra = self.render(url.path, parse_qs(url.query, keep_blank_values=True))
        except Exception as e:  # a bug must cost one page an error, never the connection and a traceback
            if os.environ.get("EVALUATOR_DEBUG"):
                raise
            status, extra = HTTPStatus.INTERNAL_SERVER_ERROR, {}
            html = self._bare("Internal error", f"This page failed ({type(e).__name__}); the server keeps running. "
                                                "Run with EVALUATOR_DEBUG=1 to see the traceback.")
        self._send(status, html.encode("utf-8"), "text/html; charset=utf-8", extra)

    def render(self, path: str, query: dict[str, list[str]]) -> tuple[int, str, dict[str, str]]:
        db = self.server.db
        view = views.route(path)
        try:
            f = filters_from_query(query, self.server.base_filters)
            params = {p.name: p.parse(query.get(p.name)) for p in view.params} if view else {}
        except (BadInput, views.BadParameter) as e:
            return HTTPStatus.BAD_REQUEST, self._bare("Bad request", str(e)), {}
        links = pages.Links(static=False, filters=f)
        try:
            con = build.connect_read_only(db)
        except StoreError as e:
            busy = isinstance(e, StoreLocked)
            return ((HTTPStatus.SERVICE_UNAVAILABLE, self._bare("Store busy", str(e)), {"Retry-After": "2"}) if busy
                    else (HTTPStatus.INTERNAL_SERVER_ERROR, self._bare("Store unavailable", str(e)), {}))
        try:
            schema = q.read_schema(con, db=db)
            site = build.make_site(con, schema, f, links, db, serve=True)
            if view is None:
                missing = pages.render_message(site, "Not found", "There is no such page in this report.")
                return HTTPStatus.NOT_FOUND, missing, {}
            status, html = view.live(views.Live(con, schema, site, params))
            return status, html, {}
        except EvaluatorError as e:
            return HTTPStatus.INTERNAL_SERVER_ERROR, self._bare("Store unavailable", str(e)), {}
        finally:
            con.close()

    @staticmethod
    def _bare(title: str, message: str) -> str:
        """A page that needs no store (the store is what failed)."""
        site = pages.Site(links=pages.Links(static=False), options={k: [] for k in _FILTER_KEYS}, filters=Filters(),
                          names={}, db="", built_at="", serve=False)
        return pages.render_message(site, title, message)


def make_server(db: Path, port: int = 8765, filters: Filters | None = None) -> ReportServer:
    """Bind the server (port 0: any free port). Checks the store once so a bad --db fails at start."""
    filters = filters or Filters()
    con = build.connect_read_only(db)
    try:
        schema = q.read_schema(con, db=db)
        build.validate_filters(q.filter_options(con, schema), filters)
    finally:
        con.close()
    try:
        return ReportServer(db, port, filters)
    except OSError as e:
        raise BadInput(f"cannot listen on 127.0.0.1:{port}: {e.strerror}") from None


def can_open_browser() -> bool:
    """Whether a browser can be opened here (a desktop session); otherwise only the URL is printed."""
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def serve(db: Path, port: int = 8765, filters: Filters | None = None, open_browser: bool = True,
          announce=print) -> None:
    """Serve until interrupted; opens a browser where there is one."""
    server = make_server(db, port, filters)
    announce(f"Serving the report of {db} at {server.url} (read-only; Ctrl-C to stop)")
    if open_browser and can_open_browser():
        threading.Timer(0.3, lambda: webbrowser.open(server.url)).start()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
