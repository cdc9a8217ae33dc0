"""Locate evidence quotes in a transcript: a quote a model gives is kept only if it really occurs in
a turn or code file (after normalising case, whitespace and punctuation; long quotes may match
fuzzily), and is stored with the span it was found at.

Its own module because the index is used outside reply parsing too: the baseline judge, the
pipeline, the report's synthetic data and the tests locate quotes with it; and `misplaced_quotes`
reads the prompt with the same matcher to say where a rejected quote came from.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from typing import TYPE_CHECKING

from evaluator.models import Evidence, Transcript

if TYPE_CHECKING:
    from evaluator.judge.parse import DimensionParse

MIN_QUOTE_CHARS = 8
FUZZY_THRESHOLD = 90.0
FUZZY_MIN_CHARS = 40  # below this a 90% match can flip the meaning ("most" for "least"): exact only

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

