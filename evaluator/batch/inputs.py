"""Cohort inputs: a folder of transcripts or a manifest (CSV or JSONL), streamed one item at a time.

A manifest row names a transcript `path` (relative to the manifest) and may give `candidate`,
`date`, `exercise` (these win over the transcript's front matter) and `code` files (separated by
`;` in CSV, a list in JSONL). A row that points at a missing file is still yielded, with its error,
so the run records it and carries on.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import shlex
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from evaluator.errors import BadInput
from evaluator.files import csv_delimiter, open_text
from evaluator.formats import TRANSCRIPT_SUFFIXES
from evaluator.ingest import _LANG_BY_SUFFIX as CODE_SUFFIXES
from evaluator.ingest import session_date

OVERRIDES = ("candidate", "date", "exercise")
JUDGED_OVERRIDES = ("candidate",)  # see key_extra
MANIFEST_SUFFIXES = {".csv", ".jsonl", ".ndjson"}
MAX_MANIFEST_BYTES = 50_000_000
SKIP_STEMS = {"readme", "changelog", "license", "contributing"}
SKIP_NAMES_SHOWN = 5


@dataclass
class BatchItem:
    """One transcript to judge; `key` identifies it within the input (stable across re-runs)."""

    key: str
    path: Path
    code: list[Path] = field(default_factory=list)
    overrides: dict[str, str] = field(default_factory=dict)
    error: str | None = None


def iter_items(path: Path, on_skip: Callable[[str], None] | None = None) -> Iterator[BatchItem]:
    """Stream the items of a folder or manifest without loading them all. `on_skip` hears, once the
    folder is walked, which of its files were not taken as transcripts and why."""
    if not path.exists():
        raise BadInput(f"cohort input not found: {path}")
    if path.is_dir():
        yield from _iter_folder(path, on_skip)
    elif path.suffix.lower() in MANIFEST_SUFFIXES:
        yield from _iter_manifest(path)
    else:
        # the reverse of `evaluate FOLDER`: point at the obvious next step, not just "wrong kind of file"
        hint = (f"; to judge this one transcript, run `evaluate {shlex.quote(str(path))}`"
                if path.suffix.lower() in TRANSCRIPT_SUFFIXES else "")
        raise BadInput(f"{path}: expected a folder of transcripts or a manifest (.csv, .jsonl){hint}")


def readable_items(path: Path, on_skip: Callable[[str], None] | None = None) -> Iterator[BatchItem]:
    """`iter_items` with its first item already taken: an input that cannot be read at all (missing,
    not a folder or manifest, nothing in it) is refused here, before a run records or creates anything
    (no run row left `running`, no empty cohort in the report, no empty database). A folder is walked
    whole for its first item anyway."""
    items = iter_items(path, on_skip)
    first = next(items, None)
    return items if first is None else itertools.chain([first], items)


def _iter_folder(folder: Path, on_skip: Callable[[str], None] | None = None) -> Iterator[BatchItem]:
    transcripts, skipped = _classify_folder(folder)
    if on_skip:
        for reason, names in skipped.items():
            more = len(names) - SKIP_NAMES_SHOWN
            on_skip(f"skipped {len(names)} file(s) in {folder}, {reason}: {', '.join(names[:SKIP_NAMES_SHOWN])}"
                    + (f" and {more} more" if more > 0 else ""))
    if not transcripts:
        raise BadInput(f"{folder}: no transcripts found ({', '.join(TRANSCRIPT_SUFFIXES)})")
    for relative in transcripts:
        yield BatchItem(key=relative, path=folder / relative)


def _walk(folder: Path) -> list[str]:
    """Every non-directory entry under `folder` (hidden folders included, symlinked folders listed
    but not entered), as paths relative to it, in the order sorted(folder.rglob("*")) gives them.
    One scandir per folder: rglob built, compared and stat'ed a Path object per file, about a tenth
    of a cached re-run's cost."""
    found: list[tuple[list[str], str]] = []
    for top, _dirs, files in os.walk(folder):
        base = os.path.relpath(top, folder)
        prefix = "" if base == os.curdir else base + os.sep
        found.extend(((prefix + name).split(os.sep), prefix + name) for name in files)
    found.sort()
    return [relative for _, relative in found]


def _stem_suffix(name: str) -> tuple[str, str]:
    """Path(name).stem and .suffix without building a Path."""
    i = name.rfind(".")
    return (name[:i], name[i:]) if 0 < i < len(name) - 1 else (name, "")


def _classify_folder(folder: Path) -> tuple[list[str], dict[str, list[str]]]:
    """The folder's transcripts (sorted, relative to it), and the other files by the reason they
    are not judged."""
    transcripts: list[str] = []
    skipped: dict[str, list[str]] = defaultdict(list)
    # a FIFO, device or dangling link named like a transcript is kept: its read fails alone
    for relative in _walk(folder):
        parts = relative.split(os.sep)
        stem, suffix = _stem_suffix(parts[-1])
        suffix = suffix.lower()
        if any(part.startswith(".") for part in parts):
            skipped["hidden"].append(relative)
        elif suffix in TRANSCRIPT_SUFFIXES and stem.lower() in SKIP_STEMS:
            skipped["project documentation, not a transcript"].append(relative)
        elif suffix in TRANSCRIPT_SUFFIXES:
            transcripts.append(relative)
        elif suffix in CODE_SUFFIXES:
            skipped["code (read only with a transcript that names it)"].append(relative)
        else:
            skipped[f"not a transcript format ({', '.join(TRANSCRIPT_SUFFIXES)})"].append(relative)
    return transcripts, skipped


def _row_item(manifest: Path, line: int, row: dict) -> BatchItem:
    raw_path = row.get("path") or row.get("transcript") or row.get("file")
    key = f"{manifest.name}:{line}"
    if not raw_path or not str(raw_path).strip():
        return BatchItem(key=key, path=manifest, error=f"{manifest}:{line}: no 'path' given")
    p = Path(str(raw_path).strip())
    p = p if p.is_absolute() else manifest.parent / p
    code_field = row.get("code") or []
    if isinstance(code_field, str):
        code_field = [c for c in (x.strip() for x in code_field.replace("|", ";").split(";")) if c]
    if not isinstance(code_field, list) or not all(isinstance(c, str) for c in code_field):
        return BatchItem(key=key, path=manifest,
                         error=f"{manifest}:{line}: 'code' must be a file name or a list of file names")
    code = [(c if Path(c).is_absolute() else manifest.parent / c) for c in map(Path, code_field)]
    overrides = {k: str(row[k]).strip() for k in OVERRIDES if row.get(k) not in (None, "")}
    if "date" in overrides:
        date = session_date(overrides["date"])
        if date is None:
            return BatchItem(key=key, path=p, error=f"{manifest}:{line}: date {overrides['date']!r} is not a "
                                                    "date (use YYYY-MM-DD)")
        overrides["date"] = date
    item = BatchItem(key=f"{manifest.name}:{line}:{raw_path}", path=p, code=code, overrides=overrides)
    missing = [str(x) for x in [p, *code] if not x.is_file()]
    if missing:
        item.error = f"{manifest}:{line}: file not found: {', '.join(missing)}"
    return item


def key_extra(overrides: dict[str, str]) -> dict[str, str] | None:
    """The manifest overrides that change a judgment, so they belong in its cache key: the candidate's
    name decides whose words are judged. The date does not change it, and the exercise only picks the
    rubric, whose version is in the key already: a date fix never pays for a judgment again."""
    extra = {k: overrides[k] for k in JUDGED_OVERRIDES if k in overrides}
    return extra or None


def _iter_manifest(manifest: Path) -> Iterator[BatchItem]:
    listed = 0
    try:
        for item in _read_manifest(manifest):
            listed += 1
            yield item
    except UnicodeDecodeError as e:
        raise BadInput(f"{manifest}: not UTF-8 text (byte {e.start}); re-save the manifest as UTF-8") from None
    except csv.Error as e:
        raise BadInput(f"{manifest}: not a valid CSV file: {e}") from None
    if not listed:  # as an empty folder: nothing to judge is a mistake, not a run of 0 transcripts
        raise BadInput(f"{manifest}: manifest lists no transcripts (one row per transcript, with its 'path')")


def _read_manifest(manifest: Path) -> Iterator[BatchItem]:
    with open_text(manifest, MAX_MANIFEST_BYTES, "manifest") as handle:  # UTF-8, or UTF-16 with its mark
        if manifest.suffix.lower() == ".csv":
            sep = csv_delimiter(handle.readline())
            handle.seek(0)
            reader = csv.DictReader(handle, delimiter=sep)
            header = [h.strip().lower() for h in (reader.fieldnames or [])]
            if not {"path", "transcript", "file"} & set(header):
                raise BadInput(f"{manifest}: the CSV header needs a 'path' column "
                               f"(found: {', '.join(header) or 'none'})")
            reader.fieldnames = header
            for row in reader:
                yield _row_item(manifest, reader.line_num, row)
            return
        for line_no, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                yield BatchItem(key=f"{manifest.name}:{line_no}", path=manifest,
                                error=f"{manifest}:{line_no}: not valid JSON ({e.msg})")
                continue
            if not isinstance(row, dict):
                yield BatchItem(key=f"{manifest.name}:{line_no}", path=manifest,
                                error=f"{manifest}:{line_no}: expected a JSON object per line")
                continue
            yield _row_item(manifest, line_no, {str(k).lower(): v for k, v in row.items()})
