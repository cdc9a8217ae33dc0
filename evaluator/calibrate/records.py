"""Typed records shared by labels, agreement and calibration.

A score is a float on both sides: humans may give a mean of several raters and a judge may give a
probability-weighted expected score. `status` keeps "not observed" and "missing" apart from scores,
because treating either as a number (or silently as the other) would bias every statistic.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

LabelStatus = Literal["scored", "not_observed", "missing"]


class HumanLabel(BaseModel):
    """One rater's label for one dimension of one transcript."""

    transcript: str = Field(description="transcript key: content hash in the store, or the id used in a plain file")
    rater: str
    dimension: str
    status: LabelStatus
    score: float | None = None
    line: int | None = Field(None, description="line of the label file it came from")


class JudgeScore(BaseModel):
    """The judge's score for one dimension of one transcript (fractional scores allowed)."""

    transcript: str
    dimension: str
    status: LabelStatus
    score: float | None = None
    judgment_id: str | None = None
    probs: list[float] | None = Field(
        None, description="the judge's probability of each scale level, lowest level first (from logprobs); "
                          "a calibration feature when given")


class ScaleSpec(BaseModel):
    """The ordinal scale scores live on (from the rubric, or inferred for plain files)."""

    min: int
    max: int

    @property
    def levels(self) -> list[int]:
        return list(range(self.min, self.max + 1))


class JudgeIdentity(BaseModel):
    """Which judge produced a set of scores: what a calibration is valid for."""

    judge_kind: str
    model: str | None = None
    prompt_version: str
    rubric_versions: list[str] = Field(default_factory=list)

    @property
    def label(self) -> str:
        return self.model or self.judge_kind


class LinearParams(BaseModel):
    """The feature side shared by the ridge and ordinal models, as plain numbers: which features,
    SimpleImputer(mean, indicator) -> StandardScaler, then one coefficient per column."""

    features: list[str]
    impute: list[float]
    indicator_columns: list[int]
    mean: list[float]
    scale: list[float]
    coef: list[float]
