"""Typed records that flow through the pipeline: ingest -> judge -> store -> report.

They are plain pydantic models with no behaviour beyond small derived properties, so every stage
(and every later consumer: cohorts, calibration, reports) can rely on one shape.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Role = Literal["interviewer", "candidate", "unknown"]
DimensionStatus = Literal["scored", "not_observed", "unscored"]
JudgmentStatus = Literal["scored", "partial", "unscored"]
JudgeKind = Literal["llm", "baseline"]


class CodeBlock(BaseModel):
    """A fenced code block found inside a turn."""

    language: str | None = None
    code: str


class Turn(BaseModel):
    """One speaker turn. `id` is stable for a given transcript text (t1, t2, ...)."""

    id: str
    index: int
    speaker: str
    role: Role
    text: str
    timestamp: str | None = None
    code_blocks: list[CodeBlock] = Field(default_factory=list)
    line: int = Field(1, description="1-based line of the transcript where the turn starts")


class CodeFile(BaseModel):
    """Code submitted beside the transcript (`--code FILE` or referenced by name)."""

    name: str
    path: str
    content: str
    language: str | None = None


class Transcript(BaseModel):
    """A parsed interview round. `content_hash` covers the text and every attached code file."""

    source: str
    title: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    turns: list[Turn]
    code_files: list[CodeFile] = Field(default_factory=list)
    content_hash: str
    warnings: list[str] = Field(default_factory=list)
    raw_text: str
    speakers_recognised: bool = True

    @property
    def candidate(self) -> str | None:
        value = self.metadata.get("candidate")
        return None if value is None else str(value)

    @property
    def exercise(self) -> str | None:
        value = self.metadata.get("exercise")
        return None if value is None else str(value)

    @property
    def session_date(self) -> str | None:
        value = self.metadata.get("date")
        return None if value is None else str(value)

    def candidate_turns(self) -> list[Turn]:
        return [t for t in self.turns if t.role == "candidate"]


class Evidence(BaseModel):
    """A verbatim quote supporting a score, located in the transcript or a code file."""

    quote: str
    source: str | None = Field(None, description="turn id (t3) or code file name where it was found")
    match: float | None = Field(None, description="fuzzy match ratio 0-100 (100 = exact after normalising)")
    role: Role | None = Field(None, description="whose words: the speaker role of the turn (code files: candidate)")
    start: int | None = Field(None, description="where the verifier found it: first character in the source's text")
    end: int | None = Field(None, description="one past its last character (the report highlights [start, end))")


class DimensionResult(BaseModel):
    """One dimension's verdict: a score within the scale, or a status saying why there is none."""

    id: str
    status: DimensionStatus
    score: int | None = None
    rationale: str = ""
    evidence: list[Evidence] = Field(default_factory=list)
    dropped_evidence: list[str] = Field(default_factory=list, description="quotes not found in the transcript")
    reason: str | None = Field(None, description="why the dimension is unscored")
    distribution: dict[int, float | None] | None = Field(
        None, description="probability of each scale level at the score's token (from log-probabilities, "
                          "renormalised over the levels); a null level is unknown (not among the alternatives)")
    expected_score: float | None = Field(None, description="probability-weighted score (G-Eval) over `distribution`")
    distribution_note: str | None = Field(None, description="why there is no distribution, or what it lacks")
    ensemble: dict[str, Any] | None = Field(
        None, description="an aggregate's member statistics (judge/aggregate.py): n, n_scored, min, max, "
                          "agreement, unstable, jurors, disagree, weights")


class Usage(BaseModel):
    """Calls, tokens, cost and latency of a judgment, summed over its model calls."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = 0.0
    latency_ms: float = 0.0

    def add(self, other: Usage) -> Usage:
        cost = None if self.cost_usd is None or other.cost_usd is None else self.cost_usd + other.cost_usd
        return Usage(
            calls=self.calls + other.calls,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cost_usd=cost,
            latency_ms=self.latency_ms + other.latency_ms,
        )


class Exchange(BaseModel):
    """One request to a model and what came back: kept verbatim for audit and repair analysis."""

    attempt: int
    purpose: Literal["initial", "repair"]
    dimensions: list[str]
    response_format: str
    request_messages: list[dict[str, Any]]
    raw_response: str | None = None
    reasoning: str | None = Field(None, description="a reasoning model's separate thinking, kept for audit")
    parsed: Any = None
    errors: list[str] = Field(default_factory=list)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    latency_ms: float = 0.0
    transport_attempts: int = 1
    error: str | None = None


class JudgeInfo(BaseModel):
    """Which judge produced a result (kind, model, prompt version, params); part of every cache key."""

    kind: JudgeKind
    model: str | None = None
    prompt_version: str
    params: dict[str, Any] = Field(default_factory=dict)
    note: str | None = None


class Flag(BaseModel):
    """Something a reader of the judgment should know (prompt injection, dropped evidence...)."""

    kind: str
    detail: str
    source: str | None = None


class Judgment(BaseModel):
    """The result of judging one transcript against one rubric with one judge."""

    status: JudgmentStatus
    transcript_hash: str
    source: str
    rubric_id: str
    rubric_version: str
    judge: JudgeInfo
    dimensions: list[DimensionResult]
    flags: list[Flag] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    exchanges: list[Exchange] = Field(default_factory=list)
    cache_key: str
    reason: str | None = None
    truncation: dict[str, Any] | None = None
    # 'aggregate': the median/jury of `members`, each an ordinary judgment of its own (stored first)
    kind: Literal["single", "aggregate"] = "single"
    members: list[Member] = Field(default_factory=list)

    @staticmethod
    def status_of(dimensions: list[DimensionResult]) -> JudgmentStatus:
        """Scored when nothing is unscored, unscored when nothing is, partial otherwise."""
        unscored = sum(d.status == "unscored" for d in dimensions)
        if unscored == 0:
            return "scored"
        return "unscored" if unscored == len(dimensions) else "partial"


class Member(BaseModel):
    """One member of an aggregate judgment: a juror's sample. `judgment` is new in this run;
    `judgment_id` points at an already stored one reused from the cache (then `judgment` is its
    stored copy, not written again)."""

    juror: str
    sample: int
    judgment: Judgment
    judgment_id: str | None = None
    weight: float | None = None


Judgment.model_rebuild()
