"""`evaluate labels import` and `labels list`: a label file checked row by row against the rubric of
each transcript it names, then stored in one transaction. Kept apart from the statistics services
because resolving a file's transcript references (hash, judgment id, file on disk, stored name) is its
own concern, used by nothing else."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, Field

from evaluator.calibrate.gathering import STORE_WAIT_SECONDS, open_existing
from evaluator.calibrate.labels import (
    TranscriptMatch,
    problems_error,
    read_score_file,
    validate_rows,
)
from evaluator.calibrate.records import ScaleSpec
from evaluator.calibrate.store import ImportRecord
from evaluator.errors import BadInput

_HEX = re.compile(r"[0-9a-f]{8,64}")
_JUDGMENT_ID = re.compile(r"[0-9a-f]{8}(-[0-9a-f]{1,12}){0,4}")  # a judgment id (uuid), or a prefix of one


class ImportRequest(BaseModel):
    """What `evaluate labels import` was asked: the file, the store and where transcripts live."""

    file: Path
    db: Path | None = None
    rubric: str | None = Field(None, description="rubric id or path; default: chosen per transcript as the judge does")
    transcripts_dirs: list[Path] = Field(default_factory=list)


class ImportSummary(BaseModel):
    record: ImportRecord
    already_imported: bool = False
    rubrics: list[str] = Field(default_factory=list, description="the rubric ids the labels were checked against")
    earlier: ImportRecord | None = Field(None, description="an import of the same file under other rubrics")
    earlier_rubrics: list[str] = Field(default_factory=list)
    transcripts: int = 0
    scored: int = 0
    not_observed: int = 0
    missing: int = 0
    db_path: str


def _search_dirs(request: ImportRequest) -> list[Path]:
    label_dir = request.file.parent
    dirs = [*request.transcripts_dirs, Path.cwd(), Path.cwd() / "transcripts",
            label_dir, label_dir.parent / "transcripts"]
    return list(dict.fromkeys(d.resolve() for d in dirs))


def _transcript_resolver(store, request: ImportRequest):
    """Ref -> TranscriptMatch or an error message. A hex string is a stored content hash (prefix), else
    a judgment id (prefix: the `judgment_id` column of `evaluate export`, its transcript); otherwise a
    file on disk (path, or name in a search folder) wins over a stored transcript's name, since the file
    is what the rater read now."""
    from evaluator.calibrate import store as sql
    from evaluator.ingest import load_transcript
    from evaluator.rubrics import select_rubric

    rubric_cache: dict[str | None, object] = {}
    dirs = _search_dirs(request)

    def rubric_for(exercise: str | None):
        if exercise not in rubric_cache:
            rubric_cache[exercise] = select_rubric(request.rubric, exercise)
        return rubric_cache[exercise]

    def match(hash_: str, source: str | None, exercise: str | None) -> TranscriptMatch:
        r = rubric_for(exercise)
        return TranscriptMatch(key=hash_, source=source, rubric_id=r.id, rubric_version=r.version,
                               scale=ScaleSpec(min=r.scale.min, max=r.scale.max),
                               dimensions={d.id: d.allow_not_observed for d in r.dimensions})

    def resolve(ref: str) -> TranscriptMatch | str:
        try:
            for pattern, lookup, ambiguous in (
                (_HEX, sql.stored_transcripts_by_hash,
                 "transcript hash prefix '{ref}' is ambiguous ({n} stored transcripts)"),
                (_JUDGMENT_ID, sql.stored_transcripts_by_judgment,
                 "judgment id prefix '{ref}' is ambiguous (judgments of {n} transcripts)"),
            ):
                if pattern.fullmatch(ref.lower()):
                    found = lookup(store, ref)
                    if len(found) == 1:
                        return match(found[0].hash, found[0].source, found[0].exercise)
                    if len(found) > 1:
                        return ambiguous.format(ref=ref, n=len(found)) + "; give more characters"
            candidates = [Path(ref)] + [d / ref for d in dirs]
            candidates += [c.with_name(c.name + ".md") for c in candidates if not c.suffix]
            for path in candidates:
                if path.is_file():
                    t = load_transcript(path)
                    return match(t.content_hash, t.source, t.exercise)
            found = sql.stored_transcripts_by_name(store, ref)
            hashes = {f.hash for f in found}
            if len(hashes) == 1:
                return match(found[-1].hash, found[-1].source, found[-1].exercise)
            if len(hashes) > 1:
                return (f"transcript '{ref}' is ambiguous: {len(hashes)} different stored transcripts have that name "
                        "(it changed between judgments); use the content hash")
        except BadInput as e:
            return f"transcript '{ref}': {e}"
        looked = ", ".join(str(d) for d in dirs)
        return (f"unknown transcript '{ref}': not a stored transcript's hash or file name, nor a judgment id, and "
                f"no such file (looked in {looked}; add --transcripts DIR)")

    return resolve


def import_labels(request: ImportRequest) -> ImportSummary:
    """Validate the whole file, then store every label in one transaction, or nothing."""
    from evaluator.calibrate import store as sql
    from evaluator.rubrics import select_rubric
    from evaluator.store.db import default_db_path, open_store

    if request.rubric is not None:
        # a typo in --rubric is one error, up front: not one per transcript of the file
        select_rubric(request.rubric, None)
    parsed = read_score_file(request.file, need_rater=True)
    with open_store(request.db or default_db_path(), wait_seconds=STORE_WAIT_SECONDS) as store:
        labels, problems = validate_rows(parsed.rows, _transcript_resolver(store, request))
        if problems:
            raise problems_error(str(request.file), problems)
        # Labels are checked and recorded against a rubric (its scale, its dimensions): the same file is
        # "already imported" only when an earlier import recorded it against the same rubric versions;
        # under another --rubric (or once the rubric changed) it is imported again, against that one.
        against = {(lb.transcript, lb.rubric_id, lb.rubric_version) for lb in labels}
        rubrics = sorted({str(lb.rubric_id) for lb in labels})
        earlier = sql.imports_by_sha(store, parsed.sha256)
        rubrics_of = {e.id: sql.import_rubrics(store, e.id) for e in earlier}
        same = next((e for e in earlier if rubrics_of[e.id] == against), None)
        if same is not None:
            return ImportSummary(record=same, already_imported=True, rubrics=rubrics, db_path=str(store.path))
        record = sql.insert_labels(store, parsed, labels)
        before = earlier[0] if earlier else None
        return ImportSummary(
            record=record, transcripts=len({lb.transcript for lb in labels}),
            scored=sum(lb.status == "scored" for lb in labels),
            not_observed=sum(lb.status == "not_observed" for lb in labels),
            missing=sum(lb.status == "missing" for lb in labels), db_path=str(store.path), rubrics=rubrics,
            earlier=before,
            earlier_rubrics=sorted({r for _, r, _ in rubrics_of[before.id]}) if before else [])


def list_labels(db: Path | None) -> list[dict]:
    """The label imports in a store, for `evaluate labels list`."""
    from evaluator.calibrate import store as sql

    with open_existing(db) as store:
        return sql.label_summary(store)



__all__ = ["ImportRequest", "import_labels", "list_labels"]
