"""Cutting a transcript into quotable pieces for the offline baseline judge.

Prose is split into sentences and code into lines; every piece is a slice of a turn's text, a code
block or a code file, so any quote built from it survives the quote verifier unchanged.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field, replace

from evaluator.models import Transcript

MAX_QUOTE = 200
MIN_QUOTE = 12  # shorter sentences are quoted with the next sentence or their line

_FENCE = re.compile(r"^[ \t]*(```|~~~)[^\n]*\n.*?(^[ \t]*\1[ \t]*$|\Z)", re.DOTALL | re.MULTILINE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[`A-Z0-9])")
_LEAD = re.compile(r"^(\s*([-*+>]|\d+[.)])\s+)+")


@dataclass(frozen=True)
class Piece:
    """A quotable unit: a sentence of prose or one line of code. `pos` orders pieces in time:
    (turn position, character offset); attached code files sort after every turn."""

    source: str
    text: str
    pos: tuple[int, int]
    role: str  # "candidate" | "interviewer"
    kind: str  # "prose" | "code" | "comment" | "output" (a pasted test run or traceback, in a text block)
    context: str = ""  # for code: "impl", "test", "module" (or "output")
    line: str = ""  # prose: the whole line the sentence sits in, to widen a very short quote ("Oh no.")
    at: int = 0  # prose: where the sentence starts within `line`


@dataclass
class View:
    """The transcript as the baseline sees it: candidate and interviewer prose, and code lines."""

    candidate: list[Piece]
    interviewer: list[Piece]
    code: list[Piece]
    first_code_pos: tuple[int, int] | None
    turn_count: int
    block_sizes: list[int] = field(default_factory=list)  # non-blank lines per candidate code block
    shown: list[Piece] = field(default_factory=list)  # lines the interviewer pastes (a test run, a traceback)
    revisions: list[Piece] = field(default_factory=list)  # first lines of blocks that rewrite earlier code
    identifiers: dict[str, tuple[int, int]] = field(default_factory=dict)  # candidate code name -> first use


_DEF = re.compile(r"^[ \t]*(?:async\s+)?(?:def|class)\s+(\w+)", re.MULTILINE)
_OUTPUT_LANGS = frozenset({"text", "txt", "console", "output", "shell", "sh", "bash", "log", "plaintext"})
_NAME = re.compile(r"[A-Za-z_]\w*")
_KEYWORDS = frozenset("""and as assert async await break class continue def del elif else except false finally for
from global if import in is lambda none nonlocal not or pass raise return self true try while with yield print
range list dict set str tuple sorted sum min max any all zip open""".split())  # keywords, and builtins that are words


def _revises(code: str, defined: set[str]) -> bool:
    """Whether a code block rewrites code shown earlier rather than adding new code: it is a fragment
    (its first line is indented: a patch to a function body) or it redefines a function or class the
    candidate already wrote (`def add(...)` again). A new test is never a revision."""
    lines = [ln for ln in code.splitlines() if ln.strip()]
    if not lines or re.match(r"\s*(async\s+)?def\s+test|\s*@", lines[0]):
        return False
    margin = min(len(ln) - len(ln.lstrip()) for ln in lines)
    top = [m.group(1) for m in _DEF.finditer(code) if len(m.group(0)) - len(m.group(0).lstrip()) == margin]
    if any(n in defined and not n.startswith(("test", "__")) for n in top):
        return True
    # a patch to a function body: its first line is indented deeper than the rest, or indented with no def
    first = len(lines[0]) - len(lines[0].lstrip())
    return first > 0 and not top and not re.match(r"\s*(class|import|from)\b", lines[0])


def _sentences(text: str, start: int) -> list[tuple[int, str, str, int]]:
    """Split a prose span into (offset, sentence, line, offset in line); each sentence is a slice of `text`."""
    out: list[tuple[int, str, str, int]] = []
    for line_match in re.finditer(r"[^\n]+", text):
        line, base = line_match.group(), start + line_match.start()
        cuts = [0] + [m.end() for m in _SENTENCE_END.finditer(line)] + [len(line)]
        for a, b in itertools.pairwise(cuts):
            raw = line[a:b]
            lead = _LEAD.match(raw)
            skip = lead.end() if lead else 0
            sentence = raw[skip:].strip()
            if len(re.sub(r"\W", "", sentence)) >= 3:
                out.append((base + a + skip, sentence, line, a + skip))
    return out


def _code_lines(code: str, source: str, pos: tuple[int, int], role: str = "candidate") -> list[Piece]:
    """Lines of a code block, tagged with whether they sit in a test function, another function,
    or at module level (module-level asserts behave like a test script)."""
    pieces: list[Piece] = []
    scope, scope_indent = "module", -1
    for i, line in enumerate(code.splitlines()):
        stripped = line.strip()
        if not stripped:
            continue
        indent = len(line) - len(line.lstrip())
        if scope != "module" and indent <= scope_indent and not stripped.startswith(("@", ")", "]")):
            scope, scope_indent = "module", -1
        m = re.match(r"(async\s+)?def\s+(\w+)", stripped)
        if m and scope == "module":
            scope = "test" if m.group(2).startswith("test") else "impl"
            scope_indent = indent
        elif re.match(r"class\s+Test", stripped) and scope == "module":
            scope, scope_indent = "test", indent
        kind = "comment" if stripped.startswith("#") else "code"
        pieces.append(Piece(source, stripped[:MAX_QUOTE], (pos[0], pos[1] + i), role, kind, scope))
        if kind == "code" and "#" in stripped and not re.search(r"[\"'][^\"']*#", stripped):
            comment = stripped[stripped.index("#"):].strip()
            pieces.append(Piece(source, comment[:MAX_QUOTE], (pos[0], pos[1] + i), role, "comment", scope))
    return pieces


def build_view(transcript: Transcript) -> View:
    """Cut the transcript into candidate prose, interviewer prose and candidate code lines.

    If the speakers were not recognised (one "unknown" block), or no turn is marked as the
    candidate's, every non-interviewer turn is treated as the candidate's."""
    turns = sorted(transcript.turns, key=lambda t: t.index)
    has_candidate = any(t.role == "candidate" for t in turns)
    cand_roles = {"candidate"} if transcript.speakers_recognised and has_candidate else {"candidate", "unknown"}
    view = View([], [], [], None, len(turns))
    defined: set[str] = set()
    for n, turn in enumerate(turns):
        role = "candidate" if turn.role in cand_roles else "interviewer" if turn.role == "interviewer" else None
        if role is None:
            continue
        fences = list(_FENCE.finditer(turn.text))
        cursor = 0
        spans = [(f.start(), f.end()) for f in fences] + [(len(turn.text), len(turn.text))]
        for a, b in spans:
            for off, sentence, line, at in _sentences(turn.text[cursor:a], cursor):
                indent = len(line) - len(line.lstrip())
                (view.candidate if role == "candidate" else view.interviewer).append(
                    Piece(turn.id, sentence, (n, off), role, "prose", line=line.strip(), at=at - indent))
            cursor = b
        blocks = [b.code for b in turn.code_blocks]
        langs = [(b.language or "").lower() for b in turn.code_blocks]
        if not blocks:  # fall back to the fences themselves when ingest did not extract blocks
            blocks = [re.sub(r"\A[^\n]*\n|\n?[ \t]*(```|~~~)[ \t]*\Z", "", f.group()) for f in fences]
        for k, code in enumerate(blocks):
            off = fences[k].start() if k < len(fences) else len(turn.text)
            if role != "candidate":
                view.shown.extend(_code_lines(code, turn.id, (n, off), role))
                continue
            lines = _code_lines(code, turn.id, (n, off))
            if k < len(langs) and langs[k] in _OUTPUT_LANGS:  # a test run the candidate pastes: not code
                view.code.extend(replace(p, kind="output", context="output") for p in lines)
                continue
            if view.first_code_pos is None:
                view.first_code_pos = (n, off)
            view.block_sizes.append(sum(1 for ln in code.splitlines() if ln.strip()))
            if lines and _revises(code, defined):
                view.revisions.append(lines[0])
            defined.update(_DEF.findall(code))
            for p in lines:
                if p.kind == "code":
                    for name in _NAME.findall(p.text):
                        if name.lower() not in _KEYWORDS:
                            view.identifiers.setdefault(name, p.pos)
            view.code.extend(lines)
    for k, f in enumerate(transcript.code_files):
        view.code.extend(_code_lines(f.content, f.name, (len(turns) + k, 0)))
    return view


def clip(text: str, start: int = 0, end: int = 0) -> str:
    """A verbatim slice of `text` of at most MAX_QUOTE characters, centred on [start, end)."""
    if len(text) <= MAX_QUOTE:
        return text
    a = max(0, min(start - 60, len(text) - MAX_QUOTE))
    b = min(len(text), a + MAX_QUOTE)
    if a > 0 and " " in text[a:a + 30]:
        a = text.index(" ", a) + 1
    if b < len(text) and " " in text[b - 30:b]:
        b = text.rindex(" ", a, b)
    return text[a:b].strip()


def first_hit(patterns: list[re.Pattern[str]], text: str) -> re.Match[str] | None:
    """The first table (in priority order) that matches wins, so the quote centres on the strongest cue."""
    for p in patterns:
        m = p.search(text)
        if m:
            return m
    return None


_ELLIPSIS = re.compile(r"\.\.\.|…")


def quote_of(piece: Piece, patterns: list[re.Pattern[str]] | None = None) -> str:
    """The quotable part of a piece (see `_quote`), without an ellipsis: a verifier reads "..." inside a
    quote as an elision and wants two words on each side ("the check runs... no." fails), so a sentence
    that trails off is quoted by its longest stretch between ellipses."""
    quote = _quote(piece, patterns)
    if not _ELLIPSIS.search(quote):
        return quote
    return max((part.strip() for part in _ELLIPSIS.split(quote)), key=len)


def _quote(piece: Piece, patterns: list[re.Pattern[str]] | None = None) -> str:
    """The quotable part of a piece, centred on the first matching pattern when it is long. A very
    short sentence is widened to its line, as a verifier cannot place a quote like "Oh no." reliably."""
    if len(piece.text) < MIN_QUOTE and len(piece.line) > len(piece.text):
        rest = piece.line[piece.at:]
        nxt = _SENTENCE_END.search(rest, len(piece.text) + 1)
        widened = rest[: nxt.start() if nxt else len(rest)].strip()
        if len(widened) >= MIN_QUOTE:
            return clip(widened)
        return clip(piece.line, piece.at, piece.at + len(piece.text))
    m = first_hit(patterns, piece.text) if patterns else None
    return clip(piece.text, m.start(), m.end()) if m else clip(piece.text)
