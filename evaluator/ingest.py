"""Ingest: turn a messy Markdown transcript (plus code files) into a typed `Transcript`.

Reading is bounded and forgiving where it can be: a regular file of at most 5 MB, decoded as UTF-8
(a few stray bytes are a warning, binary is refused), WebVTT converted (formats.py), the front
matter read by front_matter.py, the turns found by speakers.py, and the candidate's code files
attached (given with --code, or named in the text and found beside it; one named but missing is a
warning). The content hash covers exactly what the judge sees.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from evaluator.errors import BadInput
from evaluator.files import read_capped, utf16_as_utf8
from evaluator.formats import convert
from evaluator.front_matter import split_front_matter
from evaluator.models import CodeFile, Transcript
from evaluator.speakers import split_turns, unquote_body

_PRINTABLE_CONTROLS = bytes(b for b in range(256) if not (b < 32 and b not in (9, 10, 12, 13)))
MAX_FILE_BYTES = 5_000_000
MAX_CODE_FILE_BYTES = 500_000
MAX_INVALID_UTF8_RATIO = 0.02

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
    turns, recognised, turn_warnings = split_turns(body, source.metadata, source.body_line)
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

