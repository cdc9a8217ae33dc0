"""Valid fake-model replies built from the request the fake server receives (shared by the tests).

The dimension ids come from the "### `id`" headings of the judge prompt, and the evidence quotes are
copied from the candidate's `[tN] C: text` lines inside the fenced transcript, so they
are verbatim. Use `answer()` as a fake-server step, or `valid` as the callable of a `Call(...)` step.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from fakellm import Call

_TURN = re.compile(r"^\[(t\d+)(?: [^\]]*)?\] (I|C|.+? \(role unknown\)): (.*)$", re.M)


def _user_prompt(body: dict[str, Any]) -> str:
    """The first user message: the judge prompt with the rubric and the fenced transcript."""
    return next(m["content"] for m in body["messages"] if m["role"] == "user")


def requested_dims(body: dict[str, Any]) -> list[str]:
    """The "### `id`" headings of the rubric (in the system message, or wherever a prompt puts it)."""
    prompt = "\n".join(str(m["content"]) for m in body["messages"] if m["role"] in ("system", "user"))
    return list(dict.fromkeys(re.findall(r"^### `([^`]+)`", prompt, re.M)))


def candidate_quotes(body: dict[str, Any]) -> list[str]:
    """Verbatim pieces of the candidate's turns, read from the fenced transcript in the prompt."""
    prompt = _user_prompt(body)
    start = prompt.index("<<<TRANSCRIPT")
    end = prompt.index("<<<END TRANSCRIPT", start)
    quotes = []
    for m in _TURN.finditer(prompt[start:end]):
        if m.group(2) != "C":
            continue
        words = m.group(3).split()
        if len(" ".join(words)) < 20 or "‹‹‹" in m.group(3):
            continue
        quotes.append(" ".join(words[:12]))
    assert quotes, "no candidate lines found in the prompt"
    return quotes


def build_reply(
    body: dict[str, Any],
    *,
    omit: tuple[str, ...] = (),
    scores: dict[str, Any] | None = None,
    evidence: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """A schema-shaped judgment for every dimension the prompt asks for, with real quotes."""
    quotes = candidate_quotes(body)
    out = {}
    for i, d in enumerate(requested_dims(body)):
        if d in omit:
            continue
        out[d] = {
            "reasoning": f"The candidate's behaviour for {d} matches the level 4 anchor.",
            "score": (scores or {}).get(d, 4),
            "evidence": (evidence or {}).get(d, [quotes[i % len(quotes)]]),
        }
    return {"dimensions": out}


def valid(body: dict[str, Any]) -> str:
    """The content of a valid reply to this request (for `Call(valid, delay=...)`)."""
    return json.dumps(build_reply(body))


def answer(**kw: Any) -> Call:
    """A fake-server step that answers with `build_reply(request, **kw)` as JSON."""
    return Call(lambda body: json.dumps(build_reply(body, **kw)))


def answer_with(transform: Callable[[str], str], finish_reason: str = "stop", **kw: Any) -> Call:
    return Call(lambda body: transform(json.dumps(build_reply(body, **kw), indent=2)), finish_reason=finish_reason)
