"""`evaluate probe`: judge each transcript unchanged K times and once per perturbation, store every
judgment as an ordinary one (own cache key) grouped under a probe run, and summarise the movement.

Cost: per transcript, K + P judgments, where K is --retest (default 3) and P the perturbations that
apply (up to 6): with the defaults about 9 times the calls of judging the transcripts once (times
the dimensions for a per-dimension rubric, plus any repairs). Stored judgments are reused: the
unperturbed first sample is the ordinary judgment of the transcript, and a repeated probe run costs
nothing new unless --force.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evaluator.errors import BadInput
from evaluator.judge.perturb import PERTURBATIONS, perturb
from evaluator.models import Judgment, Transcript
from evaluator.pipeline import (
    BASELINE_NOTICE,
    STORE_WAIT_SECONDS,
    JudgeOptions,
    build_judge,
    cache_key,
    judge_transcript,
)
from evaluator.probe.stats import UNPERTURBED
from evaluator.redact import RedactingJudge
from evaluator.rubrics import Rubric, select_rubric_with_warnings
from evaluator.store.texts import view_of

MAX_RETEST = 20


@dataclass
class ProbeRequest:
    """What `evaluate probe` was asked to do: the transcripts, the judge and how many retests."""

    path: Path
    judge: JudgeOptions = field(default_factory=JudgeOptions)
    rubric: str | None = None
    db: Path | None = None
    retest: int = 3
    perturbations: tuple[str, ...] = PERTURBATIONS
    seed: int = 1
    sample: int | None = None  # judge only this many transcripts of a folder (a seeded choice)
    force: bool = False
    concurrency: int = 4


@dataclass
class ProbeResult:
    """What a probe run reports: its id, the score movement and how much was judged or reused."""

    probe_id: str
    db_path: str
    summary: dict[str, Any]
    judged: int = 0
    reused: int = 0
    wall_seconds: float = 0.0
    notices: list[str] = field(default_factory=list)


@dataclass
class _Job:
    transcript: Transcript  # as judged (perturbed or not)
    rubric: Rubric
    original: Transcript
    perturbation: str
    sample: int
    extra: dict | None = None
    detail: str = ""
    key: str = ""
    judgment: Judgment | None = None
    judgment_id: str | None = None
    error: str | None = None


def transcript_paths(path: Path, sample: int | None, seed: int) -> list[Path]:
    """The file, or a folder's Markdown transcripts (sorted), optionally a seeded sample of them."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise BadInput(f"{path}: no such file or folder")
    paths = sorted(p for p in path.rglob("*.md") if p.is_file())
    if not paths:
        raise BadInput(f"{path}: no .md transcripts in this folder")
    if sample is not None:
        if sample < 1:
            raise BadInput(f"--sample must be at least 1, got {sample}")
        if sample < len(paths):
            paths = sorted(random.Random(seed).sample(paths, sample))
    return paths


def _jobs(transcript: Transcript, rubric: Rubric, request: ProbeRequest, skipped: list[dict],
          redacted: bool) -> list[_Job]:
    jobs = [_Job(transcript, rubric, transcript, UNPERTURBED, i, None if i == 1 else {"retest": i})
            for i in range(1, request.retest + 1)]
    for name in request.perturbations:
        p = perturb(name, transcript, rubric, request.seed)
        if name == "names_swapped" and redacted and not p.skipped:  # both sides would read [CANDIDATE]
            p = replace(p, skipped="names are redacted before the prompt is sent: the swap cannot reach "
                                   "the model (run with --no-redact to probe name bias)")
        if p.skipped:
            skipped.append({"transcript_hash": transcript.content_hash, "source": transcript.source,
                            "rubric_id": rubric.id, "perturbation": name, "sample": 1, "skipped": p.skipped})
        else:
            jobs.append(_Job(p.transcript, p.rubric, transcript, name, 1, detail=p.detail))
    return jobs


def run_probe(request: ProbeRequest) -> ProbeResult:
    """Probe a transcript or a folder; store everything; return the stored summary."""
    from evaluator.errors import JudgeUnavailable
    from evaluator.ingest import load_transcript
    from evaluator.store.db import default_db_path, open_store

    started = time.perf_counter()
    if not 1 <= request.retest <= MAX_RETEST:
        raise BadInput(f"--retest must be between 1 and {MAX_RETEST}, got {request.retest}")
    unknown = [p for p in request.perturbations if p not in PERTURBATIONS]
    if unknown:
        raise BadInput(f"unknown perturbation(s) {', '.join(unknown)}; known: {', '.join(PERTURBATIONS)}")
    if request.concurrency < 1:
        raise BadInput(f"--concurrency must be at least 1, got {request.concurrency}")
    judge = build_judge(request.judge)
    info = judge.info()
    notices = [BASELINE_NOTICE] if info.kind == "baseline" else []
    jobs: list[_Job] = []
    items: list[dict[str, Any]] = []  # rows of probe_items that are not judgments (skipped, unreadable)
    paths = transcript_paths(request.path, request.sample, request.seed)
    for path in paths:
        try:
            transcript = load_transcript(path)
            rubric, warnings = select_rubric_with_warnings(request.rubric, transcript.exercise)
        except BadInput as e:  # one bad file never stops the probe
            items.append({"transcript_hash": "", "source": str(path), "perturbation": UNPERTURBED, "sample": 1,
                          "error": str(e)})
            continue
        transcript.warnings.extend(warnings)
        jobs += _jobs(transcript, rubric, request, items, isinstance(judge, RedactingJudge))
    if not jobs:
        raise BadInput("no transcript could be read: " + "; ".join(i["error"] for i in items if i.get("error")))
    for job in jobs:
        job.key = cache_key(job.transcript.content_hash, job.rubric, info, job.extra)
    db_path = request.db or default_db_path()
    with open_store(db_path, wait_seconds=STORE_WAIT_SECONDS) as store:
        # reused only if made on the text the judge reads now (store/texts.py)
        cached = {} if request.force else store.reusable_ids({j.key: view_of(j.transcript) for j in jobs})[0]
    for job in jobs:
        if job.key in cached:
            job.judgment_id = cached[job.key][0]
    todo = [j for j in jobs if j.judgment_id is None]

    async def judge_all() -> None:
        gate = asyncio.Semaphore(request.concurrency)

        async def one(job: _Job) -> None:
            async with gate:
                try:
                    job.judgment = await judge_transcript(job.transcript, job.rubric, judge, job.extra)
                except (JudgeUnavailable, asyncio.CancelledError):
                    raise
                except Exception as e:  # noqa: BLE001 - one failed judgment never stops the probe
                    job.error = f"{type(e).__name__}: {e}"

        await asyncio.gather(*(one(j) for j in todo))

    probe_started = datetime.now(UTC).replace(tzinfo=None)
    asyncio.run(judge_all())
    judged = [j for j in todo if j.judgment is not None]
    probe_id = str(uuid.uuid4())
    with open_store(db_path, wait_seconds=STORE_WAIT_SECONDS) as store:
        run_id = store.start_run(command="probe", judge_info=info, rubric=None)
        ids = store.save_batch(run_id, [(j.judgment, j.transcript, j.rubric) for j in judged])  # type: ignore[misc]
        for job, jid in zip(judged, ids, strict=True):
            job.judgment_id = jid
        items += [{"transcript_hash": j.original.content_hash, "source": j.original.source, "rubric_id": j.rubric.id,
                   "perturbation": j.perturbation, "sample": j.sample, "judgment_id": j.judgment_id,
                   "detail": j.detail or None, "error": j.error} for j in jobs]
        failed = any(i.get("error") for i in items) or any(j.judgment is not None and j.judgment.status != "scored"
                                                   for j in judged)
        status = "partial" if failed else "done"
        from evaluator.probe.store import probe_summary, save_probe

        save_probe(store.con, {
            "id": probe_id, "run_id": run_id, "started_at": probe_started, "model": info.model or info.kind,
            "prompt_version": info.prompt_version, "params": info.params, "retest": request.retest,
            "seed": request.seed, "perturbations": list(request.perturbations),
            "n_transcripts": len({j.original.content_hash for j in jobs}), "status": status,
        }, items)
        store.finish_run(run_id, status)
        summary = probe_summary(store.con, probe_id)
    return ProbeResult(probe_id=probe_id, db_path=str(db_path), summary=summary, judged=len(judged),
                       reused=len(jobs) - len(todo), wall_seconds=time.perf_counter() - started, notices=notices)
