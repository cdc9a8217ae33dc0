"""Errors that end a command with a clear message and a documented exit code (never a traceback)."""

from __future__ import annotations

# Exit codes, documented in the README.
EXIT_OK = 0
EXIT_NOT_FULLY_SCORED = 1
EXIT_BAD_INPUT = 2
EXIT_JUDGE_UNAVAILABLE = 3
EXIT_INTERRUPTED = 130
EXIT_INTERNAL = 70  # a bug in evaluator (EX_SOFTWARE)


class EvaluatorError(Exception):
    """Base class: carries the exit code the CLI should use."""

    exit_code = EXIT_BAD_INPUT

    def __str__(self) -> str:
        # messages often quote a provider's error body, which may echo the API key it refused
        # and they quote file names and text that may carry terminal escape sequences
        from evaluator.safety import for_terminal, redact

        return for_terminal(redact(super().__str__()))


class BadInput(EvaluatorError):
    """The user's file, option or rubric is unusable; the message says which and why."""

    exit_code = EXIT_BAD_INPUT


class JudgeUnavailable(EvaluatorError):
    """A configured model cannot be used: unreachable, unknown, or the credentials are refused.

    Never answered by falling back to the baseline judge: the user asked for a model.
    `requests`: requests the provider answered with the refusal (they count as calls made).
    """

    exit_code = EXIT_JUDGE_UNAVAILABLE
    requests = 0


class StoreError(EvaluatorError):
    """The DuckDB file cannot be opened or written (locked by another writer, not a database...)."""

    exit_code = EXIT_BAD_INPUT
