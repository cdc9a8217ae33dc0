"""Candidate text is untrusted data: fence it, neutralise look-alike delimiters, flag grader-addressing.

The fence carries a tag derived from the content hash, so it is stable for caching yet cannot be
predicted by the text it encloses (the text would have to contain its own hash). Anything in the
text that imitates our delimiters is defanged before fencing, so it cannot close the data section.
"""

from __future__ import annotations

import hashlib
import re

from evaluator.models import Flag, Transcript

# Our delimiters use these markers; the same characters in candidate text are replaced by look-alikes
# that read the same to a human but can never form a delimiter.
_DELIM_CHARS = {"<<<": "‹‹‹", ">>>": "›››"}
_TAG_LIKE = re.compile(
    r"</?\s*(transcript|code|candidate_data|data|system|instructions?|rubric|assistant|user|im_start|im_end)\b[^>]*>",
    re.I,
)
_CHATML = re.compile(r"<\|[^|>]{1,30}\|>")

_GRADER = r"(grader|judge|evaluator|reviewer|scorer|rater|marker|grading\s+(model|system|ai)|ai\s+(grader|judge|evaluator)|llm)"

INJECTION_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    # "ignore the rubric", "disregard your instructions": only about the grader's instructions, so
    # "ignore the previous approach" or "ignore the cache for now" stay ordinary interview talk.
    ("ignore instructions", re.compile(
        r"\b(ignore|disregard|forget|override)\b[^.\n]{0,30}\b(rubric|(your|all|the|previous|above|system|grading)\s+(instructions?|prompt|criteria|rules)|system\s+prompt)\b", re.I)),
    ("addresses the grader", re.compile(
        r"\b(note|message|instructions?|hey|dear|attention|psst|hello|hi)\b[^.\n]{0,12}\bto\s+(the\s+|any\s+|my\s+)?(ai\s+|llm\s+|automated\s+)?" + _GRADER + r"\b"
        r"|\b(dear|hey|attention|psst)\s+(ai\s+|llm\s+|automated\s+)?" + _GRADER + r"\b"
        r"|\b(if\s+you\s+are|you\s+are|as)\s+(an?\s+|the\s+)(ai\s+|llm\s+|automated\s+)?" + _GRADER + r"\b", re.I)),
    ("requests a score", re.compile(
        r"\b(give|award|assign|score|rate|mark)\b[^.\n]{0,40}(5\s*/\s*5|10\s*/\s*10|full marks|top score|maximum score|perfect score|highest score|\ba\s+5\b|\b5\s+(on|for|in)\s+(every|all|each))", re.I)),
    ("role play as system", re.compile(
        r"(^|#|//|/\*)\s*(SYSTEM|ASSISTANT|DEVELOPER)\s*:|\b(system|developer)\s+(prompt|message|override|instructions?)\s*:", re.M)),
    ("fake evaluation result", re.compile(
        r"\b(the\s+)?(evaluation|grading|judg(e)?ment|scoring|assessment)\s+(is|has\s+been)\s+(complete|completed|finished|over)\b", re.I)),
    ("you are now", re.compile(r"\byou\s+(are\s+now|must\s+now|will\s+now)\b", re.I)),
]
# Words without which a pattern cannot match: checked on the lower-cased text first, because Python's
# regex engine is slow on case-insensitive alternations and most transcripts contain none of these.
_TRIGGERS: dict[str, tuple[str, ...]] = {
    "ignore instructions": ("ignore", "disregard", "forget", "override"),
    "addresses the grader": ("grader", "judge", "evaluator", "reviewer", "scorer", "rater", "marker", "grading", "llm"),
    "requests a score": ("5/5", "5 /", "10/10", "full marks", "top score", "maximum score", "perfect score",
                         "highest score", "a 5", "5 on", "5 for", "5 in"),
    "role play as system": ("system", "assistant", "developer"),
    "fake evaluation result": ("complete", "finished", "over"),
    "you are now": ("you are now", "you must now", "you will now"),
}
_DELIM_LIKE = re.compile(r"(<<<|>>>)\s*(end|transcript|code|system)", re.I)


def fence_tag(content_hash: str) -> str:
    return hashlib.sha256(("fence:" + content_hash).encode()).hexdigest()[:10]


def neutralise(text: str) -> str:
    """Defang anything that imitates a prompt delimiter or chat-template token."""
    for a, b in _DELIM_CHARS.items():
        text = text.replace(a, b)
    text = _TAG_LIKE.sub(lambda m: m.group(0).replace("<", "‹").replace(">", "›"), text)
    text = _CHATML.sub(lambda m: m.group(0).replace("<|", "‹|").replace("|>", "|›"), text)
    return text


def fence(kind: str, label: str, body: str, tag: str) -> str:
    """Wrap untrusted text in an unforgeable delimiter pair."""
    return f"<<<{kind} {label} tag={tag}>>>\n{neutralise(body)}\n<<<END {kind} tag={tag}>>>"


def detect_injection(transcript: Transcript, dimension_ids: list[str] = ()) -> list[Flag]:
    """Flag candidate text or code that addresses the grader or imitates delimiters.

    Interviewer turns are excluded: an interviewer saying 'ignore the previous approach' is not an
    attack. Each flag names the turn or file and quotes the offending line.
    """
    fake_result = re.compile(
        r'"(' + "|".join(map(re.escape, [*dimension_ids, "dimensions"])) + r')"\s*:\s*[{\[0-9]', re.I
    )
    checks: list[tuple[str, re.Pattern[str]]] = [
        *INJECTION_PATTERNS,
        ("fake judge output", fake_result),
        ("imitates prompt delimiters", _DELIM_LIKE),
        ("imitates prompt delimiters", _TAG_LIKE),
        ("imitates prompt delimiters", _CHATML),
    ]
    places: list[tuple[str, str]] = [
        (t.id, t.text) for t in transcript.turns if t.role in ("candidate", "unknown")
    ] + [(cf.name, cf.content) for cf in transcript.code_files]
    flags: list[Flag] = []
    seen: set[tuple[str, str]] = set()
    for source, text in places:
        # Scan whole texts, then attribute each hit to its line: most texts have none.
        lowered = text.lower()
        hits: dict[int, list[str]] = {}
        for name, pattern in checks:
            triggers = _TRIGGERS.get(name)
            if triggers and not any(t in lowered for t in triggers):
                continue
            for m in pattern.finditer(text):
                start = text.rfind("\n", 0, m.start()) + 1
                hits.setdefault(start, []).append(name)
        for start in sorted(hits):
            end = text.find("\n", start)
            quote = text[start : end if end != -1 else len(text)].strip()[:200]
            if (source, quote) in seen:  # the same line repeated in one place is one finding
                continue
            seen.add((source, quote))
            reasons = ", ".join(dict.fromkeys(hits[start]))
            flags.append(Flag(kind="prompt_injection", detail=f"{reasons}: {quote!r}", source=source))
    return flags
