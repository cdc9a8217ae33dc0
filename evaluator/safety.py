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

INJECTION_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("ignore instructions", re.compile(
        r"\b(ignore|disregard|forget|override)\b[^.\n]{0,40}\b(rubric|instructions?|prompt|criteria|rules|above|previous)\b", re.I)),
    ("addresses the grader", re.compile(
        r"\b(note|message|instructions?|hey|dear|attention|psst)\b[^.\n]{0,15}\b(to\s+)?(the\s+)?(ai|llm|automated|model|gpt|claude)?\s*(grader|judge|evaluator|reviewer|scorer|assistant)\b", re.I)),
    ("requests a score", re.compile(
        r"\b(give|award|assign|score|rate|mark)\b[^.\n]{0,40}\b(5\s*/\s*5|10\s*/\s*10|full marks|top score|maximum score|perfect score|highest score|a\s+5\b|5\s+(on|for|in)\s+(every|all|each))", re.I)),
    ("role play as system", re.compile(
        r"(^|\n|#|//)\s*(system|assistant|developer)\s*(prompt|message|override)?\s*:", re.I)),
    ("fake evaluation result", re.compile(
        r"(evaluation|grading|judg(e)?ment|scoring)\s+(is\s+)?(complete|finished|done|over)", re.I)),
    ("you are now", re.compile(r"\byou\s+(are\s+now|must\s+now|will\s+now)\b", re.I)),
]


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
    places: list[tuple[str, str]] = [
        (t.id, t.text) for t in transcript.turns if t.role in ("candidate", "unknown")
    ] + [(cf.name, cf.content) for cf in transcript.code_files]
    flags: list[Flag] = []
    seen: set[tuple[str, str]] = set()
    for source, text in places:
        for line in text.split("\n"):
            reasons = [name for name, pat in INJECTION_PATTERNS if pat.search(line)]
            if fake_result.search(line):
                reasons.append("fake judge output")
            if ("<<<" in line or ">>>" in line) and re.search(r"(<<<|>>>)\s*(end|transcript|code|system)", line, re.I):
                reasons.append("imitates prompt delimiters")
            if _TAG_LIKE.search(line) or _CHATML.search(line):
                reasons.append("imitates prompt delimiters")
            if not reasons:
                continue
            quote = line.strip()[:200]
            if (source, quote) in seen:
                continue
            seen.add((source, quote))
            flags.append(Flag(kind="prompt_injection", detail=f"{', '.join(dict.fromkeys(reasons))}: {quote!r}",
                              source=source))
    return flags
