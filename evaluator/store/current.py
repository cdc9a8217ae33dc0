"""Which stored judgment stands for a session: one definition for the report, `evaluate export`
(its `role` and `current` columns, `--current`) and the judge scores agreement and calibrate pair
with human labels.

Why one place: the report chose the best status first (a later failed or partial attempt never
hides a score) while agreement took the newest judgment whatever its status, and neither export nor
agreement knew the judgments a bias probe made of perturbed inputs (`evaluate probe`: names swapped,
anchors reversed, dimensions reordered...). Those are stored like any judgment, some under the
session's own transcript hash and under a rubric "version" of their own (the reordered or reversed
rubric), so agreement reported them as extra rubric versions of the session, and an exported row
could not be told from the session's own.
"""

from __future__ import annotations

# The judgments of inputs a bias probe perturbed: not judgments of a real session.
PROBE_INPUT_IDS_SQL = ("SELECT judgment_id FROM probe_items WHERE perturbation <> 'none'"
                       " AND judgment_id IS NOT NULL")


def best_first(alias: str = "") -> str:
    """ORDER BY terms for the judgments of one transcript, rubric version and judge: the best status
    (scored, then partial, then unscored), the latest within a status (`alias`: the judgments' table)."""
    p = f"{alias}." if alias else ""
    return f"CASE {p}status WHEN 'scored' THEN 0 WHEN 'partial' THEN 1 ELSE 2 END, {p}created_at DESC, {p}id"


BEST_FIRST = best_first()

# Ids of the judgments that are samples of a --samples run (members of an aggregate with more than
# one sample): views of "the" judgment of a model show them through their aggregate instead.
SAMPLE_MEMBER_IDS_SQL = ("SELECT member_id FROM judgment_members WHERE aggregate_id IN"
                         " (SELECT aggregate_id FROM judgment_members WHERE sample > 0)")

# SQL for what a stored judgment `j` is: 'judgment' (of the session), 'sample' (one draw of a
# --samples run: its aggregate, the median, stands for the transcript) or 'probe' (of an input a
# bias probe perturbed).
ROLE_SQL = (f"CASE WHEN j.id IN ({PROBE_INPUT_IDS_SQL}) THEN 'probe'"
            f" WHEN j.id IN ({SAMPLE_MEMBER_IDS_SQL}) THEN 'sample' ELSE 'judgment' END")

# Over rows of judgments with their `role`: true for the one that stands for its transcript, rubric
# version and judge (the one the report's score views and agreement use), false for every other.
CURRENT_SQL = ("coalesce(role = 'judgment' AND row_number() OVER (PARTITION BY transcript_hash, rubric_version,"
               f" coalesce(model, judge_kind), role = 'judgment' ORDER BY {BEST_FIRST}) = 1, false)")
