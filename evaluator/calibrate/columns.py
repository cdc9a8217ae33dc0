"""Read plain judge / human score files (`--judge J --human H`) into columns, validated column by column.

Why columns: one pydantic record per label cost about 1.2 KB (twice that while validating), so a
100,000-item x 10-dimension judge file with three raters' labels needed several GB before any
statistic ran. Here a file becomes one long frame (categorical transcript, rater and dimension, a
status and a float score: about 20 bytes a label) that `agreement_frames` consumes directly.

What each check does is the same as for the per-label validation of `labels.py` (import into the
store), and so are the messages, because every message comes from the same scalar helpers: cells are
parsed once per distinct value of a dimension (`parse_cell`), a flagged row's message is written only
for that row, and line numbers are worked out only when there is a problem to report.

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
    _is_na,
    _parse_probs,
    aliases_of,
    parse_cell,
    problems_error,
)
from evaluator.calibrate.records import HumanLabel, JudgeScore, ScaleSpec
from evaluator.errors import BadInput
from evaluator.files import csv_delimiter, open_regular, read_capped

_LONG_PROB = re.compile(r"p(\d+)")
_WIDE_PROB = re.compile(r"(.+)_p(\d+)")
_SCORES_KEY = "\x00scores\x00"  # prefix of a nested "scores" object's keys in a JSONL record


class _Absent:
    """A JSONL record without this key (not the same as a null value)."""

    def __repr__(self) -> str:
        return "<absent>"


ABSENT: Any = _Absent()


@dataclass
class _Table:
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


@dataclass
class ScoreColumns:
    """A validated plain score file as columns.

    `frame`: transcript, rater, dimension (categoricals), status (categorical: scored / not_observed /
    missing), score (float, NaN unless scored), record (the row's record, for line numbers), and for
    judge files with level probabilities p1..pK (float, NaN where a row gives fewer levels or none).
    `meta`: one row per transcript, the named extra columns (group, system)."""

    path: str
    frame: pd.DataFrame
    meta: pd.DataFrame
    line_of_record: Callable[[], np.ndarray]

    def lines(self, rows: np.ndarray) -> np.ndarray:
        return self.line_of_record()[self.frame["record"].to_numpy()[rows]]

    @property
    def prob_columns(self) -> list[str]:
        return [c for c in self.frame.columns if _LONG_PROB.fullmatch(str(c))]

    @property
    def probs(self) -> dict[tuple[str, str], list[float]]:
        """(transcript, dimension) -> level probabilities, for the rows that give them."""
        cols = self.prob_columns
        if not cols:
            return {}
        values = self.frame[cols].to_numpy(float)
        has = ~np.isnan(values[:, 0])
        t, d = self.frame["transcript"].astype(str).to_numpy(), self.frame["dimension"].astype(str).to_numpy()
        return {(t[i], d[i]): [v for v in values[i] if not np.isnan(v)] for i in np.flatnonzero(has)}


# -- parsing ----------------------------------------------------------------------------------------------
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
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise BadInput(f"{path}: line 1: column(s) {', '.join(dupes)} appear more than once")
    _require_names(path, "line 1: no", "column", names, header, need_rater)
    if "dimension" in names and "score" not in names:
        raise BadInput(f"{path}: line 1: long form needs a 'score' column beside 'dimension'")


def _require_names(path: Path, where: str, kind: str, names: list[str], found: list[str], need_rater: bool) -> None:
    """A file with no transcript (or, for labels, no rater) column at all: one message naming the
    columns found and the names accepted, not one problem per row."""
    for name, why in (("transcript", ""), ("rater", ": human labels need a rater id on every row")):
        if name not in names and (name == "transcript" or need_rater):
            raise BadInput(f"{path}: {where} '{name}' {kind}{why} (found: {', '.join(found) or 'none'}; "
                           f"read as {name}: {aliases_of(name)})")


def _read_parquet(path: Path, meta_columns: frozenset[str], need_rater: bool) -> _Table:
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
    return _Table({h.strip(): c[keep] for h, c in zip(header, cells, strict=True)}, int(keep.sum()) if n else 0,
                  lambda: lines)


def _read_csv(path: Path, text: str, meta_columns: frozenset[str], need_rater: bool) -> _Table:
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
    return _Table(columns, len(lines), lambda: lines)


def _read_jsonl(text: str, meta_columns: frozenset[str], read_probs: bool) -> _Table:
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
                    or (read_probs and _LONG_PROB.fullmatch(_canonical(k)))}
            flat.update({_SCORES_KEY + str(k).strip(): v for k, v in scores.items()})
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
    return _Table(out, len(lines), lambda: line_array, problems, may_be_absent=True, keys_seen=list(seen))


# -- from records to labels -----------------------------------------------------------------------------------
def _text(col: np.ndarray) -> np.ndarray:
    """Stripped text, None where empty, null or absent (ids, dimension names, group values)."""
    return np.array([None if v is None or v is ABSENT else (str(v).strip() or None) for v in col], dtype=object)


def _first(reason: np.ndarray, mask: np.ndarray, message: str) -> None:
    reason[mask & (reason == None)] = message  # noqa: E711 - elementwise on an object array


def _long_rows(table: _Table, need_rater: bool, default_rater: str, meta_columns: frozenset[str],
               read_probs: bool) -> tuple[dict[str, Any], dict[str, np.ndarray], list[Problem], list[str], Any]:
    """One row per (record, dimension cell): record, transcript, rater, dimension, cell, column order;
    the record-level problems (a record with one gives no rows), as `labels.py` words them."""
    n = table.n
    meta_names = list(meta_columns)
    canon: dict[str, str] = {}
    for raw in table.columns:
        if raw not in meta_columns:
            canon.setdefault(raw if raw.startswith(_SCORES_KEY) else _canonical(raw), raw)

    def col(name: str) -> np.ndarray:
        raw = canon.get(name)
        return table.columns[raw] if raw is not None else np.full(n, ABSENT, dtype=object)

    reason = np.full(n, None, dtype=object)
    meta_values = {}
    for name in meta_names:
        values = _text(table.columns.get(name, np.full(n, ABSENT, dtype=object)))
        meta_values[name] = values
        _first(reason, values == None, f"no value in column '{name}'")  # noqa: E711
    transcript = _text(col("transcript"))
    _first(reason, transcript == None, "no transcript given")  # noqa: E711
    rater = _text(col("rater"))
    if need_rater:
        _first(reason, rater == None, "no rater given")  # noqa: E711
    rater[rater == None] = default_rater  # noqa: E711
    dim_col = col("dimension")
    is_long = table.given(dim_col) if "dimension" in canon else np.zeros(n, dtype=bool)
    dimension = _text(dim_col)
    _first(reason, is_long & (dimension == None), "no dimension given")  # noqa: E711
    score_col = col("score")
    _first(reason, is_long & ~table.given(score_col),
           "no score field (use an empty value for a missing label)")
    long_probs = sorted(((int(m.group(1)), raw) for name, raw in canon.items()
                         if read_probs and (m := _LONG_PROB.fullmatch(name))))
    cell_names = [name for name in canon if name not in {"transcript", "rater", "score", "scores", "dimension"}
                  and name not in IGNORED_COLUMNS and not (read_probs and _LONG_PROB.fullmatch(name))]
    wide_probs: dict[str, list[tuple[int, str]]] = {}
    if read_probs:
        for name in list(cell_names):
            m = _WIDE_PROB.fullmatch(name.removeprefix(_SCORES_KEY))
            if m:
                cell_names.remove(name)
                wide_probs.setdefault(m.group(1), []).append((int(m.group(2)), canon[name]))
    present = {name: table.given(col(name)) for name in cell_names}
    n_cells = sum(present.values(), np.zeros(n, dtype=int))
    _first(reason, ~is_long & (n_cells == 0), "no dimension columns (long form needs transcript, rater, "
                                              "dimension, score; wide form one column per dimension)")
    problems = list(table.problems)
    lines = table.line_of_record() if (reason != None).any() else None  # noqa: E711
    if lines is not None:
        problems += [Problem(line=int(lines[i]), message=str(reason[i])) for i in np.flatnonzero(reason != None)]  # noqa: E711
    ok = reason == None  # noqa: E711
    # dimensions as codes: the long records' names first, then the wide columns'
    long_ok = np.flatnonzero(ok & is_long)
    long_codes, dim_names = pd.factorize(pd.Series(dimension[long_ok], dtype=object))
    dim_names = [str(d) for d in dim_names]
    parts: list[dict[str, np.ndarray]] = []
    if len(long_ok):
        part = {"record": long_ok.astype(np.int32), "dimension": long_codes.astype(np.int32),
                "cell": score_col[long_ok], "order": np.zeros(len(long_ok), dtype=np.int32)}
        for k, raw in long_probs:
            part[f"p{k}"] = table.columns[raw][long_ok]
        parts.append(part)
    for position, name in enumerate(cell_names, start=1):
        rows = np.flatnonzero(ok & ~is_long & present[name])
        if not len(rows):
            continue
        dim = name.removeprefix(_SCORES_KEY)
        if dim not in dim_names:
            dim_names.append(dim)
        part = {"record": rows.astype(np.int32), "dimension": np.full(len(rows), dim_names.index(dim), dtype=np.int32),
                "cell": col(name)[rows], "order": np.full(len(rows), position, dtype=np.int32)}
        for k, raw in wide_probs.get(dim, []):
            part[f"p{k}"] = table.columns[raw][rows]
        parts.append(part)
    prob_names = sorted({k for p in parts for k in p if _LONG_PROB.fullmatch(k)}, key=lambda c: int(c[1:]))
    names = ["record", "dimension", "cell", "order", *prob_names]
    if not parts:
        parts = [{"record": np.empty(0, np.int32), "dimension": np.empty(0, np.int32),
                  "cell": np.empty(0, object), "order": np.empty(0, np.int32)}]
    if len(parts) == 1:
        merged = {k: parts[0].get(k, np.full(len(parts[0]["record"]), ABSENT, dtype=object)) for k in names}
    else:  # file order: by record, then the record's columns
        order = np.lexsort((np.concatenate([p["order"] for p in parts]), np.concatenate([p["record"] for p in parts])))
        sizes = [len(p["record"]) for p in parts]
        merged = {}
        for column in names:  # one column at a time, each part's piece released once copied
            pieces = [p.pop(column, None) for p in parts]
            merged[column] = np.concatenate([np.full(size, ABSENT, dtype=object) if x is None else x
                                        for x, size in zip(pieces, sizes, strict=True)])[order]
            del pieces
    del parts
    rec = merged["record"]
    t_codes, t_names = pd.factorize(pd.Series(transcript, dtype=object))
    r_codes, r_names = pd.factorize(pd.Series(rater, dtype=object))
    merged["transcript"] = pd.Categorical.from_codes(t_codes[rec], [str(t) for t in t_names])
    merged["rater"] = pd.Categorical.from_codes(r_codes[rec], [str(r) for r in r_names])
    merged["dimension"] = pd.Categorical.from_codes(merged["dimension"], dim_names)
    meta = {name: values[rec] for name, values in meta_values.items()}
    n_long = int(is_long.sum())
    layout = "long" if n_long == n else "wide" if n_long == 0 else "mixed"
    return merged, meta, problems, prob_names, layout  # arrays, not a frame: pandas would turn None into NaN


def _parse_cells(dimension: pd.Categorical, cells: np.ndarray, na: tuple[float, ...],
                 na_by_dimension: dict[str, tuple[float, ...]],
                 text_only: bool) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """(status code 0 scored / 1 not observed / 2 missing / -1 bad, score, row -> error message): each
    distinct (dimension, cell) parsed once by the same `parse_cell` the store import uses. `text_only`
    (CSV): every cell is a string or None; JSON cells of other types (true, objects) are parsed one by one
    (hashing would merge true with 1, and objects do not hash)."""
    n = len(cells)
    status = np.full(n, 2, dtype=np.int8)  # None: missing
    score = np.full(n, np.nan)
    errors: dict[int, str] = {}  # row -> message
    if text_only:
        plain = ~pd.isna(cells)
        odd = np.empty(0, dtype=np.int64)
    else:
        plain = np.array([type(v) in (str, int, float) for v in cells], dtype=bool)
        odd = np.flatnonzero(~plain & (cells != None))  # noqa: E711 - elementwise
    dims = np.asarray(dimension.codes).astype(np.int64)
    names = [str(c) for c in dimension.categories]
    rows = np.flatnonzero(plain)
    codes, uniques = pd.factorize(cells[rows], use_na_sentinel=False)
    pair_codes, pairs = _dense_factorize(dims[rows] * max(len(uniques), 1) + codes, len(names) * max(len(uniques), 1))
    del codes
    parsed = [_parse_one(uniques[k % max(len(uniques), 1)], na + na_by_dimension.get(names[k // max(len(uniques), 1)],
                                                                                   ()))
              for k in pairs]
    if len(rows):
        status[rows] = np.array([p[0] for p in parsed], dtype=np.int8)[pair_codes]
        score[rows] = np.array([p[1] for p in parsed], dtype=float)[pair_codes]
        for j in np.flatnonzero(status[rows] < 0):
            errors[int(rows[j])] = str(parsed[pair_codes[j]][2])
    for i in odd:
        status[i], score[i], message = _parse_one(cells[i], na + na_by_dimension.get(names[dims[i]], ()))
        if message is not None:
            errors[int(i)] = message
    return status, score, errors


def _dense_factorize(key: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """pd.factorize for small non-negative keys (< size), by a lookup table: a hash table over 10^6
    keys costs more memory than the keys themselves."""
    if size > 4 * len(key) + 1_000_000:
        codes, uniques = pd.factorize(key)
        return codes, np.asarray(uniques)
    seen = np.zeros(size, dtype=bool)
    seen[key] = True
    uniques = np.flatnonzero(seen)
    del seen
    lookup = np.zeros(size, dtype=np.int64)
    lookup[uniques] = np.arange(len(uniques))
    return lookup[key], uniques


_STATUS = {"scored": 0, "not_observed": 1, "missing": 2}


def _parse_one(cell: Any, na: tuple[float, ...]) -> tuple[int, float, str | None]:
    if _is_na(cell, na):
        return 1, float("nan"), None
    try:
        status, value = parse_cell(cell)
    except ValueError as e:
        return -1, float("nan"), str(e)
    return _STATUS[status], float("nan") if value is None else value, None


def _floats(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(float value, ok) per cell: float() of each distinct value, as `_parse_probs` converts them."""
    def conv(v: Any) -> float | None:
        if v is ABSENT:
            return None
        try:
            return float(v)
        except (TypeError, ValueError):
            return None

    hashable = np.array([type(v) in (str, int, float) for v in values], dtype=bool)
    out = np.full(len(values), np.nan)
    ok = np.zeros(len(values), dtype=bool)
    rows = np.flatnonzero(hashable)
    codes, uniques = pd.factorize(pd.Series(values[rows], dtype=object), use_na_sentinel=False)
    got = [conv(v) for v in uniques]
    vals = np.array([np.nan if g is None else g for g in got], dtype=float)
    good = np.array([g is not None for g in got], dtype=bool)
    out[rows], ok[rows] = vals[codes], good[codes]
    for i in np.flatnonzero(~hashable):
        g = conv(values[i])
        out[i], ok[i] = (np.nan if g is None else g), g is not None
    return out, ok


# -- the reader -------------------------------------------------------------------------------------------
@dataclass
class RowsRead:
    """A file's labels before validation: one entry per (record, dimension cell) in file order (arrays:
    record, transcript, rater, dimension, cell and p1..pK), the named extra columns per row, and what
    traces the file (sha256, format, layout, number of records)."""

    rows: dict[str, Any]
    meta: dict[str, np.ndarray]
    prob_names: list[str]
    line_of_record: Callable[[], np.ndarray]
    sha256: str
    file_format: Literal["csv", "jsonl", "parquet"]
    layout: Literal["long", "wide", "mixed"]
    n_records: int

    def lines(self) -> np.ndarray:
        return self.line_of_record()[self.rows["record"]]


def _is_parquet(path: Path) -> bool:
    """Sniffed through `open_regular`: a plain open() of a FIFO waits for a writer forever."""
    try:
        with open_regular(path, "scores file") as f:
            return f.read(4) == b"PAR1"
    except (BadInput, OSError):
        return False  # reported, in its own words, by the reader that opens it


def read_rows(path: Path | str, *, need_rater: bool = True, default_rater: str = "judge",
              meta_columns: frozenset[str] = frozenset(), read_probs: bool = False) -> RowsRead:
    """Parse a CSV (header row) or JSONL (one object a line) file into label rows; BadInput lists every
    structural problem (bad JSON, ragged CSV rows, missing columns or values) at once."""
    path = Path(path)
    for name in sorted(meta_columns):
        if _canonical(name) in {"transcript", "rater", "dimension", "score"}:
            raise BadInput(f"column '{name}' is the {_canonical(name)} column itself: --group-by and --system-col "
                           "name another column of the files (a document or system id)")
    file_format: Literal["csv", "jsonl", "parquet"]
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
    rows, meta, problems, prob_names, layout = _long_rows(table, need_rater, default_rater, meta_columns, read_probs)
    if problems:
        raise problems_error(str(path), problems, "nothing was read")
    if not len(rows["record"]):
        raise BadInput(f"{path}: no labels found (only a header?)")
    return RowsRead(rows=rows, meta=meta, prob_names=prob_names, line_of_record=table.line_of_record, sha256=sha,
                    file_format=file_format, layout=layout, n_records=table.n)


def read_columns(path: Path | str, *, kind: Literal["judge", "human"], scale: ScaleSpec | None = None,
                 na: tuple[float, ...] = (), na_by_dimension: dict[str, tuple[float, ...]] | None = None,
                 meta_columns: frozenset[str] = frozenset()) -> ScoreColumns:
    """Read a plain score file (no store, no rubric) and validate it; BadInput lists every problem.

    `na`: sentinel values that mean "not applicable" (read as not observed, never as scores);
    `na_by_dimension`: more of them for one dimension each. `scale`: scores outside it are problems.
    `meta_columns`: columns kept as attributes of the transcript (e.g. a document or system id); a
    transcript must carry one value per column. Judge files may give level probabilities (`p1..pK`
    in long form, `<dimension>_p1..` in wide form): they must be numbers in [0, 1] summing to 1."""
    got = read_rows(path, need_rater=kind == "human", default_rater=kind, meta_columns=meta_columns,
                    read_probs=kind == "judge")
    rows, meta, prob_names, line_of_record, is_jsonl = got.rows, got.meta, got.prob_names, got.line_of_record, \
        got.file_format == "jsonl"
    del got
    frame = pd.DataFrame({
        **{c: pd.Categorical(rows[c]).remove_unused_categories() for c in ("transcript", "rater", "dimension")},
        "record": rows["record"]})
    problems = _validate(frame, rows, meta, prob_names, kind, scale, na, na_by_dimension or {}, line_of_record,
                         text_only=not is_jsonl)
    if problems:
        raise problems_error(str(path), problems, "nothing was read")
    first = first_rows(frame["transcript"])
    meta_frame = pd.DataFrame({"transcript": frame["transcript"].iloc[first].astype(str).to_numpy(),
                               **{name: values[first] for name, values in meta.items()}})
    return ScoreColumns(path=str(path), frame=frame, meta=meta_frame,
                        line_of_record=line_of_record)


def _validate(frame: pd.DataFrame, rows: dict[str, np.ndarray], meta: dict[str, np.ndarray], prob_names: list[str],
              kind: str, scale: ScaleSpec | None, na: tuple[float, ...], na_by_dimension: dict[str, tuple[float, ...]],
              line_of_record: Callable[[], np.ndarray], text_only: bool) -> list[Problem]:
    """Fill frame's status, score and p columns; every problem with its line (rows in file order)."""
    n = len(frame)
    lines_cache: list[np.ndarray] = []

    def lines() -> np.ndarray:
        if not lines_cache:
            lines_cache.append(line_of_record()[frame["record"].to_numpy()])
        return lines_cache[0]

    t_codes, r_codes, d_codes = (np.asarray(frame[c].cat.codes, dtype=np.int64) for c in
                                 ("transcript", "rater", "dimension"))
    n_t, n_r = len(frame["transcript"].cat.categories), len(frame["rater"].cat.categories)
    key = (d_codes * n_r + r_codes) * max(n_t, 1) + t_codes
    first_of = _first_index(key)
    dup = first_of != np.arange(n)
    status, score, error = _parse_cells(frame["dimension"].array, rows["cell"], na, na_by_dimension, text_only)
    if scale is not None:
        outside = (status == 0) & ~((score >= scale.min) & (score <= scale.max))
    else:
        outside = np.zeros(n, dtype=bool)
    bad = dup | (status < 0) | outside
    problems: list[Problem] = []
    tnames, rnames, dnames = (_Names(frame[c]) for c in ("transcript", "rater", "dimension"))
    for i in np.flatnonzero(bad):
        if dup[i]:
            msg = (f"duplicate label for {tnames[i]} / rater {rnames[i]} / {dnames[i]} "
                   f"(first given on line {lines()[first_of[i]]})")
        elif status[i] < 0:
            msg = f"{dnames[i]}: {error[int(i)]}"
        else:
            assert scale is not None
            msg = f"{dnames[i]}: score {score[i]:g} is outside the scale {scale.min}-{scale.max}"
        problems.append(Problem(line=int(lines()[i]), message=msg))
    for name, values in meta.items():  # a transcript's first row fixes its group
        first = values[_first_index(t_codes)]
        for i in np.flatnonzero(values != first):
            problems.append(Problem(line=int(lines()[i]), message=(
                f"{tnames[i]}: column '{name}' is '{values[i]}' here but '{first[i]}' on an earlier row; "
                "a transcript belongs to one group")))
    for name in prob_names:
        frame[name] = np.nan
    if prob_names:
        problems += _check_probs(frame, rows, prob_names, dnames, lines)
    if kind == "judge":
        valid = np.flatnonzero(~bad)
        item = d_codes[valid] * max(n_t, 1) + t_codes[valid]
        first = _first_index(item)
        for j in np.flatnonzero(first != np.arange(len(valid))):
            i, f = valid[j], valid[first[j]]
            problems.append(Problem(line=int(lines()[i]), message=(
                f"second judge score for {tnames[i]} / {dnames[i]} (first on line {lines()[f]}); "
                "a judge file holds one score per transcript and dimension")))
    frame["status"] = pd.Categorical.from_codes(np.where(status < 0, 2, status),
                                                categories=["scored", "not_observed", "missing"])
    frame["score"] = np.where(status == 0, score, np.nan)
    return problems


class _Names:
    """names[i]: the value of a categorical column at row i, looked up only for rows with a problem
    (a column of 10^6 Python strings would cost more than the whole frame)."""

    def __init__(self, column: pd.Series) -> None:
        self.codes = np.asarray(column.cat.codes)
        self.categories = column.cat.categories

    def __getitem__(self, i: int | np.integer) -> str:
        return str(self.categories[self.codes[i]])


def first_rows(column: pd.Series) -> np.ndarray:
    """Row of the first appearance of each value of a categorical column, in order of appearance."""
    _, first = np.unique(np.asarray(column.cat.codes), return_index=True)
    return np.sort(first)


def distinct(column: pd.Series) -> list[str]:
    """The values of a categorical column in order of first appearance."""
    return [str(v) for v in column.iloc[first_rows(column)]]


def _first_index(key: np.ndarray) -> np.ndarray:
    """For each position, the position of the first occurrence of its key."""
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return first[inverse]


def _check_probs(frame: pd.DataFrame, rows: dict[str, np.ndarray], prob_names: list[str], dnames: _Names,
                 lines: Callable[[], np.ndarray]) -> list[Problem]:
    """Level probabilities: p1..pK without gaps, numbers in [0, 1] summing to 1 (then normalised)."""
    raw = {c: rows[c] for c in prob_names}
    given = np.column_stack([np.array([v is not ABSENT for v in raw[c]], dtype=bool) for c in prob_names])
    values = np.full(given.shape, np.nan)
    number = np.zeros(given.shape, dtype=bool)
    for j, c in enumerate(prob_names):
        values[:, j], number[:, j] = _floats(raw[c])
    has = given.any(axis=1)
    gap = has & (given != (np.cumsum(~given, axis=1) == 0)).any(axis=1)
    levels = [int(c[1:]) for c in prob_names]
    if levels != list(range(1, len(levels) + 1)):
        gap = has.copy()
    not_number = (given & ~number).any(axis=1)
    with np.errstate(invalid="ignore"):
        outside = (given & ~((values >= 0) & (values <= 1))).any(axis=1)
    total = np.where(given, values, 0).sum(axis=1)
    bad_sum = np.abs(total - 1) > 0.02
    flagged = has & (gap | not_number | outside | bad_sum)
    problems = []
    ok = has & ~flagged
    norm = np.where(given, values, np.nan) / np.where(total == 0, 1, total)[:, None]
    for i in np.flatnonzero(flagged):
        cells = {int(c[1:]): raw[c][i] for c in prob_names if raw[c][i] is not ABSENT}
        got = _parse_probs(cells)
        if isinstance(got, str):
            problems.append(Problem(line=int(lines()[i]), message=f"{dnames[i]}: {got}"))
        else:  # flagged only by the column layout (levels given elsewhere): the scalar check accepts it
            ok[i] = True
            norm[i] = np.nan
            for k, v in zip(sorted(cells), got, strict=True):
                norm[i, prob_names.index(f"p{k}")] = v
    for j, c in enumerate(prob_names):
        frame[c] = np.where(ok, norm[:, j], np.nan)
    return problems


# -- records, where a caller needs them ------------------------------------------------------------------
def judge_records(frame: pd.DataFrame) -> list[JudgeScore]:
    """JudgeScore per row (with its level probabilities): for calibration, which works on records.
    Built without validation: every value was validated on its column."""
    cols = [c for c in frame.columns if _LONG_PROB.fullmatch(str(c))]
    probs = frame[cols].to_numpy(float) if cols else None
    out = []
    for i, (t, d, s, v) in enumerate(zip(frame["transcript"].astype(str), frame["dimension"].astype(str),
                                         frame["status"].astype(str), frame["score"].to_numpy(float), strict=True)):
        p = None
        if probs is not None and not np.isnan(probs[i, 0]):
            p = [float(x) for x in probs[i] if not np.isnan(x)]
        out.append(JudgeScore.model_construct(transcript=t, dimension=d, status=s,
                                              score=None if np.isnan(v) else float(v), judgment_id=None, probs=p))
    return out


def human_records(frame: pd.DataFrame, line_of_record: Callable[[], np.ndarray] | None = None) -> list[HumanLabel]:
    """HumanLabel per row: for calibration, which works on records (validated on the columns already)."""
    lines = line_of_record()[frame["record"].to_numpy()] if line_of_record is not None and "record" in frame \
        else np.zeros(len(frame), dtype=np.int64)
    return [HumanLabel.model_construct(transcript=t, rater=r, dimension=d, status=s,
                                       score=None if np.isnan(v) else float(v), line=int(ln) or None)
            for t, r, d, s, v, ln in zip(frame["transcript"].astype(str), frame["rater"].astype(str),
                                         frame["dimension"].astype(str), frame["status"].astype(str),
                                         frame["score"].to_numpy(float), lines, strict=True)]
