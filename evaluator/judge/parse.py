"""Validate a model's reply per dimension against the schema built from the rubric, and keep only the
evidence quotes that really occur in the transcript or code.

Validation is per dimension so that one bad dimension costs a repair of that dimension only, and a
judgment can end `partial` instead of losing the dimensions that were fine. Finding the JSON in the
reply is `reply_json`; locating quotes is `evidence`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from evaluator.judge.evidence import EvidenceIndex
from evaluator.judge.prompt import dimension_model
from evaluator.judge.reply_json import Conflict, merge_values
from evaluator.models import Evidence
from evaluator.rubrics import Dimension, Rubric
from evaluator.safety import inline

_NOT_OBSERVED = {"not_observed", "not observed", "notobserved", "n/a", "na", "not applicable"}


def _normalise_score(raw: Any) -> Any:
    if isinstance(raw, str):
        s = raw.strip().strip('"').lower()
        if s in _NOT_OBSERVED:
            return "not_observed"
        if re.fullmatch(r"-?\d+(\.0+)?", s):
            return int(float(s))
        return raw
    if isinstance(raw, bool):  # pydantic would read `true` as the level 1
        return str(raw).lower()
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if raw is None:
        return raw
    return raw


def _normalise_evidence(raw: Any) -> Any:
    """Accept `["q"]`, `"q"` or `[{"quote": "q"}]`: the meaning is unambiguous, no need to re-ask."""
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list):
        return [item.get("quote", item.get("text")) if isinstance(item, dict) else item for item in raw]
    return raw


@dataclass
class DimensionParse:
    """One dimension of a reply as read: its score, reasoning, the quotes kept and dropped, and why
    it failed validation (then it is asked again)."""

    score: int | str | None = None
    reasoning: str = ""
    evidence: list[Evidence] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    error: str | None = None


_KNOWN_FIELDS = ("reasoning", "score", "evidence")


def _answers(obj: dict[str, Any], dims: list[Dimension]) -> dict[str, Any]:
    """Each dimension's answer, wherever the reply put it: under "dimensions" (an object, or a list
    of objects with an "id"), or at the top level when the wrapper was dropped. One dimension given
    in several places is merged: copies that agree are one answer, disagreeing ones a Conflict."""
    wanted = {d.id for d in dims}
    found: dict[str, Any] = {}

    def add(key: Any, value: Any) -> None:
        if isinstance(key, str) and key in wanted:
            found[key] = merge_values(found[key], value) if key in found else value

    def add_container(container: Any) -> None:
        if isinstance(container, Conflict):
            for part in container:
                add_container(part)
        elif isinstance(container, dict):
            for k, v in container.items():
                add(k, v)
        elif isinstance(container, list):
            for item in container:
                if isinstance(item, dict):
                    add(item.get("id"), item)

    add_container(obj.get("dimensions"))
    for k, v in obj.items():
        if k != "dimensions" and isinstance(v, dict):
            add(k, v)
    return found


def _conflicts(value: Any, path: str = "") -> list[str]:
    if isinstance(value, Conflict):
        shown = ", ".join(inline(json.dumps(v, default=str), 40) for v in value[:3])
        return [f"{path or 'the answer'} was given {len(value)} times with different values ({shown})"]
    if isinstance(value, dict):
        return [c for k, v in value.items() for c in _conflicts(v, f"{path}.{k}" if path else str(k))]
    return []


def validate_dimensions(
    obj: dict[str, Any], rubric: Rubric, dims: list[Dimension], index: EvidenceIndex
) -> dict[str, DimensionParse]:
    """Validate each requested dimension of a parsed reply; every result carries an error or a score.

    Each dimension stands alone: a bad score (4.5, -1, null, true) or a conflicting duplicate in one
    dimension costs a re-ask of that dimension only; keys outside the schema are ignored (their
    meaning is unknown, and the fields that matter are still validated)."""
    answers = _answers(obj, dims)
    out: dict[str, DimensionParse] = {}
    for d in dims:
        raw = answers.get(d.id)
        if raw is None:
            out[d.id] = DimensionParse(error=f"dimension `{d.id}` is missing from the reply")
            continue
        conflicts = _conflicts(raw)
        if conflicts:
            out[d.id] = DimensionParse(error=f"dimension `{d.id}`: {'; '.join(conflicts)}: give one answer")
            continue
        if not isinstance(raw, dict):
            out[d.id] = DimensionParse(error=f"dimension `{d.id}`: expected an object with reasoning, score "
                                             "and evidence")
            continue
        raw = dict(raw)
        if "rationale" in raw and "reasoning" not in raw:
            raw["reasoning"] = raw.pop("rationale")
        raw = {k: v for k, v in raw.items() if k in _KNOWN_FIELDS}
        if "score" in raw:
            raw["score"] = _normalise_score(raw["score"])
        if "evidence" in raw:
            raw["evidence"] = _normalise_evidence(raw["evidence"])
        try:
            parsed: Any = dimension_model(rubric, d).model_validate(raw)  # fields built from the rubric
        except ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(map(str, err['loc'])) or 'value'}: {err['msg']}" for err in e.errors()
            )
            hint = ""
            if raw.get("score") == "not_observed" and not d.allow_not_observed:
                hint = " (\"not_observed\" is not allowed for this dimension: give a score)"
            out[d.id] = DimensionParse(error=f"dimension `{d.id}`: {problems}{hint}")
            continue
        result = DimensionParse(score=parsed.score, reasoning=parsed.reasoning.strip())
        for quote in parsed.evidence:
            found = index.locate(quote) if isinstance(quote, str) else None
            if found:
                result.evidence.append(found)
            else:
                result.dropped.append(str(quote))
        if parsed.score != "not_observed" and result.evidence and all(e.role == "interviewer" for e in result.evidence):
            result.error = (
                f"dimension `{d.id}`: every quote is the interviewer's words; support the score with what "
                "the candidate said or wrote"
            )
        elif parsed.score != "not_observed" and not result.evidence:
            # distinct and at most three: a small model repeating one quote 90 times would otherwise
            # make the repair request thousands of tokens longer (seen with a real llama.cpp model)
            distinct = list(dict.fromkeys(q[:80] for q in result.dropped))
            more = f"; and {len(distinct) - 3} more" if len(distinct) > 3 else ""
            shown = "; ".join(inline(q, 80) for q in distinct[:3]) + more or "none given"
            result.error = (
                f"dimension `{d.id}`: the score has no supporting quote that occurs verbatim in the "
                f"transcript or code (quotes not found: {shown})"
            )
        out[d.id] = result
    return out
