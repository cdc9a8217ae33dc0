"""Ingest: turn a messy Markdown transcript (plus code files) into a typed `Transcript`.

Real transcripts come from note-takers, recorders and chat exports, so speaker labels take many
forms (`**Interviewer:**`, `Q:`/`A:`, `[00:03:12] Candidate:`, `Priya (interviewer):`). A label is
only trusted when it looks like a role, a name from the front matter, or a name that recurs as a
label, so that prose such as `Note: ...` or `Complexity: O(1)` inside a turn stays prose.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

from evaluator.errors import BadInput
from evaluator.models import CodeBlock, CodeFile, Transcript, Turn

_PRINTABLE_CONTROLS = bytes(b for b in range(256) if not (b < 32 and b not in (9, 10, 12, 13)))
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml is ~20x faster when present
MAX_FILE_BYTES = 5_000_000
MAX_CODE_FILE_BYTES = 500_000
MAX_INVALID_UTF8_RATIO = 0.02

INTERVIEWER_WORDS = {"interviewer", "q", "question", "host", "panelist", "panellist", "examiner", "int", "i"}
CANDIDATE_WORDS = {"candidate", "a", "answer", "interviewee", "cand", "c", "applicant"}
# Words that often start a line with a colon but never name a speaker.
NOT_SPEAKERS = {
    "note", "notes", "step", "example", "output", "input", "return", "returns", "complexity", "time",
    "space", "todo", "edge case", "edge cases", "test", "tests", "error", "traceback", "http", "https",
    "summary", "result", "results", "answer key", "hint", "update", "invariant", "problem", "task",
    "exercise", "goal", "context", "feedback", "pros", "cons", "why", "what", "how", "file", "files",
    "warning", "reason", "plan", "approach", "assumptions", "constraints", "follow up", "follow-up",
}

_TIMESTAMP = r"(?:\[(?P<ts1>\d{1,2}(?::\d{2}){1,2})\]|\((?P<ts2>\d{1,2}(?::\d{2}){1,2})\)|(?P<ts3>\d{1,2}(?::\d{2}){1,2}))"
_LABEL = re.compile(
    r"^\s*(?:>\s*)?(?:" + _TIMESTAMP + r"\s*[-–—]?\s*)?"
    r"(?P<open>\*\*|__|\*|_)?"
    r"(?P<name>[A-Za-z][A-Za-z0-9 .'\-]{0,40}?)"
    r"(?:\s*\((?P<role>[A-Za-z ]{1,30})\))?"
    r"\s*(?P<close1>\*\*|__|\*|_)?\s*:\s*(?P<close2>\*\*|__|\*|_)?"
    r"(?:\s+|$)(?P<rest>.*)$"
)
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
    if not path.exists():
        raise BadInput(f"{what}: file not found: {path}")
    if path.is_dir():
        raise BadInput(f"{what}: {path} is a directory, expected a file")
    size = path.stat().st_size
    if size > limit:
        raise BadInput(f"{what}: {path} is {size:,} bytes, over the {limit:,}-byte limit")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise BadInput(f"{what}: cannot read {path}: {e.strerror}") from None
    return decode_text(data, f"{what} {path}")


def split_front_matter(text: str) -> tuple[dict, str, int, list[str]]:
    """Return (metadata, body, body_start_line, warnings). Broken YAML is dropped with a warning."""
    if not text.startswith("---\n"):
        return {}, text, 1, []
    end = re.search(r"^(---|\.\.\.)\s*$", text[4:], flags=re.M)
    if not end:
        return {}, text, 1, ["front matter opened with '---' but never closed; read as text"]
    raw = text[4 : 4 + end.start()]
    body = text[4 + end.end() :].lstrip("\n")
    start_line = text[: len(text) - len(body)].count("\n") + 1
    # A broken block is still front matter, not speech: drop it from the body (so `candidate: X` is
    # never read as a turn) and say so.
    try:
        meta = yaml.load(raw, Loader=_YAML_LOADER) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark is not None else ""
        return {}, body, start_line, [f"front matter is not valid YAML{where}; its metadata was ignored"]
    if not isinstance(meta, dict):
        return {}, body, start_line, ["front matter is not a YAML mapping; its metadata was ignored"]
    meta = {str(k): (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in meta.items()}
    return meta, body, start_line, []


def _role_of(name: str, role_hint: str | None, meta: dict) -> str | None:
    for word in filter(None, [role_hint, name]):
        w = word.strip().lower()
        if w in INTERVIEWER_WORDS or "interviewer" in w:
            return "interviewer"
        if w in CANDIDATE_WORDS or "candidate" in w or "interviewee" in w:
            return "candidate"
    lowered = name.strip().lower()
    for key, role in (("interviewer", "interviewer"), ("candidate", "candidate")):
        value = meta.get(key)
        names = value if isinstance(value, list) else [value]
        for n in names:
            if isinstance(n, str) and n.strip() and (
                lowered == n.lower() or lowered == n.lower().split()[0]
            ):
                return role
    return None


def _label_candidates(lines: list[str]) -> list[tuple[int, re.Match]]:
    """Lines outside code fences that look like `Speaker: text`."""
    found, fence = [], None
    for i, line in enumerate(lines):
        m = _FENCE.match(line)
        if m:
            if fence is None:
                fence = m.group("fence")
            elif m.group("fence")[0] == fence[0] and len(m.group("fence")) >= len(fence):
                fence = None
            continue
        if fence is None:
            lm = _LABEL.match(line)
            if lm and lm.group("name").strip().lower() not in NOT_SPEAKERS:
                found.append((i, lm))
    return found


def _accepted_labels(cands: list[tuple[int, re.Match]], meta: dict) -> dict[str, str | None]:
    """Decide which label names are speakers. Known roles always; other names when they recur."""
    counts = Counter(m.group("name").strip() for _, m in cands)
    accepted: dict[str, str | None] = {}
    for _, m in cands:
        name = m.group("name").strip()
        role = _role_of(name, m.group("role"), meta)
        words = len(name.split())
        styled = bool(m.group("open") or m.group("ts1") or m.group("ts2") or m.group("ts3"))
        if role or (counts[name] >= 2 and words <= 3 and (styled or name[0].isupper())):
            accepted.setdefault(name, role)
    # Q/A alone are only speakers when both appear (a lone "A: ..." is likely a list item).
    names_lower = {n.lower() for n in accepted}
    if ("q" in names_lower) != ("a" in names_lower):
        accepted = {n: r for n, r in accepted.items() if n.lower() not in {"q", "a"}}
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
    blocks, fence, lang, buf = [], None, None, []
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


def parse_turns(body: str, meta: dict, first_line: int = 1) -> tuple[list[Turn], bool, list[str]]:
    """Split the body into turns. Returns (turns, speakers_recognised, warnings)."""
    lines = body.split("\n")
    cands = _label_candidates(lines)
    accepted = _accepted_labels(cands, meta)
    starts = [(i, m) for i, m in cands if m.group("name").strip() in accepted]
    warnings: list[str] = []
    if len({m.group("name").strip() for _, m in starts}) == 0:
        text = body.strip()
        warnings.append("no speaker labels recognised: the transcript is judged as one block")
        return (
            [Turn(id="t1", index=0, speaker="unknown", role="unknown", text=text,
                  code_blocks=_code_blocks(text), line=first_line)],
            False,
            warnings,
        )
    unresolved = sorted(n for n, r in accepted.items() if r is None)
    if unresolved:
        first = starts[0][1].group("name").strip()
        for n in unresolved:
            accepted[n] = "interviewer" if n == first else "candidate"
        warnings.append(
            f"speaker roles guessed for {', '.join(unresolved)} (first speaker taken as interviewer); "
            "add 'interviewer:'/'candidate:' front matter or '(role)' labels to be sure"
        )
    turns: list[Turn] = []
    preamble = "\n".join(lines[: starts[0][0]]).strip()
    if preamble and re.sub(r"^#+ .*$", "", preamble, flags=re.M).strip():
        turns.append(Turn(id="t0", index=0, speaker="(preamble)", role="unknown", text=preamble,
                          code_blocks=_code_blocks(preamble), line=first_line))
    offset = len(turns)  # a preamble turn is t0; speaker turns are t1, t2, ...
    for n, (i, m) in enumerate(starts):
        end = starts[n + 1][0] if n + 1 < len(starts) else len(lines)
        text = "\n".join([m.group("rest")] + lines[i + 1 : end]).strip()
        name = m.group("name").strip()
        speaker = {"q": "Interviewer", "a": "Candidate"}.get(name.lower(), name)
        turns.append(Turn(
            id=f"t{len(turns) - offset + 1}",
            index=len(turns),
            speaker=speaker,
            role=accepted[name],  # type: ignore[arg-type]
            text=text,
            timestamp=m.group("ts1") or m.group("ts2") or m.group("ts3"),
            code_blocks=_code_blocks(text),
            line=first_line + i,
        ))
    roles = {t.role for t in turns}
    if "candidate" not in roles:
        warnings.append("no candidate turns recognised; check the speaker labels")
    return turns, True, warnings


def _language(path: Path) -> str | None:
    return _LANG_BY_SUFFIX.get(path.suffix.lower())


def load_code_file(path: Path) -> tuple[CodeFile, list[str]]:
    text, warnings = read_text_file(path, MAX_CODE_FILE_BYTES, "code file")
    return CodeFile(name=path.name, path=str(path), content=text, language=_language(path)), warnings


def referenced_code_files(text: str, directory: Path, exclude: Path) -> list[Path]:
    """Files named in the transcript that exist next to it (e.g. 'see lru_cache.py')."""
    found: list[Path] = []
    names = []
    for m in _CODE_SUFFIX.finditer(text):  # find the suffix, then walk back over the name: fast on long text
        start = m.start()
        while start > 0 and _NAME_CHAR.match(text[start - 1]):
            start -= 1
        names.append(text[start : m.end()].strip("./-"))
    for name in dict.fromkeys(n for n in names if n and not n.startswith(".")):
        p = directory / name
        try:
            if p.is_file() and p.resolve() != exclude.resolve() and directory.resolve() in p.resolve().parents:
                found.append(p)
        except OSError:
            continue
    return found


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


def read_source(path: Path | str, code_paths: list[Path] | tuple[Path, ...] = ()) -> Source:
    """Read a transcript and its code files (given, or named in the text and found beside it)."""
    path = Path(path)
    text, warnings = read_text_file(path, MAX_FILE_BYTES, "transcript")
    meta, body, body_line, fm_warnings = split_front_matter(text)
    warnings += fm_warnings
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
    return Source(path, text, meta, body, body_line, code_files, warnings, content_hash(text, code_files))


def parse_source(source: Source) -> Transcript:
    """Split a read transcript into turns."""
    turns, recognised, turn_warnings = parse_turns(source.body, source.metadata, source.body_line)
    title_match = re.search(r"^#\s+(.+)$", source.body, flags=re.M)
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
