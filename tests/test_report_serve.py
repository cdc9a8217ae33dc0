"""`evaluate report --serve` over real HTTP: bounded parameters, a strict Host check, and the view
registry as the one source of routes, links and navigation."""

from __future__ import annotations

import re
import socket
import threading
from pathlib import Path

import pytest

from evaluator.report import build, views
from evaluator.report.serve import make_server
from evaluator.report.synthetic import SyntheticSpec, generate
from evaluator.store.db import Store


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("serve") / "store.duckdb"
    with Store(path) as s:
        generate(s, SyntheticSpec(candidates=3, sessions_per_candidate=4))
    return path


@pytest.fixture(scope="module")
def server(db):
    srv = make_server(db, port=0)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def raw(server, target: str, hosts: list[str] | None = None) -> tuple[int, str]:
    """Send one GET with exactly these Host headers (default: the right one); (status, body)."""
    port = server.server_address[1]
    hosts = [f"127.0.0.1:{port}"] if hosts is None else hosts
    head = f"GET {target} HTTP/1.1\r\n" + "".join(f"Host: {h}\r\n" for h in hosts) + "Connection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode("latin-1"))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data, f"the server closed the connection without answering {target}"
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1].decode("utf-8", "replace")


@pytest.mark.parametrize("target, message", [
    ("/judgments?page=99999999999999999999", "page must be a whole number from 1 to 1,000,000"),
    ("/judgments?page=0", "page must be a whole number"),
    ("/judgments?page=-3", "page must be a whole number"),
    ("/judgments?page=1e3", "page must be a whole number"),
    ("/judgments?page=%D9%A3", "page must be a whole number"),  # an Arabic-Indic digit: int() would take it
    ("/judgments?page=1&page=2", "page is given 2 times"),
    ("/candidate", "needs a name parameter"),
    ("/judgment?id=" + "a" * 2000, "id is longer than 1,000 characters"),
    ("/?cohort=" + "c" * 2000, "cohort is longer than 1,000 characters"),
    ("/?since=yesterday", "since must be a date"),
])
def test_a_bad_parameter_is_a_clear_400_and_the_server_keeps_answering(server, target, message):
    status, body = raw(server, target)
    assert status == 400 and message in body.replace("&#39;", "'"), (status, body[:300])
    assert raw(server, "/judgments?page=1")[0] == 200


def test_pages_past_the_end_and_unknown_things_are_404(server):
    assert raw(server, "/judgments?page=2")[0] == 404  # 12 judgments: one page
    status, body = raw(server, "/judgments?page=999999")
    assert status == 404 and "has 1 page" in body
    assert raw(server, "/judgment?id=nope")[0] == 404
    assert raw(server, "/candidate?name=Nobody")[0] == 404
    assert raw(server, "/nope")[0] == 404


def test_only_one_host_header_naming_this_machine_and_port_is_served(server):
    port = server.server_address[1]
    for good in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}", f"[::1]:{port}"):
        assert raw(server, "/", [good])[0] == 200, good
    for bad in ([f"localhost:{port}@evil.com"], ["evil.com"], [f"evil.com:{port}"], [f"127.0.0.1:{port}.evil.com"],
                [f"localhost:{port + 1}"], ["localhost"], [f"localhost:{port}", f"localhost:{port}"],
                [f"localhost:{port}", "evil.com"], [], [f"127.0.0.1:{port}/x"], [f"127.0.0.2:{port}"]):
        status, body = raw(server, "/", bad)
        assert status == 400, (bad, status)
        assert "127.0.0.1" in body or "Host" in body
    assert raw(server, "/assets/report.css", ["evil.com"])[0] == 400


def test_every_registered_view_is_served_built_linked_and_in_the_navigation(server, db, tmp_path):
    """The registry is the one list: each view answers on its route, the static build writes its
    file, and the navigation bar (served and static) lists exactly the views that have a label."""
    status, overview = raw(server, "/")
    assert status == 200
    nav = re.search(r'<nav class="nav">(.*?)</nav>', overview, re.DOTALL)[1]
    assert re.findall(r">([^<]+)</a>", nav) == [v.nav for v in views.navigation()]
    candidate = re.search(r'href="(/candidate\?name=[^"]+)"', overview)[1].replace("&amp;", "&")
    judgment = re.search(r'href="(/judgment\?id=[^"]+)"', raw(server, "/judgments")[1])[1]
    samples = {"overview": "/", "candidate": candidate, "judgments": "/judgments", "judgment": judgment,
               "quality": "/quality", "cost": "/cost"}
    assert set(samples) == set(views.VIEWS)
    for key, target in samples.items():
        assert target.split("?")[0] == views.VIEWS[key].route
        assert raw(server, target)[0] == 200, key
    out = tmp_path / "report"
    build.build_report(db, out)
    index = (out / "index.html").read_text()
    static_nav = re.search(r'<nav class="nav">(.*?)</nav>', index, re.DOTALL)[1]
    for view in views.navigation():
        path = view.path({})
        assert (out / path).is_file() and f'href="{path}"' in static_nav, view.key
    assert (out / "judgment.html").is_file() and list((out / "candidate").glob("*.html"))


def test_a_view_registered_twice_is_refused():
    with pytest.raises(ValueError, match="registered twice"):
        views.register(views.VIEWS["cost"])


def test_a_cohorts_judge_quality_is_served_and_linked_from_its_overview(server):
    status, overview = raw(server, "/?cohort=spring-2026")
    assert status == 200
    link = re.search(r'href="(/quality\?cohort=[^"]+)"[^>]*>judge quality of this cohort', overview)[1]
    status, page = raw(server, link)
    assert status == 200 and "Judge quality · spring-2026" in page and 'id="cohort-judges"' not in page
    status, everything = raw(server, "/quality")
    assert status == 200 and "Judge quality · All cohorts" in everything and 'id="cohort-judges"' in everything
    assert 'href="/quality?cohort=autumn-2026"' in everything
