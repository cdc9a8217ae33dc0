"""Probe statistics: pure functions over score rows (the store feeds them; nothing here reads it).

Movement of a perturbation on a dimension: the perturbed judgment's score minus the reference, the
mean of the unperturbed samples' scores of the same transcript (K retest samples: a steadier
reference than any single one). Mean signed (direction of the bias) and mean absolute (its size)
over the transcripts where both sides are scored. Invariance probes whose mean |delta| reaches
INVARIANCE_LIMIT are flagged.

Test-retest: the same input judged K times with the same settings. Agreement is the share of
sample pairs (within a transcript) that gave the identical score; spread the mean of max - min.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from itertools import combinations
from statistics import fmean, pstdev

from evaluator.judge.perturb import INVARIANCE_LIMIT, INVARIANT, PERTURBATIONS

UNPERTURBED = "none"


@dataclass(frozen=True)
class ScoreRow:
    """One dimension's score in one probe judgment (`score` None: not scored or not observed)."""

    transcript_hash: str
    perturbation: str  # UNPERTURBED for the retest samples
    sample: int
    dimension_id: str
    score: int | None


def _references(rows: list[ScoreRow]) -> dict[tuple[str, str], float]:
    base: dict[tuple[str, str], list[int]] = defaultdict(list)
    for r in rows:
        if r.perturbation == UNPERTURBED and r.score is not None:
            base[(r.transcript_hash, r.dimension_id)].append(r.score)
    return {k: fmean(v) for k, v in base.items()}


def movements(rows: list[ScoreRow]) -> list[dict]:
    """Per (perturbation, dimension): n, mean signed and mean absolute delta, and the flag; in the
    order of PERTURBATIONS, dimensions in the order the unperturbed judgments list them."""
    ref = _references(rows)
    deltas: dict[tuple[str, str], list[float]] = defaultdict(list)
    order: dict[tuple[str, str], None] = {}
    for r in rows:
        if r.perturbation == UNPERTURBED:
            continue
        key = (r.perturbation, r.dimension_id)
        order.setdefault(key)
        reference = ref.get((r.transcript_hash, r.dimension_id))
        if r.score is not None and reference is not None:
            deltas[key].append(r.score - reference)
    dims = list(dict.fromkeys(r.dimension_id for r in rows if r.perturbation == UNPERTURBED))
    rank = {p: i for i, p in enumerate(PERTURBATIONS)}
    out = []
    for perturbation, dim in sorted(order, key=lambda k: (rank.get(k[0], len(rank)), k[0],
                                                          dims.index(k[1]) if k[1] in dims else len(dims))):
        d = deltas.get((perturbation, dim), [])
        mean_abs = fmean(abs(x) for x in d) if d else None
        out.append({
            "perturbation": perturbation, "dimension_id": dim, "n": len(d),
            "mean_delta": fmean(d) if d else None, "mean_abs_delta": mean_abs,
            "invariant": perturbation in INVARIANT,
            "flagged": bool(perturbation in INVARIANT and mean_abs is not None and mean_abs >= INVARIANCE_LIMIT),
        })
    return out


def retest(rows: list[ScoreRow]) -> list[dict]:
    """Per dimension: transcripts with 2+ scored samples (n), samples per transcript (k), the share of
    sample pairs that agree exactly, the mean spread (max - min) and mean standard deviation."""
    samples: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r.perturbation == UNPERTURBED and r.score is not None:
            samples[r.dimension_id][r.transcript_hash].append(r.score)
    out = []
    for dim, by_transcript in samples.items():
        groups = [s for s in by_transcript.values() if len(s) >= 2]
        pairs = [a == b for s in groups for a, b in combinations(s, 2)]
        out.append({
            "dimension_id": dim, "n": len(groups), "k": max((len(s) for s in groups), default=0),
            "agreement": fmean(pairs) if pairs else None,
            "spread": fmean(max(s) - min(s) for s in groups) if groups else None,
            "sd": fmean(pstdev(s) for s in groups) if groups else None,
        })
    return out
