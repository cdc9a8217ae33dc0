"""Pure aggregation of a cohort run's results: per-dimension counts, mean, median, distribution."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any


class DimensionTally:
    """dimension_summary's counts, fed one dimension at a time: its memory is a few counters per
    dimension, not a row per scored dimension (a run judges its items while they stream by).

    `order` places each row in the run's order (an item key and the dimension's position, or a row
    number): dimensions come out in the order of the first row seen of each."""

    def __init__(self) -> None:
        self._first: dict[str, Any] = {}
        self._statuses: dict[str, Counter] = defaultdict(Counter)
        self._scores: dict[str, Counter] = defaultdict(Counter)

    def add(self, order: Any, dim: str, status: str, score: int | None) -> None:
        if dim not in self._first or order < self._first[dim]:
            self._first[dim] = order
        self._statuses[dim][status] += 1
        if status == "scored" and score is not None:
            self._scores[dim][int(score)] += 1

    def add_judgment(self, item: str, judgment: Any) -> None:
        """The dimensions of a judgment an item of the run points at (as stored for it)."""
        for pos, d in enumerate(judgment.dimensions):
            self.add((item, pos), d.id, d.status, d.score)

    def result(self) -> dict[str, dict[str, Any]]:
        """Per dimension: scored count, mean, median, distribution over the score levels, and how many
        were not observed or unscored (never folded into the scores)."""
        out: dict[str, dict[str, Any]] = {}
        for dim in sorted(self._first, key=self._first.__getitem__):
            counts = self._scores[dim]
            values = sorted(counts.elements())  # whole scores on a small scale: a short list, once
            out[dim] = {
                "count": len(values),
                "mean": round(statistics.fmean(values), 3) if values else None,
                "median": _number(statistics.median(values)) if values else None,
                "distribution": {str(k): v for k, v in sorted(counts.items())},
                "not_observed": self._statuses[dim]["not_observed"],
                "unscored": self._statuses[dim]["unscored"],
            }
        return out


def dimension_summary(rows: Iterable[tuple[str, str, int | None]]) -> dict[str, dict[str, Any]]:
    """rows: (dimension_id, status, score) for every dimension of every judgment in the run, in the
    run's order. Returns DimensionTally.result()."""
    tally = DimensionTally()
    for n, (dim, status, score) in enumerate(rows):
        tally.add(n, dim, status, score)
    return tally.result()


def run_dimensions(con: Any, run_id: str) -> dict[str, dict[str, Any]]:
    """dimension_summary over a run's items as stored (reused judgments included). It reads the
    whole of dimension_scores (no index leads from a judgment to its rows), so a run that judged
    every item it points at sums them as they finish instead (Tally.dimensions)."""
    rows = con.execute(
        "SELECT d.dimension_id, d.status, d.score FROM run_items ri"
        " JOIN dimension_scores d ON d.judgment_id = ri.judgment_id"
        " WHERE ri.run_id = ? ORDER BY ri.item, d.position", [run_id]).fetchall()
    return dimension_summary(rows)


def _number(value: float) -> int | float:
    """4.0 -> 4 (a median of whole scores is whole unless two middle values differ: then 3.5)."""
    return int(value) if float(value).is_integer() else value


class Tally:
    """What a run's summary lists beside the counts: failures, judgments not fully scored, reading
    warnings, items left unjudged. The runner reports into it; nothing here touches the store."""

    def __init__(self) -> None:
        from evaluator.batch.types import Counters

        self.counters = Counters()
        self.failures: list[dict[str, Any]] = []
        self.not_scored: list[dict[str, Any]] = []
        self.warnings: list[dict[str, Any]] = []
        self.skipped: list[str] = []
        self.dimensions = DimensionTally()  # of the judgments this run made, per item pointing at one
        self.reused_any = False  # an item points at a judgment from the store: run_dimensions sums the run

    def failed(self, item: str, source: str, error: str) -> None:
        self.counters.failed += 1
        self.failures.append({"item": item, "source": source, "error": error})

    def skip(self, item: str) -> None:
        self.counters.skipped += 1
        self.skipped.append(item)

    def reused(self, status: str, judgment: Any = None, item: str | None = None) -> None:
        """A judgment taken from the store, an identical copy or an interrupted run: `cached` counts
        the fully scored ones (so `scored` includes `cached`). With the `judgment` (an identical copy
        of one judged in this run) its dimensions are counted for the copy's `item`."""
        if judgment is not None and item is not None:
            self.dimensions.add_judgment(item, judgment)
        else:
            self.reused_any = True
        if status == "scored":
            self.counters.cached += 1
        setattr(self.counters, status, getattr(self.counters, status) + 1)

    def judged(self, item: str, source: str, j: Any) -> None:
        """Count a new judgment and its usage, and keep what a reader must see: why it is not fully
        scored, and any warning about how the transcript was read (no speaker labels, cut to fit)."""
        c = self.counters
        setattr(c, j.status, getattr(c, j.status) + 1)
        self.dimensions.add_judgment(item, j)
        self.usage(j.usage)
        if j.status != "scored":
            reason = j.reason or next((f"{d.id}: {d.reason}" for d in j.dimensions if d.status == "unscored"), None)
            self.not_scored.append({"item": item, "source": source, "status": j.status, "reason": reason})
        notes = list(j.warnings) + [f.detail for f in j.flags if f.kind in ("truncated", "speakers_unrecognised")]
        self.warnings += [{"item": item, "warning": w} for w in dict.fromkeys(notes)]

    def usage(self, u: Any) -> None:
        c = self.counters
        c.calls += u.calls
        c.prompt_tokens += u.prompt_tokens
        c.completion_tokens += u.completion_tokens
        if c.cost_usd is not None:
            c.cost_usd = None if u.cost_usd is None else c.cost_usd + u.cost_usd

    def run_dimensions(self, con: Any, run_id: str) -> dict[str, dict[str, Any]]:
        """The run's dimension summary: from the counts kept as judgments finished, unless an item
        points at a judgment this run did not make (then from the store, which has them all)."""
        return run_dimensions(con, run_id) if self.reused_any else self.dimensions.result()

    def summary(self, **fields: Any) -> Any:
        """The run's CohortSummary: these counts and lists, plus `fields` (cohort, run id, status...)."""
        from evaluator.batch.types import CohortSummary

        out = CohortSummary(**self.counters.model_dump(), failures=self.failures, not_scored=self.not_scored,
                            warnings=self.warnings, skipped_items=self.skipped, **fields)
        out.in_flight = 0
        if out.cost_usd is not None:
            out.cost_usd = round(out.cost_usd, 8)  # no float noise in what users read
        return out

    def totals(self) -> dict[str, Any]:
        """The run row's counters (skipped items count as failed there, as before)."""
        c = self.counters
        return {"total": c.total, "scored": c.scored, "partial": c.partial, "unscored": c.unscored,
                "cached": c.cached, "failed": c.failed + c.skipped, "calls": c.calls,
                "prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens, "cost_usd": c.cost_usd}
