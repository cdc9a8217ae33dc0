"""Read plain judge / human score files (`--judge J --human H`) into columns, validated column by column.

Why columns: one pydantic record per label cost about 1.2 KB (twice that while validating), so a
100,000-item x 10-dimension judge file with three raters' labels needed several GB before any
statistic ran. Here a file becomes one long frame (categorical transcript, rater and dimension, a
status and a float score: about 20 bytes a label) that `agreement_frames` consumes directly.

The stages, one module each: `score_files.py` reads CSV, JSONL or Parquet into raw cells and names
structural problems by line; `label_rows.py` turns long, wide or nested records into label rows;
`column_checks.py` validates them with the same helpers and messages as the per-label validation of
`labels.py` (import into the store). This module runs them and hands out the frame (or records).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from evaluator.calibrate.column_checks import validate
from evaluator.calibrate.label_rows import read_rows
from evaluator.calibrate.labels import problems_error
from evaluator.calibrate.records import HumanLabel, JudgeScore, ScaleSpec
from evaluator.calibrate.score_files import LONG_PROB


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
        return [c for c in self.frame.columns if LONG_PROB.fullmatch(str(c))]

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
    problems = validate(frame, rows, meta, prob_names, kind, scale, na, na_by_dimension or {}, line_of_record,
                         text_only=not is_jsonl)
    if problems:
        raise problems_error(str(path), problems, "nothing was read")
    first = first_rows(frame["transcript"])
    meta_frame = pd.DataFrame({"transcript": frame["transcript"].iloc[first].astype(str).to_numpy(),
                               **{name: values[first] for name, values in meta.items()}})
    return ScoreColumns(path=str(path), frame=frame, meta=meta_frame,
                        line_of_record=line_of_record)



def first_rows(column: pd.Series) -> np.ndarray:
    """Row of the first appearance of each value of a categorical column, in order of appearance."""
    _, first = np.unique(np.asarray(column.cat.codes), return_index=True)
    return np.sort(first)


def distinct(column: pd.Series) -> list[str]:
    """The values of a categorical column in order of first appearance."""
    return [str(v) for v in column.iloc[first_rows(column)]]



# -- records, where a caller needs them ------------------------------------------------------------------
def judge_records(frame: pd.DataFrame) -> list[JudgeScore]:
    """JudgeScore per row (with its level probabilities): for calibration, which works on records.
    Built without validation: every value was validated on its column."""
    cols = [c for c in frame.columns if LONG_PROB.fullmatch(str(c))]
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
