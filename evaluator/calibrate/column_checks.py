"""Validating label rows column by column: cells parsed, scale, duplicates, groups, probabilities.

Why a module of its own: every check gives the same verdict and the same message as the per-label
validation of `labels.py` (import into the store), because both use the same scalar helpers, but here
each distinct (dimension, cell) is parsed once (`parse_cell`), a flagged row's message is written only
for that row, and line numbers are worked out only when there is a problem to report. `columns.py`
calls `validate` once per file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from evaluator.calibrate.labels import Problem, _is_na, _parse_probs, parse_cell
from evaluator.calibrate.records import ScaleSpec
from evaluator.calibrate.score_files import ABSENT


def _second_judge_score(transcript: str, dimension: str, first_line: int) -> str:
    """A judge file with two scores for one transcript and dimension: most often an `evaluate export`
    of every judgment (re-runs, other judges and versions, probes), so say how to export one."""
    return (f"second judge score for {transcript} / {dimension} (first on line {first_line}); a judge file holds "
            "one score per transcript and dimension (from `evaluate export`: --current --model M --rubric-version V "
            "writes one judge's one judgment per transcript)")


def validate(frame: pd.DataFrame, rows: dict[str, np.ndarray], meta: dict[str, np.ndarray], prob_names: list[str],
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
        if dup[i] and kind == "judge":
            msg = _second_judge_score(tnames[i], dnames[i], lines()[first_of[i]])
        elif dup[i]:
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
            problems.append(Problem(line=int(lines()[i]), message=_second_judge_score(tnames[i], dnames[i],
                                                                                      lines()[f])))
    frame["status"] = pd.Categorical.from_codes(np.where(status < 0, 2, status),
                                                categories=["scored", "not_observed", "missing"])
    frame["score"] = np.where(status == 0, score, np.nan)
    return problems



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



class _Names:
    """names[i]: the value of a categorical column at row i, looked up only for rows with a problem
    (a column of 10^6 Python strings would cost more than the whole frame)."""

    def __init__(self, column: pd.Series) -> None:
        self.codes = np.asarray(column.cat.codes)
        self.categories = column.cat.categories

    def __getitem__(self, i: int | np.integer) -> str:
        return str(self.categories[self.codes[i]])



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

