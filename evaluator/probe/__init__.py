"""Bias probes: re-judge transcripts under controlled perturbations and unchanged K times, and say
per dimension how far the scores move (`evaluate probe`).

`run` orchestrates (inputs, cache, judging, storing), `stats` holds the pure statistics over score
rows, `store` the SQL that feeds them (shared by the CLI and the report's judge-quality page). The
perturbations themselves are pure functions in `evaluator/judge/perturb.py`.
"""
