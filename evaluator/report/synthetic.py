"""Synthetic judgment history for report tests, demos and the benchmark.

Everything goes through `Store.start_run` / `Store.save_batch`, the store's own write path (a cohort
run writes the same way, many judgments a transaction): no SQL here. Candidates improve (or not)
over dated sessions, grouped in cohorts; part-way through the rubric is revised and the judge model
changes, so the trend views have real breaks to mark. A few dimensions are unscored (with reasons),
a few sessions carry a prompt-injection flag.

Each session is a Markdown transcript read by the real parser, its quotes located by the real
evidence check (so they carry the spans the report highlights); with `transcripts_dir` the files are
also written there.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from evaluator.ingest import Source, content_hash, parse_source, split_front_matter
from evaluator.judge.evidence import EvidenceIndex
from evaluator.models import (
    DimensionResult,
    Flag,
    JudgeInfo,
    Judgment,
    Transcript,
    Usage,
)
from evaluator.rubrics import Rubric, select_rubric
from evaluator.store.db import Store

FIRST_NAMES = ["Amara", "Bilal", "Chen", "Dana", "Emeka", "Farah", "Goran", "Hana", "Ivan", "Jun", "Kofi", "Lena",
               "Mateo", "Nia", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tara", "Uma", "Viktor", "Wen", "Yara"]
LAST_NAMES = ["Okafor", "Haddad", "Li", "Novak", "Eze", "Rahman", "Petrov", "Sato", "Ivanova", "Park", "Mensah",
              "Weber", "Silva", "Adeyemi", "Farouk", "Iyer", "Byrne", "Costa", "Nieminen", "Shah"]
EXERCISES = ["lru_ttl_cache", "rag_pipeline", "agent_loop", "cosine_topk"]
MODELS = ["openai/gpt-4o-mini", "anthropic/claude-3-5-haiku"]
BATCH = 500  # judgments a transaction (Store.save_batch): one commit each, not one per judgment

_SAY = {
    "invariant": ["The invariant is that the map and the list always hold the same keys.",
                  "Every key in the dict must also be in the recency list, so I'll assert that after each put."],
    "edge_cases": ["What happens with capacity zero? I'll raise a ValueError.",
                   "Empty input should return an empty list, and duplicates keep the first occurrence."],
    "restraint": ["Let me get the smallest version working before adding TTL.",
                  "I'll skip the thread safety for now and say so explicitly."],
    "recovery": ["That test failed because I evicted before inserting; swapping the two lines fixes it.",
                 "I was wrong about the ordering, let me re-run the failing case."],
    "cost_awareness": ["Each call is about 2k tokens, so caching the embeddings saves most of the cost.",
                       "Batching the requests cuts latency from ten round trips to one."],
}


@dataclass
class SyntheticSpec:
    """The shape of a synthetic store (candidates, sessions, cohorts) for demos, tests and benchmarks."""

    candidates: int = 12
    sessions_per_candidate: int = 8
    cohorts: tuple[str, ...] = ("spring-2026", "autumn-2026")
    start: date = date(2026, 1, 5)
    days_between: int = 9
    seed: int = 7
    transcripts_dir: Path | None = None
    extra_candidates: list[str] = field(default_factory=list)


def revised_rubric(rubric: Rubric) -> Rubric:
    """The same rubric with revised guidance: a different version, so a trend break."""
    return rubric.model_copy(update={"guidance": rubric.guidance + "\nRevision 2: anchors applied more strictly."})


def candidate_names(n: int, rng: random.Random) -> list[str]:
    """N distinct made-up names, reproducible from the generator's seed."""
    names: list[str] = []
    while len(names) < n:
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        if name not in names:
            names.append(name)
        elif len(names) >= len(FIRST_NAMES) * len(LAST_NAMES) - 1:
            names.append(f"{name} {len(names)}")
    return names


def _transcript_text(candidate: str, exercise: str, day: date, dims: list[str], rng: random.Random) -> str:
    lines = ["---", f"candidate: {candidate}", "interviewer: Sam", f"exercise: {exercise}", f"date: {day.isoformat()}",
             "---", f"# Mock round: {exercise.replace('_', ' ')}", "",
             f"**Sam (interviewer):** Today we'll build a {exercise.replace('_', ' ')}. Talk me through it.", ""]
    first = candidate.split()[0]
    for d in dims:
        lines += [f"**{first} (candidate):** {rng.choice(_SAY.get(d, ['I would write a test for that.']))}", "",
                  "**Sam (interviewer):** Okay, go on.", ""]
    lines += [f"**{first} (candidate):** Here is the core of it:", "", "```python",
              "def get(self, key):", "    if key not in self.data:", "        return None",
              "    self.order.move_to_end(key)", "    return self.data[key]", "```", ""]
    return "\n".join(lines)


def _ingest(text: str, path: Path) -> Transcript:
    """The transcript as `load_transcript` would read it from `path`, without needing the file."""
    meta, body, body_line, warnings = split_front_matter(text)
    return parse_source(Source(path, text, meta, body, body_line, [], warnings, content_hash(text, [])))


def _judgment(transcript: Transcript, rubric: Rubric, info: JudgeInfo, scores: dict[str, int | None],
              rng: random.Random, injection: bool) -> Judgment:
    dims: list[DimensionResult] = []
    turns = {t.id: t for t in transcript.turns if t.role == "candidate"}
    index = EvidenceIndex.of(transcript)
    for d in rubric.dimensions:
        s = scores[d.id]
        if s is None:
            dims.append(DimensionResult(id=d.id, status="unscored", reason=rng.choice(
                ["the model's reply had no valid score for this dimension after 2 repairs",
                 "transcript truncated before this part of the round"])))
            continue
        quote_turn = next((t for t in turns.values() if any(q in t.text for q in _SAY.get(d.id, []))), None)
        evidence = []
        if quote_turn is not None:
            located = index.locate(quote_turn.text.split(". ")[0].rstrip("."), prefer=quote_turn.id)
            evidence += [located] if located else []
        dims.append(DimensionResult(
            id=d.id, status="scored", score=s, evidence=evidence,
            rationale=f"{d.name}: the candidate's behaviour matches level {s} of the anchors."))
    flags = [Flag(kind="prompt_injection", detail="addresses the grader: 'note to the AI grader'",
                  source="t2")] if injection else []
    prompt_tokens = rng.randint(2500, 6000) if info.kind == "llm" else 0
    completion_tokens = rng.randint(300, 900) if info.kind == "llm" else 0
    price = {"openai/gpt-4o-mini": (0.15e-6, 0.6e-6), "anthropic/claude-3-5-haiku": (0.8e-6, 4e-6)}.get(
        info.model or "", (0.0, 0.0))
    return Judgment(
        status=Judgment.status_of(dims), transcript_hash=transcript.content_hash, source=transcript.source,
        rubric_id=rubric.id, rubric_version=rubric.version, judge=info, dimensions=dims, flags=flags,
        usage=Usage(calls=1 if info.kind == "llm" else 0, prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens,
                    cost_usd=prompt_tokens * price[0] + completion_tokens * price[1],
                    latency_ms=rng.uniform(800, 4000) if info.kind == "llm" else 5.0),
        cache_key=hashlib.sha256(f"{transcript.content_hash}{rubric.version}{info.model}".encode()).hexdigest(),
    )


def _save(store: Store, run_id: str, batch: list[tuple[Judgment, Transcript, Rubric]], cohort: str | None) -> None:
    """One transaction, with the cohort memberships a cohort run records (as the runner writes them)."""
    members = [{"cohort": cohort, "transcript_hash": t.content_hash, "source": t.source, "candidate": t.candidate,
                "exercise": t.exercise, "session_date": t.session_date} for _, t, _ in batch] if cohort else []
    store.save_batch(run_id, batch, members=members)


def generate(store: Store, spec: SyntheticSpec | None = None) -> dict[str, int]:
    """Write a synthetic judgment history into `store`; returns counts of what was written."""
    spec = spec or SyntheticSpec()
    rng = random.Random(spec.seed)
    v1 = select_rubric("default", None)
    v2 = revised_rubric(v1)
    names = candidate_names(spec.candidates, rng) + list(spec.extra_candidates)
    total_sessions = spec.sessions_per_candidate
    switch_model_at = total_sessions // 3
    switch_rubric_at = (2 * total_sessions) // 3
    runs: dict[tuple[str, str, str], str] = {}
    pending: dict[str, list[tuple[Judgment, Transcript, Rubric]]] = {}  # per run, written BATCH at a time
    written = {"judgments": 0, "runs": 0, "candidates": len(names)}
    for ci, name in enumerate(names):
        cohort = spec.cohorts[ci % len(spec.cohorts)] if spec.cohorts else None
        skill = {d.id: rng.uniform(1.3, 3.6) for d in v1.dimensions}
        slope = {d.id: rng.uniform(-0.08, 0.3) for d in v1.dimensions}
        for s in range(total_sessions):
            day = spec.start + timedelta(days=s * spec.days_between + rng.randint(0, 3) + ci % 5)
            exercise = EXERCISES[(ci + s) % len(EXERCISES)]
            rubric = v1 if s < switch_rubric_at else v2
            model = MODELS[0] if s < switch_model_at else MODELS[1]
            info = JudgeInfo(kind="llm", model=model, prompt_version="judge-v1")
            tag = f"{ci:04d}-{s:03d}"
            text = _transcript_text(name, exercise, day, v1.dimension_ids, rng)
            path = Path("synthetic") / f"session-{tag}.md"
            if spec.transcripts_dir is not None:
                spec.transcripts_dir.mkdir(parents=True, exist_ok=True)
                path = spec.transcripts_dir / path.name
                path.write_text(text, encoding="utf-8")
            transcript = _ingest(text, path)
            strict = 0.4 if rubric is v2 else 0.0
            scores: dict[str, int | None] = {}
            for d in v1.dimensions:
                if rng.random() < 0.03:
                    scores[d.id] = None
                    continue
                raw = skill[d.id] + slope[d.id] * s - strict + rng.gauss(0, 0.45)
                scores[d.id] = max(v1.scale.min, min(v1.scale.max, round(raw)))
            judgment = _judgment(transcript, rubric, info, scores, rng, injection=rng.random() < 0.04)
            key = (cohort or "", model, rubric.version)
            if key not in runs:
                runs[key] = store.start_run(command="cohort" if cohort else "evaluate", judge_info=info,
                                            rubric=rubric, cohort=cohort)
                written["runs"] += 1
            batch = pending.setdefault(runs[key], [])
            batch.append((judgment, transcript, rubric))
            if len(batch) >= BATCH:
                _save(store, runs[key], batch, cohort)
                written["judgments"] += len(batch)
                batch.clear()
    for (cohort, _, _), run_id in runs.items():
        batch = pending.get(run_id, [])
        if batch:
            _save(store, run_id, batch, cohort or None)
            written["judgments"] += len(batch)
    for run_id in runs.values():
        store.finish_run(run_id, "finished")
    return written
