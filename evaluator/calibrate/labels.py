"""Read and validate score files: human labels, or any judge's scores, in CSV or JSONL.

Two layouts are accepted because raters work both ways:
- long: one row per (transcript, rater, dimension, score);
- wide: one row per (transcript, rater), one column (or JSON key) per dimension.

Every problem is collected with its line number before anything is stored, so a file is imported
whole or not at all: a half-imported label set would silently change every agreement number.
Validation is a pure function of the rows and of how each transcript reference resolved, so it is
tested without a database or files.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from evaluator.calibrate.records import HumanLabel, LabelStatus, ScaleSpec
from evaluator.errors import BadInput
from evaluator.files import read_capped, utf16_as_utf8

MAX_LABEL_FILE_BYTES = 50_000_000
MAX_PROBLEMS_SHOWN = 40

# Column names people actually use, mapped to ours.
ALIASES = {
    "transcript": "transcript", "transcript_id": "transcript", "transcript_hash": "transcript", "file": "transcript",
    "id": "transcript", "judgment_id": "transcript",  # `evaluate export`'s id of the judgment (its transcript)
    "rater": "rater", "rater_id": "rater", "annotator": "rater", "labeller": "rater", "labeler": "rater",
    "dimension": "dimension", "dimension_id": "dimension",
    "score": "score", "label": "score", "value": "score",
    "item": "transcript", "item_id": "transcript", "filename": "transcript",
    "worker": "rater", "worker_id": "rater", "annotator_id": "rater", "coder": "rater",
    "criterion": "dimension", "aspect": "dimension", "metric": "dimension",
    "rating": "score",
}


def aliases_of(name: str) -> str:
    """The column names read as `name`, for messages about a missing column."""
    return ", ".join(k for k, v in ALIASES.items() if v == name)
IGNORED_COLUMNS = {"note", "notes", "comment", "comments", "rationale"}
MISSING_TOKENS = {"", "na", "n/a", "-", "missing", "null", "none", "?"}
NOT_OBSERVED_TOKENS = {"not_observed", "not observed", "not-observed", "notobserved", "n/o", "no_obs"}


class RawRow(BaseModel):
    """One (transcript, rater, dimension, cell) as written, with the line it came from."""

    line: int
    transcript: str
    rater: str
    dimension: str
    cell: Any = None
    meta: dict[str, str] = Field(default_factory=dict, description="the named extra columns (group, system)")
    probs: dict[int, Any] | None = Field(None, description="level number (1 = lowest) -> probability cell")




class Problem(BaseModel):
    """One thing wrong with an input file, with its line, so every problem is reported at once."""

    line: int | None
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line is not None else self.message


RecordLayout = Literal["long", "wide"]


class ScoreFile(BaseModel):
    """A parsed file: rows plus what is needed to trace an import back to it."""

    path: str
    file_format: Literal["csv", "jsonl", "parquet"]
    layout: RecordLayout | Literal["mixed"]
    sha256: str
    n_records: int
    rows: list[RawRow]


class TranscriptMatch(BaseModel):
    """What a transcript reference resolved to, and what its labels are checked against."""

    key: str = Field(description="content hash (store) or the reference itself (plain files)")
    source: str | None = None
    rubric_id: str | None = None
    rubric_version: str | None = None
    scale: ScaleSpec | None = None
    dimensions: dict[str, bool] | None = Field(
        None, description="dimension id -> allows 'not observed'; None accepts any dimension"
    )


class ValidatedLabel(HumanLabel):
    """A label ready to store: the resolved transcript plus the reference as written."""

    transcript_ref: str
    source: str | None = None
    rubric_id: str | None = None
    rubric_version: str | None = None


def problems_error(path: str, problems: list[Problem], what: str = "nothing was imported") -> BadInput:
    """One BadInput listing every problem (capped), sorted by line. A message repeated on many lines (an
    extra text column read as a dimension, an unknown rater on every row) is listed once, at its first
    line, with the other lines after it, so the distinct problems stay in view."""
    ordered = sorted(problems, key=lambda p: (p.line is None, p.line or 0))
    lines_of: dict[str, list[int | None]] = {}
    for p in ordered:
        lines_of.setdefault(p.message, []).append(p.line)
    entries = []
    for message, lines in lines_of.items():
        entry = str(Problem(line=lines[0], message=message))
        also = [str(n) for n in lines[1:] if n is not None]
        if also:
            rest = f" and {len(also) - 5} more" if len(also) > 5 else ""
            entry += f" (also line{'s' if len(also) > 1 else ''} {', '.join(also[:5])}{rest})"
        entries.append(entry)
    shown = [f"  {e}" for e in entries[:MAX_PROBLEMS_SHOWN]]
    more = len(entries) - len(shown)
    if more > 0:
        shown.append(f"  ... and {more} more")
    noun = "problem" if len(ordered) == 1 else "problems"
    return BadInput(f"{path}: {len(ordered)} {noun}; {what}:\n" + "\n".join(shown))


def parse_cell(cell: Any) -> tuple[LabelStatus, float | None]:
    """A score cell -> (status, score). Empty means missing; 'not_observed' is its own status.

    Raises ValueError with a message fit for the user when the cell is neither.
    """
    if cell is None:
        return "missing", None
    if isinstance(cell, bool):
        raise ValueError(f"score {cell!r} is not a number")  # noqa: TRY004 - callers report ValueError per line
    if isinstance(cell, (int, float)):
        value = float(cell)
    else:
        text = str(cell).strip().lower()
        if text in MISSING_TOKENS:
            return "missing", None
        if text in NOT_OBSERVED_TOKENS:
            return "not_observed", None
        try:
            value = float(text)
        except ValueError:
            hint = ""
            if re.fullmatch(r"[-+]?\d+,\d+", text):  # a decimal comma; guessing could read "1,000" as 1
                hint = f" (a decimal comma? write {text.replace(',', '.')})"
            raise ValueError(f"score {str(cell).strip()!r} is not a number, 'not_observed' or empty{hint}") from None
    if not math.isfinite(value):
        raise ValueError(f"score {cell!r} is not a finite number (a missing label is an empty cell, or NA)")
    return "scored", value


def _decode(path: Path) -> tuple[str, str]:
    data = read_capped(path, MAX_LABEL_FILE_BYTES, "scores file")
    sha = hashlib.sha256(data).hexdigest()
    data = utf16_as_utf8(data, str(path))
    if b"\x00" in data[:65536]:
        raise BadInput(f"{path}: looks like a binary file, expected CSV or JSONL text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise BadInput(f"{path}: not valid UTF-8 (first bad byte at offset {e.start}); re-save it as UTF-8") from None
    if not text.strip():
        raise BadInput(f"{path}: file is empty")
    return text, sha


def _canonical(name: str) -> str:
    key = name.strip().lower()
    return ALIASES.get(key, key)


def _exact(name: str) -> bool:
    """The column is named as its role itself (`transcript`), not by an alias of it (`transcript_hash`)."""
    return name.strip().lower() == _canonical(name)


def ambiguous_columns(names: list[str]) -> list[str]:
    """The roles more than one column is read as, where none of them is named as the role itself. A
    column named `transcript` beside an alias of it (`evaluate export` writes `transcript`, the file
    name, beside `transcript_hash`) is the one read; the alias is then an ordinary extra column."""
    roles: dict[str, list[str]] = {}
    for name in names:
        roles.setdefault(_canonical(name), []).append(name)
    return sorted(role for role, cols in roles.items()
                  if len(cols) > 1 and sum(_exact(c) for c in cols) != 1)


def read_score_file(path: Path | str, *, need_rater: bool = True, default_rater: str = "judge",
                    meta_columns: frozenset[str] = frozenset(), read_probs: bool = False) -> ScoreFile:
    """Parse a CSV (header row) or JSONL (one object a line) file into rows with line numbers, for the
    store import (which resolves every transcript reference before validating). The parsing is
    `label_rows.read_rows`, the one reader of score files; structural problems are all reported at once."""
    from evaluator.calibrate.label_rows import read_rows
    from evaluator.calibrate.score_files import ABSENT

    got = read_rows(path, need_rater=need_rater, default_rater=default_rater, meta_columns=meta_columns,
                    read_probs=read_probs)
    r, lines = got.rows, got.lines()
    transcripts, raters, dims = (np.asarray(r[c], dtype=object) for c in ("transcript", "rater", "dimension"))
    rows = [RawRow(line=int(lines[i]), transcript=transcripts[i], rater=raters[i], dimension=dims[i],
                   cell=r["cell"][i], meta={name: str(values[i]) for name, values in got.meta.items()},
                   probs={int(c[1:]): r[c][i] for c in got.prob_names if r[c][i] is not ABSENT} or None)
            for i in range(len(lines))]
    return ScoreFile(path=str(path), file_format=got.file_format, layout=got.layout, sha256=got.sha256,
                     n_records=got.n_records, rows=rows)


def validate_rows(
    rows: list[RawRow], resolve: Callable[[str], TranscriptMatch | str]
) -> tuple[list[ValidatedLabel], list[Problem]]:
    """Check every row against its transcript's rubric: known transcript and dimension, score on the
    scale, 'not observed' only where the dimension allows it, no duplicate (transcript, rater, dimension).

    `resolve` maps a transcript reference to a match, or to an error message; it is called once per
    distinct reference. Returns the labels and every problem found (import only if there are none).
    """
    resolved: dict[str, TranscriptMatch | str] = {}
    problems: list[Problem] = []
    labels: list[ValidatedLabel] = []
    seen: dict[tuple[str, str, str], int] = {}
    reported_refs: set[str] = set()
    for row in rows:
        if row.transcript not in resolved:
            resolved[row.transcript] = resolve(row.transcript)
        match = resolved[row.transcript]
        if isinstance(match, str):
            if row.transcript not in reported_refs:
                reported_refs.add(row.transcript)
                problems.append(Problem(line=row.line, message=match))
            continue
        if match.dimensions is not None and row.dimension not in match.dimensions:
            problems.append(Problem(
                line=row.line,
                message=f"unknown dimension '{row.dimension}' for {row.transcript} (rubric {match.rubric_id}: "
                        f"{', '.join(match.dimensions)})"))
            continue
        key = (match.key, row.rater, row.dimension)
        if key in seen:
            problems.append(Problem(
                line=row.line,
                message=f"duplicate label for {row.transcript} / rater {row.rater} / {row.dimension} "
                        f"(first given on line {seen[key]})"))
            continue
        seen[key] = row.line  # even if this row is invalid: a second row for it is still a duplicate
        try:
            status, score = parse_cell(row.cell)
        except ValueError as e:
            problems.append(Problem(line=row.line, message=f"{row.dimension}: {e}"))
            continue
        if status == "scored" and score is not None and match.scale is not None and \
                not (match.scale.min <= score <= match.scale.max):
            problems.append(Problem(
                line=row.line,
                message=f"{row.dimension}: score {score:g} is outside the scale {match.scale.min}-{match.scale.max}"))
            continue
        if status == "not_observed" and match.dimensions is not None and not match.dimensions[row.dimension]:
            problems.append(Problem(
                line=row.line,
                message=f"{row.dimension}: 'not observed' is not allowed for this dimension "
                        "(the rubric asks for a score; the bottom of the scale if never addressed)"))
            continue
        labels.append(ValidatedLabel(
            transcript=match.key, transcript_ref=row.transcript, source=match.source, rater=row.rater,
            dimension=row.dimension, status=status, score=score, line=row.line, rubric_id=match.rubric_id,
            rubric_version=match.rubric_version,
        ))
    return labels, problems


def plain_resolver(scale: ScaleSpec | None) -> Callable[[str], TranscriptMatch]:
    """For two plain files: a transcript is whatever id the files use; any dimension is accepted."""
    return lambda ref: TranscriptMatch(key=ref, source=None, scale=scale, dimensions=None)


class PlainScores:
    """A plain score file as read for `--judge/--human`, as records: for small callers (tests, the
    baseline's dev-set check). The CLI path keeps the columns (`columns.read_columns`)."""

    def __init__(self, columns) -> None:
        self.columns = columns

    @property
    def labels(self) -> list[ValidatedLabel]:
        from evaluator.calibrate.columns import human_records

        return [ValidatedLabel(**h.model_dump(), transcript_ref=h.transcript)
                for h in human_records(self.columns.frame, self.columns.line_of_record)]

    @property
    def meta(self) -> dict[str, dict[str, str]]:
        m = self.columns.meta.set_index("transcript")
        return {str(t): {str(k): str(v) for k, v in row.items()} for t, row in m.iterrows()}

    @property
    def probs(self) -> dict[tuple[str, str], list[float]]:
        return self.columns.probs


def read_plain(path: Path | str, *, kind: Literal["judge", "human"], scale: ScaleSpec | None = None,
               na: tuple[float, ...] = (), meta_columns: frozenset[str] = frozenset(),
               na_by_dimension: dict[str, tuple[float, ...]] | None = None) -> PlainScores:
    """Read a plain score file (no store, no rubric) and validate it; see `columns.read_columns`."""
    from evaluator.calibrate.columns import read_columns

    return PlainScores(read_columns(path, kind=kind, scale=scale, na=na, na_by_dimension=na_by_dimension,
                                    meta_columns=meta_columns))


def _is_na(cell: Any, na: tuple[float, ...]) -> bool:
    if not na or cell is None or isinstance(cell, bool):
        return False
    try:
        return float(str(cell).strip()) in na
    except ValueError:
        return False


def _parse_probs(cells: dict[int, Any]) -> list[float] | str:
    levels = sorted(cells)
    if levels != list(range(1, len(levels) + 1)):
        return f"probability columns must be p1..pK without gaps (got p{', p'.join(map(str, levels))})"
    try:
        values = [float(cells[k]) for k in levels]
    except (TypeError, ValueError):
        return "a level probability is not a number"
    outside = [f"p{k}={v:g}" for k, v in zip(levels, values, strict=True) if not (math.isfinite(v) and 0 <= v <= 1)]
    if outside:
        return f"level probabilities must be in [0, 1] ({', '.join(outside)})"
    if abs(sum(values) - 1) > 0.02:
        return f"level probabilities must sum to 1 (sum {sum(values):.3f})"
    total = sum(values)
    return [v / total for v in values]


def load_plain(path: Path | str, *, kind: Literal["judge", "human"], scale: ScaleSpec | None) -> list[ValidatedLabel]:
    """Read a plain score file (no store, no rubric) and validate it; BadInput lists every problem."""
    return read_plain(path, kind=kind, scale=scale).labels
