"""Parse and validate a model's reply: extract JSON, repair its syntax, validate per dimension,
and check that every evidence quote really occurs in the transcript or code.

Validation is per dimension so that one bad dimension costs a repair of that dimension only, and a
judgment can end `partial` instead of losing the dimensions that were fine.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from evaluator.judge.prompt import dimension_model
from evaluator.models import Evidence, Transcript
from evaluator.rubrics import Dimension, Rubric
from evaluator.safety import inline

MIN_QUOTE_CHARS = 8
FUZZY_THRESHOLD = 90.0
FUZZY_MIN_CHARS = 40  # below this a 90% match can flip the meaning ("most" for "least"): exact only
_FENCED = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)
_NOT_OBSERVED = {"not_observed", "not observed", "notobserved", "n/a", "na", "not applicable"}


class Conflict(list):
    """The different values a reply gave one key (`"invariant": {...}, "invariant": {...}`). JSON
    parsers keep the last silently; here the key's dimension fails validation and is asked again."""


def _merge(a: Any, b: Any) -> Any:
    """One value for a key given twice: identical values are one, two objects merge key by key
    (only the keys they disagree on conflict), anything else is a Conflict."""
    if a == b and type(a) is type(b):
        return a
    if isinstance(a, dict) and isinstance(b, dict):
        merged = dict(a)
        for k, v in b.items():
            merged[k] = _merge(merged[k], v) if k in merged else v
        return merged
    return Conflict([*(a if isinstance(a, Conflict) else [a]), *(b if isinstance(b, Conflict) else [b])])


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        out[k] = _merge(out[k], v) if k in out else v
    return out


def _loads(text: str) -> Any:
    return json.loads(text, object_pairs_hook=_pairs)


def extract_json(text: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """Find the JSON object in a reply that may carry chatter, a markdown fence or broken syntax.
    A key given twice with different values becomes a `Conflict` (in repaired JSON too)."""
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
            value = _loads(chunk)
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(value, dict):
            return value, None
    # a whole object followed by prose that has braces of its own ("... a strong candidate {really}"):
    # the first complete object from the first brace is the answer, the rest is chatter
    if start != -1:
        try:
            value, _ = json.JSONDecoder(object_pairs_hook=_pairs).raw_decode(text, start)
        except (json.JSONDecodeError, RecursionError):
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
            for path, values in _raw_duplicates(chunk):
                _mark_conflict(value, path, values)
            return value, None
    return None, "the reply's JSON could not be parsed or repaired"


def _raw_duplicates(text: str) -> list[tuple[tuple[str, ...], list[str]]]:
    """Keys given more than once with different raw values in one object of (possibly broken) JSON,
    as (key path, raw values). json-repair keeps the last value of a duplicate key, so the raw text
    is walked once: strings are skipped, braces and brackets tracked, each value's text compared."""
    frames: list[dict[str, Any]] = [{"path": (), "obj": False, "keys": {}}]
    found: list[tuple[tuple[str, ...], list[str]]] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            token = text[i + 1 : j]
            k = j + 1
            while k < n and text[k] in " \t\r\n":
                k += 1
            frame = frames[-1]
            if frame["obj"] and frame.get("at") is None and k < n and text[k] == ":":
                frame["at"] = (token, k + 1)
                i = k + 1
                continue
            i = j + 1
            continue
        if c in "{[":
            frame = frames[-1]
            key = frame["at"][0] if frame["obj"] and frame.get("at") else None
            path = frame["path"] + ((key,) if key is not None else ())
            frames.append({"path": path, "obj": c == "{", "keys": {}})
        elif c in "}]" or c == ",":
            frame = frames[-1]
            if frame["obj"] and frame.get("at"):
                key, at = frame.pop("at")
                raw = " ".join(text[at:i].split())
                frame["keys"].setdefault(key, []).append(raw)
            if c in "}]" and len(frames) > 1:
                done = frames.pop()
                for key, raws in done["keys"].items():
                    if len(set(raws)) > 1:
                        found.append((done["path"] + (key,), raws))
        i += 1
    return found


def _mark_conflict(obj: dict[str, Any], path: tuple[str, ...], raws: list[str]) -> None:
    """Replace the value at `path` (keys only; lists are not entered) with a Conflict."""
    node: Any = obj
    for key in path[:-1]:
        if not isinstance(node, dict) or not isinstance(node.get(key), dict):
            return
        node = node[key]
    if isinstance(node, dict) and path and path[-1] in node:
        node[path[-1]] = Conflict(raws)


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


# ---------------------------------------------------------------- evidence

_WORD = re.compile(r"\w+")


def _norm(text: str) -> str:
    """Words only, case-folded, one space apart: what quotes and places are compared as. (Quote marks
    and other punctuation are never word characters, so they only separate words.) One findall pass:
    every turn of every judgment goes through here."""
    return " ".join(_WORD.findall(text.casefold()))


_LABEL_PREFIX = re.compile(r"^\s*(\[[^\]]{1,24}\]\s*)?(\*\*)?[^\W\d_][\w .'’-]{0,30}"
                           r"(\([^)]{1,20}\))?(\*\*)?[:：]\s*(\*\*)?\s*")

_LEAD, _TRAIL = re.compile(r"[^\w\s]*"), re.compile(r"[^\w\s]*$")


class _Place:
    """A turn or code file: its text normalised as `_norm` does, and the way back from a position
    in the normalised text to one in the original (so a located quote is stored as a span the
    report can highlight without matching again)."""

    __slots__ = ("_map", "_normed", "original", "role", "source")

    def __init__(self, source: str, role: str, original: str) -> None:
        self.source, self.role, self.original = source, role, original
        self._normed: str | None = None
        self._map: tuple[list[int], list[int], list[int] | None] | None = None

    @property
    def normed(self) -> str:
        """Normalised on first search: a quote found in a candidate turn never reads the others."""
        if self._normed is None:
            self._normed = _norm(self.original)
        return self._normed

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original characters [start, end) of the normalised text came from."""
        if self._map is None:
            folded = self.original.casefold()
            # casefold may lengthen a character ("ß" -> "ss"): then map folded positions back one by one
            back = None if len(folded) == len(self.original) else [
                i for i, ch in enumerate(self.original) for _ in ch.casefold()]
            norm_starts, starts, pos = [], [], 0
            for m in _WORD.finditer(folded.replace("’", "'").replace("“", '"').replace("”", '"')):
                norm_starts.append(pos)
                starts.append(m.start())
                pos += m.end() - m.start() + 1
            self._map = (norm_starts, starts, back)
        norm_starts, starts, back = self._map

        def original(i: int) -> int:
            k = bisect_right(norm_starts, i) - 1
            folded_at = starts[k] + (i - norm_starts[k])
            return back[folded_at] if back is not None else folded_at

        return original(start), original(end - 1) + 1


@dataclass
class EvidenceIndex:
    """Normalised places a quote may come from: each turn and each code file, with whose words they
    are. Candidate places come first, so a phrase the candidate repeats is credited to them."""

    places: list[_Place]

    @classmethod
    def of(cls, transcript: Transcript) -> EvidenceIndex:
        places = [_Place(t.id, t.role, t.text) for t in transcript.turns]
        places += [_Place(cf.name, "candidate", cf.content) for cf in transcript.code_files]
        places.sort(key=lambda p: p.role == "interviewer")
        return cls(places)

    def _found(self, quote: str, place: _Place, start: int, end: int, match: float) -> Evidence:
        """Evidence with the span it was found at: what the report highlights, as found here. The
        match is on words; punctuation the quote opens or closes with ("<script>", a final ".") is
        taken in too where the text has it right there."""
        first, last = place.span(start, end)
        text, quoted = place.original, quote.strip()
        lead = _LEAD.match(quoted).group()  # type: ignore[union-attr]
        trail = _TRAIL.search(quoted).group()  # type: ignore[union-attr]
        if lead and text[max(0, first - len(lead)):first] == lead:
            first -= len(lead)
        if trail and len(trail) < len(quoted) and text[last:last + len(trail)] == trail:
            last += len(trail)
        return Evidence(quote=quote.strip(), source=place.source, match=match, role=place.role,  # type: ignore[arg-type]
                        start=first, end=last)

    def locate(self, quote: str, prefer: str | None = None) -> Evidence | None:
        """Exact after normalising (case, whitespace, punctuation), else a close fuzzy match for long
        quotes only. A quote split by an ellipsis needs every part (each at least two words) present,
        in order, in the same place: "the ... cache ... zero" is not evidence. `prefer`: the place
        (turn id or file name) to look in first, where the quote was taken from."""
        parts = [p for p in re.split(r"\.\.\.|…", quote) if _norm(p)]
        if not parts:
            return None
        normed = [_norm(p) for p in parts]
        if sum(len(p) for p in normed) < MIN_QUOTE_CHARS:
            return None
        if len(normed) > 1 and any(len(p.split()) < 2 for p in normed):
            return None
        places = self.places if prefer is None else sorted(self.places, key=lambda p: p.source != prefer)
        for place in places:
            at = _in_order(normed, place.normed)
            if at is not None:
                return self._found(quote, place, at[0], at[1], 100.0)
        if len(normed) > 1 or len(normed[0]) < FUZZY_MIN_CHARS:
            return self._without_label(quote, prefer)  # short or split quotes must match exactly
        from rapidfuzz import fuzz

        best = None
        for place in places:
            if len(normed[0]) > len(place.normed):
                continue
            al = fuzz.partial_ratio_alignment(normed[0], place.normed, score_cutoff=FUZZY_THRESHOLD)
            if al is not None and al.dest_end > al.dest_start and (best is None or al.score > best[0].score):
                best = (al, place)
        if best:
            return self._found(quote, best[1], best[0].dest_start, best[0].dest_end, round(best[0].score, 1))
        return self._without_label(quote, prefer)

    def _without_label(self, quote: str, prefer: str | None) -> Evidence | None:
        """Models sometimes keep the speaker label ("Dana (candidate): ..."): try again without it."""
        stripped = _LABEL_PREFIX.sub("", quote, count=1)
        if stripped != quote and stripped.strip():
            return self.locate(stripped, prefer)
        return None


def misplaced_quotes(parses: dict[str, DimensionParse], prompt_parts: list[tuple[str, str]]) -> list[str]:
    """Rejected quotes that the model copied from the prompt itself (the rubric's anchors, the
    instructions) instead of the interview, each named with where it came from. Small models do this
    and repeat it on a generic repair request; saying which quote came from where breaks the loop."""
    if not any(dp.dropped for dp in parses.values()):
        return []  # nothing was dropped: the prompt need not be read at all
    # role: the Evidence model knows only the interview's roles; only the place's name is used here
    index = EvidenceIndex([_Place(label, "interviewer", text) for label, text in prompt_parts])
    out = []
    for dim_id, dp in parses.items():
        for quote in dp.dropped:
            found = index.locate(quote)
            if found:
                out.append(f"`{dim_id}`: {quote[:80]!r} is from {found.source}, not from the interview")
    return out


def _in_order(parts: list[str], text: str) -> tuple[int, int] | None:
    """Where every part occurs word-aligned in `text`, each after the previous one: from the
    first part's start to the last part's end (None if they do not)."""
    pos, first = 0, None
    for part in parts:
        at = _find_word_aligned(text, part, pos)
        if at is None:
            return None
        first = at if first is None else first
        pos = at + len(part)
    return (first, pos) if first is not None else None


def _word_char(c: str) -> bool:
    return c.isalnum() or c == "_"


def _find_word_aligned(text: str, part: str, start: int) -> int | None:
    r"""The first index >= start where `part` occurs with no word character just before or after it
    (regex `(?<!\w)part(?!\w)`), by plain substring search: no pattern compiled per quote and place."""
    i = text.find(part, start)
    while i != -1:
        end = i + len(part)
        if (i == 0 or not _word_char(text[i - 1])) and (end == len(text) or not _word_char(text[end])):
            return i
        i = text.find(part, i + 1)
    return None


# ---------------------------------------------------------------- validation

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
            found[key] = _merge(found[key], value) if key in found else value

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
