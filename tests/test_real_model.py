"""Against a real local model server (llama.cpp's `llama-server`, see scripts/local-model.sh).

Skipped unless EVALUATOR_LOCAL_MODEL_URL names the server's OpenAI-compatible base URL:

    scripts/local-model.sh start && eval "$(scripts/local-model.sh env)"
    python -m pytest -m real_model tests/test_real_model.py

The CI model (SmolLM2-135M-Instruct) is far too small to judge well; these tests check what a real
server does to the product, not the scores: real token counts and latencies are stored, the response
format actually used is recorded, every kept quote occurs in the transcript, and every dimension ends
scored with a real quote or explicitly unscored with a reason (never a default score).

llama-server has no option to refuse `json_schema` (it accepts both formats), so the json_object path
runs through a pass-through proxy that answers `json_schema` requests the way llama-cpp-python's
server does (HTTP 500 naming the response format) and forwards everything else, unchanged, to the
real server: the replies judged there are the real model's.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import pytest
from typer.testing import CliRunner

from evaluator.cli import app
from evaluator.ingest import load_transcript
from evaluator.judge.evidence import EvidenceIndex

pytestmark = [pytest.mark.real_model, pytest.mark.usefixtures("isolated")]

ROOT = Path(__file__).resolve().parent.parent
# A real, short round (~1,200 characters, ~350 tokens): the prompt is then mostly the rubric and the
# instructions, and each test stays within a few minutes on a shared 2-core CPU.
SAMPLE = ROOT / "tests" / "data" / "real_model_short.md"
URL = os.environ.get("EVALUATOR_LOCAL_MODEL_URL", "")
MODEL = os.environ.get("EVALUATOR_LOCAL_MODEL", "openai/local-model")
# With scripts/local-model.sh's one thread, SmolLM2-135M on a 2-core machine at load 9-12 reads prompts
# at 25-80 tokens/s and generates at 10-30 tokens/s (README). The deadline covers a ~3,500-token prompt
# read at 10 tokens/s plus the whole reply at 3 tokens/s. The reply budget fits 5 dimensions (reasoning,
# up to 3 quotes and a score each: ~80-120 tokens) and bounds the time a rambling reply takes: the 135M
# model rambles until the limit in every request, so this budget sets most of the tests' time.
TIMEOUT = os.environ.get("EVALUATOR_LOCAL_MODEL_TIMEOUT", "600")
CONTEXT = os.environ.get("EVALUATOR_LOCAL_MODEL_CONTEXT", "8192")
MAX_TOKENS = os.environ.get("EVALUATOR_LOCAL_MODEL_MAX_TOKENS", "600")


@pytest.fixture
def server_url() -> str:
    if not URL:
        pytest.skip("EVALUATOR_LOCAL_MODEL_URL not set: no local model server configured "
                    "(scripts/local-model.sh start; eval \"$(scripts/local-model.sh env)\")")
    return URL.rstrip("/")


class _RefuseJsonSchema(BaseHTTPRequestHandler):
    """Forwards to the real server; a chat request with `response_format.type == json_schema` gets
    llama-cpp-python 0.3.x's answer instead (HTTP 500, the format named in the message)."""

    upstream: ClassVar[str] = ""
    seen: ClassVar[list[str]] = []  # response_format type of each chat request, in order

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        self._forward(None)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.endswith("/chat/completions"):
            kind = (json.loads(body).get("response_format") or {}).get("type", "none")
            self.seen.append(kind)
            if kind == "json_schema":
                self._reply(500, json.dumps({"error": {
                    "message": "1 validation error for CreateChatCompletionRequest\nresponse_format.type\n  Input "
                               "should be 'text' or 'json_object' [type=literal_error, input_value='json_schema']",
                    "type": "internal_server_error", "param": None, "code": None}}).encode())
                return
        self._forward(body)

    def _forward(self, body: bytes | None) -> None:
        upstream = self.upstream.rsplit("/v1", 1)[0] + self.path
        request = urllib.request.Request(upstream, data=body, method=self.command,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=float(TIMEOUT)) as response:
                self._reply(response.status, response.read())
        except urllib.error.HTTPError as e:
            self._reply(e.code, e.read())

    def _reply(self, status: int, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def json_object_only(server_url: str) -> Iterator[tuple[str, list[str]]]:
    handler = type("Handler", (_RefuseJsonSchema,), {"upstream": server_url, "seen": []})
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{proxy.server_address[1]}/v1", handler.seen
    finally:
        proxy.shutdown()
        proxy.server_close()


def judge(api_base: str, db: Path) -> dict[str, Any]:
    result = CliRunner().invoke(app, [
        str(SAMPLE), "--model", MODEL, "--api-base", api_base, "--db", str(db), "--format", "json",
        "--timeout", TIMEOUT, "--context-tokens", CONTEXT, "--max-tokens", MAX_TOKENS, "--retries", "1",
        # one repair round exercises the repair path; a second doubles the time on a CPU
        "--repair-attempts", "1",
    ])
    # 0 all scored, 1 some dimensions unscored (a recorded outcome); anything else is a failure
    assert result.exit_code in (0, 1), (result.exit_code, result.output, result.exception)
    return json.loads(result.stdout)


def stored_exchanges(db: Path) -> list[dict[str, Any]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        cur = con.execute("SELECT * FROM exchanges ORDER BY attempt")
        cols = [c[0] for c in cur.description]
        rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()
    for r in rows:
        r["request_messages"] = json.loads(r["request_messages"]) if r["request_messages"] else None
    return rows


def check_judgment(doc: dict[str, Any], exchanges: list[dict[str, Any]], fmt: str) -> None:
    """What must hold whatever the model answered."""
    assert doc["judge"]["kind"] == "llm" and doc["judge"]["model"] == MODEL
    assert 1 <= len(exchanges) <= 2  # the first request and at most one repair
    for ex in exchanges:
        assert ex["error"] is None or "taken from the tool call" in ex["error"], ex["error"]
        assert ex["response_format"] == fmt
        # the server's own tokenizer counts, not an estimate: the transcript alone is ~350 tokens, the
        # rubric and instructions add several hundred more; the whole must fit the server's context
        assert ex["prompt_tokens"] and 600 < ex["prompt_tokens"] < int(CONTEXT), ex["prompt_tokens"]
        assert ex["completion_tokens"] and 0 < ex["completion_tokens"] <= int(MAX_TOKENS)
        assert ex["latency_ms"] and ex["latency_ms"] > 0
        assert ex["raw_response"]
    first = exchanges[0]["request_messages"]
    for ex in exchanges[1:]:  # repairs extend the conversation: the server's prompt cache stays useful
        assert ex["request_messages"][: len(first)] == first
        assert ex["prompt_tokens"] > exchanges[0]["prompt_tokens"]
    assert doc["usage"]["prompt_tokens"] == sum(ex["prompt_tokens"] for ex in exchanges)

    index = EvidenceIndex.of(load_transcript(SAMPLE))
    statuses = {d["status"] for d in doc["dimensions"]}
    assert statuses <= {"scored", "not_observed", "unscored"}
    for d in doc["dimensions"]:
        if d["status"] == "scored":
            assert 1 <= d["score"] <= 5
            assert d["evidence"], d
            for ev in d["evidence"]:  # re-checked here, independently of the stored verdict
                assert index.locate(ev["quote"]) is not None, ev
        elif d["status"] == "unscored":
            assert d["score"] is None and d["reason"], d
    expected = ("scored" if statuses <= {"scored", "not_observed"} else
                "unscored" if statuses == {"unscored"} else "partial")
    assert doc["status"] == expected


def test_real_model_judges_a_sample_with_json_schema(server_url: str, tmp_path: Path) -> None:
    db = tmp_path / "real.duckdb"
    doc = judge(server_url, db)
    exchanges = stored_exchanges(db)
    check_judgment(doc, exchanges, "json_schema")
    assert "response_format_fallback" not in doc["flags"]  # llama-server enforces the schema itself
    for ex in exchanges:  # with the schema enforced, a reply not cut off is JSON of the requested shape
        if ex["completion_tokens"] < int(MAX_TOKENS):
            dims = json.loads(ex["raw_response"])["dimensions"]
            # the schema's maxItems: a small model no longer repeats one quote until the token limit
            assert all(len(d["evidence"]) <= 3 for d in dims.values()), dims


def test_real_model_falls_back_to_json_object_when_json_schema_is_refused(
    json_object_only: tuple[str, list[str]], tmp_path: Path
) -> None:
    api_base, seen = json_object_only
    db = tmp_path / "real.duckdb"
    doc = judge(api_base, db)
    exchanges = stored_exchanges(db)
    check_judgment(doc, exchanges, "json_object")
    assert "response_format_fallback" in doc["flags"]
    detail = next(f["detail"] for f in doc["flag_details"] if f["kind"] == "response_format_fallback")
    assert "json_schema -> json_object" in detail
    assert seen[0] == "json_schema" and seen[1:] == ["json_object"] * len(exchanges)  # stepped down once
