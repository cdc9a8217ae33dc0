"""Fencing: candidate text is untrusted data, wrapped in delimiters it cannot imitate or close.

The fence carries a tag derived from the content hash, so it is stable for caching yet cannot be
predicted by the text it encloses (the text would have to contain its own hash). Anything in the
text that imitates our delimiters is defanged before fencing, so it cannot close the data section.
"""

from __future__ import annotations

import hashlib
import json
import re

from evaluator.safety.hidden import _INVISIBLE

_TAG_LIKE = re.compile(
    r"</?\s*(transcript|code|candidate_data|data|system|instructions?|rubric|assistant|user|im_start|im_end)\b[^>]*>",
    re.IGNORECASE,
)
_CHATML = re.compile(r"<\|[^|>]{1,30}\|>")

_DELIM_LIKE = re.compile(r"(?:<[ \t]*<[ \t]*<|>[ \t]*>[ \t]*>|\u2039{3}|\u203a{3})\s*(?:end|transcript|code|system)",
                         re.IGNORECASE)


def fence_tag(content_hash: str) -> str:
    """A fence tag derived from the content: a candidate cannot know (and imitate) it in advance."""
    return hashlib.sha256(("fence:" + content_hash).encode()).hexdigest()[:10]


# Characters that read as '<', '>' or '|' (fullwidth and small forms, angle brackets, modifier
# letters, box drawing): mapped to the defanged forms before delimiters are looked for.
_LOOKALIKES = str.maketrans({
    **dict.fromkeys("\uff1c\ufe64\u02c2\u1438\u2329\u3008\u27e8\u276e\u276c\u29fc\u2039", "\u2039"),
    **dict.fromkeys("\uff1e\ufe65\u02c3\u1433\u232a\u3009\u27e9\u276f\u276d\u29fd\u203a", "\u203a"),
    **dict.fromkeys("\uff5c\u01c0\u2223\u2502\u23d0", "\u00a6"),
})
# Three angle brackets, also spaced ("< < <"), as one delimiter-like run.
_TRIPLE = re.compile(r"<[ \t]*<[ \t]*<|>[ \t]*>[ \t]*>|\u2039[ \t]*\u2039[ \t]*\u2039|\u203a[ \t]*\u203a[ \t]*\u203a")
# Any three angle brackets in a row: every `_TRIPLE` and `_DELIM_LIKE` match opens with such a run.
# Looked for first, as a pattern opening with a character class is scanned ~5x faster than theirs.
_BRACKET_RUN = re.compile(r"[<>\u2039\u203a][ \t]*[<>\u2039\u203a][ \t]*[<>\u2039\u203a]")


def neutralise(text: str) -> str:
    """Defang anything that imitates a prompt delimiter or chat-template token, including look-alikes
    (fullwidth '＜＜＜', '<\u200b<<' split by invisible characters, '< < <'). Invisible characters
    (zero-width, bidi controls, tag characters) are removed: they carry nothing a reader can see."""
    if not text.isascii():
        text = _INVISIBLE.sub("", text).translate(_LOOKALIKES)
    if "<" in text or ">" in text or "\u2039" in text or "\u203a" in text:
        if _BRACKET_RUN.search(text):
            text = _TRIPLE.sub(lambda m: "\u2039\u2039\u2039" if m.group(0)[0] in "<\u2039" else "\u203a\u203a\u203a",
                               text)
        text = _TAG_LIKE.sub(lambda m: m.group(0).replace("<", "‹").replace(">", "›"), text)
        text = _CHATML.sub(lambda m: m.group(0).replace("<|", "‹|").replace("|>", "|›"), text)
    return text


_LINE_BREAKS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def inline(text: str, limit: int = 200) -> str:
    """Untrusted text placed outside a fence (a file name, a front-matter value, a quote repeated in a
    repair request): one line, no delimiter look-alike, no invisible character, no angle bracket, at
    most `limit` characters, as a JSON string (quoted, so it reads as a value, not as an instruction)."""
    text = _LINE_BREAKS.sub(" ", neutralise(text)).replace("<", "‹").replace(">", "›")
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return json.dumps(text, ensure_ascii=False)


def _label(label: str) -> str:
    """A fence header's `key=value` with the value quoted by `inline` (file names are untrusted)."""
    key, sep, value = label.partition("=")
    if sep and re.fullmatch(r"[a-z_]{1,20}", key):
        return f"{key}={inline(value)}"
    return inline(label)


def fence(kind: str, label: str, body: str, tag: str) -> str:
    """Wrap untrusted text in an unforgeable delimiter pair; the label (a file name) is quoted, and
    left out when empty."""
    head = f"{kind} {_label(label)}" if label else kind
    return f"<<<{head} tag={tag}>>>\n{neutralise(body)}\n<<<END {kind} tag={tag}>>>"


# A delimiter line of any tag (the tag is compared after matching: one pattern for every transcript,
# not one compiled per tag, which also flushed the `re` module's cache of everyone else's patterns).
_FENCE_LINE = re.compile(r"<<<(?:END )?[A-Z]+ [^\n<>]*tag=([^\n<>]*)>>>")


def seal(prompt: str, tag: str) -> str:
    """`prompt` with every delimiter look-alike outside the real fences of `tag` neutralised: whatever
    reaches the prompt outside a fence (rubric text, ids, notes) cannot open or close a data section."""
    out, pos = [], 0
    for m in _FENCE_LINE.finditer(prompt):
        if m.group(1) != tag:  # a look-alike with another tag is text like any other
            continue
        out.append(neutralise(prompt[pos : m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(neutralise(prompt[pos:]))
    return "".join(out)
