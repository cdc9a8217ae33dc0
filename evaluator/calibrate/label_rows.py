"""From a file's cells to label rows: one row per (record, dimension cell), in file order.

Why a module of its own: long form (transcript, rater, dimension, score), wide form (one column per
dimension) and a JSONL record's nested "scores" all become the same rows here, with the record-level
problems (no transcript, no rater, no dimension columns) worded as the per-label import of `labels.py`
words them. The rows are arrays, not pydantic records (about 20 bytes a label instead of ~1.2 KB),
so a 10^6-label file is read in bounded memory; `columns.py` validates them, `labels.py` imports them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from evaluator.calibrate.labels import IGNORED_COLUMNS, Problem, _canonical, _exact, problems_error
from evaluator.calibrate.score_files import (
    ABSENT,
    LONG_PROB,
    SCORES_KEY,
    WIDE_PROB,
    CellTable,
    FileFormat,
    read_table,
)
from evaluator.errors import BadInput


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
    file_format: FileFormat
    layout: Literal["long", "wide", "mixed"]
    n_records: int

    def lines(self) -> np.ndarray:
        return self.line_of_record()[self.rows["record"]]


def read_rows(path: Path | str, *, need_rater: bool = True, default_rater: str = "judge",
              meta_columns: frozenset[str] = frozenset(), read_probs: bool = False) -> RowsRead:
    """Parse a CSV (header row) or JSONL (one object a line) file into label rows; BadInput lists every
    structural problem (bad JSON, ragged CSV rows, missing columns or values) at once."""
    path = Path(path)
    for name in sorted(meta_columns):
        if _canonical(name) in {"transcript", "rater", "dimension", "score"}:
            raise BadInput(f"column '{name}' is the {_canonical(name)} column itself: --group-by and --system-col "
                           "name another column of the files (a document or system id)")
    table, sha, file_format = read_table(path, meta_columns, need_rater, read_probs)
    rows, meta, problems, prob_names, layout = _long_rows(table, need_rater, default_rater, meta_columns, read_probs)
    if problems:
        raise problems_error(str(path), problems, "nothing was read")
    if not len(rows["record"]):
        raise BadInput(f"{path}: no labels found (only a header?)")
    return RowsRead(rows=rows, meta=meta, prob_names=prob_names, line_of_record=table.line_of_record, sha256=sha,
                    file_format=file_format, layout=layout, n_records=table.n)


def _text(col: np.ndarray) -> np.ndarray:
    """Stripped text, None where empty, null or absent (ids, dimension names, group values)."""
    return np.array([None if v is None or v is ABSENT else (str(v).strip() or None) for v in col], dtype=object)


def _first(reason: np.ndarray, mask: np.ndarray, message: str) -> None:
    reason[mask & (reason == None)] = message  # noqa: E711 - elementwise on an object array


def _long_rows(table: CellTable, need_rater: bool, default_rater: str, meta_columns: frozenset[str],
               read_probs: bool) -> tuple[dict[str, Any], dict[str, np.ndarray], list[Problem], list[str], Any]:
    """One row per (record, dimension cell): record, transcript, rater, dimension, cell, column order;
    the record-level problems (a record with one gives no rows), as `labels.py` words them."""
    n = table.n
    meta_names = list(meta_columns)
    canon: dict[str, str] = {}
    for raw in table.columns:
        if raw not in meta_columns:
            role = raw if raw.startswith(SCORES_KEY) else _canonical(raw)
            if role not in canon or (_exact(raw) and not _exact(canon[role])):  # `transcript` over its aliases
                canon[role] = raw

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
                         if read_probs and (m := LONG_PROB.fullmatch(name))))
    cell_names = [name for name in canon if name not in {"transcript", "rater", "score", "scores", "dimension"}
                  and name not in IGNORED_COLUMNS and not (read_probs and LONG_PROB.fullmatch(name))]
    wide_probs: dict[str, list[tuple[int, str]]] = {}
    if read_probs:
        for name in list(cell_names):
            m = WIDE_PROB.fullmatch(name.removeprefix(SCORES_KEY))
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
        dim = name.removeprefix(SCORES_KEY)
        if dim not in dim_names:
            dim_names.append(dim)
        part = {"record": rows.astype(np.int32), "dimension": np.full(len(rows), dim_names.index(dim), dtype=np.int32),
                "cell": col(name)[rows], "order": np.full(len(rows), position, dtype=np.int32)}
        for k, raw in wide_probs.get(dim, []):
            part[f"p{k}"] = table.columns[raw][rows]
        parts.append(part)
    prob_names = sorted({k for p in parts for k in p if LONG_PROB.fullmatch(k)}, key=lambda c: int(c[1:]))
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

