"""Can this judge be trusted? Human labels, judge-human agreement, calibration, ragas alignment.

Modules:
- records: the typed rows every other module works on (a label, a judge score, a report).
- labels: read CSV/JSONL label files (long or wide form), validate them, resolve transcripts.
- agreement: per-dimension agreement metrics with bootstrap intervals and the human-human ceiling.
- calibration: monotone (isotonic) and multi-signal maps from judge scores to the human scale,
  judged by k-fold cross-validation; versioned by judge and rubric versions.
- store: every SQL statement of this package (labels, judge scores, calibrations).
- service: the functions the CLI calls (one per command), wiring files/store to the pure functions.
- importing: `labels import` / `labels list` (a label file resolved and stored in one transaction).
- gathering: the scores to compare, from the store or two plain files, for agreement and calibration.
- align: few-shot selection (pure) and the optional ragas alignment.

Statistics are pure functions over records, so they are testable without a database and the same
code runs on the store and on two plain files.
"""
