"""Hostile inputs end to end: the real CLI, the real litellm client over HTTP to tests/fakellm.py,
the real DuckDB file. Model replies that look right but are not (duplicate keys, booleans as scores),
secrets echoed by a provider, terminal escape sequences in a transcript."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fakellm import Call, FakeLLM
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
