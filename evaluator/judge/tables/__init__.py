"""The pattern tables of the offline baseline judge: what it looks for, as plain data.

Each table is a list of regexes (or labelled tuples of them) that `signals.py` compiles and the scorers
(`invariant.py`, `edge_cases.py`, `restraint.py`, `recovery.py`, `cost.py` beside `baseline.py`) weigh.
Keeping them apart from the code lets a reader see exactly what the baseline reacts to, and makes
their content hash (part of the cache key) cover all of them. One module per dimension, because each
dimension's tables are read by its scorer alone; this package gathers them (`TABLES`) for the hash
and re-exports every table, so `tables.NAME` reads as before.
"""

from __future__ import annotations

import hashlib
import json

from evaluator.judge.tables.cost import (
    COST_PROMPT,
    COST_QUANTITIES,
    COST_TOPIC,
    COST_TRADEOFF,
)
from evaluator.judge.tables.edge_cases import (
    EDGE_CATEGORIES,
    EDGE_HOLLOW,
    EDGE_PROBE,
    EDGE_QUESTION,
    EDGE_TEST,
    EDGE_TEST_DATA,
    EXIT_GUARD,
    EXIT_LINE,
    GUARD_LINE,
    TEST_PARAM,
    TEST_REQUEST,
)
from evaluator.judge.tables.invariant import (
    CHECK_LINE,
    ENTITIES,
    INVARIANT_CUES,
    INVARIANT_DESIGN,
    INVARIANT_HOLLOW,
    INVARIANT_PROMPT,
    INVARIANT_QUANTIFIED,
    INVARIANT_STOPWORDS,
    INVARIANT_SYNONYMS,
    INVARIANT_USE,
    PROPERTY_TEST,
    RELATIONS,
    SELF_CLAIM,
    UNIVERSAL,
)
from evaluator.judge.tables.recovery import (
    ACKNOWLEDGE,
    ATTEMPT,
    CLAIM_MISTAKE,
    DIRECT_HINT,
    EXTENSION_REQUEST,
    FAILURE_DESCRIBED,
    FLAIL,
    HEDGE,
    HINTED,
    HYPOTHETICAL,
    INTENTIONAL,
    MECHANISM,
    MISTAKE_CANDIDATE,
    MISTAKE_INTERVIEWER,
    MISTAKE_OUTPUT,
    NUDGE_INTERVIEWER,
    PANIC,
    PROBE_INTERVIEWER,
    RECOVERY_CAUSE,
    RECOVERY_FIX,
    RECOVERY_RESET,
    RECOVERY_VERIFIED,
    SCENARIO,
    SUPPOSITION,
)
from evaluator.judge.tables.restraint import (
    LARGE_FIRST_BLOCK,
    NEGATION,
    PREMATURE_CODE,
    PREMATURE_PROSE,
    RESTRAINT_DEFER,
    RESTRAINT_SCOPE,
    SMALL_FIRST_BLOCK,
)

TABLES = {
    "invariant": [INVARIANT_CUES, INVARIANT_QUANTIFIED, SELF_CLAIM, RELATIONS, ENTITIES, INVARIANT_HOLLOW,
                  INVARIANT_USE, INVARIANT_STOPWORDS, INVARIANT_SYNONYMS, CHECK_LINE, INVARIANT_PROMPT,
                  INVARIANT_DESIGN, PROPERTY_TEST, UNIVERSAL],
    "edge_cases": [EDGE_CATEGORIES, EDGE_HOLLOW, GUARD_LINE, EDGE_PROBE, EDGE_TEST_DATA, TEST_PARAM, EXIT_GUARD,
                   EXIT_LINE, EDGE_TEST, EDGE_QUESTION, TEST_REQUEST],
    "restraint": [RESTRAINT_SCOPE, RESTRAINT_DEFER, PREMATURE_CODE, PREMATURE_PROSE, NEGATION,
                  LARGE_FIRST_BLOCK, SMALL_FIRST_BLOCK],
    "recovery": [MISTAKE_CANDIDATE, MISTAKE_OUTPUT, INTENTIONAL, MISTAKE_INTERVIEWER, NUDGE_INTERVIEWER,
                 DIRECT_HINT, HEDGE, FLAIL, PROBE_INTERVIEWER, ACKNOWLEDGE, HINTED, HYPOTHETICAL, SUPPOSITION,
                 RECOVERY_CAUSE, RECOVERY_RESET, RECOVERY_FIX, RECOVERY_VERIFIED, PANIC, CLAIM_MISTAKE, MECHANISM,
                 ATTEMPT, EXTENSION_REQUEST, FAILURE_DESCRIBED, SCENARIO],
    "cost_awareness": [COST_QUANTITIES, COST_TRADEOFF, COST_TOPIC, COST_PROMPT],
}


def tables_hash(tables: dict = TABLES) -> str:
    """Short content hash of the signal tables: part of the baseline's prompt_version (cache key)."""
    return hashlib.sha256(json.dumps(tables, sort_keys=True).encode()).hexdigest()[:10]


TABLES_HASH = tables_hash()

__all__ = ["ACKNOWLEDGE", "ATTEMPT", "CHECK_LINE", "CLAIM_MISTAKE", "COST_PROMPT", "COST_QUANTITIES",
    "COST_TOPIC", "COST_TRADEOFF", "DIRECT_HINT", "EDGE_CATEGORIES", "EDGE_HOLLOW", "EDGE_PROBE", "EDGE_QUESTION",
    "EDGE_TEST", "EDGE_TEST_DATA", "ENTITIES", "EXIT_GUARD", "EXIT_LINE", "EXTENSION_REQUEST",
    "FAILURE_DESCRIBED", "FLAIL", "GUARD_LINE", "HEDGE", "HINTED", "HYPOTHETICAL", "INTENTIONAL",
    "INVARIANT_CUES", "INVARIANT_DESIGN", "INVARIANT_HOLLOW", "INVARIANT_PROMPT", "INVARIANT_QUANTIFIED",
    "INVARIANT_STOPWORDS", "INVARIANT_SYNONYMS", "INVARIANT_USE", "LARGE_FIRST_BLOCK", "MECHANISM",
    "MISTAKE_CANDIDATE", "MISTAKE_INTERVIEWER", "MISTAKE_OUTPUT", "NEGATION", "NUDGE_INTERVIEWER", "PANIC",
    "PREMATURE_CODE", "PREMATURE_PROSE", "PROBE_INTERVIEWER", "PROPERTY_TEST", "RECOVERY_CAUSE", "RECOVERY_FIX",
    "RECOVERY_RESET", "RECOVERY_VERIFIED", "RELATIONS", "RESTRAINT_DEFER", "RESTRAINT_SCOPE", "SCENARIO",
    "SELF_CLAIM", "SMALL_FIRST_BLOCK", "SUPPOSITION", "TABLES", "TABLES_HASH", "TEST_PARAM", "TEST_REQUEST",
    "UNIVERSAL", "tables_hash"]
