"""Synthetic datasets shaped like published judge-vs-human collections, for end-to-end CLI tests.

- `summeval_like`: many source documents, several systems' outputs per document, three expert raters
  per output with personal offsets, four criteria on 1-5; a G-Eval style judge whose score is the
  probability-weighted expected score over the five levels (fractional, with `p1..p5` columns). An
  `averaged` human file gives one fractional score per output (the experts' mean, as such datasets
  are often released).
- `topical_chat_like`: dialogue contexts with several responses each, criteria on different scales
  (0-1, 1-3, 1-5) and an N/A code (0) on the 1-3 criteria where a rater found the criterion did not
  apply, with integer judge scores.

The truth has a document effect and a system effect, so per-document, system-level and pooled
statistics differ, as they do in the papers. Everything is seeded; the files are plain CSV in the
column names such releases use (`doc_id`, `system_id`, `annotator`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SUMMEVAL_CRITERIA = ("coherence", "consistency", "fluency", "relevance")
TOPICAL_SCALES = {"understandable": (0, 1), "natural": (1, 3), "maintains_context": (1, 3), "engaging": (1, 3),
                  "uses_knowledge": (0, 1), "overall": (1, 5)}
NA_CODE = 0


@dataclass
class Published:
    """Rows as written to the files, and the same data as arrays for computing references."""

    judge_rows: list[dict] = field(default_factory=list)
    human_rows: list[dict] = field(default_factory=list)
    judge: dict[tuple[str, str], float] = field(default_factory=dict)
    human: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)
    na: dict[tuple[str, str], int] = field(default_factory=dict)
    doc: dict[str, str] = field(default_factory=dict)
    system: dict[str, str] = field(default_factory=dict)

    def write(self, folder: Path, name: str, averaged: bool = False) -> tuple[str, str]:
        """Judge and human CSV files (long form); `averaged`: one fractional row per item, rater 'avg'."""
        judge_path, human_path = folder / f"{name}_judge.csv", folder / f"{name}_human.csv"
        _write_csv(judge_path, self.judge_rows)
        rows = self.human_rows
        if averaged:
            rows = [{"id": item, "doc_id": self.doc[item], "system_id": self.system[item], "annotator": "avg",
                     "dimension": dim, "score": f"{np.mean(list(r.values())):.4f}"}
                    for (item, dim), r in sorted(self.human.items()) if r]
        _write_csv(human_path, rows)
        return str(judge_path), str(human_path)

    def items(self, dim: str) -> list[str]:
        """Items of `dim` the raters scored (at least as many scores as N/A marks) that the judge scored."""
        return sorted(i for (i, d), r in self.human.items()
                      if d == dim and r and len(r) >= self.na.get((i, d), 0) and (i, d) in self.judge)


def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
        w.writeheader()
        w.writerows(rows)


def summeval_like(seed: int, docs: int = 24, systems: int = 6, raters: int = 3, first_doc: int = 0,
                  rater_offsets: tuple[float, ...] = (-0.5, 0.1, 0.45), systems_seed: int = 0) -> Published:
    """SummEval-shaped data (see the module docstring); documents first_doc.. so two calls with
    different first_doc are disjoint datasets labelled by the same experts, summarised by the same
    systems (their quality comes from `systems_seed`: another value means other systems)."""
    rng = np.random.default_rng(seed)
    out = Published()
    system_effect = np.random.default_rng(systems_seed).normal(0, 0.6, (systems, len(SUMMEVAL_CRITERIA)))
    levels = np.arange(1, 6)
    for d in range(first_doc, first_doc + docs):
        doc_effect = rng.normal(0, 0.5, len(SUMMEVAL_CRITERIA))
        for s in range(systems):
            item = f"doc{d}-sys{s}"
            out.doc[item], out.system[item] = f"doc{d}", f"sys{s}"
            truth = np.clip(3.2 + doc_effect + system_effect[s] + rng.normal(0, 0.6, len(SUMMEVAL_CRITERIA)), 1, 5)
            for k, crit in enumerate(SUMMEVAL_CRITERIA):
                # a lenient, compressed judge: probabilities peak above the truth and spread wide
                centre = 3.6 + 0.55 * (truth[k] - 3) + rng.normal(0, 0.35)
                logits = -((levels - centre) ** 2) / 1.1
                p = np.exp(logits - logits.max())
                p /= p.sum()
                p = np.round(p, 4)
                p[np.argmax(p)] += round(1 - p.sum(), 4)  # the rounding remainder on the likeliest level
                expected = float(np.dot(levels, p))
                out.judge[(item, crit)] = expected
                out.judge_rows.append({"id": item, "doc_id": f"doc{d}", "system_id": f"sys{s}", "dimension": crit,
                                       "score": f"{expected:.4f}",
                                       **{f"p{i + 1}": f"{v:.4f}" for i, v in enumerate(p)}})
                got: dict[str, float] = {}
                for r in range(raters):
                    value = float(np.clip(np.round(truth[k] + rater_offsets[r % len(rater_offsets)]
                                                   + rng.normal(0, 0.55)), 1, 5))
                    got[f"expert{r + 1}"] = value
                    out.human_rows.append({"id": item, "doc_id": f"doc{d}", "system_id": f"sys{s}",
                                           "annotator": f"expert{r + 1}", "dimension": crit, "score": f"{value:g}"})
                out.human[(item, crit)] = got
    # a judge row carries the exact expected score the file holds (4 decimals)
    out.judge = {k: float(f"{v:.4f}") for k, v in out.judge.items()}
    return out


def topical_chat_like(seed: int, contexts: int = 20, responses: int = 6, raters: int = 3,
                      na_rate: float = 0.12) -> Published:
    """Topical-Chat-shaped data (see the module docstring): 0 is N/A on the 1-3 criteria."""
    rng = np.random.default_rng(seed)
    out = Published()
    for c in range(contexts):
        for s in range(responses):
            item = f"ctx{c}-r{s}"
            out.doc[item], out.system[item] = f"ctx{c}", f"r{s}"
            quality = rng.uniform(0, 1)
            for crit, (lo, hi) in TOPICAL_SCALES.items():
                truth = lo + quality * (hi - lo) + rng.normal(0, 0.25 * (hi - lo))
                judge = int(np.clip(np.round(truth + rng.normal(0.2, 0.35 * (hi - lo))), lo, hi))
                out.judge[(item, crit)] = float(judge)
                out.judge_rows.append({"id": item, "doc_id": f"ctx{c}", "system_id": f"r{s}", "dimension": crit,
                                       "score": str(judge)})
                got: dict[str, float] = {}
                for r in range(raters):
                    value = int(np.clip(np.round(truth + rng.normal(0, 0.3 * (hi - lo))), lo, hi))
                    if lo == 1 and rng.random() < na_rate:
                        cell = str(NA_CODE)  # the rater marked the criterion not applicable
                        out.na[(item, crit)] = out.na.get((item, crit), 0) + 1
                    else:
                        cell = str(value)
                        got[f"a{r + 1}"] = float(value)
                    out.human_rows.append({"id": item, "doc_id": f"ctx{c}", "system_id": f"r{s}",
                                           "annotator": f"a{r + 1}", "dimension": crit, "score": cell})
                out.human[(item, crit)] = got
    return out
