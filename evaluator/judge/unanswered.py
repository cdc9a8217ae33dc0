"""A judgment the model never answered: every request it sent ended in the server's failure (5xx, a
dropped connection, no reply before the deadline) after its retries. That is a judge that cannot be
used, not a transcript that scored nothing: a single transcript ends with exit 3 (pipeline.py), a
cohort stops after a few such judgments (batch/health.py). A rate limit is not the server failing.
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
