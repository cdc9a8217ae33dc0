"""Injection detection: flag candidate text that addresses the grader (the policy is in
`injection_checks`).

This module puts a transcript's flags together: which turns, files and file names are looked at,
and each place checked line by line (`injection_scan`), as a whole for delimiter imitation (the
fencing patterns), decoded (`injection_scan`), in other languages (`injection_foreign`) and for
hidden text (`hidden`); one flag per offending line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from evaluator.models import Flag, Transcript
from evaluator.safety.fencing import _BRACKET_RUN, _CHATML, _DELIM_LIKE, _TAG_LIKE
from evaluator.safety.hidden import _view, _visible, invisible_payload
from evaluator.safety.injection_foreign import _foreign_gates, _foreign_hits
from evaluator.safety.injection_scan import (
    _checks_for,
    _encoded_hits,
    _index_words,
    _line_hits,
    _rot13_hits,
    _split_hits,
)

# Delimiter imitation, looked for over a whole text (it may span lines), where a cheap test (`gate`)
# shows a match is possible.
_WHOLE_TEXT: tuple[tuple[re.Pattern[str], Callable[[str], bool]], ...] = (
    (_DELIM_LIKE, lambda view: _BRACKET_RUN.search(view) is not None),
    (_TAG_LIKE, lambda view: "<" in view),
    (_CHATML, lambda view: "<|" in view),
)


def detect_injection(transcript: Transcript, dimension_ids: Sequence[str] = ()) -> list[Flag]:
    """Flag candidate text or code that addresses the grader or imitates delimiters.

    Interviewer turns are excluded: an interviewer saying 'ignore the previous approach' is not an
    attack. Each flag names the turn or file and quotes the offending line.
    """
    checks, index = _checks_for(tuple(dimension_ids))
    places: list[tuple[str, str]] = [
        (t.id, t.text) for t in transcript.turns if t.role in ("candidate", "unknown")
    ] + [(cf.name, cf.content) for cf in transcript.code_files]
    # file names reach the prompt too (quoted, in the fence headers): an attack may live there
    places += [(f"file name {n!r}", n) for n in dict.fromkeys(
        [transcript.source.replace("\\", "/").rsplit("/", 1)[-1], *(cf.name for cf in transcript.code_files)])]
    flags: list[Flag] = []
    seen: set[tuple[str, str]] = set()
    visibles = [_visible(text) for _, text in places]
    gates = _foreign_gates("\n".join(visibles).lower())
    for (source, text), visible in zip(places, visibles, strict=True):
        view = _view(text)
        words = _index_words(view, index)
        hits = _line_hits(view, checks, index, words) if words else {}
        for pattern, gate in _WHOLE_TEXT:  # on the view: '﹤﹤﹤END' and '<\u200b<<END' count too
            if gate(view):
                for m in pattern.finditer(view):
                    hits.setdefault(view.count("\n", 0, m.start()), []).append("imitates prompt delimiters")
        for found in (_encoded_hits(view, checks, index), _split_hits(view, checks, index, hits, words),
                      _rot13_hits(view, checks, index), _foreign_hits(visible, gates)):
            for line, names in found.items():
                hits.setdefault(line, []).extend(names)
        hidden = invisible_payload(text) if not text.isascii() else None
        if hidden:
            flags.append(Flag(kind="prompt_injection", detail=f"hidden text: {hidden}", source=source))
        if not hits:
            continue
        lines = text.split("\n")
        for line in sorted(hits):
            quote = lines[line].strip()[:200]
            if (source, quote) in seen:  # the same line repeated in one place is one finding
                continue
            seen.add((source, quote))
            reasons = ", ".join(dict.fromkeys(hits[line]))
            flags.append(Flag(kind="prompt_injection", detail=f"{reasons}: {quote!r}", source=source))
    return flags
