"""Score distributions from token log-probabilities (G-Eval's probability-weighted score).

When the server returns the reply's tokens with their top alternatives, the probability the model
gave each scale level is read at the token where the dimension's score is written, and renormalised
over the scale's levels; the expected score is the probability-weighted mean. Pure functions over the
reply text and its token list.

Honesty rules (a wrong distribution is worse than none):
- the score's position is found by parsing the reply's JSON with character offsets; a reply that is
  not plain JSON (it had to be repaired) has no known position: no distribution, with the reason.
- a level absent from the top-K alternatives is reported as null (below the cut, not zero); the
  expected score is taken over the levels seen, as G-Eval does, and the note says which were missing.
- multi-digit levels: when a number is split over tokens ("1", "0") the distribution follows the
  emitted digits and reads the next position to tell 1 from 10. An alternative whose continuation the
  server did not show (a "1" that may be 1 or 10) is read as complete only when the reply shows the
  tokenizer writes numbers as one token (a token with two digits: GPT-style BPE never writes "10" as
  "1", "0"); otherwise those levels are null and there is no expected score.
"""

from __future__ import annotations

import json
import math
import re
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

from evaluator.judge.transport import TokenLogprob

_DIGITS = re.compile(r"\d*")
_LEAD = " \t\r\n\"'"


@dataclass
class ScoreDistribution:
    """`probs`: level -> probability (None: unknown); None altogether when nothing could be read."""

    probs: dict[int, float | None] | None = None
    expected: float | None = None
    note: str | None = None


MAX_STARTS = 20  # braces tried as the start of the answer's object (chatter before it may hold some)


def value_spans(text: str) -> dict[tuple[Any, ...], tuple[int, int]] | None:
    """Character span of every scalar value of the first well-formed JSON object in `text` (a markdown
    fence or chatter around it is fine), by path (("dimensions", "invariant", "score") -> (start,
    end)); None if there is none (the reply had to be repaired)."""
    start = text.find("{")
    for _ in range(MAX_STARTS):
        if start < 0:
            return None
        spans = _spans_from(text, start)
        if spans is not None:
            return spans
        start = text.find("{", start + 1)
    return None


def _spans_from(text: str, start: int) -> dict[tuple[Any, ...], tuple[int, int]] | None:
    spans: dict[tuple[Any, ...], tuple[int, int]] = {}
    decoder = json.JSONDecoder()

    def skip(i: int) -> int:
        while i < len(text) and text[i] in " \t\r\n":
            i += 1
        return i

    def walk(i: int, path: tuple[Any, ...]) -> int:
        i = skip(i)
        if i >= len(text):
            raise ValueError("truncated")
        if text[i] == "{":
            i = skip(i + 1)
            if text[i : i + 1] == "}":
                return i + 1
            while True:
                key, i = decoder.raw_decode(text, skip(i))
                i = skip(i)
                if text[i : i + 1] != ":":
                    raise ValueError("expected ':'")
                i = skip(walk(i + 1, (*path, key)))
                if text[i : i + 1] == "}":
                    return i + 1
                if text[i : i + 1] != ",":
                    raise ValueError("expected ','")
                i += 1
        if text[i] == "[":
            i = skip(i + 1)
            if text[i : i + 1] == "]":
                return i + 1
            n = 0
            while True:
                i = skip(walk(i, (*path, n)))
                n += 1
                if text[i : i + 1] == "]":
                    return i + 1
                if text[i : i + 1] != ",":
                    raise ValueError("expected ','")
                i += 1
        _, end = decoder.raw_decode(text, i)
        spans[path] = (i, end)
        return end

    try:
        walk(start, ())
    except (ValueError, IndexError):  # JSONDecodeError is a ValueError
        return None
    return spans


def _score_span(spans: dict[tuple[Any, ...], tuple[int, int]], text: str, dim_id: str) -> tuple[int, int] | None:
    """Where this dimension's score is written: under its own key, or in a list item whose id is it."""
    for path, span in spans.items():
        if len(path) >= 2 and path[-1] == "score":
            owner = path[-2]
            if owner == dim_id:
                return span
            id_span = spans.get((*path[:-1], "id"))
            if isinstance(owner, int) and id_span and json.loads(text[id_span[0] : id_span[1]]) == dim_id:
                return span
    return None


def _split(body: str) -> tuple[str, str]:
    digits = _DIGITS.match(body).group(0)  # type: ignore[union-attr]
    return digits, body[len(digits) :]


def level_probabilities(
    tokens: list[TokenLogprob], index: int, skip: int, levels: list[int], digits_merge: bool = False
) -> tuple[dict[str, float], set[str]]:
    """Joint probability of each level's digits (then anything but a digit) from the token at
    `index` (whose first `skip` characters precede the number), following the emitted digits.
    `digits_merge`: the tokenizer writes a number as one token, so a digits-only alternative is a
    complete number. Returns (level text -> probability, prefixes whose continuation is unknown)."""
    names = {str(v) for v in levels}
    known: dict[str, float] = {}
    unknown: set[str] = set()

    def extendable(prefix: str) -> bool:
        return any(n != prefix and n.startswith(prefix) for n in names)

    prefix, run, first = "", 1.0, True
    while index < len(tokens):
        tok = tokens[index]
        lead, emitted = (tok.token[:skip], tok.token[skip:]) if first else ("", tok.token)
        alternatives = dict(tok.top)
        alternatives.setdefault(tok.token, tok.logprob)  # a sampled token may fall outside the top K
        for alt, logprob in alternatives.items():
            p = run * math.exp(logprob)
            if first:
                body = alt[len(lead) :] if lead and alt.startswith(lead) else alt.lstrip(_LEAD)
            else:
                body = alt
            digits, rest = _split(body)
            if not digits:
                if not first and prefix in names:  # the number ends after the emitted prefix
                    known[prefix] = known.get(prefix, 0.0) + p
                continue
            level = prefix + digits
            if alt == tok.token and not rest and extendable(level):
                continue  # the emitted path: resolved at the next position
            if rest or digits_merge or not extendable(level):
                if level in names:
                    known[level] = known.get(level, 0.0) + p
            else:
                unknown.add(level)  # "1" here may be 1 or 10: the server did not show what follows
        digits, rest = _split(emitted)
        if digits and not rest and extendable(prefix + digits):
            run *= math.exp(tok.logprob)
            prefix += digits
            first, skip, index = False, 0, index + 1
            continue
        break
    return known, unknown


def score_distribution(text: str | None, tokens: list[TokenLogprob] | None, dim_id: str,
                       levels: list[int], top_k: int) -> ScoreDistribution:
    """The distribution over `levels` at the position where `dim_id`'s score is written in `text`."""
    if not tokens or text is None:
        return ScoreDistribution(note="the server returned no log-probabilities for this reply")
    if min(levels) < 0:
        return ScoreDistribution(note="negative scale levels are not read from log-probabilities")
    joined = "".join(t.token for t in tokens)
    offset = joined.find(text) if joined != text else 0
    if offset < 0:
        return ScoreDistribution(note="the log-probability tokens do not spell the reply")
    spans = value_spans(text)
    if spans is None:
        return ScoreDistribution(note="the reply's JSON had to be repaired: the score's position is unknown")
    span = _score_span(spans, text, dim_id)
    if span is None:
        return ScoreDistribution(note="no score for this dimension in the reply's JSON")
    raw = text[span[0] : span[1]]
    digit = re.search(r"\d", raw)
    if digit is None:
        return ScoreDistribution(note=f"the score is {raw}, not a scale level")
    at = offset + span[0] + digit.start()
    starts, pos = [], 0
    for t in tokens:
        starts.append(pos)
        pos += len(t.token)
    index = bisect_right(starts, at) - 1
    digits_merge = any(re.search(r"\d\d", t.token) for t in tokens)
    known, unknown = level_probabilities(tokens, index, at - starts[index], levels, digits_merge)
    mass = sum(known.values())
    if mass <= 0:
        return ScoreDistribution(note=f"no scale level among the top-{top_k} alternatives at the score's position")
    ambiguous = sorted(v for v in levels if any(str(v).startswith(u) for u in unknown))
    probs: dict[int, float | None] = {
        v: None if v in ambiguous or str(v) not in known else round(known[str(v)] / mass, 6) for v in levels}
    notes = []
    missing = [v for v in levels if probs[v] is None and v not in ambiguous]
    if missing:
        notes.append(f"level(s) {', '.join(map(str, missing))} not among the top-{top_k} alternatives "
                     f"(each below the least shown); {mass:.1%} of the probability was on the levels seen")
    expected = None
    if ambiguous:
        notes.append(f"level(s) {', '.join(map(str, ambiguous))} start with the same token and the server did "
                     "not show what followed it: no expected score")
    else:
        expected = round(sum(v * p for v, p in probs.items() if p is not None), 4)
    return ScoreDistribution(probs=probs, expected=expected, note="; ".join(notes) or None)
