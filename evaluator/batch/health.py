"""A judge that answers every request with a server error is as unavailable as one that cannot be
reached: stop the cohort (exit 3, what is left listed) instead of paying for every transcript's
retries and ending "completed" with nothing scored. With --samples or --jury a judgment is unanswered
when every member is (judge/unanswered.py, as `evaluate FILE` decides it): one juror answering is
an answer."""

from __future__ import annotations

from evaluator.errors import JudgeUnavailable
from evaluator.judge.unanswered import heard, last_error, server_failed, unanswered
from evaluator.models import Judgment

__all__ = ["FAILED_JUDGMENTS", "JudgeHealth", "server_failed"]

FAILED_JUDGMENTS = 3  # the first N judgments of a run all failed on server errors: stop


class JudgeHealth:
    """Counts failed judgments: a judge that never answers stops the run (exit 3) rather than fail every item."""

    def __init__(self, limit: int = FAILED_JUDGMENTS) -> None:
        self.limit = limit
        self.failed = 0
        self.calls = 0
        self.answered = False  # once the server has answered, later failures are the ordinary kind
        self.last_error: str | None = None

    def judged(self, j: Judgment) -> JudgeUnavailable | None:
        """Note a finished judgment; the error that stops the run, when the judge looks down."""
        if self.answered:
            return None
        if not unanswered(j):
            self.answered = heard(j)
            return None
        self.failed += 1
        self.calls += j.usage.calls
        self.last_error = last_error(j)
        if self.failed < self.limit:
            return None
        return JudgeUnavailable(
            f"the judge failed every call of the first {self.failed} judgments ({self.calls} requests) with server "
            f"errors, last: {self.last_error}; stopped as unavailable: finished judgments are kept, run the same "
            "command again when the server is healthy")
