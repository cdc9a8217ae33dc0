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
]
