"""A judgment the model never answered: every request it sent ended in the server's failure (5xx, a
dropped connection, no reply before the deadline) after its retries. That is a judge that cannot be
used, not a transcript that scored nothing: a single transcript ends with exit 3 (pipeline.py), a
cohort stops after a few such judgments (batch/health.py). A rate limit is not the server failing.
An aggregate (--samples, --jury) is unanswered when every one of its members is.
"""

from __future__ import annotations

from evaluator.models import Judgment

# How a failed request's error starts (the exception's class name, as the adapter writes it).
# `RequestTimeout` is the adapter's own deadline; `Timeout` is litellm's.
SERVER_ERRORS = ("InternalServerError", "ServiceUnavailableError", "BadGatewayError", "APIError",
                 "APIConnectionError", "Timeout", "RequestTimeout")


def server_failed(j: Judgment) -> bool:
    """No reply at all, and the last error of every call was the server's, not a rate limit."""
    return bool(j.exchanges) and all(e.raw_response is None and e.error is not None
                                     and e.error.startswith(SERVER_ERRORS) for e in j.exchanges)


def unanswered(j: Judgment) -> bool:
    """`server_failed`, or an aggregate whose every member is (one juror answering is an answer)."""
    if j.kind == "aggregate":
        return bool(j.members) and all(unanswered(m.judgment) for m in j.members)
    return server_failed(j)


def last_error(j: Judgment) -> str | None:
    """The error of the last request sent for an unanswered judgment (its last member's, for an aggregate)."""
    if j.kind == "aggregate":
        return next((e for m in reversed(j.members) if (e := last_error(m.judgment))), None)
    return j.exchanges[-1].error if j.exchanges else None


def heard(j: Judgment) -> bool:
    """The model (any member, for an aggregate) answered at least one request: later failures are then
    the ordinary kind, not a judge that cannot be used."""
    if j.kind == "aggregate":
        return any(heard(m.judgment) for m in j.members)
    return any(e.raw_response is not None for e in j.exchanges)
