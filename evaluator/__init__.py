"""evaluator: judge mock technical-interview rounds against rubrics, with evidence.

Public API (small on purpose):
- `load_transcript(path, code_paths)` -> Transcript
- `select_rubric(rubric, exercise)` -> Rubric
- `JudgeOptions`, `build_judge(options)` -> Judge (LLM via litellm, or the offline baseline)
- `judge_transcript(transcript, rubric, judge)` (async) -> Judgment
- `evaluate_file(EvaluateRequest)` -> EvaluateResult (the whole `evaluate transcript.md` job)
Imports are lazy so `import evaluator` and `evaluate --help` stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_transcript": "evaluator.ingest",
    "select_rubric": "evaluator.rubrics",
    "Rubric": "evaluator.rubrics",
    "Transcript": "evaluator.models",
    "Judgment": "evaluator.models",
    "JudgeOptions": "evaluator.pipeline",
    "EvaluateRequest": "evaluator.pipeline",
    "build_judge": "evaluator.pipeline",
    "judge_transcript": "evaluator.pipeline",
    "evaluate_file": "evaluator.pipeline",
}

# Spelled out (not derived from _EXPORTS) so linters and type checkers see the
# TYPE_CHECKING imports below as the re-exported public API.
__all__ = [
    "EvaluateRequest",
    "JudgeOptions",
    "Judgment",
    "Rubric",
    "Transcript",
    "__version__",
    "build_judge",
    "evaluate_file",
    "judge_transcript",
    "load_transcript",
    "select_rubric",
]

if TYPE_CHECKING:  # pragma: no cover
    from evaluator.ingest import load_transcript
    from evaluator.models import Judgment, Transcript
    from evaluator.pipeline import (
        EvaluateRequest,
        JudgeOptions,
        build_judge,
        evaluate_file,
        judge_transcript,
    )
    from evaluator.rubrics import Rubric, select_rubric


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(name)
