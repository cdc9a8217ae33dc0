"""Speaker labels: which lines start a turn, and whose turn it is.

Real transcripts come from note-takers, recorders and chat exports, so speaker labels take many
forms (`**Interviewer:**`, `Q:`/`A:`, `[00:03:12] Candidate:`, `Priya (interviewer):`,
`José Núñez (candidate):`, `Interviewer (10:02 AM):`, `- Interviewer:`, `面试官：`, Otter/Zoom's
`Speaker 1  00:00:03` on a line of its own, whole chat exports quoted with `> `). A label is
only trusted when it looks like a role, a name from the front matter, or a name that recurs as a
label, so that prose such as `Note: ...` or `Complexity: O(1)` inside a turn stays prose.
If labels are found but none is the candidate's, the round is judged as one block instead (scoring
"interviewer-only" turns would give a strong candidate the lowest marks).

Why a module of its own: this is the one heuristic part of reading a transcript, and what it
decides (who said what) is what every judge grades; `ingest.py` reads the file around it.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from typing import NamedTuple

from evaluator.models import CodeBlock, Turn

INTERVIEWER_WORDS = {"interviewer", "q", "question", "host", "panelist", "panellist", "examiner", "int", "i",
                     "面试官", "面試官", "考官", "面接官", "면접관", "问", "問"}
CANDIDATE_WORDS = {"candidate", "a", "answer", "interviewee", "cand", "c", "applicant",
                   "候选人", "候選人", "应聘者", "應徵者", "求职者", "求職者", "面试者", "面試者", "候補者", "지원자",
                   "答"}
# A label containing one of these is that role ("Senior Interviewer", "candidate (remote)", ...).
_INTERVIEWER_PARTS = ("interviewer", "面试官", "面試官")
_CANDIDATE_PARTS = ("candidate", "interviewee", "候选人", "候選人")
# Q/A-style labels are only speakers when both sides appear (a lone "A: ..." is likely a list item).
_QUESTION_LABELS, _ANSWER_LABELS = {"q", "问", "問"}, {"a", "答"}
# Words that often start a line with a colon but never name a speaker.
NOT_SPEAKERS = {
    "note", "notes", "step", "example", "output", "input", "return", "returns", "complexity", "time",
    "space", "todo", "edge case", "edge cases", "test", "tests", "error", "traceback", "http", "https",
    "summary", "result", "results", "answer key", "hint", "update", "invariant", "problem", "task",
    "exercise", "goal", "context", "feedback", "pros", "cons", "why", "what", "how", "file", "files",
    "warning", "reason", "plan", "approach", "assumptions", "constraints", "follow up", "follow-up",
}

# A clock time: 0:03, 00:12:40, 10:02 AM, 3:15 p.m.
_CLOCK = r"\d{1,2}(?::\d{2}){1,2}(?:\s?[AaPp]\.?[Mm]\b\.?)?"
_TIMESTAMP = rf"(?:\[(?P<ts1>{_CLOCK})\]|\((?P<ts2>{_CLOCK})\)|(?P<ts3>{_CLOCK}))"
# A name: a letter in any script, then letters, digits, spaces and . ' ’ - and combining marks, which
# `\w` leaves out (a decomposed "Zoë", Devanagari vowel signs). `\w` also lets '_' in, which is
# emphasis, not a name: _match_label rejects such names (one character class matches faster than
# an alternation, and the lazy match makes the two equivalent).
_MARKS = "\u0300-\u036f\u0483-\u0489\u0591-\u05c7\u0610-\u061a\u064b-\u065f\u0900-\u0dff\u0e31-\u0e4e" \
         "\u0eb1-\u0ecd\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\u3099\u309a\ufe20-\ufe2f"
_NAME_BODY = rf"[^\W\d_][\w .'’\-{_MARKS}]{{0,40}}?"
_NAME = rf"(?P<name>{_NAME_BODY})"
_ROLE = rf"(?:\s*[(（](?P<role>[^\W\d_](?:[^\W_]|[ {_MARKS}]){{0,29}})[)）])?"
_EMPH = r"\*\*|__|\*|_"
_LABEL = re.compile(
    r"^\s*(?:>\s*)?(?P<bullet>[-*+•]\s+)?(?:" + _TIMESTAMP + r"\s*[-–—]?\s*)?"
    rf"(?P<open>{_EMPH})?"
    + _NAME +
    # Everything after the name starts with optional spaces then one of these: checking that first
    # spares the lazy name match from trying the whole tail after every word of a prose line.
    r"(?=\s*[(（\[*_:：])"
    + _ROLE +
    # a clock time after the name (Google Meet "Interviewer (10:02 AM):", "Interviewer [00:01:02]:")
    rf"(?:\s*(?:\[(?P<ts4>{_CLOCK})\]|\((?P<ts5>{_CLOCK})\)))?"
    rf"\s*(?P<close1>{_EMPH})?\s*[:：]\s*(?P<close2>{_EMPH})?"
    # then a space or the end; or straight text ("Interviewer:hi", "面试官：你好"), but not a URL
    # ("https://"), a Windows path ("C:\"), a "::" or a clock time ("10:30").
    r"(?:\s+|$|(?<=：)|(?<=:)(?![/\\:\d\s])|(?<=[:：]\*\*)|(?<=[:：]__))(?P<rest>.*)$"
)
# Otter.ai / Zoom / Teams: the label is a line of its own (`Speaker 1  0:03`, `[Dana Smith] 10:02:33`,
# `[10:02 AM] Dana Smith`), the words follow on the next lines.
_BARE_LABEL = re.compile(
    r"^\s*(?:>\s*)?(?:"
    rf"(?P<open>\*\*|__|\[)?{_NAME}{_ROLE}(?P<close1>\*\*|__|\])?(?:\s+|\s*[-–—|·]\s*)"
    rf"(?:\[(?P<ts1>{_CLOCK})\]|\((?P<ts2>{_CLOCK})\)|(?P<ts3>{_CLOCK}))"
    rf"|(?:\[(?P<ts4>{_CLOCK})\]|\((?P<ts5>{_CLOCK})\))\s*[-–—]?\s*"
    rf"(?P<open2>\*\*|__)?(?P<name2>{_NAME_BODY}){_ROLE.replace('role', 'role2')}(?P<close2>\*\*|__)?"
    r")\s*$"
)
_TS_GROUPS = ("ts1", "ts2", "ts3", "ts4", "ts5")
# WhatsApp chat exports: each message starts with its date and time, in brackets (iOS:
# `[12/03/2026, 14:02:11] Alice: text`) or before a dash (Android: `12/03/2026, 14:02 - Alice: text`),
# day or month first, 12- or 24-hour, with or without seconds; its further lines follow unstamped. A
# stamped line with no `Name: ` is the app's own notice (`Messages and calls are end-to-end encrypted`,
# `Alice added Bob`), as is one iOS attributes to the chat with its text marked by U+200E: neither is
# anyone's turn. The sender is anything up to the colon (a saved name, or a phone number).
_CHAT_DATE = r"\d{1,4}[./-]\d{1,2}[./-]\d{2,4}"
_CHAT_STAMP = re.compile(
    rf"[ \t\u200e]*(?:\[(?P<bracketed>{_CHAT_DATE},?\s+{_CLOCK})\]\s*|(?P<dashed>{_CHAT_DATE},?\s+{_CLOCK})\s+[-–]\s+)")
_CHAT_SENDER = re.compile(r"(?P<name>[^\s:\u200e][^:\u200e]{0,59}?):(?:[ \t]+|$)(?P<rest>.*)$")
# An attachment the export left out: Android's `<Media omitted>`, iOS's `image omitted`, `<attached: x>`.
_CHAT_MEDIA = re.compile(r"\u200e?\s*(?:<media omitted>|<attached: [^>]*>|(?:image|video|audio|sticker|gif|document"
                         r"|contact card) omitted)\s*$", re.IGNORECASE)
_QUOTE_PREFIX = re.compile(r"^[ \t]{0,3}> ?")
# counted over "\n" + body: a literal first character lets `re` skip ahead to each line start
_QUOTED_LINE = re.compile(r"\n[ \t]*>")
_BLANK_LINE = re.compile(r"\n[ \t]*(?=\n)")


class _Label(NamedTuple):
    """A line that looks like a speaker label (not yet trusted)."""

    line: int  # 0-based index in the body
    name: str
    role_hint: str | None
    styled: bool  # bold/italic or timestamped: labels written as labels
    weak: bool  # a list item ("- Name: ...") or a bare "Name 10:30" line: could be prose
    timestamp: str | None
    rest: str  # text after the label on the same line
    chat: bool = False  # a chat export's stamped message line


_FENCE = re.compile(r"^\s*(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+#.\-]*)")


def _fold(text: str) -> str:
    """Compare names loosely: Unicode-normalised, accents and case folded, ’ read as '."""
    decomposed = unicodedata.normalize("NFKD", text.replace("’", "'"))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()


def _role_of(name: str, role_hint: str | None, meta: dict) -> str | None:
    for word in filter(None, [role_hint, name]):
        w = word.strip().lower()
        if w in INTERVIEWER_WORDS or any(p in w for p in _INTERVIEWER_PARTS):
            return "interviewer"
        if w in CANDIDATE_WORDS or any(p in w for p in _CANDIDATE_PARTS):
            return "candidate"
    lowered = _fold(name)
    for key, role in (("interviewer", "interviewer"), ("candidate", "candidate")):
        value = meta.get(key)
        names = value if isinstance(value, list) else [value]
        for n in names:
            if isinstance(n, str) and n.strip():
                folded = _fold(n)
                if folded and (lowered == folded or lowered == folded.split()[0]):
                    return role
    return None


def _match_label(i: int, line: str) -> _Label | None:
    """The label on `line` (which contains a colon), if it looks like one."""
    m = _LABEL.match(line)
    if m and "_" not in m.group("name"):
        name = m.group("name").strip()
        ts = m.group("ts1") or m.group("ts2") or m.group("ts3") or m.group("ts4") or m.group("ts5")
        return _Label(i, name, m.group("role"), bool(m.group("open") or ts), bool(m.group("bullet")),
                      ts, m.group("rest"))
    # An Otter/Zoom label line. Cheap pre-check before the second regex: a clock time (or role,
    # emphasis) ends the line, or a bracketed clock time starts it. A bare label is not "styled"
    # (an unknown name must be capitalised to count) and is weak (it could be prose).
    last = line[-1:]
    if last.isspace():
        last = line.rstrip()[-1:]
    if last.isdigit() or (last and last in ")]）Mm.*_") or line.lstrip(" \t>")[:1] in "[(":
        m = _BARE_LABEL.match(line)
        if m and "_" not in (m.group("name") or m.group("name2")):
            ts = next(m.group(g) for g in _TS_GROUPS if m.group(g))
            if m.group("name2"):
                return _Label(i, m.group("name2").strip(), m.group("role2"), False, True, ts, "")
            return _Label(i, m.group("name").strip(), m.group("role"), False, True, ts, "")
    return None


def _chat_message(i: int, line: str) -> tuple[bool, _Label | None]:
    """(whether the line carries a chat export's stamp, the message's label): stamped with no label
    is the app's own notice."""
    first = line.lstrip(" \t\u200e")[:1]
    if not first or first not in "0123456789[":  # cheap: most lines start otherwise
        return False, None
    stamp = _CHAT_STAMP.match(line)
    if stamp is None:
        return False, None
    sender = _CHAT_SENDER.match(line, stamp.end())
    if sender is None:
        return True, None
    rest = sender.group("rest")
    if rest.startswith("\u200e") and not _CHAT_MEDIA.match(rest):
        return True, None
    return True, _Label(i, sender.group("name").strip(), None, True, False,
                        stamp.group("bracketed") or stamp.group("dashed"), rest.lstrip("\u200e"), chat=True)


def _label_candidates(lines: list[str]) -> tuple[list[_Label], set[int]]:
    """Lines outside code fences that look like `Speaker: text` (or an Otter-style `Speaker 1  0:03`),
    and the lines that are a chat app's own notices."""
    found, fence = [], None
    notices: set[int] = set()
    for i, line in enumerate(lines):
        m = ("`" in line or "~" in line) and _FENCE.match(line)
        if m:
            if fence is None:
                fence = m.group("fence")
            elif m.group("fence")[0] == fence[0] and len(m.group("fence")) >= len(fence):
                fence = None
            continue
        if fence is None and (":" in line or "：" in line):
            stamped, label = _chat_message(i, line)
            if stamped and label is None:
                notices.add(i)
                continue
            label = label or _match_label(i, line)
            if label and label.name.lower() not in NOT_SPEAKERS:
                found.append(label)
    return found, notices


def _accepted_labels(cands: list[_Label], meta: dict) -> dict[str, str | None]:
    """Decide which label names are speakers. Known roles always; other names when they recur."""
    counts = Counter(c.name for c in cands)
    roles: dict[tuple[str, str | None], str | None] = {}
    accepted: dict[str, str | None] = {}
    for c in cands:
        key = (c.name, c.role_hint)
        if key not in roles:
            roles[key] = _role_of(c.name, c.role_hint, meta)
        role = roles[key]
        words = len(c.name.split())
        # "not lowercase" rather than "uppercase": names in caseless scripts (面试官, 김민준) count too
        if role or (counts[c.name] >= 2 and words <= 3 and (c.styled or not c.name[0].islower())):
            accepted.setdefault(c.name, role)
    names_lower = {n.lower() for n in accepted}
    if bool(names_lower & _QUESTION_LABELS) != bool(names_lower & _ANSWER_LABELS):
        accepted = {n: r for n, r in accepted.items() if n.lower() not in _QUESTION_LABELS | _ANSWER_LABELS}
    # A recurring "- Word: ..." list item or "Meeting at 10:30" line is prose, not a speaker, when the
    # speakers are labelled `Name: text`; such labels are trusted by recurrence only in transcripts
    # written that way (chat exports as lists, Otter/Zoom exports).
    plain = {c.name for c in cands if not c.weak}
    if any(n in plain for n in accepted):
        accepted = {n: r for n, r in accepted.items() if r is not None or n in plain}
    # Names without a role: the other role from a known speaker, else first speaker is the interviewer.
    unknown = [n for n, r in accepted.items() if r is None]
    known_roles = {r for r in accepted.values() if r}
    for n in unknown:
        if known_roles == {"interviewer"}:
            accepted[n] = "candidate"
        elif known_roles == {"candidate"}:
            accepted[n] = "interviewer"
    return accepted


def _code_blocks(text: str) -> list[CodeBlock]:
    blocks: list[CodeBlock] = []
    buf: list[str] = []
    fence, lang = None, None
    for line in text.split("\n"):
        m = _FENCE.match(line)
        if fence is None and m:
            fence, lang, buf = m.group("fence"), (m.group("lang") or None), []
        elif (fence is not None and m and m.group("fence")[0] == fence[0]
              and len(m.group("fence")) >= len(fence) and not m.group("lang")):
            blocks.append(CodeBlock(language=lang, code="\n".join(buf)))
            fence = None
        elif fence is not None:
            buf.append(line)
    if fence is not None and buf:
        blocks.append(CodeBlock(language=lang, code="\n".join(buf)))
    return blocks


def unquote_body(body: str) -> str:
    """A chat export quoted line by line (`> **candidate**: ...`, `> ```python`): when most non-empty
    lines start with `>`, strip one level of quoting from every line. The line count is unchanged,
    so turn line numbers still point into the file."""
    if ">" not in body:
        return body
    quoted = len(_QUOTED_LINE.findall("\n" + body))
    if not quoted or quoted * 2 <= body.count("\n") + 1 - len(_BLANK_LINE.findall(f"\n{body}\n")):
        return body
    return "\n".join(_QUOTE_PREFIX.sub("", line, count=1) for line in body.split("\n"))


def _one_block(body: str, first_line: int, warning: str) -> tuple[list[Turn], bool, list[str]]:
    text = body.strip()
    return (
        [Turn(id="t1", index=0, speaker="unknown", role="unknown", text=text,
              code_blocks=_code_blocks(text), line=first_line)],
        False,
        [warning],
    )


def parse_turns(body: str, meta: dict, first_line: int = 1) -> tuple[list[Turn], bool, list[str]]:
    """Split the body into turns. Returns (turns, speakers_recognised, warnings)."""
    return split_turns(unquote_body(body), meta, first_line)


def split_turns(body: str, meta: dict, first_line: int) -> tuple[list[Turn], bool, list[str]]:
    """parse_turns on a body already unquoted (unquoting twice would strip nested quotes too)."""
    lines = body.split("\n")
    cands, notices = _label_candidates(lines)
    accepted = _accepted_labels(cands, meta)
    starts = [c for c in cands if c.name in accepted]
    warnings: list[str] = []
    if sum(c.chat for c in starts) >= 2:  # a chat export: its app's notices are nobody's words
        lines = ["" if i in notices else line for i, line in enumerate(lines)]
        body = "\n".join(lines)
        media = sum(bool(_CHAT_MEDIA.match(c.rest)) for c in starts if c.chat)
        if media:
            warnings.append(f"{media} attachment(s) (photos, files, voice notes) were left out of the chat export "
                            "(<Media omitted>): the judge reads only the text")
    if not starts:
        return _one_block(body, first_line, "no speaker labels recognised: the transcript is judged as one block")
    unresolved = sorted(n for n, r in accepted.items() if r is None)
    if unresolved:
        first = starts[0].name
        for n in unresolved:
            accepted[n] = "interviewer" if n == first else "candidate"
        warnings.append(
            f"speaker roles guessed for {', '.join(unresolved)} (first speaker taken as interviewer); "
            "add 'interviewer:'/'candidate:' front matter or '(role)' labels to be sure"
        )
    if "candidate" not in {accepted[c.name] for c in starts}:
        # Scoring interviewer-only turns would grade the candidate on nothing: judge the whole text.
        seen = list(dict.fromkeys(c.name for c in starts))
        others = [c.name for c in cands if c.name not in accepted and len(c.name.split()) <= 3
                  and not c.name[0].islower()]
        seen += list(dict.fromkeys(others))[: max(0, 6 - len(seen))]
        return _one_block(
            body, first_line,
            f"speaker labels found ({', '.join(seen)}) but none recognised as the candidate: judged as one "
            "block; add 'candidate: NAME' front matter or a '(candidate)' label",
        )
    turns: list[Turn] = []
    preamble = "\n".join(lines[: starts[0].line]).strip()
    if preamble and re.sub(r"^#+ .*$", "", preamble, flags=re.MULTILINE).strip():
        turns.append(Turn(id="t0", index=0, speaker="(preamble)", role="unknown", text=preamble,
                          code_blocks=_code_blocks(preamble), line=first_line))
    offset = len(turns)  # a preamble turn is t0; speaker turns are t1, t2, ...
    for i, c in enumerate(starts):
        end = starts[i + 1].line if i + 1 < len(starts) else len(lines)
        text = "\n".join([c.rest] + lines[c.line + 1 : end]).strip()
        speaker = {"q": "Interviewer", "a": "Candidate"}.get(c.name.lower(), c.name)
        turns.append(Turn(
            id=f"t{len(turns) - offset + 1}",
            index=len(turns),
            speaker=speaker,
            role=accepted[c.name],  # type: ignore[arg-type]
            text=text,
            timestamp=c.timestamp,
            code_blocks=_code_blocks(text),
            line=first_line + c.line,
        ))
    return turns, True, warnings



def candidate_speaker(turns: list[Turn]) -> str | None:
    """The candidate's name as the speaker labels give it ("Dana (candidate):" -> Dana), when the
    turns the roles assign to the candidate carry exactly one name that is not a role word
    ("Candidate", "A", "Interviewee"). Reports use it for a transcript without `candidate:`."""
    names = {t.speaker.strip() for t in turns if t.role == "candidate"}
    named = {n for n in names if n and _role_of(n, None, {}) != "candidate"}
    return next(iter(named)) if len(named) == 1 else None
