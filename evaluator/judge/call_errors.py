"""What a failed model request means: retry it, step down, record it as unscored, or stop the run.

Why a module of its own: providers report the same situation as assorted litellm exception classes
and messages (a missing key can arrive as a 500, an unreachable server as an "API connection error"
that litellm uses for anything it cannot map, a refused response format as a 400 or a 500). Telling
them apart is a policy of its own, separate from sending (llm_adapter.py), and each decision here has
a cost: retrying what cannot succeed wastes the run's time, and stopping on what would have passed
loses the batch. Functions take the litellm module (`ll`) so nothing here imports it.

- transient (retried with backoff): rate limits, 5xx, timeouts, dropped connections;
- a refused parameter (structured-output mode, log-probabilities): never retried as is, the adapter
  steps down and resends;
- fatal (JudgeUnavailable, exit 3): credentials, permissions, unknown model, exhausted quota, and a
  server that never answered at all;
- anything else the provider answered: CallFailed, recorded as unscored with the reason.
"""

from __future__ import annotations

import re
import time
from typing import Any

from evaluator.errors import JudgeUnavailable
from evaluator.judge.transport import CallFailed

_CREDENTIAL_HINTS = ("missing credentials", "api key", "api_key", "no auth credentials")


class RequestTimeout(TimeoutError):
    """No complete reply within the request's total deadline (connect, first byte and whole body)."""


def retry_after(exc: BaseException) -> float | None:
    """Seconds from a Retry-After header on the error's HTTP response, if the provider sent one."""
    headers: Any = None
    response = getattr(exc, "response", None)
    if response is not None:
        headers = getattr(response, "headers", None)
    # litellm keeps the provider's headers in `litellm_response_headers`; `response.headers` is a stub
    headers = getattr(exc, "litellm_response_headers", None) or headers or getattr(exc, "headers", None)
    if not headers:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return max(float(ms) / 1000, 0.0)
        value = headers.get("retry-after") or headers.get("Retry-After")
    except (AttributeError, ValueError):
        return None
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
        except (TypeError, ValueError):
            return None


def format_rejected(text: str) -> bool:
    """Whether an error's text names the structured-output mode (also a provider batch's error line)."""
    text = text.lower()
    return any(k in text for k in ("response_format", "json_schema", "json_object", "response format", "schema",
                                   "unsupported parameter", "not supported"))


def quota_exhausted(exc: BaseException) -> bool:
    """OpenAI's 429 `insufficient_quota` is not a rate limit: waiting will not help."""
    return "insufficient_quota" in str(exc).lower()


def missing_credentials(exc: BaseException) -> bool:
    """Providers' SDKs report a missing key as assorted errors (the openai SDK's even arrives as a
    litellm InternalServerError): retrying cannot help, the user must set the key."""
    text = str(exc).lower()
    return any(h in text for h in _CREDENTIAL_HINTS) and any(
        w in text for w in ("missing", "must be", "not set", "not provided", "environment variable", "invalid"))


def short_error(exc: BaseException, limit: int = 300) -> str:
    """One line of an error, without litellm's repeated class-name prefixes."""
    text = " ".join(str(exc).split())
    text = re.sub(r"^(litellm\.\w+: )?(\w+Error: )?(OpenAIException - )?", "", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _refused_parameter(ll: Any, exc: BaseException) -> bool:
    """The error classes a server refusing a request parameter answers with: 400 (most servers) or
    500 (llama-cpp-python 0.3.x)."""
    return isinstance(exc, (ll.BadRequestError, ll.UnsupportedParamsError, ll.InternalServerError))


def format_rejection(ll: Any, exc: BaseException, sent_mode: str) -> bool:
    """The server refused the response format we sent."""
    return sent_mode != "none" and _refused_parameter(ll, exc) and format_rejected(str(exc))


def logprobs_rejection(ll: Any, exc: BaseException, sent_top: int) -> bool:
    """The server refused the log-probability parameters we sent."""
    return bool(sent_top) and _refused_parameter(ll, exc) and "logprobs" in str(exc).lower()


def fatal(ll: Any, exc: BaseException) -> bool:
    """Credentials, permissions, an unknown model or an exhausted quota: no retry can help."""
    return (isinstance(exc, (ll.AuthenticationError, ll.PermissionDeniedError, ll.NotFoundError))
            or missing_credentials(exc) or quota_exhausted(exc))


def transient(ll: Any, exc: BaseException, sent_mode: str, sent_top: int = 0) -> bool:
    """Worth sending again as is, after a wait."""
    if fatal(ll, exc):
        return False
    if format_rejection(ll, exc, sent_mode) or logprobs_rejection(ll, exc, sent_top):
        return False  # a server refusing a parameter will refuse it again: step down instead
    return isinstance(exc, (ll.RateLimitError, ll.InternalServerError, ll.ServiceUnavailableError, ll.Timeout,
                            ll.APIConnectionError, ll.BadGatewayError, RequestTimeout))


def connection_error(ll: Any, exc: BaseException | None) -> bool:
    """Nothing answered (refused, reset, DNS): litellm wraps some of these as InternalServerError
    ("Connection error."), so look down the exception chain for the transport's own error."""
    import httpx

    transport: tuple[type[BaseException], ...] = (httpx.ConnectError, httpx.RemoteProtocolError, ConnectionError)
    try:
        import aiohttp

        transport += (aiohttp.ClientConnectionError,)
    except ImportError:  # pragma: no cover - litellm's default transport brings it
        pass
    # litellm maps *any* unmapped error to APIConnectionError, so its class proves nothing: only
    # the transport's own error further down the chain says that nothing answered.
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, ll.Timeout) or isinstance(exc, httpx.TimeoutException):
            return False
        if isinstance(exc, transport):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def unavailable(ll: Any, exc: BaseException, model: str) -> JudgeUnavailable:
    """The user-facing reason a fatal error stops the run."""
    if missing_credentials(exc) and "invalid" not in str(exc).lower():
        return JudgeUnavailable(
            f"no API key for {model}: set the provider's key (e.g. OPENAI_API_KEY, ANTHROPIC_API_KEY), "
            "or EVALUATOR_API_KEY for an OpenAI-compatible server."
        )
    if isinstance(exc, ll.AuthenticationError) or missing_credentials(exc):
        return JudgeUnavailable(
            f"the provider refused the credentials for {model} (authentication error). Set the "
            "provider's key (e.g. OPENAI_API_KEY, ANTHROPIC_API_KEY) or EVALUATOR_API_KEY."
        )
    if isinstance(exc, ll.PermissionDeniedError):
        return JudgeUnavailable(f"the provider denied access to {model} (permission denied).")
    if quota_exhausted(exc):
        return JudgeUnavailable(f"the provider says the quota for {model} is exhausted (insufficient_quota).")
    if isinstance(exc, ll.NotFoundError):
        return JudgeUnavailable(f"model {model} was not found at the provider: check --model / EVALUATOR_MODEL.")
    return JudgeUnavailable(f"cannot use model {model}: {short_error(exc)}")


def retries_exhausted(ll: Any, exc: BaseException, model: str, api_base: str | None, attempts: int,
                      latency_ms: float, mode: str) -> Exception:
    """What to raise when transient errors outlasted the retries: a server that never answered stops
    the run; one that answered with errors fails this call (unscored)."""
    tries = f"{attempts} attempt{'' if attempts == 1 else 's'}"
    if connection_error(ll, exc):
        return JudgeUnavailable(f"model {model} is unreachable{f' at {api_base}' if api_base else ''} "
                                f"after {tries}: {short_error(exc)}")
    return CallFailed(f"{type(exc).__name__} after {tries}: "
                      f"{short_error(exc, 700 if isinstance(exc, RequestTimeout) else 300)}",
                      attempts, latency_ms, mode)


def refusal(ll: Any, exc: BaseException, model: str, attempts: int, latency_ms: float, mode: str) -> Exception | None:
    """What to raise for an error not worth retrying (after any step-down was tried): stop the run,
    fail this call, or None for an error that is not the provider's (a bug: let it propagate)."""
    if fatal(ll, exc):
        refused = unavailable(ll, exc, model)
        refused.requests = attempts  # the provider answered them (with a refusal): they count
        return refused
    if isinstance(exc, ll.BadRequestError) and "llm provider not provided" in str(exc).lower():
        return JudgeUnavailable(  # an unknown model, like any other: exit 3 (README)
            f"litellm cannot route model '{model}': prefix it with its provider, e.g. "
            "openai/gpt-4o-mini, anthropic/claude-3-5-haiku-latest, ollama/llama3.1")
    if isinstance(exc, ll.ContextWindowExceededError):
        return CallFailed(f"the prompt exceeds the model's context window; pass --context-tokens with the "
                          f"model's real window so the transcript is cut to fit ({short_error(exc, 160)})",
                          attempts, latency_ms, mode)
    if isinstance(exc, (ll.APIError, ll.BadRequestError)) or isinstance(exc, ll.exceptions.OpenAIError):
        return CallFailed(f"{type(exc).__name__}: {short_error(exc)}", attempts, latency_ms, mode)
    return None
