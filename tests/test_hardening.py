"""Hostile inputs end to end: the real CLI, the real litellm client over HTTP to tests/fakellm.py,
the real DuckDB file. Model replies that look right but are not (duplicate keys, booleans as scores),
secrets echoed by a provider, terminal escape sequences in a transcript."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
from fakellm import Call, Error, FakeLLM
from replies import build_reply
from typer.testing import CliRunner

from evaluator.cli import app

REPO = Path(__file__).resolve().parent.parent
TRANSCRIPT = REPO / "transcripts" / "lru_ttl_cache.md"


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    db: Path

    @property
    def doc(self) -> dict[str, Any]:
        return json.loads(self.stdout)

    def dim(self, dim_id: str) -> dict[str, Any]:
        return next(d for d in self.doc["dimensions"] if d["id"] == dim_id)


def evaluate(server: FakeLLM, tmp_path: Path, *extra: str, transcript: Path = TRANSCRIPT,
             env: dict[str, str] | None = None, fmt: str = "json") -> Run:
    db = tmp_path / "e.duckdb"
    args = [str(transcript), "--model", "openai/test-model", "--api-base", server.base_url, "--db", str(db),
            "--format", fmt, "--retry-wait", "0.01", *extra]
    result = CliRunner().invoke(app, args, env=env)
    assert not (result.exception and not isinstance(result.exception, SystemExit)), result.exception
    return Run(result.exit_code, result.stdout, result.stderr, db)


def reply(transform: Callable[[dict[str, Any]], str], **kw: Any) -> Call:
    """A step whose content is `transform(schema-shaped valid reply for this request)`."""
    return Call(lambda body: transform(build_reply(body, **kw)))


def valid(**kw: Any) -> Call:
    return reply(json.dumps, **kw)


def duplicate(dim: str, first: int, second: int, broken: bool = False) -> Callable[[dict[str, Any]], str]:
    """The reply with `dim` written twice (scores `first` then `second`), as raw JSON text; `broken`
    also drops the final brace so that only the repair path (json-repair) can read it."""
    def build(r: dict[str, Any]) -> str:
        dims = r["dimensions"]
        parts = []
        for k, v in dims.items():
            if k == dim:
                parts.append(f'"{k}": ' + json.dumps({**v, "score": first}))
                parts.append(f'"{k}": ' + json.dumps({**v, "score": second}))
            else:
                parts.append(f'"{k}": ' + json.dumps(v))
        text = '{"dimensions": {' + ", ".join(parts) + "}}"
        return text[:-1] if broken else text
    return build


# ------------------------------------------------------------------ wrong scores that look right

@pytest.mark.parametrize("broken", [False, True], ids=["json", "repaired-json"])
def test_conflicting_duplicate_keys_are_asked_again_not_last_wins(tmp_path, broken):
    with FakeLLM() as server:
        server.script(reply(duplicate("invariant", 1, 5, broken=broken), scores={"edge_cases": 2}),
                      valid(scores={"invariant": 3}))
        run = evaluate(server, tmp_path)
        requests = server.chat_requests
    assert run.code == 0, run.stderr
    assert len(requests) == 2
    repair = requests[1].body["messages"][-1]["content"]
    assert "invariant" in repair and "different values" in repair
    assert "edge_cases" not in repair.split("Reply again")[1].split("\n")[0]  # only invariant re-asked
    assert run.dim("invariant")["score"] == 3  # from the answer given once
    assert run.dim("edge_cases")["score"] == 2  # kept from the first reply


def test_identical_duplicate_keys_count_once(tmp_path):
    with FakeLLM() as server:
        server.script(reply(duplicate("recovery", 4, 4)))
        run = evaluate(server, tmp_path)
        requests = server.chat_requests
    assert run.code == 0 and run.dim("recovery")["score"] == 4
    assert len(requests) == 1


def test_conflicting_list_entries_for_one_dimension(tmp_path):
    def as_list(r: dict[str, Any]) -> str:
        items = [{"id": k, **v} for k, v in r["dimensions"].items()]
        items.append({**items[0], "score": 1 if items[0]["score"] != 1 else 5})
        return json.dumps({"dimensions": items})

    with FakeLLM() as server:
        server.script(reply(as_list), valid(scores={"invariant": 2}))
        run = evaluate(server, tmp_path)
        requests = server.chat_requests
    assert len(requests) == 2 and run.dim("invariant")["score"] == 2


@pytest.mark.parametrize("bad", [4.5, -1, None, True, "5/5", [5], {"value": 5}, 0, 6])
def test_a_bad_score_costs_only_its_own_dimension(tmp_path, bad):
    with FakeLLM() as server:
        server.script(valid(scores={"invariant": bad, "edge_cases": 2}), valid(scores={"invariant": 3}))
        run = evaluate(server, tmp_path)
        requests = server.chat_requests
    assert run.code == 0, run.stderr
    assert len(requests) == 2
    assert run.dim("invariant")["score"] == 3 and run.dim("edge_cases")["score"] == 2


def test_unknown_extra_keys_are_ignored_not_fatal(tmp_path):
    def extra(r: dict[str, Any]) -> str:
        for v in r["dimensions"].values():
            v["confidence"] = 0.8
        r["overall"] = 5
        return json.dumps(r)

    with FakeLLM() as server:
        server.script(reply(extra, scores={"restraint": 2}))
        run = evaluate(server, tmp_path)
        requests = server.chat_requests
    assert run.code == 0 and run.doc["status"] == "scored"
    assert len(requests) == 1 and run.dim("restraint")["score"] == 2


# ------------------------------------------------------------------ secrets never stored or printed

SECRET = "sk-live-Zq8Xw2Vt6Rk1Pm4Ns7Lb"
OTHER = "sk-proj-A1b2C3d4E5f6G7h8I9j0K1l2"  # not configured, but shaped like a key


def text_columns_containing(db: Path, needle: str) -> list[str]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        columns = con.execute("SELECT table_name, column_name FROM information_schema.columns"
                              " WHERE data_type IN ('VARCHAR', 'JSON')").fetchall()
        assert {t for t, _ in columns} >= {"judgments", "dimension_scores", "exchanges", "runs", "run_items"}
        return [f"{t}.{c}" for t, c in columns if con.execute(
            f'SELECT count(*) FROM "{t}" WHERE CAST("{c}" AS VARCHAR) LIKE ?', [f"%{needle}%"]).fetchone()[0]]
    finally:
        con.close()


def echo(status: int) -> Error:
    return Error(status, message=f"Incorrect API key provided: {SECRET}. Your org key {OTHER} "
                                 f"and header 'Authorization: Bearer {SECRET}' were rejected")


@pytest.mark.parametrize("fmt", ["json", "table"])
@pytest.mark.parametrize("status", [500, 400])
def test_provider_error_echoing_the_key_is_redacted_everywhere(tmp_path, status, fmt):
    with FakeLLM() as server:
        server.script(echo(status))
        run = evaluate(server, tmp_path, fmt=fmt, env={"EVALUATOR_API_KEY": SECRET})
        requests = server.chat_requests
    assert requests and requests[0].header("authorization") == f"Bearer {SECRET}"  # the key was used
    assert run.code == 1, run.stderr  # recorded as unscored, with the reason
    for secret in (SECRET, OTHER):
        assert secret not in run.stdout and secret not in run.stderr
        assert text_columns_containing(run.db, secret) == []
        assert secret.encode() not in run.db.read_bytes()
    assert "[REDACTED]" in run.stdout
    assert text_columns_containing(run.db, "[REDACTED]")  # the reason is kept, only the key is gone


def test_refused_credentials_echoing_the_key_are_redacted(tmp_path):
    with FakeLLM() as server:
        server.script(echo(401))
        run = evaluate(server, tmp_path, env={"EVALUATOR_API_KEY": SECRET})
    assert run.code == 3
    assert SECRET not in run.stdout + run.stderr and OTHER not in run.stdout + run.stderr
    if run.db.exists():
        assert SECRET.encode() not in run.db.read_bytes()


# ------------------------------------------------------------------ terminal escape sequences

ESCAPES = ["\x1b[2J", "\x1b]0;pwned\x07", "\x9b31m", "\x1b[31m", "\x08\x08", "\u202e"]


def test_terminal_escapes_from_the_transcript_and_model_never_reach_the_terminal(tmp_path):
    name = tmp_path / "round\x1b[2J.md"
    body = TRANSCRIPT.read_text(encoding="utf-8")
    # escapes in a candidate turn (quoted as evidence by the fake model) and in the front matter
    body = body.replace("---\n", "---\ntitle: \"evil \\e[31m title\"\n", 1)
    lines = body.split("\n")
    i = next(n for n, line in enumerate(lines) if "(candidate)" in line.lower() or "candidate:" in line.lower())
    lines[i] = lines[i] + " I \x1b[2Jsay \x1b]0;pwned\x07this \x9b31m clearly\x08."
    name.write_text("\n".join(lines), encoding="utf-8")

    def evil_reasons(r: dict[str, Any]) -> str:
        for v in r["dimensions"].values():
            v["reasoning"] = "fine \x1b[2J\x1b]0;pwned\x07 [bold]markup[/bold] \u202e done"
        return json.dumps(r)

    with FakeLLM() as server:
        server.script(reply(evil_reasons))
        run = evaluate(server, tmp_path, transcript=name, fmt="table")
    assert run.code in (0, 1), run.stderr
    for esc in ESCAPES:
        assert esc not in run.stdout and esc not in run.stderr, repr(esc)
    assert "[bold]markup[/bold]" in run.stdout.replace("\n", "")  # shown as text, not applied
