"""Did a reply degenerate into repetition? A pure check over the reply's tail.

Why: a small model at temperature 0 can fall into a loop ("and the interviewer is a candidate, and
the candidate is ...") that runs until the token limit. The reply is then cut off (finish_reason
"length"), but not every server reports that, and a cut-off alone does not say whether asking for
a shorter answer can help: a loop says the model was not going to finish at any limit. The repair
policy (judge/repair.py) uses this to change the next request instead of resending it.

Two signals, both about the END of the reply (a loop that runs into the limit), so a long but
ordinary answer, or one that repeats a phrase in its middle and then closes its JSON, is not flagged:
- an exact period: the last words repeat a unit of 1-80 words at least `MIN_REPEATS` times and the
  repeated stretch covers at least `MIN_LOOP_CHARS` characters (temperature-0 loops are exact);
- a near loop (a counter or a word that changes each round): the last `TAIL_CHARS` characters
  compress to under `MAX_COMPRESSION` of their size with zlib; English prose and JSON answers
  compress to 0.35-0.6, a loop to under 0.15.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

MIN_REPEATS = 3  # a phrase said three times running at the very end of a reply is a loop
MIN_LOOP_CHARS = 160  # ... and it covers at least this much (a short "no, no, no" is not a loop)
MAX_UNIT_WORDS = 80  # the longest repeated unit looked for (a loop of several sentences)
TAIL_WORDS = 400  # words of the tail searched for an exact period
TAIL_CHARS = 1500  # characters of the tail measured for the near-loop signal
MAX_COMPRESSION = 0.2  # zlib size / raw size under which the tail is a near loop
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Loop:
    """A repetition that runs into the end of a reply."""

    unit: str  # the repeated phrase (exact period), or "" for a near loop
    repeats: float  # how many times the unit occurs in the stretch (a near loop: 0)
    chars: int  # characters of the reply's tail the repetition covers

    def describe(self) -> str:
        """One line for a reason or a flag, without quoting the loop at length."""
        if not self.unit:
            return f"the last {self.chars} characters of the reply went round in a near-identical loop"
        unit = self.unit if len(self.unit) <= 60 else self.unit[:57] + "..."
        return (f"the reply degenerated into repetition: its last {self.chars} characters repeat "
                f"{unit!r} {self.repeats:.0f} times")


def find_loop(text: str | None) -> Loop | None:
    """The repetition that ends `text`, or None. The last word is ignored: a reply cut off at the
    token limit usually ends in the middle of one."""
    if not text:
        return None
    return _exact_period(text) or _near_loop(text)


def _exact_period(text: str) -> Loop | None:
    spans = [(m.start(), m.end()) for m in _WORD.finditer(text[-TAIL_CHARS * 8:])][-TAIL_WORDS - 1: -1]
    if not spans:
        return None
    offset = max(len(text) - TAIL_CHARS * 8, 0)
    words = [text[offset + a: offset + b] for a, b in spans]
    n = len(words)
    for period in range(1, min(MAX_UNIT_WORDS, n // MIN_REPEATS) + 1):
        run = 0
        while run < n - period and words[n - 1 - run] == words[n - 1 - run - period]:
            run += 1
        covered = run + period  # the words of the repeated stretch, its first unit included
        if covered < MIN_REPEATS * period:
            continue
        first = spans[n - covered][0]
        chars = spans[-1][1] - first
        if chars < MIN_LOOP_CHARS:
            continue
        unit = " ".join(words[n - covered: n - covered + period])  # as the loop first said it
        return Loop(unit=unit, repeats=covered / period, chars=chars)
    return None


def _near_loop(text: str) -> Loop | None:
    tail = text[-TAIL_CHARS:]
    if len(tail) < TAIL_CHARS:
        return None  # too short to tell a loop from a terse answer by compression
    raw = tail.encode("utf-8")
    if len(zlib.compress(raw, 9)) / len(raw) < MAX_COMPRESSION:
        return Loop(unit="", repeats=0, chars=len(tail))
    return None
