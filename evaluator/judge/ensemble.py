"""Repeated samples and juries: one composite Judge over ordinary member judges.

Why members are ordinary judgments: each (model, sampling parameters, sample index) is judged,
evidence-checked, cached and stored exactly like a single judgment, with its own cache key. Raising
`--samples` from 3 to 5 therefore pays only for samples 3 and 4; adding a juror pays only for that
juror. The aggregate is one more judgment (kind 'aggregate') that references its members, so the
report, agreement with humans and calibration use it like any other judge.

Sampling: with K > 1 samples, sample i is asked with the seed `--seed + i` (0 + i without one)
and, unless `--temperature` is given, at `SAMPLE_TEMPERATURE` (samples at temperature 0 would only
measure the provider's nondeterminism). With K = 1 a juror is judged exactly as a plain run, so a
jury reuses plain judgments already stored for its models.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from evaluator.errors import BadInput
from evaluator.judge.aggregate import (
    DimensionAggregate,
    MemberDimension,
    combine,
    unstable_threshold,
)
from evaluator.judge.base import Judge, JudgeOutput
from evaluator.models import (
    DimensionResult,
    Flag,
    JudgeInfo,
    Judgment,
    Member,
    Transcript,
    Usage,
)
from evaluator.rubrics import Rubric

if TYPE_CHECKING:
    from evaluator.judge.ratelimit import RateLimiter
    from evaluator.pipeline import JudgeOptions

SAMPLE_TEMPERATURE = 0.7
MAX_SAMPLES = 20
MAX_JURORS = 8
BASELINE_JUROR = "baseline"


@dataclass(frozen=True)
class Juror:
    """One model of a jury and where it is served (None: the run's --api-base)."""

    model: str
    api_base: str | None = None

    @property
    def label(self) -> str:
        return self.model if self.api_base is None else f"{self.model}@{self.api_base}"


def parse_jury(spec: str | None) -> list[Juror]:
    """`MODEL[@API_BASE][,MODEL[@API_BASE]...]` -> jurors; `baseline` names the offline judge."""
    if not spec or not spec.strip():
        return []
    jurors = []
    for entry in (e.strip() for e in spec.split(",")):
        if not entry:
            raise BadInput(f"--jury has an empty entry: {spec!r} (write MODEL[@API_BASE],MODEL...)")
        model, _, base = entry.partition("@")
        if not model.strip():
            raise BadInput(f"--jury entry {entry!r} names no model")
        if base and not base.startswith(("http://", "https://")):
            raise BadInput(f"--jury entry {entry!r}: the api base after @ must be an http(s) URL")
        jurors.append(Juror(model.strip(), base.strip() or None))
    if len(set(jurors)) != len(jurors):
        raise BadInput(f"--jury names a juror twice: {spec!r}")
    if len(jurors) < 2:
        raise BadInput("--jury needs two or more models (one model with --samples gives repeated samples)")
    if len(jurors) > MAX_JURORS:
        raise BadInput(f"--jury takes at most {MAX_JURORS} models, got {len(jurors)}")
    return jurors


def wants_ensemble(options: JudgeOptions) -> bool:
    """Whether --samples/--jury ask for a composite judge (a bad --samples is refused here)."""
    if not 1 <= options.samples <= MAX_SAMPLES:
        raise BadInput(f"--samples must be between 1 and {MAX_SAMPLES}, got {options.samples}")
    return options.samples > 1 or bool(options.jury)


def member_options(options: JudgeOptions) -> list[tuple[Juror, int, JudgeOptions]]:
    """Each member's own options: (juror, sample index, options with its model, api base,
    temperature and seed). Shared by the judge and the cost estimate."""
    k = options.samples
    jurors = parse_jury(options.jury) or [Juror(options.model or BASELINE_JUROR, None)]
    if k > 1 and any(j.model == BASELINE_JUROR for j in jurors):
        raise BadInput("--samples needs a model: the offline baseline judge is deterministic, "
                       "its samples would all be the same")
    temperature = options.temperature if (k == 1 or options.temperature_set) else SAMPLE_TEMPERATURE
    if k > 1 and temperature == 0:
        raise BadInput("--samples above 1 at --temperature 0 would repeat one answer: give a temperature "
                       f"above 0, or leave it out ({SAMPLE_TEMPERATURE} is used)")
    return [(juror, i, dataclasses.replace(
        options, model=None if juror.model == BASELINE_JUROR else juror.model,
        api_base=juror.api_base or options.api_base, samples=1, jury=None,
        temperature=temperature, seed=options.seed if k == 1 else (options.seed or 0) + i))
        for juror in jurors for i in range(k)]


def build_ensemble(options: JudgeOptions, limiter: RateLimiter | None,
                   build_one: Callable[..., Judge]) -> EnsembleJudge:
    """The composite judge for --samples/--jury; `build_one(options, limiter)` builds one member."""
    members = [(juror, i, build_one(o, limiter)) for juror, i, o in member_options(options)]
    return EnsembleJudge(members, samples=options.samples, jury=len({j for j, _, _ in members}) > 1)


class EnsembleJudge:
    """Judges with every member and combines them per dimension (judge/aggregate.py)."""

    def __init__(self, members: list[tuple[Juror, int, Judge]], samples: int, jury: bool,
                 weights: Mapping[str, Mapping[str, float]] | None = None) -> None:
        self.members = members
        self.samples = samples
        self.jury = jury
        self.weights = weights  # {dimension: {juror label: weight}} from held-out human agreement

    def label(self) -> str:
        """The aggregate's name where a model name is shown (report filters, agreement tables)."""
        if not self.jury:
            return f"{self.members[0][0].label} (median of {self.samples})"
        names = ", ".join(dict.fromkeys(j.label for j, _, _ in self.members))
        how = "weighted" if self.weights else "median"
        return f"jury({names}) {how}" + (f", {self.samples} samples each" if self.samples > 1 else "")

    def info(self) -> JudgeInfo:
        infos = [(j, i, m.info()) for j, i, m in self.members]
        kinds = {inf.kind for _, _, inf in infos}
        params: dict[str, Any] = {
            "aggregate": "jury" if self.jury else "samples", "samples": self.samples,
            "members": [{"juror": j.label, "sample": i, "kind": inf.kind, "model": inf.model,
                         "prompt_version": inf.prompt_version, "params": inf.params} for j, i, inf in infos],
        }
        if self.weights:
            params["weights"] = {d: dict(w) for d, w in self.weights.items()}
        return JudgeInfo(kind="llm" if "llm" in kinds else "baseline", model=self.label(),
                         prompt_version=infos[0][2].prompt_version, params=params)

    def member_extra(self, sample: int, key_extra: dict | None) -> dict | None:
        """What else goes into a member's cache key: its sample index when there are several."""
        if self.samples == 1:
            return key_extra
        return {**(key_extra or {}), "sample": sample}

    def member_keys(self, content_hash: str, rubric: Rubric, key_extra: dict | None = None) -> list[str]:
        from evaluator.pipeline import cache_key

        return [cache_key(content_hash, rubric, m.info(), self.member_extra(i, key_extra))
                for _, i, m in self.members]

    async def judge(self, transcript: Transcript, rubric: Rubric) -> JudgeOutput:
        """The Judge protocol: every member judged now (no store), combined."""
        j = await self.judge_all(transcript, rubric)
        return JudgeOutput(dimensions=j.dimensions, usage=j.usage, flags=j.flags, reason=j.reason,
                           truncation=j.truncation)

    async def judge_all(self, transcript: Transcript, rubric: Rubric, key_extra: dict | None = None,
                        reuse: Mapping[str, tuple[str, Judgment]] | None = None) -> Judgment:
        """Judge every member not in `reuse` (cache key -> stored id and judgment), concurrently,
        and build the aggregate judgment that carries them."""
        from evaluator.pipeline import cache_key, judge_transcript

        reuse = reuse or {}
        keys = self.member_keys(transcript.content_hash, rubric, key_extra)
        todo = [(n, m) for n, (key, m) in enumerate(zip(keys, self.members, strict=True)) if key not in reuse]
        try:
            async with asyncio.TaskGroup() as tg:
                tasks = {n: tg.create_task(judge_transcript(transcript, rubric, judge,
                                                            self.member_extra(i, key_extra)))
                         for n, (_, i, judge) in todo}
        except ExceptionGroup as eg:  # the caller expects the error itself (e.g. JudgeUnavailable)
            raise eg.exceptions[0] from None
        members: list[Member] = []
        for n, ((juror, i, _), key) in enumerate(zip(self.members, keys, strict=True)):
            if n in tasks:
                members.append(Member(juror=juror.label, sample=i, judgment=tasks[n].result()))
            else:
                stored_id, stored = reuse[key]
                members.append(Member(juror=juror.label, sample=i, judgment=stored, judgment_id=stored_id))
        info = self.info()
        dims, flags = aggregate_dimensions(rubric, members, self.weights)
        usage = Usage()
        for m in members:
            if m.judgment_id is None:  # only what this run paid for
                usage = usage.add(m.judgment.usage)
        seen: set[tuple[str, str]] = set()
        for m in members:
            for f in m.judgment.flags:
                if (f.kind, f.detail) not in seen:
                    seen.add((f.kind, f.detail))
                    flags.append(Flag(kind=f.kind, detail=f"{m.juror} #{m.sample}: {f.detail}", source=f.source))
        reasons = {m.judgment.reason for m in members if m.judgment.reason}
        return Judgment(
            status=Judgment.status_of(dims), transcript_hash=transcript.content_hash, source=transcript.source,
            rubric_id=rubric.id, rubric_version=rubric.version, judge=info, dimensions=dims, flags=flags,
            warnings=list(transcript.warnings), usage=usage,
            cache_key=cache_key(transcript.content_hash, rubric, info, key_extra),
            reason="; ".join(sorted(reasons)) if reasons and all(d.status == "unscored" for d in dims) else None,
            truncation=next((m.judgment.truncation for m in members if m.judgment.truncation), None),
            kind="aggregate", members=members,
        )


def aggregate_dimensions(rubric: Rubric, members: list[Member],
                         weights: Mapping[str, Mapping[str, float]] | None = None
                         ) -> tuple[list[DimensionResult], list[Flag]]:
    """Per rubric dimension: the combined score with its statistics, the rationale and verified
    evidence of the first member whose score is the aggregate's, and a flag per unstable or
    disputed dimension."""
    lo, hi = rubric.scale.min, rubric.scale.max
    dims: list[DimensionResult] = []
    flags: list[Flag] = []
    for pos, dim in enumerate(rubric.dimensions):
        results = [m.judgment.dimensions[pos] for m in members]
        said = [MemberDimension(m.juror, m.sample, r.status, r.score) for m, r in zip(members, results, strict=True)]
        agg = combine(said, lo, hi, (weights or {}).get(dim.id))
        dims.append(_dimension(dim.id, agg, results))
        if agg.unstable:
            flags.append(Flag(kind="unstable", source=dim.id, detail=_unstable_detail(dim.id, agg, lo, hi)))
        if agg.disagree:
            flags.append(Flag(kind="jurors_disagree", source=dim.id,
                              detail=f"{dim.id}: " + ", ".join(f"{j} {s}" for j, s in agg.jurors.items())))
    return dims, flags


def _unstable_detail(dim_id: str, agg: DimensionAggregate, lo: int, hi: int) -> str:
    if len(agg.jurors) == 1:
        return f"{dim_id}: samples range {agg.min}-{agg.max} (agreement with the median {agg.agreement:.0%})"
    wide = [f"{j} over {s + 1} levels" for j, s in agg.juror_spread.items() if s > unstable_threshold(lo, hi)]
    return f"{dim_id}: the samples of " + ", ".join(wide)


def _dimension(dim_id: str, agg: DimensionAggregate, results: list[DimensionResult]) -> DimensionResult:
    stats = agg.as_dict()
    if agg.status != "scored":
        reasons = sorted({r.reason for r in results if r.reason})
        return DimensionResult(id=dim_id, status=agg.status,  # type: ignore[arg-type]
                               reason="no member scored it" + (f": {'; '.join(reasons)}" if reasons else ""),
                               ensemble=stats)
    source = next((r for r in results if r.status == "scored" and r.score == agg.score),
                  next(r for r in results if r.status == "scored"))
    note = f"[{agg.n_scored} of {agg.n} scored] " if agg.n_scored < agg.n else ""
    return DimensionResult(id=dim_id, status="scored", score=agg.score, rationale=note + source.rationale,
                           evidence=list(source.evidence), ensemble=stats)
