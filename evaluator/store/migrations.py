"""Append-only, named schema migrations. Never edit or reorder a released migration: add a new one.

Each is applied once, in order, inside a transaction, and recorded in `schema_migrations`.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001_core",
        """
        CREATE TABLE transcripts (
            hash VARCHAR PRIMARY KEY,
            source VARCHAR,
            title VARCHAR,
            candidate VARCHAR,
            exercise VARCHAR,
            session_date VARCHAR,
            round VARCHAR,
            metadata JSON,
            n_turns INTEGER,
            n_code_files INTEGER,
            speakers_recognised BOOLEAN,
            first_seen TIMESTAMP DEFAULT current_timestamp
        );
        CREATE TABLE rubric_versions (
            version VARCHAR PRIMARY KEY,
            rubric_id VARCHAR NOT NULL,
            title VARCHAR,
            definition JSON NOT NULL,
            created_at TIMESTAMP DEFAULT current_timestamp
        );
        CREATE TABLE runs (
            id VARCHAR PRIMARY KEY,
            started_at TIMESTAMP NOT NULL,
            finished_at TIMESTAMP,
            command VARCHAR,
            cohort VARCHAR,
            judge_kind VARCHAR NOT NULL,
            model VARCHAR,
            prompt_version VARCHAR,
            params JSON,
            rubric_id VARCHAR,
            rubric_version VARCHAR,
            status VARCHAR
        );
        CREATE TABLE judgments (
            id VARCHAR PRIMARY KEY,
            run_id VARCHAR NOT NULL,
            transcript_hash VARCHAR NOT NULL,
            source VARCHAR,
            rubric_id VARCHAR NOT NULL,
            rubric_version VARCHAR NOT NULL,
            judge_kind VARCHAR NOT NULL,
            model VARCHAR,
            prompt_version VARCHAR NOT NULL,
            params JSON,
            cache_key VARCHAR NOT NULL,
            status VARCHAR NOT NULL,
            reason VARCHAR,
            flags JSON,
            warnings JSON,
            truncation JSON,
            calls INTEGER,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            cost_usd DOUBLE,
            latency_ms DOUBLE,
            created_at TIMESTAMP DEFAULT current_timestamp
        );
        CREATE INDEX judgments_cache_key ON judgments (cache_key);
        CREATE INDEX judgments_transcript ON judgments (transcript_hash);
        CREATE TABLE dimension_scores (
            judgment_id VARCHAR NOT NULL,
            dimension_id VARCHAR NOT NULL,
            position INTEGER NOT NULL,
            status VARCHAR NOT NULL,
            score INTEGER,
            rationale VARCHAR,
            evidence JSON,
            dropped_evidence JSON,
            reason VARCHAR,
            PRIMARY KEY (judgment_id, dimension_id)
        );
        CREATE TABLE exchanges (
            id VARCHAR PRIMARY KEY,
            judgment_id VARCHAR NOT NULL,
            attempt INTEGER NOT NULL,
            purpose VARCHAR NOT NULL,
            dimensions JSON,
            response_format VARCHAR,
            request_messages JSON,
            raw_response VARCHAR,
            parsed JSON,
            errors JSON,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            cost_usd DOUBLE,
            latency_ms DOUBLE,
            transport_attempts INTEGER,
            error VARCHAR,
            created_at TIMESTAMP DEFAULT current_timestamp
        );
        """,
    ),
    (
        "0002_cohorts",
        """
        CREATE TABLE cohorts (
            name VARCHAR PRIMARY KEY,
            created_at TIMESTAMP NOT NULL,
            description VARCHAR
        );
        -- Which transcripts belong to a cohort, with the manifest's metadata (it wins over front matter).
        CREATE TABLE cohort_members (
            cohort VARCHAR NOT NULL,
            transcript_hash VARCHAR NOT NULL,
            source VARCHAR,
            candidate VARCHAR,
            exercise VARCHAR,
            session_date VARCHAR,
            added_at TIMESTAMP NOT NULL,
            PRIMARY KEY (cohort, transcript_hash)
        );
        -- One row per input of a cohort run: judged, cached, failed (with the error) or skipped.
        CREATE TABLE run_items (
            run_id VARCHAR NOT NULL,
            item VARCHAR NOT NULL,
            source VARCHAR,
            transcript_hash VARCHAR,
            status VARCHAR NOT NULL,
            judgment_id VARCHAR,
            error VARCHAR,
            updated_at TIMESTAMP NOT NULL,
            PRIMARY KEY (run_id, item)
        );
        ALTER TABLE runs ADD COLUMN total INTEGER;
        ALTER TABLE runs ADD COLUMN scored INTEGER;
        ALTER TABLE runs ADD COLUMN partial INTEGER;
        ALTER TABLE runs ADD COLUMN unscored INTEGER;
        ALTER TABLE runs ADD COLUMN cached INTEGER;
        ALTER TABLE runs ADD COLUMN failed INTEGER;
        ALTER TABLE runs ADD COLUMN calls INTEGER;
        ALTER TABLE runs ADD COLUMN prompt_tokens BIGINT;
        ALTER TABLE runs ADD COLUMN completion_tokens BIGINT;
        ALTER TABLE runs ADD COLUMN cost_usd DOUBLE;
        """,
    ),
    (
        "0003_labels_calibration",
        """
        -- One row per `labels import`: which file (and its sha256), so a label can always be traced back.
        CREATE TABLE label_imports (
            id VARCHAR PRIMARY KEY,
            imported_at TIMESTAMP NOT NULL,
            source_file VARCHAR NOT NULL,
            file_sha256 VARCHAR NOT NULL,
            file_format VARCHAR NOT NULL,
            layout VARCHAR NOT NULL,
            n_rows INTEGER NOT NULL,
            n_labels INTEGER NOT NULL,
            raters JSON
        );
        -- Human labels. status keeps 'not_observed' and 'missing' (an empty cell) distinct from scores;
        -- score is NULL unless status = 'scored'. A later import supersedes an earlier one for the same
        -- (transcript, rater, dimension); nothing is updated in place.
        CREATE TABLE human_labels (
            import_id VARCHAR NOT NULL,
            line INTEGER NOT NULL,
            transcript_hash VARCHAR NOT NULL,
            transcript_ref VARCHAR NOT NULL,
            source VARCHAR,
            rater VARCHAR NOT NULL,
            dimension_id VARCHAR NOT NULL,
            rubric_id VARCHAR NOT NULL,
            rubric_version VARCHAR NOT NULL,
            status VARCHAR NOT NULL,
            score DOUBLE,
            PRIMARY KEY (import_id, transcript_hash, rater, dimension_id)
        );
        CREATE INDEX human_labels_transcript ON human_labels (transcript_hash);
        -- A fitted calibration: which judge (kind, model, prompt version) and rubric versions it is valid
        -- for, the settings, the labels it was fitted on. Raw judge scores are never overwritten.
        CREATE TABLE calibrations (
            id VARCHAR PRIMARY KEY,
            created_at TIMESTAMP NOT NULL,
            judge_kind VARCHAR NOT NULL,
            model VARCHAR,
            prompt_version VARCHAR NOT NULL,
            rubric_versions JSON NOT NULL,
            settings JSON NOT NULL,
            label_imports JSON,
            n_transcripts INTEGER NOT NULL
        );
        -- Per dimension and method (identity, isotonic, multi_ridge): parameters as JSON (no pickles),
        -- cross-validated before/after metrics, whether it was the one chosen, and any warning.
        CREATE TABLE calibration_maps (
            calibration_id VARCHAR NOT NULL,
            dimension_id VARCHAR NOT NULL,
            method VARCHAR NOT NULL,
            chosen BOOLEAN NOT NULL,
            n INTEGER NOT NULL,
            params JSON,
            cv JSON,
            warning VARCHAR,
            PRIMARY KEY (calibration_id, dimension_id, method)
        );
        -- Calibrated scores beside the raw ones, for every stored judgment the calibration applies to.
        CREATE TABLE calibrated_scores (
            calibration_id VARCHAR NOT NULL,
            judgment_id VARCHAR NOT NULL,
            dimension_id VARCHAR NOT NULL,
            method VARCHAR NOT NULL,
            raw_score DOUBLE,
            calibrated_score DOUBLE,
            PRIMARY KEY (calibration_id, judgment_id, dimension_id)
        );
        """,
    ),
    (
        "0004_exchange_reasoning",
        """
        -- Reasoning models (DeepSeek-R1, Qwen3, o-series via some servers) return their thinking apart
        -- from the answer; the audit trail keeps both.
        ALTER TABLE exchanges ADD COLUMN reasoning VARCHAR;
        """,
    ),
    (
        "0005_run_owner",
        """
        -- Which process runs a run, so a run whose process died (SIGKILL, power loss) is shown as
        -- 'killed' instead of 'running' forever. Older rows have NULLs: they are left as they are.
        ALTER TABLE runs ADD COLUMN pid INTEGER;
        ALTER TABLE runs ADD COLUMN host VARCHAR;
        """,
    ),
    (
        "0006_score_distributions",
        """
        -- From token log-probabilities (--logprobs): the probability of each scale level at the score's
        -- token ({"1": 0.02, ...}, null for a level whose probability is unknown), the probability-weighted
        -- score, and why a distribution is missing or incomplete. NULL for judgments made without it.
        ALTER TABLE dimension_scores ADD COLUMN distribution JSON;
        ALTER TABLE dimension_scores ADD COLUMN expected_score DOUBLE;
        ALTER TABLE dimension_scores ADD COLUMN distribution_note VARCHAR;
        """,
    ),
    (
        "0007_transcript_text",
        """
        -- The text each judgment was made on, as the judge read it (turns split, code files attached),
        -- so reports read only the store. Keyed by a hash of that text: the same file read with another
        -- cohort's candidate override may split into other turns. Evidence quotes carry the span where
        -- the verifier found them (dimension_scores.evidence: source, start, end) in this text.
        CREATE TABLE transcript_texts (
            text_key VARCHAR PRIMARY KEY,
            transcript_hash VARCHAR NOT NULL,
            turns JSON NOT NULL,
            code JSON NOT NULL,
            candidate_speaker VARCHAR,
            stored_at TIMESTAMP NOT NULL
        );
        ALTER TABLE judgments ADD COLUMN text_key VARCHAR;
        """,
    ),
    (
        "0008_run_journal",
        """
        -- What a cohort run was asked to do (input, cohort, judge, rubric, --force), hashed: running the
        -- same command after an interruption resumes it and reuses whatever the interrupted run judged.
        ALTER TABLE runs ADD COLUMN request_key VARCHAR;
        """,
    ),
    (
        "0009_calibration_files",
        """
        -- The whole calibration document (maps, scales, features, cross-validation) by id, so a
        -- calibration fitted on plain files (or on this store) can be applied to other scores by id,
        -- exactly as the file written by `evaluate calibrate --out` would be.
        CREATE TABLE calibration_files (
            id VARCHAR PRIMARY KEY,
            created_at TIMESTAMP NOT NULL,
            document JSON NOT NULL
        );
        """,
    ),
    (
        "0010_samples_juries",
        """
        -- Repeated samples and juries (judge/ensemble.py): every member is an ordinary judgment; the
        -- aggregate is one more judgment with kind 'aggregate' whose members are listed here, with the
        -- juror (model[@api base]), the sample index and whether it was reused from the cache. The
        -- aggregate's calls, tokens and cost are 0: its members' rows carry what was paid.
        ALTER TABLE judgments ADD COLUMN kind VARCHAR DEFAULT 'single';
        CREATE TABLE judgment_members (
            aggregate_id VARCHAR NOT NULL,
            member_id VARCHAR NOT NULL,
            position INTEGER NOT NULL,
            juror VARCHAR NOT NULL,
            sample INTEGER NOT NULL,
            reused BOOLEAN NOT NULL,
            PRIMARY KEY (aggregate_id, position)
        );
        CREATE INDEX judgment_members_member ON judgment_members (member_id);
        -- An aggregate dimension's statistics over its members: n, n_scored, min, max, agreement (share
        -- equal to the median), unstable, each juror's score and spread, disagree, weights. NULL otherwise.
        ALTER TABLE dimension_scores ADD COLUMN ensemble JSON;
        """,
    ),
    (
        "0011_probes_redaction",
        """
        -- Bias probes (`evaluate probe`): a probe run re-judges transcripts under controlled
        -- perturbations (evaluator/judge/perturb.py) and K times unchanged (test-retest). Every
        -- judgment is an ordinary row of `judgments`; these tables only say which judgment is which
        -- perturbation (or retest sample) of which original transcript. Movements are computed from
        -- the scores by evaluator/probe/stats.py, never stored twice.
        CREATE TABLE probe_runs (
            id VARCHAR PRIMARY KEY,
            run_id VARCHAR NOT NULL,
            started_at TIMESTAMP NOT NULL,
            finished_at TIMESTAMP,
            model VARCHAR,
            prompt_version VARCHAR,
            params JSON,
            retest INTEGER NOT NULL,
            seed INTEGER NOT NULL,
            perturbations JSON NOT NULL,
            n_transcripts INTEGER,
            status VARCHAR
        );
        CREATE TABLE probe_items (
            probe_run_id VARCHAR NOT NULL,
            transcript_hash VARCHAR NOT NULL,
            source VARCHAR,
            rubric_id VARCHAR,
            perturbation VARCHAR NOT NULL,
            sample INTEGER NOT NULL,
            judgment_id VARCHAR,
            detail VARCHAR,
            skipped VARCHAR,
            error VARCHAR
        );
        CREATE INDEX probe_items_run ON probe_items (probe_run_id);
        CREATE INDEX probe_items_judgment ON probe_items (judgment_id);
        """,
    ),
    (
        "0012_batch_ledger",
        """
        -- Provider batch APIs (evaluator/batch/provider_batch.py): one row per batch, written BEFORE
        -- each step that talks to the provider (uploading -> creating -> submitted -> done), so a run
        -- killed at any moment finds it and continues instead of paying twice. `batch_requests` maps
        -- each request (custom_id = SHA-256 of its body) to the transcript's cache key and keeps the
        -- provider's reply once downloaded: a finished result is never lost, even before it is judged.
        CREATE TABLE batch_ledger (
            id VARCHAR PRIMARY KEY,
            cohort VARCHAR,
            provider VARCHAR NOT NULL,
            model VARCHAR,
            api_base VARCHAR,
            state VARCHAR NOT NULL,
            input_sha256 VARCHAR NOT NULL,
            input_bytes BIGINT,
            n_requests INTEGER NOT NULL,
            input_file_id VARCHAR,
            batch_id VARCHAR,
            provider_status VARCHAR,
            output_file_id VARCHAR,
            error_file_id VARCHAR,
            counts JSON,
            error VARCHAR,
            worst_cost_usd DOUBLE,
            submitted_at TIMESTAMP NOT NULL,
            updated_at TIMESTAMP
        );
        CREATE TABLE batch_requests (
            ledger_id VARCHAR NOT NULL,
            seq INTEGER NOT NULL,
            custom_id VARCHAR NOT NULL,
            cache_key VARCHAR,
            item VARCHAR,
            body JSON NOT NULL,
            state VARCHAR NOT NULL,
            reply JSON,
            error VARCHAR,
            PRIMARY KEY (ledger_id, custom_id)
        );
        CREATE INDEX batch_requests_custom ON batch_requests (custom_id);
        """,
    ),
    (
        "0014_s5_batch_waves",
        """
        -- Waves under the provider's enqueued-token limit (evaluator/batch/provider_submit.py): a batch
        -- recorded but not yet submitted is `queued` (its input file waits in the spool folder, or at the
        -- provider when an earlier create was failed for the limit); `enqueued_tokens` is its estimated
        -- prompt tokens (what the limit counts), `max_enqueued_tokens` the --max-enqueued-tokens it was
        -- recorded under, `attempt` how many times it was created before (the metadata of each create
        -- carries it, so a create whose answer was lost is found again and never made twice).
        ALTER TABLE batch_ledger ADD COLUMN enqueued_tokens BIGINT;
        ALTER TABLE batch_ledger ADD COLUMN max_enqueued_tokens BIGINT;
        ALTER TABLE batch_ledger ADD COLUMN attempt INTEGER DEFAULT 0;
        """,
    ),
    (
        "0015_s6_livemem",
        """
        -- A cohort's commits look its members up by content and by file (evaluator/store/db.py:
        -- cohort_member_rows, _insert_rows); without an index each lookup read the whole table, whose
        -- many small row groups (one per checkpoint) held ~9 MiB of a 10,000-member cohort in memory.
        CREATE INDEX cohort_members_hash ON cohort_members (transcript_hash);
        CREATE INDEX cohort_members_source ON cohort_members (source);
        """,
    ),
    (
        "0017_s7_batchmem",
        """
        -- Provider batch replies in a table of their own (evaluator/batch/provider_collect.py), appended
        -- as a result file is stored: they were an UPDATE of `batch_requests.reply`, a ~3 KB value per
        -- request, and every lookup of a chunk's requests (provider_ledger.known_for) scanned that column
        -- for every request of the ledger, so a collecting run's memory and time grew with the store.
        -- The ledger rows keep their state and the provider's reason; the replies move here, unchanged.
        CREATE TABLE batch_replies (
            ledger_id VARCHAR NOT NULL,
            custom_id VARCHAR NOT NULL,
            reply JSON NOT NULL
        );
        INSERT INTO batch_replies SELECT ledger_id, custom_id, reply FROM batch_requests WHERE reply IS NOT NULL
            ORDER BY ledger_id, seq;
        UPDATE batch_requests SET reply = NULL WHERE reply IS NOT NULL;
        """,
    ),
    (
        "0018_s8_lean_keys",
        """
        -- Exchanges and dimension scores without their primary keys. Nothing reads either table by its
        -- key: exchanges are found by judgment (a join), and DuckDB answers `dimension_scores WHERE
        -- judgment_id = ?` with a scan whatever the key, as it only looks a key of two columns up by
        -- both. Yet every group commit inserted ~6 random keys per judgment into those two indexes and
        -- the checkpoint at the end of each commit session wrote them out again, so a collecting run's
        -- memory grew with the store. Nothing relied on their uniqueness either: both are written
        -- only in the transaction that inserts their judgment, whose id is a fresh uuid under a
        -- primary key (a replay that stored it already fails there, and Batch.write / journal.fold
        -- skip stored ids first), and a rubric refuses a dimension id twice. Rebuilt as copies
        -- (DuckDB cannot drop a primary key): same columns, order, types, defaults and NOT NULLs.
        CREATE TABLE exchanges_0018 (
            id VARCHAR NOT NULL,
            judgment_id VARCHAR NOT NULL,
            attempt INTEGER NOT NULL,
            purpose VARCHAR NOT NULL,
            dimensions JSON,
            response_format VARCHAR,
            request_messages JSON,
            raw_response VARCHAR,
            parsed JSON,
            errors JSON,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            cost_usd DOUBLE,
            latency_ms DOUBLE,
            transport_attempts INTEGER,
            error VARCHAR,
            created_at TIMESTAMP DEFAULT current_timestamp,
            reasoning VARCHAR
        );
        INSERT INTO exchanges_0018 SELECT id, judgment_id, attempt, purpose, dimensions, response_format,
            request_messages, raw_response, parsed, errors, prompt_tokens, completion_tokens, cost_usd,
            latency_ms, transport_attempts, error, created_at, reasoning FROM exchanges;
        DROP TABLE exchanges;
        ALTER TABLE exchanges_0018 RENAME TO exchanges;
        CREATE TABLE dimension_scores_0018 (
            judgment_id VARCHAR NOT NULL,
            dimension_id VARCHAR NOT NULL,
            position INTEGER NOT NULL,
            status VARCHAR NOT NULL,
            score INTEGER,
            rationale VARCHAR,
            evidence JSON,
            dropped_evidence JSON,
            reason VARCHAR,
            distribution JSON,
            expected_score DOUBLE,
            distribution_note VARCHAR,
            ensemble JSON
        );
        INSERT INTO dimension_scores_0018 SELECT judgment_id, dimension_id, position, status, score, rationale,
            evidence, dropped_evidence, reason, distribution, expected_score, distribution_note, ensemble
            FROM dimension_scores;
        DROP TABLE dimension_scores;
        ALTER TABLE dimension_scores_0018 RENAME TO dimension_scores;
        DROP INDEX judgments_transcript;
        """,
    ),
]
