"""Every SQL statement of the calibrate package: labels in, judge scores and labels out, calibrations.

Tables come from migration 0003_labels_calibration. Writes are append-only: an import or a
calibration adds rows; nothing here updates or deletes, and raw judge scores are only read.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path, PurePath

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from evaluator.calibrate.applying import calibrate_frame
from evaluator.calibrate.labels import ScoreFile, ValidatedLabel
from evaluator.calibrate.maps import CalibrationMap, CalibrationResult
from evaluator.calibrate.records import HumanLabel, JudgeIdentity, JudgeScore
from evaluator.errors import BadInput, StoreError
from evaluator.store.current import PROBE_INPUT_IDS_SQL, best_first
from evaluator.store.db import Store


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class StoredTranscript(BaseModel):
    """A stored transcript as label import sees it: enough to match a hash prefix."""

    hash: str
    source: str | None
    exercise: str | None


class ImportRecord(BaseModel):
    """One label import: what file it came from (by hash), when, and how many labels it added."""

    id: str
    imported_at: datetime
    source_file: str
    file_sha256: str
    n_labels: int
    raters: list[str]


class JudgeSelection(BaseModel):
    """Which stored judgments to compare: a run (id or prefix), a model ('baseline' = offline judge), a
    rubric id, a rubric version (or its prefix). `pool_rubric_versions`: one set of scores over every
    rubric version selected (asked for explicitly, and labelled pooled), instead of one per version."""

    run: str | None = None
    model: str | None = None
    rubric: str | None = None
    rubric_version: str | None = None
    pool_rubric_versions: bool = False


class ScoreSet(BaseModel):
    """The judge scores of one statistic: those made under one rubric version, or (asked for with
    `pool_rubric_versions`) under every version selected. Why apart: a rubric version is one
    instrument (its anchors); scores made under two versions mix two scales in one figure."""

    scores: list[JudgeScore]
    identity: JudgeIdentity
    definitions: list[dict]

    @property
    def label(self) -> str:
        """How the output names the rubric version(s) the scores were made under."""
        versions = self.identity.rubric_versions
        if len(versions) > 1:
            return f"rubric versions {', '.join(versions)} (pooled)"
        return f"rubric version {versions[0]}" if versions else "no rubric version"


# -- transcripts ---------------------------------------------------------------------------------
# Transcripts stored only as a bias probe's perturbed copies (names swapped, filler removed...): stored
# under the session's file name, they are not sessions, and would make that name look ambiguous.
_PROBE_ONLY_TRANSCRIPTS = (f"SELECT transcript_hash FROM judgments WHERE id IN ({PROBE_INPUT_IDS_SQL})"
                           f" EXCEPT SELECT transcript_hash FROM judgments WHERE id NOT IN ({PROBE_INPUT_IDS_SQL})")


def stored_transcripts_by_hash(store: Store, prefix: str) -> list[StoredTranscript]:
    """Stored transcripts whose hash starts with `prefix` (labels may name items by short hash)."""
    rows = store.con.execute(
        "SELECT hash, source, exercise FROM transcripts WHERE hash LIKE ? || '%' ORDER BY hash", [prefix.lower()]
    ).fetchall()
    return [StoredTranscript(hash=r[0], source=r[1], exercise=r[2]) for r in rows]


def stored_transcripts_by_name(store: Store, name: str) -> list[StoredTranscript]:
    """Stored transcripts whose source path, file name or stem equals `name`: the path a transcript was
    first stored under, or any a judgment of it was made under (what `evaluate export` writes as
    `transcript`, when the same text was judged again from another file)."""
    rows = store.con.execute(
        "SELECT t.hash, s.source, t.exercise FROM (SELECT hash, source FROM transcripts"
        " UNION SELECT transcript_hash, source FROM judgments) s JOIN transcripts t ON t.hash = s.hash"
        f" WHERE contains(s.source, ?) AND t.hash NOT IN ({_PROBE_ONLY_TRANSCRIPTS}) ORDER BY t.first_seen, s.source",
        [name]).fetchall()
    out = []
    for h, source, exercise in rows:
        if source is None:
            continue
        p = PurePath(source)
        if name in (source, p.name, p.stem):
            out.append(StoredTranscript(hash=h, source=source, exercise=exercise))
    return out


def stored_transcripts_by_judgment(store: Store, prefix: str) -> list[StoredTranscript]:
    """The transcripts of the judgments whose id starts with `prefix`: a label file written against
    `evaluate export` may name each row by its `judgment_id`. A bias probe's judgment of a perturbed
    input is refused (BadInput): the rater read the session, not the probe's altered copy of it or
    of its rubric, and a label recorded against that copy would pair with nothing real."""
    rows = store.con.execute(
        f"SELECT DISTINCT t.hash, j.source, t.exercise, j.id IN ({PROBE_INPUT_IDS_SQL}) FROM judgments j"
        " JOIN transcripts t ON t.hash = j.transcript_hash WHERE j.id LIKE ? || '%' ORDER BY t.hash",
        [prefix.lower()]).fetchall()
    sessions = {r[0]: StoredTranscript(hash=r[0], source=r[1], exercise=r[2]) for r in rows if not r[3]}
    if rows and not sessions:
        raise BadInput(f"judgment {prefix} is a bias probe's judgment of a perturbed copy of the session "
                       "(`evaluate probe`), not of the session: name the session's own judgment (the export's "
                       "rows with role 'judgment'; `evaluate export --current` writes only those), or the transcript")
    return list(sessions.values())


# -- labels ----------------------------------------------------------------------------------------
def imports_by_sha(store: Store, sha: str) -> list[ImportRecord]:
    """Every import of a file with this content, newest first."""
    rows = store.con.execute(
        "SELECT id, imported_at, source_file, file_sha256, n_labels, raters FROM label_imports"
        " WHERE file_sha256 = ? ORDER BY imported_at DESC, id DESC", [sha]).fetchall()
    return [ImportRecord(id=r[0], imported_at=r[1], source_file=r[2], file_sha256=r[3], n_labels=r[4],
                         raters=json.loads(r[5])) for r in rows]


def import_rubrics(store: Store, import_id: str) -> set[tuple[str, str, str]]:
    """(transcript hash, rubric id, rubric version) of an import's labels: what it was validated and
    recorded against."""
    return set(store.con.execute("SELECT DISTINCT transcript_hash, rubric_id, rubric_version FROM human_labels"
                                 " WHERE import_id = ?", [import_id]).fetchall())


def insert_labels(store: Store, parsed: ScoreFile, labels: list[ValidatedLabel]) -> ImportRecord:
    """Write one import and all its labels in one transaction: all or nothing."""
    import duckdb

    record = ImportRecord(id=str(uuid.uuid4()), imported_at=_now(), source_file=str(Path(parsed.path)),
                          file_sha256=parsed.sha256, n_labels=len(labels),
                          raters=sorted({label.rater for label in labels}))
    con = store.con
    try:
        con.execute("BEGIN TRANSACTION")
        con.execute(
            "INSERT INTO label_imports (id, imported_at, source_file, file_sha256, file_format, layout, n_rows,"
            " n_labels, raters) VALUES (?,?,?,?,?,?,?,?,?)",
            [record.id, record.imported_at, record.source_file, parsed.sha256, parsed.file_format, parsed.layout,
             parsed.n_records, len(labels), json.dumps(record.raters)])
        con.executemany(
            "INSERT INTO human_labels (import_id, line, transcript_hash, transcript_ref, source, rater, dimension_id,"
            " rubric_id, rubric_version, status, score) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            [[record.id, lb.line, lb.transcript, lb.transcript_ref, lb.source, lb.rater, lb.dimension, lb.rubric_id,
              lb.rubric_version, lb.status, lb.score] for lb in labels])
        con.execute("COMMIT")
    except duckdb.Error as e:
        con.execute("ROLLBACK")
        raise StoreError(f"{store.path}: could not store the labels (nothing imported): "
                         f"{str(e).splitlines()[0]}") from None
    return record


_CURRENT_LABELS = """
    SELECT l.transcript_hash, l.rater, l.dimension_id, l.status, l.score, l.line, l.import_id
    FROM human_labels l JOIN label_imports i ON i.id = l.import_id
    QUALIFY row_number() OVER (PARTITION BY l.transcript_hash, l.rater, l.dimension_id
                               ORDER BY i.imported_at DESC, i.id DESC) = 1
"""


def current_labels(store: Store, raters: list[str] | None = None) -> tuple[list[HumanLabel], list[str]]:
    """The newest label per (transcript, rater, dimension) across imports, and the import ids used."""
    rows = store.con.execute(_CURRENT_LABELS).fetchall()
    labels = [HumanLabel(transcript=r[0], rater=r[1], dimension=r[2], status=r[3], score=r[4], line=r[5])
              for r in rows if not raters or r[1] in raters]
    imports = sorted({r[6] for r in rows if not raters or r[1] in raters})
    return labels, imports


class LabelMatch(BaseModel):
    """The human labels a set of judge scores is compared with, and how their rubric matches the
    judgments' (`labels_for_judgments`). Counts are over the labels of the judged transcripts only."""

    labels: list[HumanLabel]
    imports: list[str]
    same_version: int = 0
    other_version: dict[str, int] = Field(default_factory=dict,
                                          description="rubric version -> labels recorded against it, paired anyway")
    left_out: dict[str, int] = Field(default_factory=dict,
                                     description="rubric version -> labels not paired (--same-version-labels)")
    other_rubric: dict[str, int] = Field(default_factory=dict,
                                         description="rubric id -> labels recorded against another rubric, not paired")

    @property
    def paired(self) -> int:
        """Labels of the judged transcripts that are compared with their judgments."""
        return self.same_version + sum(self.other_version.values())

    def notes(self, versions: str, rubric_ids: list[str]) -> list[str]:
        """What the output says about the labels it paired (`versions`: how it names the scores)."""
        def listed(counts: dict[str, int]) -> str:
            return ", ".join(f"{k}: {n}" for k, n in sorted(counts.items()))

        out = []
        if self.other_version:
            n = sum(self.other_version.values())
            out.append(f"{versions}: {n} of {n + self.same_version} labels were recorded against another version of "
                       f"the rubric ({listed(self.other_version)}) and are paired with these judgments anyway (the "
                       "rater read other anchors); --same-version-labels pairs only labels of the judgments' own "
                       "version, and importing the file again (`labels import`) records it against the current one")
        if self.left_out:
            out.append(f"{versions}: {sum(self.left_out.values())} labels recorded against another version of the "
                       f"rubric ({listed(self.left_out)}) are left out (--same-version-labels)")
        if self.other_rubric:
            out.append(f"{versions}: {sum(self.other_rubric.values())} labels of these transcripts were recorded "
                       f"against another rubric ({listed(self.other_rubric)}) and are not paired: their dimensions are "
                       f"that rubric's (to compare them with these judgments, import the file with --rubric "
                       f"{' or '.join(rubric_ids)})")
        return out


def has_labels(store: Store, raters: list[str] | None = None) -> bool:
    """Whether any label is stored (from one of `raters`, when given)."""
    return store.con.execute("SELECT count(*) > 0 FROM human_labels WHERE ? OR list_contains(?::VARCHAR[], rater)",
                             [not raters, raters or []]).fetchone()[0]  # type: ignore[index]


def labels_for_judgments(store: Store, judgment_ids: list[str], raters: list[str] | None = None,
                         same_version_only: bool = False) -> LabelMatch:
    """The labels to compare with these judgments: per transcript, rater and dimension one label, and
    only one recorded against the judgment's rubric (the same id), preferring one recorded against
    its rubric version, the newest import within each.

    Why pair across versions by default: a label is a rater's reading of the session against the
    anchors of the version it was imported against; an edit of the anchors changes what a score
    means, but refusing those labels would leave every version after an edit without any agreement
    or calibration until the transcripts are labelled again, and labelling is the costly part (most
    edits clarify an anchor, they do not move it). So they are paired, counted and named in the
    output (`LabelMatch.notes`), and a rater's label of the judgments' own version is used wherever
    there is one: importing a file again against the new version changes the new version's figures
    and leaves the old version's paired with its own labels. `same_version_only` (the
    --same-version-labels option) pairs only those. A label recorded against another rubric id is
    never paired: it scores another rubric's dimensions, even where a dimension id is shared.

    The labels of transcripts none of these judgments is of pair with no judge score but count in the
    human-human figures: they are chosen the same way against the rubric versions of these judgments
    (not counted in the notes)."""
    rows = store.con.execute("""
        WITH s AS (SELECT DISTINCT transcript_hash, rubric_id, rubric_version FROM judgments
                   WHERE id IN (SELECT unnest(?::VARCHAR[]))),
        l AS (
            SELECT l.transcript_hash, l.rater, l.dimension_id, l.status, l.score, l.line, l.import_id,
                   l.rubric_id, l.rubric_version, s.transcript_hash IS NOT NULL AS judged,
                   coalesce(l.rubric_id = s.rubric_id, l.rubric_id IN (SELECT rubric_id FROM s)) AS same_rubric,
                   coalesce(l.rubric_version = s.rubric_version,
                            l.rubric_version IN (SELECT rubric_version FROM s)) AS same_version, i.imported_at
            FROM human_labels l LEFT JOIN label_imports i ON i.id = l.import_id
            LEFT JOIN s ON s.transcript_hash = l.transcript_hash
            WHERE ? OR list_contains(?::VARCHAR[], l.rater)
        )
        SELECT * EXCLUDE (imported_at) FROM l
        QUALIFY row_number() OVER (PARTITION BY transcript_hash, rater, dimension_id
                                   ORDER BY same_rubric DESC, same_version DESC, imported_at DESC NULLS LAST,
                                            import_id DESC) = 1
        ORDER BY transcript_hash, rater, dimension_id""",
        [judgment_ids, not raters, raters or []]).fetchall()
    match = LabelMatch(labels=[], imports=[])
    imports = set()
    for transcript, rater, dim, status, score, line, import_id, rubric_id, version, judged, same_rubric, same in rows:
        if not same_rubric or (same_version_only and not same):
            if judged:
                counts = match.other_rubric if not same_rubric else match.left_out
                key = rubric_id if not same_rubric else version
                counts[key] = counts.get(key, 0) + 1
            continue
        if judged and not same:
            match.other_version[version] = match.other_version.get(version, 0) + 1
        elif judged:
            match.same_version += 1
        match.labels.append(HumanLabel(transcript=transcript, rater=rater, dimension=dim, status=status, score=score,
                                       line=line))
        imports.add(import_id)
    match.imports = sorted(imports)
    return match


def label_summary(store: Store) -> list[dict]:
    """Per import: file, when, raters, and counts by status."""
    rows = store.con.execute(
        "SELECT i.id, i.imported_at, i.source_file, i.raters, count(l.line),"
        " count(DISTINCT l.transcript_hash), sum(CASE WHEN l.status = 'scored' THEN 1 ELSE 0 END),"
        " sum(CASE WHEN l.status = 'not_observed' THEN 1 ELSE 0 END),"
        " sum(CASE WHEN l.status = 'missing' THEN 1 ELSE 0 END)"
        " FROM label_imports i LEFT JOIN human_labels l ON l.import_id = i.id"
        " GROUP BY ALL ORDER BY i.imported_at").fetchall()
    return [{"id": r[0], "imported_at": r[1].isoformat(sep=" ", timespec="seconds"), "file": r[2],
             "raters": json.loads(r[3]), "labels": r[4], "transcripts": r[5], "scored": int(r[6] or 0),
             "not_observed": int(r[7] or 0), "missing": int(r[8] or 0)} for r in rows]


# -- judge scores ----------------------------------------------------------------------------------------
def _selected_judgments_sql(sel: JudgeSelection) -> tuple[str, list]:
    # a --samples run's members are draws at a sampling temperature: its aggregate (the median) is the
    # judgment that stands for the transcript, as in the report's score views; a bias probe's judgments
    # of perturbed inputs (reversed anchors, swapped names...) are not judgments of the session at all
    from evaluator.store.current import SAMPLE_MEMBER_IDS_SQL

    where, params = ["j.status IN ('scored', 'partial')", f"j.id NOT IN ({SAMPLE_MEMBER_IDS_SQL})",
                     f"j.id NOT IN ({PROBE_INPUT_IDS_SQL})"], []
    if sel.run:
        where.append("j.run_id LIKE ? || '%'")
        params.append(sel.run)
    if sel.model:
        if sel.model == "baseline":
            where.append("j.judge_kind = 'baseline'")
        else:
            where.append("j.model = ?")
            params.append(sel.model)
    if sel.rubric:
        where.append("j.rubric_id = ?")
        params.append(sel.rubric)
    if sel.rubric_version:
        where.append("starts_with(j.rubric_version, ?)")
        params.append(sel.rubric_version)
    return " AND ".join(where), params


def _no_match_message(store: Store, sel: JudgeSelection) -> str:
    """Nothing matches: with no filter the store has no scored judgment; with one, say what is stored
    (a mistyped --model must not read as an empty store)."""
    what = ", ".join(f"{k}={v}" for k, v in sel.model_dump(exclude={"pool_rubric_versions"}).items() if v)
    stored = store.con.execute(
        "SELECT DISTINCT CASE WHEN judge_kind = 'baseline' THEN 'baseline' ELSE model END, rubric_id, rubric_version"
        " FROM judgments WHERE status IN ('scored', 'partial')").fetchall()
    if not what or not stored:
        return (f"{store.path}: no stored scored judgments{f' match ({what})' if what else ''}; judge some "
                "transcripts first (evaluate TRANSCRIPT.md --db ...)")
    models = ", ".join(sorted({str(m) for m, _, _ in stored if m}))
    rubrics = ", ".join(sorted({str(r) for _, r, _ in stored if r}))
    known = ", ".join(sorted({str(v) for *_, v in stored if v}))
    versions = f"; rubric versions: {known}" if sel.rubric_version else ""
    return (f"{store.path}: no stored scored judgments match ({what}); stored judges: {models}; rubrics: {rubrics}"
            f"{versions} (runs: `evaluate runs`)")


def judge_score_sets(store: Store, sel: JudgeSelection) -> list[ScoreSet]:
    """The judge's scores per rubric version (oldest version first): per transcript and version the
    judgment the report uses too (store/current.py: a scored one before a partial one, the newest
    within; `evaluate export` marks it `current`), its dimension scores, the judge, and the rubric
    definition. A transcript judged under two versions counts once in each. With
    `sel.pool_rubric_versions`, one set over every version selected instead (one judgment per
    transcript, chosen the same way whatever its version), which says it is pooled. A bias probe's
    judgments of perturbed inputs are never among them. Several judges matching at once is an
    error: their scores are not comparable, so the user must choose (--model, --run)."""
    where, params = _selected_judgments_sql(sel)
    judges = store.con.execute(
        f"SELECT j.judge_kind, j.model, j.prompt_version, count(*) FROM judgments j WHERE {where}"
        " GROUP BY ALL ORDER BY count(*) DESC", params).fetchall()
    if not judges:
        raise BadInput(_no_match_message(store, sel))
    if len(judges) > 1:
        listing = "; ".join(f"{m or k} (prompt {p}): {n} judgments" for k, m, p, n in judges)
        raise BadInput(f"judgments from several judges match: {listing}. Choose one with --model "
                       "(a model name, or 'baseline') or --run")
    kind, model, prompt = judges[0][:3]
    per = "j.transcript_hash" if sel.pool_rubric_versions else "j.transcript_hash, j.rubric_version"
    rows = store.con.execute(
        f"""
        WITH latest AS (
            SELECT j.id, j.transcript_hash, j.rubric_version FROM judgments j WHERE {where}
            QUALIFY row_number() OVER (PARTITION BY {per} ORDER BY {best_first("j")}) = 1
        )
        SELECT l.id, l.transcript_hash, l.rubric_version, d.dimension_id, d.status, d.score,
               d.distribution, d.expected_score
        FROM latest l JOIN dimension_scores d ON d.judgment_id = l.id
        LEFT JOIN rubric_versions v ON v.version = l.rubric_version
        ORDER BY v.created_at, l.rubric_version, l.transcript_hash, d.position
        """, params).fetchall()
    groups: dict[str | None, list] = {}
    for r in rows:
        groups.setdefault(None if sel.pool_rubric_versions else r[2], []).append(r)
    definitions = {v: json.loads(d) for v, d in store.con.execute(
        "SELECT version, definition FROM rubric_versions WHERE version IN (SELECT unnest(?::VARCHAR[]))",
        [sorted({r[2] for r in rows})]).fetchall()}
    out = []
    for group in groups.values():
        scores = [JudgeScore(transcript=r[1], dimension=r[3], judgment_id=r[0],
                             status=r[4] if r[4] in ("scored", "not_observed") else "missing",
                             score=r[5] if r[4] == "scored" else None,
                             probs=_level_probs(r[6], r[7]) if r[4] == "scored" else None) for r in group]
        versions = sorted({r[2] for r in group})
        identity = JudgeIdentity(judge_kind=kind, model=model, prompt_version=prompt, rubric_versions=versions)
        out.append(ScoreSet(scores=scores, identity=identity,
                            definitions=[definitions[v] for v in versions if v in definitions]))
    return out


def _level_probs(distribution: str | None, expected: float | None) -> list[float] | None:
    """A stored score distribution ({"1": p, ...}) as probabilities lowest level first. A level that
    was not among the top-K alternatives (null) counts as 0: it was below the least one shown. A
    distribution without an expected score has levels that could not be told apart: none."""
    if not distribution or expected is None:
        return None
    levels = json.loads(distribution)
    return [float(levels[k] or 0.0) for k in sorted(levels, key=int)]


# -- calibrations ----------------------------------------------------------------------------------------
def save_calibration(store: Store, result: CalibrationResult) -> int:
    """Store the calibration, its maps, and calibrated scores beside the raw ones for every stored
    judgment it applies to (same judge, prompt and a rubric version it was fitted on). Returns how many
    judgments got calibrated scores. Saving the same calibration twice is a no-op."""
    import duckdb

    if result.judge is None:
        raise BadInput("a calibration from plain files has no judge identity and is not stored")
    con = store.con
    if con.execute("SELECT 1 FROM calibrations WHERE id = ?", [result.id]).fetchone():
        return 0
    j = result.judge
    chosen = {d: c.map(c.chosen) for d, c in result.dimensions.items() if c.status == "fitted"}
    targets = con.execute(
        "SELECT j.id, d.dimension_id, d.status, d.score FROM judgments j JOIN dimension_scores d"
        " ON d.judgment_id = j.id WHERE j.judge_kind = ? AND j.model IS NOT DISTINCT FROM ? AND j.prompt_version = ?"
        " AND j.rubric_version IN (SELECT unnest(?::VARCHAR[])) ORDER BY j.id, d.position",
        [j.judge_kind, j.model, j.prompt_version, j.rubric_versions]).fetchall()
    # every target judgment calibrated at once (applying.py): a judgment is an item, its dimensions the grid
    frame = pd.DataFrame(targets, columns=["transcript", "dimension", "status", "score"])
    frame["score"] = pd.to_numeric(frame["score"], errors="coerce").where(frame["status"] == "scored")
    values = calibrate_frame(result, frame, check=False) if targets else np.zeros(0)
    raw = frame["score"].to_numpy(float)
    calibrated_rows = []
    for i, (jid, dim, _status, _score) in enumerate(targets):
        if (used := chosen.get(dim)) is not None:
            calibrated_rows.append([result.id, jid, dim, used.method, None if np.isnan(raw[i]) else float(raw[i]),
                                    None if np.isnan(values[i]) else float(values[i])])
    try:
        con.execute("BEGIN TRANSACTION")
        con.execute(
            "INSERT INTO calibrations (id, created_at, judge_kind, model, prompt_version, rubric_versions, settings,"
            " label_imports, n_transcripts) VALUES (?,?,?,?,?,?,?,?,?)",
            [result.id, _now(), j.judge_kind, j.model, j.prompt_version, json.dumps(j.rubric_versions),
             result.settings.model_dump_json(), json.dumps(result.label_imports), result.n_transcripts])
        map_rows = [[result.id, d, m.method, m.chosen, m.n, json.dumps(m.params) if m.params is not None else None,
                     m.cv.model_dump_json() if m.cv else None, m.warning]
                    for d, c in result.dimensions.items() for m in c.maps]
        if map_rows:
            con.executemany("INSERT INTO calibration_maps VALUES (?,?,?,?,?,?,?,?)", map_rows)
        if calibrated_rows:
            con.executemany("INSERT INTO calibrated_scores VALUES (?,?,?,?,?,?)", calibrated_rows)
        save_calibration_document(store, result)
        con.execute("COMMIT")
    except duckdb.Error as e:
        con.execute("ROLLBACK")
        raise StoreError(f"{store.path}: could not store the calibration: {str(e).splitlines()[0]}") from None
    return len({jid for jid, *_ in targets})


def latest_calibration_maps(store: Store, judge: JudgeIdentity,
                            rubric_version: str) -> tuple[str, dict[str, CalibrationMap]] | None:
    """The newest calibration valid for this judge and rubric version, as its chosen maps."""
    row = store.con.execute(
        "SELECT id FROM calibrations WHERE judge_kind = ? AND model IS NOT DISTINCT FROM ? AND prompt_version = ?"
        " AND list_contains(CAST(rubric_versions AS VARCHAR[]), ?) ORDER BY created_at DESC, id DESC LIMIT 1",
        [judge.judge_kind, judge.model, judge.prompt_version, rubric_version]).fetchone()
    if row is None:
        return None
    maps = store.con.execute(
        "SELECT dimension_id, method, n, params, warning FROM calibration_maps WHERE calibration_id = ? AND chosen",
        [row[0]]).fetchall()
    return row[0], {m[0]: CalibrationMap(dimension=m[0], method=m[1], n=m[2], chosen=True,
                                          params=json.loads(m[3]) if m[3] else None, warning=m[4]) for m in maps}


def calibrated_rows(store: Store, calibration: str | None = None) -> list[dict]:
    """Raw beside calibrated scores per stored judgment and dimension, from the newest calibration
    (or the one named)."""
    if calibration is None:
        row = store.con.execute("SELECT id FROM calibrations ORDER BY created_at DESC, id DESC LIMIT 1").fetchone()
        if row is None:
            raise BadInput(f"{store.path}: no calibration stored yet; run `evaluate calibrate` first")
        calibration = row[0]
    elif not store.con.execute("SELECT 1 FROM calibrations WHERE id = ?", [calibration]).fetchone():
        raise BadInput(f"{store.path}: no calibration with id {calibration}")
    rows = store.con.execute(
        "SELECT c.calibration_id, j.source, c.judgment_id, c.dimension_id, c.method, c.raw_score, c.calibrated_score"
        " FROM calibrated_scores c JOIN judgments j ON j.id = c.judgment_id WHERE c.calibration_id = ?"
        " ORDER BY j.source, c.judgment_id, c.dimension_id", [calibration]).fetchall()
    return [{"calibration": r[0], "source": r[1], "judgment_id": r[2], "dimension": r[3], "method": r[4],
             "raw": r[5], "calibrated": r[6]} for r in rows]


# -- calibration documents (migration 0009) ------------------------------------------------------------
def save_calibration_document(store: Store, result: CalibrationResult) -> bool:
    """Keep the whole calibration by id (a no-op when already kept). Returns True when written."""
    if store.con.execute("SELECT 1 FROM calibration_files WHERE id = ?", [result.id]).fetchone():
        return False
    store.con.execute("INSERT INTO calibration_files (id, created_at, document) VALUES (?, ?, ?)",
                      [result.id, _now(), result.model_dump_json()])
    return True


def load_calibration_document(store: Store, ref: str) -> CalibrationResult:
    """The calibration with this id (or unique id prefix)."""
    from evaluator.calibrate.maps import read_calibration_document

    rows = store.con.execute("SELECT id, document FROM calibration_files WHERE id LIKE ? || '%' ORDER BY id",
                             [ref]).fetchall()
    if len(rows) > 1:
        raise BadInput(f"calibration id prefix '{ref}' is ambiguous: {', '.join(r[0] for r in rows[:5])}")
    if not rows:
        older = store.con.execute("SELECT 1 FROM calibrations WHERE id = ?", [ref]).fetchone()
        if older:
            raise BadInput(f"calibration {ref} was stored before calibrations were kept whole; fit it again with "
                           "`evaluate calibrate` to apply it elsewhere")
        raise BadInput(f"{store.path}: no calibration {ref!r} (and no such file)")
    return read_calibration_document(rows[0][1], f"calibration {rows[0][0]}")
