"""Plain score files (CSV, JSONL, Parquet) read into a table of raw cells, one column per field.

Why a module of its own: each format has its own ways to be broken (a ragged CSV row that pandas
would pad with empty cells, a JSONL record that lacks a key others have, or a nested "scores"
object, a Parquet column that is not text), and each is reported by line before any label is looked
at. What the cells mean (label rows, scores) is `label_rows.py`'s and `column_checks.py`'s.

CSV goes through `pandas.read_csv` (C parser, every cell as text); a file the fast parser refuses,
or one with short rows, is re-read by the csv module only to list its structural problems by line.
JSONL is read line by line (`json.loads`), because a record may lack keys others have (absent is not
null), carry a nested "scores" object, or be broken on one line that must be named.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from evaluator.calibrate.labels import (
    IGNORED_COLUMNS,
    MAX_LABEL_FILE_BYTES,
    Problem,
    _canonical,
    _decode,
    aliases_of,
    ambiguous_columns,
    problems_error,
)
from evaluator.errors import BadInput
from evaluator.files import csv_delimiter, open_regular, read_capped

LONG_PROB = re.compile(r"p(\d+)")  # a long-form level probability column: p1..pK
WIDE_PROB = re.compile(r"(.+)_p(\d+)")  # a wide-form one: <dimension>_p1..
SCORES_KEY = "\x00scores\x00"  # prefix of a nested "scores" object's keys in a JSONL record

FileFormat = Literal["csv", "jsonl", "parquet"]


class _Absent:
    """A JSONL record without this key (not the same as a null value)."""

    def __repr__(self) -> str:
        return "<absent>"


ABSENT: Any = _Absent()


@dataclass
class CellTable:
    """A file's records as columns of raw cells (str, JSON values, None for empty, ABSENT)."""

    columns: dict[str, np.ndarray]
    n: int
    line_of_record: Callable[[], np.ndarray]
    problems: list[Problem] = field(default_factory=list)
    may_be_absent: bool = False  # JSONL: a record may lack a key; a CSV row has every column
    keys_seen: list[str] = field(default_factory=list)  # JSONL: every top-level key, as written

    def given(self, values: np.ndarray) -> np.ndarray:
        """Where a cell is given (possibly empty), as opposed to ABSENT."""
        if not self.may_be_absent:
            return np.ones(len(values), dtype=bool)
        return np.array([v is not ABSENT for v in values], dtype=bool)


def read_table(path: Path, meta_columns: frozenset[str], need_rater: bool,
               read_probs: bool) -> tuple[CellTable, str, FileFormat]:
    """(cells, the file's sha256, its format): Parquet by its suffix or magic bytes, JSONL by its
    suffix or a leading "{", else CSV. A file with no transcript (or, for labels, rater) field at all
    is one BadInput naming the fields found, not one problem per row."""
    file_format: FileFormat
    if path.suffix.lower() == ".parquet" or _is_parquet(path):
        file_format, sha = "parquet", hashlib.sha256(read_capped(path, MAX_LABEL_FILE_BYTES, "scores file")).hexdigest()
        table = _read_parquet(path, meta_columns, need_rater)
    else:
        text, sha = _decode(path)
        is_jsonl = path.suffix.lower() in {".jsonl", ".ndjson", ".json"} or text.lstrip().startswith("{")
        file_format = "jsonl" if is_jsonl else "csv"
        table = _read_jsonl(text, meta_columns, read_probs) if is_jsonl else _read_csv(path, text, meta_columns,
                                                                                        need_rater)
        del text
        if is_jsonl and table.n:
            _require_names(path, "no record has a", "field", [_canonical(k) for k in table.keys_seen],
                           table.keys_seen, need_rater)
    return table, sha, file_format


def _is_parquet(path: Path) -> bool:
    """Sniffed through `open_regular`: a plain open() of a FIFO waits for a writer forever."""
    try:
        with open_regular(path, "scores file") as f:
            return f.read(4) == b"PAR1"
    except (BadInput, OSError):
        return False  # reported, in its own words, by the reader that opens it



def _csv_scan(text: str, width: int, sep: str) -> tuple[np.ndarray, list[Problem]]:
    """One pass of the csv module over the data rows: the line of each non-blank record (where it
    ends, as the csv module counts) and every row whose number of fields is not the header's (pandas
    pads a short row with empty cells, which would read a missing field as a missing label)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    next(reader, None)
    lines: list[int] = []
    problems = []
    try:
        for values in reader:
            if not values or all(not v.strip() for v in values):
                continue
            lines.append(reader.line_num)
            if len(values) != width:
                problems.append(Problem(line=reader.line_num, message=f"{len(values)} fields, the header has {width}"))
    except csv.Error as e:
        problems.append(Problem(line=reader.line_num, message=f"not valid CSV: {e}"))
    return np.array(lines, dtype=np.int64), problems


def _check_header(path: Path, header: list[str], meta_columns: frozenset[str], need_rater: bool) -> None:
    """The columns a file with a header (CSV, Parquet) must have, before any row is read."""
    missing_meta = sorted(meta_columns - {h.strip() for h in header})
    if missing_meta:
        raise BadInput(f"{path}: line 1: no column {', '.join(map(repr, missing_meta))} (found: {', '.join(header)})")
    names = [_canonical(h) for h in header]
    dupes = ambiguous_columns(header)
    if dupes:
        raise BadInput(f"{path}: line 1: column(s) {', '.join(dupes)} appear more than once")
    _require_names(path, "line 1: no", "column", names, header, need_rater)
    if "dimension" in names and "score" not in names:
        raise BadInput(f"{path}: line 1: long form needs a 'score' column beside 'dimension'")
    # a score column and nothing that could be a dimension: a header problem, one message, not one per row
    # (a wide file's extra score column, e.g. a total beside the dimensions, is still ignored as before)
    others = set(names) - {"transcript", "rater", "score", "scores"} - IGNORED_COLUMNS \
        - {_canonical(m) for m in meta_columns}
    if "score" in names and "dimension" not in names and not {n for n in others if not LONG_PROB.fullmatch(n)}:
        raise BadInput(f"{path}: line 1: a score column needs a 'dimension' column beside it (long form: transcript, "
                       f"rater, dimension, score; read as dimension: {aliases_of('dimension')}), or name each "
                       "score column after its dimension (wide form: transcript, rater, invariant, ...)")


def _require_names(path: Path, where: str, kind: str, names: list[str], found: list[str], need_rater: bool) -> None:
    """A file with no transcript (or, for labels, no rater) column at all: one message naming the
    columns found and the names accepted, not one problem per row."""
    for name, why in (("transcript", ""), ("rater", ": human labels need a rater id on every row")):
        if name not in names and (name == "transcript" or need_rater):
            raise BadInput(f"{path}: {where} '{name}' {kind}{why} (found: {', '.join(found) or 'none'}; "
                           f"read as {name}: {aliases_of(name)})")


def _read_parquet(path: Path, meta_columns: frozenset[str], need_rater: bool) -> CellTable:
    """Every column as text through DuckDB (already a dependency: `export` writes Parquet with it), so a
    Parquet file is validated exactly as the same table written as CSV. There are no lines: a problem's
    'line' is the row number, counting the first row as 1."""
    import duckdb

    con = duckdb.connect()
    try:
        rel = con.read_parquet(str(path))
        header = [str(c) for c in rel.columns]
        _check_header(path, header, meta_columns, need_rater)
        select = ", ".join(f'CAST("{c.replace(chr(34), chr(34) * 2)}" AS VARCHAR)' for c in header)
        as_text = rel.query("t", f"SELECT {select} FROM t")
        assert as_text is not None
        data = as_text.fetchnumpy()
    except duckdb.Error as e:
        raise BadInput(f"{path}: not a readable Parquet file: {str(e).splitlines()[0]}") from None
    finally:
        con.close()
    cells = []
    for values in data.values():
        mask = np.ma.getmaskarray(values)
        col = np.asarray(np.ma.getdata(values), dtype=object).copy()
        col[mask] = None
        col[np.array([v is not None and not str(v).strip() for v in col], dtype=bool)] = None
        cells.append(col)
    n = len(cells[0]) if cells else 0
    keep = ~np.logical_and.reduce([c == None for c in cells]) if cells else np.zeros(0, bool)  # noqa: E711
    lines = np.flatnonzero(keep) + 1
    return CellTable({h.strip(): c[keep] for h, c in zip(header, cells, strict=True)}, int(keep.sum()) if n else 0,
                  lambda: lines)


def _read_csv(path: Path, text: str, meta_columns: frozenset[str], need_rater: bool) -> CellTable:
    sep = csv_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    try:
        header = next(reader)
    except csv.Error as e:
        raise BadInput(f"{path}: line 1: not valid CSV: {e}") from None
    _check_header(path, header, meta_columns, need_rater)
    lines, problems = _csv_scan(text, len(header), sep)
    if problems:
        raise problems_error(str(path), problems, "nothing was read")
    try:
        # every cell as text ("001" stays "001"), then each column as a categorical: a cell costs a
        # code and each distinct text one Python string. header=None: the header line is read as
        # data and fixes the width (with a header, pandas takes an extra leading field as an index)
        frame = pd.read_csv(io.StringIO(text, newline=""), header=None, dtype=str, na_filter=False, sep=sep,
                            keep_default_na=False, skip_blank_lines=True, engine="c")
    except (pd.errors.ParserError, ValueError, csv.Error) as e:
        raise BadInput(f"{path}: not valid CSV: {e}") from None
    frame = frame.iloc[1:].reset_index(drop=True)
    frame = pd.DataFrame({name: pd.Categorical(frame.pop(name)) for name in list(frame.columns)})
    blank_all = np.ones(len(frame), dtype=bool)
    blanks = []
    for name in frame.columns:
        codes = np.asarray(frame[name].cat.codes)
        empty = np.array([not str(c).strip() for c in frame[name].cat.categories], dtype=bool)
        blank = (codes < 0) | (empty[np.maximum(codes, 0)] if len(empty) else True)
        blank_all &= blank
        blanks.append(blank)
    keep = ~blank_all
    if len(frame.columns) != len(header) or int(keep.sum()) != len(lines):
        raise BadInput(f"{path}: not valid CSV: the rows could not be read consistently (check quoting)")
    columns = {}
    for h, name, blank in zip(header, frame.columns, blanks, strict=True):
        cells = np.asarray(frame[name].array, dtype=object)[keep]  # references to the distinct strings
        cells[blank[keep]] = None
        columns[h.strip()] = cells
    return CellTable(columns, len(lines), lambda: lines)


def _read_jsonl(text: str, meta_columns: frozenset[str], read_probs: bool) -> CellTable:
    """Line by line: a broken line is named, keys absent from a record stay ABSENT, a nested
    "scores" object supplies the record's dimension cells (its other keys are then ignored)."""
    columns: dict[str, list[Any]] = {}
    lines: list[int] = []
    problems: list[Problem] = []
    reserved = {"transcript", "rater", "dimension", "score"}
    seen: dict[str, None] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            problems.append(Problem(line=number, message=f"not valid JSON: {e.msg}"))
            continue
        if not isinstance(record, dict):
            problems.append(Problem(line=number, message="expected a JSON object"))
            continue
        flat = {str(k).strip(): v for k, v in record.items()}
        seen.update(dict.fromkeys(flat))
        scores = {_canonical(k): v for k, v in flat.items() if k not in meta_columns}.get("scores")
        if isinstance(scores, dict) and "dimension" not in {_canonical(k) for k in flat}:
            flat = {k: v for k, v in flat.items() if k in meta_columns or _canonical(k) in reserved
                    or (read_probs and LONG_PROB.fullmatch(_canonical(k)))}
            flat.update({SCORES_KEY + str(k).strip(): v for k, v in scores.items()})
        n = len(lines)
        for k, v in flat.items():
            col = columns.get(k)
            if col is None:
                col = columns[k] = [ABSENT] * n
            col.append(v)
        lines.append(number)
        for col in columns.values():
            if len(col) < n + 1:
                col.append(ABSENT)
    line_array = np.array(lines, dtype=np.int64)
    out = {k: np.array(v + [], dtype=object) for k, v in columns.items()}
    return CellTable(out, len(lines), lambda: line_array, problems, may_be_absent=True, keys_seen=list(seen))

