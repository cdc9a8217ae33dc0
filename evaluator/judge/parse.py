"""Parse and validate a model's reply: extract JSON, repair its syntax, validate per dimension,
and check that every evidence quote really occurs in the transcript or code.

Validation is per dimension so that one bad dimension costs a repair of that dimension only, and a
judgment can end `partial` instead of losing the dimensions that were fine.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from evaluator.models import Evidence, Transcript
from evaluator.rubrics import Dimension, Rubric
from evaluator.judge.prompt import dimension_model

MIN_QUOTE_CHARS = 8
FUZZY_THRESHOLD = 90.0
FUZZY_MIN_CHARS = 40  # below this a 90% match can flip the meaning ("most" for "least"): exact only
_FENCED = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.S)
_NOT_OBSERVED = {"not_observed", "not observed", "notobserved", "n/a", "na", "not applicable"}


def extract_json(text: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """Find the JSON object in a reply that may carry chatter, a markdown fence or broken syntax."""
    if text is None or not text.strip():
        return None, "the reply was empty"
    candidates: list[str] = [m.group(1) for m in _FENCED.finditer(text)]
    start, end = text.find("{"), text.rfind("}")
    if start != -1:
        candidates.append(text[start : end + 1] if end > start else text[start:])
    if not candidates:
        return None, "the reply contains no JSON object (it looks like prose)"
    for chunk in candidates:
        try:
            value = json.loads(chunk)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value, None
    # a whole object followed by prose that has braces of its own ("... a strong candidate {really}"):
    # the first complete object from the first brace is the answer, the rest is chatter
    if start != -1:
        try:
            value, _ = json.JSONDecoder().raw_decode(text, start)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, dict):
            return value, None
    import json_repair

    for chunk in candidates:
        try:
            value = json_repair.loads(chunk)
        except Exception:  # json_repair raises assorted errors on hopeless input
            continue
        if isinstance(value, dict) and value:
            return value, None
    return None, "the reply's JSON could not be parsed or repaired"


def _normalise_score(raw: Any) -> Any:
    if isinstance(raw, str):
        s = raw.strip().strip('"').lower()
        if s in _NOT_OBSERVED:
            return "not_observed"
        if re.fullmatch(r"-?\d+(\.0+)?", s):
            return int(float(s))
        return raw
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


# ---------------------------------------------------------------- evidence

def _norm(text: str) -> str:
    text = text.casefold().replace("’", "'").replace("“", '"').replace("”", '"')
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


_LABEL_PREFIX = re.compile(r"^\s*(\[[^\]]{1,12}\]\s*)?(\*\*)?[^\W\d_][\w .'’-]{0,30}(\([^)]{1,20}\))?(\*\*)?[:：]\s*(\*\*)?\s*")


@dataclass
class EvidenceIndex:
    """Normalised places a quote may come from: each turn and each code file, with whose words they
    are. Candidate places come first, so a phrase the candidate repeats is credited to them."""

    places: list[tuple[str, str, str]]  # (source, role, normalised text)

    @classmethod
    def of(cls, transcript: Transcript) -> "EvidenceIndex":
        places = [(t.id, t.role, _norm(t.text)) for t in transcript.turns]
        places += [(cf.name, "candidate", _norm(cf.content)) for cf in transcript.code_files]
        places.sort(key=lambda p: p[1] == "interviewer")
        return cls(places)

    def locate(self, quote: str) -> Evidence | None:
        """Exact after normalising (case, whitespace, punctuation), else a close fuzzy match for long
        quotes only. A quote split by an ellipsis needs every part (each at least two words) present,
        in order, in the same place: "the ... cache ... zero" is not evidence."""
        found = self.match(quote)
        return Evidence(quote=quote.strip(), source=found[0], match=found[2], role=found[1]) if found else None  # type: ignore[arg-type]

    def match(self, quote: str) -> tuple[str, str, float] | None:
        """(source, role, match ratio) of the place the quote comes from, by `locate`'s rules."""
        parts = [p for p in re.split(r"\.\.\.|…", quote) if _norm(p)]
        if not parts:
            return None
        normed = [_norm(p) for p in parts]
        if sum(len(p) for p in normed) < MIN_QUOTE_CHARS:
            return None
        if len(normed) > 1 and any(len(p.split()) < 2 for p in normed):
            return None
        for source, role, text in self.places:
            if _in_order(normed, text):
                return source, role, 100.0
        if len(normed) > 1 or len(normed[0]) < FUZZY_MIN_CHARS:
            return self._without_label(quote)  # short or split quotes must match exactly
        from rapidfuzz import fuzz

        best: tuple[float, str, str] | None = None
        for source, role, text in self.places:
            score = fuzz.partial_ratio(normed[0], text) if len(normed[0]) <= len(text) else 0.0
            if score >= FUZZY_THRESHOLD and (best is None or score > best[0]):
                best = (score, source, role)
        if best:
            return best[1], best[2], round(best[0], 1)
        return self._without_label(quote)

    def _without_label(self, quote: str) -> tuple[str, str, float] | None:
        """Models sometimes keep the speaker label ("Dana (candidate): ..."): try again without it."""
        stripped = _LABEL_PREFIX.sub("", quote, count=1)
        if stripped != quote and stripped.strip():
            return self.match(stripped)
        return None


def misplaced_quotes(parses: dict[str, DimensionParse], prompt_parts: list[tuple[str, str]]) -> list[str]:
    """Rejected quotes that the model copied from the prompt itself (the rubric's anchors, the
    instructions) instead of the interview, each named with where it came from. Small models do this
    and repeat it on a generic repair request; saying which quote came from where breaks the loop."""
    index = EvidenceIndex([(label, "prompt", _norm(text)) for label, text in prompt_parts])
    out = []
    for dim_id, dp in parses.items():
        for quote in dp.dropped:
            found = index.match(quote)
            if found:
                out.append(f"`{dim_id}`: {quote[:80]!r} is from {found[0]}, not from the interview")
    return out


def _in_order(parts: list[str], text: str) -> bool:
    """Every part occurs word-aligned in `text`, each after the previous one."""
    pos = 0
    for part in parts:
        m = re.search(r"(?<!\w)" + re.escape(part) + r"(?!\w)", text[pos:])
        if not m:
            return False
        pos += m.end()
    return True


# ---------------------------------------------------------------- validation

@dataclass
class DimensionParse:
    score: int | str | None = None
    reasoning: str = ""
    evidence: list[Evidence] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    error: str | None = None


def validate_dimensions(
    obj: dict[str, Any], rubric: Rubric, dims: list[Dimension], index: EvidenceIndex
) -> dict[str, DimensionParse]:
    """Validate each requested dimension of a parsed reply; every result carries an error or a score."""
    container = obj.get("dimensions") if isinstance(obj.get("dimensions"), dict) else None
    if container is None and any(d.id in obj for d in dims):
        container = obj  # the model dropped the wrapper; the meaning is still unambiguous
    if container is None and isinstance(obj.get("dimensions"), list):
        container = {item.get("id"): item for item in obj["dimensions"] if isinstance(item, dict)}
    container = container or {}
    out: dict[str, DimensionParse] = {}
    for d in dims:
        raw = container.get(d.id)
        if not isinstance(raw, dict):
            out[d.id] = DimensionParse(error=f"dimension `{d.id}` is missing from the reply")
            continue
        raw = dict(raw)
        raw.pop("id", None)
        if "score" in raw:
            raw["score"] = _normalise_score(raw["score"])
        if "evidence" in raw:
            raw["evidence"] = _normalise_evidence(raw["evidence"])
        if "rationale" in raw and "reasoning" not in raw:
            raw["reasoning"] = raw.pop("rationale")
        try:
            parsed = dimension_model(rubric, d).model_validate(raw)
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
            shown = "; ".join(repr(q) for q in distinct[:3]) + more or "none given"
            result.error = (
                f"dimension `{d.id}`: the score has no supporting quote that occurs verbatim in the "
                f"transcript or code (quotes not found: {shown})"
            )
        out[d.id] = result
    return out
