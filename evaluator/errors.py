"""Errors that end a command with a clear message and a documented exit code (never a traceback)."""

from __future__ import annotations

# Exit codes, documented in the README.
EXIT_OK = 0
EXIT_NOT_FULLY_SCORED = 1
EXIT_BAD_INPUT = 2
EXIT_JUDGE_UNAVAILABLE = 3
EXIT_BELOW_THRESHOLD = 4  # --fail-under: scored, but below the bar (a CI gate)
EXIT_INTERRUPTED = 130
EXIT_INTERNAL = 70  # a bug in evaluator (EX_SOFTWARE)
EXIT_OUTPUT_CLOSED = 141  # stdout closed by its reader (`| head`): 128 + SIGPIPE, as a shell reports it

# The table in `evaluate --help` and the README.
EXIT_CODES = {
    EXIT_OK: "every dimension scored (or not observed where allowed); with --batch: the rest awaits the provider",
    EXIT_NOT_FULLY_SCORED: "partially scored or unscored",
    EXIT_BAD_INPUT: "bad input: file, rubric, option, config or database",
    EXIT_JUDGE_UNAVAILABLE: "judge unavailable: model unreachable, unknown, credentials refused, or failing every "
                            "request",
    EXIT_BELOW_THRESHOLD: "scored, but below a --fail-under threshold",
    EXIT_INTERNAL: "internal error (a bug: rerun with EVALUATOR_DEBUG=1)",
    EXIT_INTERRUPTED: "interrupted",
    EXIT_OUTPUT_CLOSED: "stdout closed before the output was written (e.g. `| head`)",
}

# Several transcripts in one call exit with the worst of their codes, in this order (last is worst).
SEVERITY = (EXIT_OK, EXIT_BELOW_THRESHOLD, EXIT_NOT_FULLY_SCORED, EXIT_BAD_INPUT, EXIT_JUDGE_UNAVAILABLE)


def worst_exit_code(codes: list[int]) -> int:
    """The most severe of several exit codes (SEVERITY order; unknown codes count as the worst)."""
    return max(codes, key=lambda c: SEVERITY.index(c) if c in SEVERITY else len(SEVERITY), default=EXIT_OK)


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
