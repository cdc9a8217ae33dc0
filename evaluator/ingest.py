"""Ingest: turn a messy Markdown transcript (plus code files) into a typed `Transcript`.

Real transcripts come from note-takers, recorders and chat exports, so speaker labels take many
forms (`**Interviewer:**`, `Q:`/`A:`, `[00:03:12] Candidate:`, `Priya (interviewer):`,
`José Núñez (candidate):`, `Interviewer (10:02 AM):`, `- Interviewer:`, `面试官：`, Otter/Zoom's
`Speaker 1  00:00:03` on a line of its own, whole chat exports quoted with `> `). A label is
only trusted when it looks like a role, a name from the front matter, or a name that recurs as a
label, so that prose such as `Note: ...` or `Complexity: O(1)` inside a turn stays prose.
If labels are found but none is the candidate's, the round is judged as one block instead (scoring
"interviewer-only" turns would give a strong candidate the lowest marks).
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from evaluator.errors import BadInput
from evaluator.files import read_capped, utf16_as_utf8
from evaluator.formats import convert
from evaluator.models import CodeBlock, CodeFile, Transcript, Turn

_PRINTABLE_CONTROLS = bytes(b for b in range(256) if not (b < 32 and b not in (9, 10, 12, 13)))
_YAML_BASE = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml is ~20x faster when present


class _YAML_LOADER(_YAML_BASE):  # type: ignore[misc,valid-type]
    """Safe YAML that leaves dates as text: `date: 2026-02-30` is then a warning (session_date),
    not a ValueError from YAML's own date constructor."""


_YAML_LOADER.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _YAML_BASE.yaml_implicit_resolvers.items()
}
MAX_FILE_BYTES = 5_000_000
MAX_FRONT_MATTER_CHARS = 65_536
MAX_FRONT_MATTER_NODES = 10_000
MAX_FRONT_MATTER_DEPTH = 32
MAX_CODE_FILE_BYTES = 500_000
MAX_INVALID_UTF8_RATIO = 0.02

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
_CODE_SUFFIX = re.compile(r"\.(?:py|ipynb|js|ts|go|rs|java|rb|sql|sh|txt|json|yaml|yml|toml)\b")
_NAME_CHAR = re.compile(r"[\w\-./]")
_LANG_BY_SUFFIX = {".py": "python", ".js": "javascript", ".ts": "typescript", ".go": "go", ".rs": "rust",
                   ".java": "java", ".rb": "ruby", ".sql": "sql", ".sh": "bash", ".json": "json",
                   ".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".txt": None, ".ipynb": "json"}


def decode_text(data: bytes, what: str) -> tuple[str, list[str]]:
    """Decode bytes as UTF-8 text. Binary is rejected; a few invalid bytes are replaced with a warning
    (transcripts pasted through several tools often carry one stray byte, and losing the whole round
    for it would be worse); more than 2% invalid is not UTF-8 text and is rejected."""
    warnings: list[str] = []
    data = utf16_as_utf8(data, what)
    if not data.strip():
        raise BadInput(f"{what}: file is empty")
    sample = data[:65536]
    if b"\x00" in sample:
        raise BadInput(f"{what}: looks like a binary file (contains NUL bytes), expected UTF-8 text")
    controls = len(sample.translate(None, _PRINTABLE_CONTROLS))
    if controls > max(8, len(sample) // 100):
        raise BadInput(f"{what}: looks like a binary file ({controls} control bytes), expected UTF-8 text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        text = data.decode("utf-8-sig", errors="replace")
        bad = text.count("\ufffd")
        if bad > max(4, len(text) * MAX_INVALID_UTF8_RATIO):
            raise BadInput(
                f"{what}: not valid UTF-8 ({bad} undecodable bytes, first at byte {e.start}); "
                "re-save the file as UTF-8"
            ) from None
        warnings.append(
            f"{what}: {bad} invalid UTF-8 byte(s) replaced with U+FFFD (first at byte {e.start})"
        )
    if not text.strip():
        raise BadInput(f"{what}: file is empty")
    return text.replace("\r\n", "\n").replace("\r", "\n"), warnings


def read_text_file(path: Path, limit: int, what: str) -> tuple[str, list[str]]:
    """Decoded text of a regular file of at most `limit` bytes (FIFOs and devices are refused)."""
    return decode_text(read_capped(path, limit, what), f"{what} {path}")


def split_front_matter(text: str) -> tuple[dict, str, int, list[str]]:
    """Return (metadata, body, body_start_line, warnings). Broken YAML is dropped with a warning."""
    if not text.startswith("---\n"):
        return {}, text, 1, []
    end = re.search(r"^(---|\.\.\.)\s*$", text[4:], flags=re.MULTILINE)
    if not end:
        return {}, text, 1, ["front matter opened with '---' but never closed; read as text"]
    raw = text[4 : 4 + end.start()]
    body = text[4 + end.end() :].lstrip("\n")
    start_line = text[: len(text) - len(body)].count("\n") + 1
    _check_front_matter_size(raw)
    # A broken block is still front matter, not speech: drop it from the body (so `candidate: X` is
    # never read as a turn) and say so.
    try:
        meta = yaml.load(raw, Loader=_YAML_LOADER) or {}
    except (yaml.YAMLError, ValueError, TypeError) as e:  # constructors raise plain errors too
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark is not None else ""
        return {}, body, start_line, [f"front matter is not valid YAML{where}; its metadata was ignored"]
    if not isinstance(meta, dict):
        return {}, body, start_line, ["front matter is not a YAML mapping; its metadata was ignored"]
    warnings: list[str] = []
    clean: dict[str, Any] = {}
    for k, v in meta.items():
        key, value = str(k), _plain(v)
        expected = _SCALAR_KEYS.get(key)
        if expected and not _is_scalar(value) and not (
                expected == "names" and isinstance(value, list) and all(map(_is_scalar, value))):
            kind = "a list" if isinstance(value, list) else "a mapping" if isinstance(value, dict) else "empty"
            wanted = "a name or a list of names" if expected == "names" else "text"
            warnings.append(f"front matter `{key}` should be {wanted}, got {kind}: ignored")
            continue
        clean[key] = value
    return clean, body, start_line, warnings


# Front-matter keys the tool reads, and what each must be: anything else is a warning, not a crash.
_SCALAR_KEYS = {"candidate": "text", "exercise": "text", "title": "text", "round": "text", "date": "text",
                "interviewer": "names"}


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool) or value is True or value is False


def _plain(value: Any) -> Any:
    """JSON-safe metadata: YAML's !!binary, !!set and non-finite floats have no JSON form."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [_plain(v) for v in items]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value.isoformat() if hasattr(value, "isoformat") else value


def _plainly_small(raw: str) -> bool:
    """Front matter that cannot break either limit, seen without parsing it (the check's YAML pass
    cost as much as the load itself): with no `&` there is no anchor, so no alias expands; every
    collection opens with one of `[{-?:` of its own, so they bound the depth; and a short text holds
    few values (fewer than three nodes per character: `?` alone is a mapping, a null key and its value)."""
    return ("&" not in raw and 3 * len(raw) + 3 <= MAX_FRONT_MATTER_NODES
            and sum(map(raw.count, "[{-?:")) < MAX_FRONT_MATTER_DEPTH)


def _check_front_matter_size(raw: str) -> None:
    """Refuse front matter too big to be metadata, and YAML alias bombs ("billion laughs"): a few
    hundred bytes of nested aliases expand to billions of nodes. The expanded size is counted on the
    parser's events, before anything is built, so the check costs one pass over at most 64 KB; front
    matter that plainly cannot break the limits (most: a few plain fields) skips it."""
    if len(raw) > MAX_FRONT_MATTER_CHARS:
        raise BadInput(f"front matter is {len(raw):,} characters, over the {MAX_FRONT_MATTER_CHARS:,}-character "
                       "limit: it should hold a few metadata fields")
    if not _plainly_small(raw):
        _count_front_matter(raw)


def _count_front_matter(raw: str) -> None:
    """The expanded size and depth, counted on the parser's events (BadInput past a limit)."""
    sizes: dict[str, int] = {}
    stack: list[list[Any]] = [[0, None]]  # [expanded nodes so far, anchor] per open collection
    total = 0
    try:
        for event in yaml.parse(raw, Loader=_YAML_LOADER):
            if isinstance(event, yaml.AliasEvent):
                grow = sizes.get(event.anchor or "", 1)
            elif isinstance(event, yaml.ScalarEvent):
                grow = 1
                if event.anchor:
                    sizes[event.anchor] = 1
            elif isinstance(event, yaml.CollectionStartEvent):
                stack.append([0, event.anchor])
                grow = 1
                if len(stack) > MAX_FRONT_MATTER_DEPTH:
                    raise BadInput(f"front matter is nested over {MAX_FRONT_MATTER_DEPTH} levels deep: refused")
            elif isinstance(event, yaml.CollectionEndEvent) and len(stack) > 1:
                n, anchor = stack.pop()
                if anchor:
                    sizes[anchor] = n
                stack[-1][0] += n
                continue
            else:
                continue
            stack[-1][0] += grow
            total += grow
            if total > MAX_FRONT_MATTER_NODES:
                raise BadInput(
                    f"front matter expands to over {MAX_FRONT_MATTER_NODES:,} values (YAML aliases, *name, "
                    "repeat what they name): refused as an alias bomb")
    except yaml.YAMLError:
        return  # the real load reports it as a warning


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
    return _parse_turns(unquote_body(body), meta, first_line)


def _parse_turns(body: str, meta: dict, first_line: int) -> tuple[list[Turn], bool, list[str]]:
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


def _language(path: Path) -> str | None:
    return _LANG_BY_SUFFIX.get(path.suffix.lower())


def load_code_file(path: Path) -> tuple[CodeFile, list[str]]:
    """A candidate's code file, read with the same size cap and decoding rules as transcripts."""
    text, warnings = read_text_file(path, MAX_CODE_FILE_BYTES, "code file")
    return CodeFile(name=path.name, path=str(path), content=text, language=_language(path)), warnings


def _file_names(text: str) -> list[tuple[str, int]]:
    """Every file-like name in the text (`name.py`, `dir/name.json`...) with where it starts."""
    names = []
    for m in _CODE_SUFFIX.finditer(text):  # find the suffix, then walk back over the name: fast on long text
        start = m.start()
        while start > 0 and _NAME_CHAR.match(text[start - 1]):
            start -= 1
        raw = text[start : m.end()]
        name = raw.strip("./-")
        if name and not name.startswith("."):
            names.append((name, start + raw.index(name)))
    return names


def named_code_files(text: str, directory: Path) -> list[Path]:
    """Every file the transcript names (e.g. 'see lru_cache.py'), beside it, whether it exists or not."""
    return [directory / name for name in dict.fromkeys(n for n, _ in _file_names(text))]


def referenced_code_files(text: str, directory: Path, exclude: Path) -> list[Path]:
    """Files named in the transcript that exist next to it (e.g. 'see lru_cache.py')."""
    found: list[Path] = []
    for p in named_code_files(text, directory):
        try:
            if p.is_file() and p.resolve() != exclude.resolve() and directory.resolve() in p.resolve().parents:
                found.append(p)
        except OSError:
            continue
    return found


# Words that, right before a file name, say the candidate's code is in that file ("the full file is
# x.py", "it's all in x.py", "see x.py", "I'll write `x.py`", "code: x.py"), as opposed to a name
# merely mentioned ("functools.lru_cache", "like Django's settings.py does").
_CODE_CUE = re.compile(
    r"(?:\b(?:file|code|solution|implementation|script|attached|see|in|is|saved\s+(?:as|to|in)|write|wrote)"
    r"\s*:?\s*|\]\(\s*)[`'\"*]*$", re.IGNORECASE)

# `File "parse.py", line 4, in f`: a quoted traceback names a file, not where the code is
_TRACEBACK_LINE = re.compile(r"""["']?,\s*line\s+\d""")


def missing_code_references(text: str, metadata: dict, directory: Path, attached: set[str]) -> list[str]:
    """Warnings for the code files the transcript says its code is in (front matter `code:`, a
    Markdown link, or a name right after a cue such as "the file is", "it's in", "see") that are not
    beside it and were not given otherwise (`attached`: names of the code files attached). Without
    them the judge scores the talk without the code, so the user must hear it; a name merely
    mentioned in passing gets no warning (ingest tries every file-like name, most are not files)."""
    front = metadata.get("code")
    named = [v.strip() for v in (front if isinstance(front, list) else [front]) if isinstance(v, str) and v.strip()]
    for name, start in _file_names(text):
        end = start + len(name)
        if _CODE_CUE.search(text, max(0, start - 40), start) is not None and not _TRACEBACK_LINE.match(text, end):
            named.append(name)
    warnings = []
    for name in dict.fromkeys(named):
        if "/" in name or "\\" in name or Path(name).name in attached:
            continue  # only a plain name is looked for beside the transcript
        try:
            if (directory / name).is_file():
                continue
        except OSError:
            pass
        warnings.append(f"the transcript says its code is in {name}, but no {name} is beside it in "
                        f"{directory}: judged without that code (put the file next to the transcript or "
                        f"pass it with --code)")
    return warnings


def content_hash(text: str, code_files: list[CodeFile]) -> str:
    """sha256 over the transcript text and every code file (by name): what the judge sees."""
    h = hashlib.sha256(b"transcript\0" + text.encode())
    for cf in sorted(code_files, key=lambda c: c.name):
        h.update(b"\0code\0" + cf.name.encode() + b"\0" + cf.content.encode())
    return h.hexdigest()


@dataclass
class Source:
    """A transcript file read and hashed but not yet split into turns: enough for a cache lookup,
    which is why batch runs can skip the (costlier) turn parsing of already-judged transcripts."""

    path: Path
    text: str
    metadata: dict
    body: str
    body_line: int
    code_files: list[CodeFile]
    warnings: list[str]
    content_hash: str

    @property
    def exercise(self) -> str | None:
        value = self.metadata.get("exercise")
        return None if value is None else str(value)


def session_date(value: object) -> str | None:
    """A session date as YYYY-MM-DD, from a YAML date, a datetime or an ISO string (2026-03-01,
    20260301, 2026-03-01T10:00); None when it is not a real date (2026-02-30, "last week")."""
    import datetime as dt

    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value).strip()
    for parse in (dt.date.fromisoformat, lambda t: dt.datetime.fromisoformat(t).date()):
        try:
            return parse(text).isoformat()
        except ValueError:
            continue
    return None


def read_source(path: Path | str, code_paths: list[Path] | tuple[Path, ...] = ()) -> Source:
    """Read a transcript and its code files (given, or named in the text and found beside it)."""
    path = Path(path)
    text, warnings = read_text_file(path, MAX_FILE_BYTES, "transcript")
    text = convert(text, path.suffix)  # WebVTT captions -> `Speaker: text` turns (evaluator/formats.py)
    meta, body, body_line, fm_warnings = split_front_matter(text)
    if not _has_content(body):
        raise BadInput(f"transcript {path}: no interview text"
                       f"{' after the front matter' if body != text else ''} (only headings, comments or "
                       "blank lines): nothing to judge")
    warnings += fm_warnings
    if meta.get("date") is not None:  # trends are drawn by date: a wrong one is dropped, and said so
        date = session_date(meta["date"])
        if date is None:
            warnings.append(f"front matter date {str(meta['date'])!r} is not a date (YYYY-MM-DD): ignored")
            meta = {k: v for k, v in meta.items() if k != "date"}
        else:
            meta = {**meta, "date": date}
    code_files: list[CodeFile] = []
    seen: set[Path] = set()
    referenced = referenced_code_files(text, path.parent, path)
    for p in [Path(c) for c in code_paths] + referenced:
        key = p.resolve()
        if key in seen:
            continue
        seen.add(key)
        try:
            cf, w = load_code_file(p)
        except BadInput:
            if p in referenced:
                continue  # a name that merely looks like a file: not the user's explicit request
            raise
        code_files.append(cf)
        warnings += w
    warnings += missing_code_references(text, meta, path.parent, {cf.name for cf in code_files})
    return Source(path, text, meta, body, body_line, code_files, warnings, content_hash(text, code_files))


_NOT_CONTENT = re.compile(r"<!--.*?(?:-->|\Z)|^[ \t]*(?:#{1,6}[ \t][^\n]*|#{1,6}|[-*_=~`>|: \t]+)$",
                          re.DOTALL | re.MULTILINE)


CONTENT_PREFIX = 1024  # characters of the opening lines that decide `_has_content` for almost every file


def _words_left(text: str) -> bool:
    return any(c.isalnum() for c in _NOT_CONTENT.sub("", text))


def _has_content(body: str, prefix: int = CONTENT_PREFIX) -> bool:
    """Whether any word is left once headings, HTML comments, rules and fences are set aside.

    The opening lines decide it for almost every file, so they are tested first, and the whole body
    (~0.3 ms per 6 KB, paid before every cache lookup) only when they hold no word. The prefix ends
    where a line ends: a heading or rule line in it is the whole line, and a comment it cuts is read
    as running to its end, so a word left in the prefix is a word left in the whole body."""
    cut = body.find("\n", prefix)
    return (cut != -1 and _words_left(body[:cut])) or _words_left(body)


def parse_source(source: Source) -> Transcript:
    """Split a read transcript into turns. A transcript whose turns are all empty (speaker labels
    with nothing said) is bad input: a judge given nothing would still be asked, and pay, to score it."""
    body = unquote_body(source.body)
    turns, recognised, turn_warnings = _parse_turns(body, source.metadata, source.body_line)
    if not any(_has_content(t.text) for t in turns):
        raise BadInput(f"transcript {source.path}: the speaker labels have no text after them: nothing to judge")
    title_match = re.search(r"^#\s+(.+)$", body, flags=re.MULTILINE)
    title = source.metadata.get("title") or (title_match.group(1).strip() if title_match else None)
    return Transcript(
        source=str(source.path),
        title=str(title) if title else None,
        metadata=source.metadata,
        turns=turns,
        code_files=source.code_files,
        content_hash=source.content_hash,
        warnings=source.warnings + turn_warnings,
        raw_text=source.text,
        speakers_recognised=recognised,
    )


def load_transcript(path: Path | str, code_paths: list[Path] | tuple[Path, ...] = ()) -> Transcript:
    """Read and parse one transcript with its code files. Raises BadInput with a clear message."""
    return parse_source(read_source(path, code_paths))


def candidate_speaker(turns: list[Turn]) -> str | None:
    """The candidate's name as the speaker labels give it ("Dana (candidate):" -> Dana), when the
    turns the roles assign to the candidate carry exactly one name that is not a role word
    ("Candidate", "A", "Interviewee"). Reports use it for a transcript without `candidate:`."""
    names = {t.speaker.strip() for t in turns if t.role == "candidate"}
    named = {n for n in names if n and _role_of(n, None, {}) != "candidate"}
    return next(iter(named)) if len(named) == 1 else None
