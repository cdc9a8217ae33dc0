"""A name the user gave that the store does not know (a cohort, a candidate, a model): one message,
with the close spellings, for every command that filters by it.

Why one place: `report --cohort` suggested the name meant while `runs`, `judgments list`, `export` and
`batches` each had their own wording (or none, and printed an empty result): a typo read differently
depending on the command.
"""

from __future__ import annotations

import difflib
from typing import Any

from evaluator.errors import BadInput

SHOWN = 12  # known names listed in the message; the close ones are suggested whatever their rank

# Every name a cohort is known by: declared, with members, or named by a run (a batch run's cohort
# may have runs before it has members).
COHORT_NAMES_SQL = ("SELECT name FROM cohorts UNION SELECT cohort FROM cohort_members"
                    " UNION SELECT cohort FROM runs WHERE cohort IS NOT NULL")


def did_you_mean(value: str, known: list[str]) -> str:
    """The known names that differ from `value` only in case, else the closest few: in a long list of
    candidates the one meant is rarely among the first twelve shown."""
    same = [k for k in known if k.casefold() == value.casefold()]
    close = same or difflib.get_close_matches(value, known, n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""


def unknown_name(kind: str, value: str, known: list[str]) -> BadInput:
    """`no cohort named 'sprnig' in the store (did you mean 'spring'?); known: spring, autumn`."""
    listed = ", ".join(known[:SHOWN]) or "none"
    more = f" (+{len(known) - SHOWN} more)" if len(known) > SHOWN else ""
    return BadInput(f"no {kind} named {value!r} in the store{did_you_mean(value, known)}; known: {listed}{more}")


def known_cohorts(con: Any) -> list[str]:
    """Every cohort name in the store, sorted."""
    return sorted(str(r[0]) for r in con.execute(COHORT_NAMES_SQL).fetchall())


def require_cohort(con: Any, cohort: str | None) -> None:
    """BadInput (exit 2) for a `--cohort` the store has never heard of; nothing for None."""
    if cohort is None:
        return
    known = known_cohorts(con)
    if cohort not in known:
        raise unknown_name("cohort", cohort, known)
