"""The Judge protocol: one async method, two implementations (LLM via litellm, offline baseline).

Async so that the cohort runner can overlap many judgments; a single transcript simply runs it with
`asyncio.run`. There is deliberately no sync twin.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from evaluator.models import DimensionResult, Exchange, Flag, JudgeInfo, Transcript, Usage
from evaluator.rubrics import Rubric


class JudgeOutput(BaseModel):
    """What a judge returns; the pipeline adds identity (hashes, cache key) and stores it."""

    dimensions: list[DimensionResult]
    exchanges: list[Exchange] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    flags: list[Flag] = Field(default_factory=list)
    reason: str | None = None
    truncation: dict[str, Any] | None = Field(None, description="what was cut to fit the context (turn ids, files)")


@runtime_checkable
class Judge(Protocol):
    """Scores every dimension of a rubric for one transcript."""

    def info(self) -> JudgeInfo:
        """Identity of this judge (kind, model, prompt version, sampling params): part of the cache key."""
        ...

    async def judge(self, transcript: Transcript, rubric: Rubric) -> JudgeOutput:
        """Return one DimensionResult per rubric dimension, in rubric order. Never raises for bad
        model output (that is an `unscored` result); raises JudgeUnavailable when the model cannot
        be used at all."""
        ...
