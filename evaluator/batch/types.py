"""What a cohort run is asked to do and what it reports: shared by the runner and the dry-run
estimate (batch/estimate.py), so neither imports the other."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from evaluator.errors import BadInput
from evaluator.pipeline import JudgeOptions


@dataclass
class CohortRequest:
    """Everything `evaluate cohort` was asked, as the library sees it (the CLI only fills it in)."""

    path: Path
    cohort: str
    judge: JudgeOptions = field(default_factory=JudgeOptions)
    rubric: str | None = None
    db: Path | None = None
    concurrency: int = 8
    rpm: float | None = None
    tpm: float | None = None
    force: bool = False
    dry_run: bool = False
    max_cost: float | None = None
    flush_seconds: float = 1.0


class Counters(BaseModel):
    """Live and final counts. `scored` includes `cached` (reused judgments that were fully scored)."""

    total: int = 0
    scored: int = 0
    partial: int = 0
    unscored: int = 0
    cached: int = 0
    reread: int = Field(default=0, description="stored judgments not reused: made on a text the transcript is no "
                        "longer read as (store/texts.py); judged again")
    failed: int = 0
    skipped: int = 0
    in_flight: int = 0
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = 0.0

    @property
    def done(self) -> int:
        return self.scored + self.partial + self.unscored + self.failed + self.skipped


class CohortSummary(Counters):
    """What a cohort run (or dry run) reports: its counts plus what a reader needs to act on."""

    cohort: str
    run_id: str | None = None
    status: str = "completed"  # interrupted, aborted; "estimated" for a dry run
    message: str | None = None
    judge: dict[str, Any] = Field(default_factory=dict)
    db: str | None = None
    wall_seconds: float = 0.0
    dimensions: dict[str, dict[str, Any]] = Field(default_factory=dict)
    failures: list[dict[str, Any]] = Field(default_factory=list)
    not_scored: list[dict[str, Any]] = Field(
        default_factory=list, description="judged but partial or unscored: item, status, reason")
    warnings: list[dict[str, Any]] = Field(default_factory=list, description="item, warning")
    skipped_items: list[str] = Field(default_factory=list)
    dry_run: bool = False
    estimate: dict[str, Any] | None = None
    batch_pending: int = Field(
        default=0, description="--batch: transcripts whose requests await the provider (not a failure: collect later)")


def validate(request: CohortRequest) -> None:
    """Options checked once, for real runs and dry runs alike (bad values are exit 2, not a crash)."""
    if request.concurrency < 1:
        raise BadInput("--concurrency must be at least 1")
    if not request.cohort.strip():
        raise BadInput("--cohort needs a name")
    for name, value in (("--rpm", request.rpm), ("--tpm", request.tpm)):
        if value is not None and value <= 0:
            raise BadInput(f"{name} must be positive, got {value:g}")
    if request.max_cost is not None and request.max_cost < 0:
        raise BadInput(f"--max-cost cannot be negative, got {request.max_cost:g}")


def request_key(request: CohortRequest, judge_info: dict[str, Any]) -> str:
    """What makes two `evaluate cohort` commands "the same command" for resuming: the input, the
    cohort, the judge as it judges (model, prompt version, sampling), the rubric option and --force.
    Concurrency, rate limits and the budget change how a run goes, not what it judges."""
    ident = {"path": str(request.path.resolve()), "cohort": request.cohort, "judge": judge_info,
             "rubric": request.rubric, "force": request.force}
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()
