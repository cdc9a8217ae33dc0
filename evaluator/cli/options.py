"""Options shared by every command that judges (single transcript, cohort): declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

Rubric = Annotated[Optional[str], typer.Option(help="Rubric id or YAML path (default: from the transcript's exercise, else 'default').")]
Model = Annotated[Optional[str], typer.Option(help="litellm model, e.g. openai/gpt-4o-mini, anthropic/claude-3-5-haiku-latest, ollama/llama3.1 (env: EVALUATOR_MODEL). Unset: the offline baseline judge.")]
ApiBase = Annotated[Optional[str], typer.Option(help="Base URL of an OpenAI-compatible server, Ollama, vLLM, llama.cpp (env: EVALUATOR_API_BASE).")]
Temperature = Annotated[float, typer.Option(help="Sampling temperature.")]
MaxTokens = Annotated[int, typer.Option(help="Cap on the judge's reply tokens.")]
Seed = Annotated[Optional[int], typer.Option(help="Sampling seed, where the provider supports it.")]
Timeout = Annotated[float, typer.Option(help="Seconds before one model request times out.")]
Retries = Annotated[int, typer.Option(help="Retries of a model request on 429, 5xx, timeouts and dropped connections.")]
RetryWait = Annotated[float, typer.Option(help="First backoff wait in seconds (doubles, with jitter; Retry-After wins).")]
RepairAttempts = Annotated[int, typer.Option(help="Times to ask the model again after invalid output.")]
ContextTokens = Annotated[Optional[int], typer.Option(help="The model's context window when litellm does not know it (unknown: 16000).")]
PriceIn = Annotated[Optional[float], typer.Option(help="USD per million prompt tokens, for models litellm has no price for.")]
PriceOut = Annotated[Optional[float], typer.Option(help="USD per million completion tokens.")]
Logprobs = Annotated[Optional[int], typer.Option(help="Ask for this many alternatives per reply token (1-20) and record each dimension's score distribution and expected score, when the model returns log-probabilities (env: EVALUATOR_LOGPROBS; default 0: off).")]
Redact = Annotated[Optional[bool], typer.Option("--redact/--no-redact", help="Replace names, e-mails, phone numbers, personal URLs and listed company names with placeholders before the prompt is sent, and restore them in what is stored (default: on for hosted providers, off for a local --api-base such as 127.0.0.1 or a private address).")]
RedactList = Annotated[Optional[Path], typer.Option(help="File of company (or other) names to redact, one per line (env: EVALUATOR_REDACT_LIST).")]
Db = Annotated[Optional[Path], typer.Option(help="DuckDB file (env: EVALUATOR_DB; default ./evaluator.duckdb).")]
Force = Annotated[bool, typer.Option("--force", help="Judge again even when this exact judgment is stored.")]
Format = Annotated[str, typer.Option("--format", "-f", help="table or json.")]


def judge_options(*, model, api_base, temperature, max_tokens, seed, timeout, retries, retry_wait,
                  repair_attempts, context_tokens, price_in=None, price_out=None, logprobs=None,
                  redact=None, redact_list=None):
    """JudgeOptions from the shared flags (environment variables fill what is not given)."""
    from evaluator.pipeline import JudgeOptions
    from evaluator.redact import load_terms

    return JudgeOptions.from_env(
        model=model, api_base=api_base, temperature=temperature, max_tokens=max_tokens, seed=seed,
        timeout=timeout, max_retries=retries, retry_initial_wait=retry_wait, repair_attempts=repair_attempts,
        context_tokens=context_tokens,
        input_cost_per_token=None if price_in is None else price_in / 1e6,
        output_cost_per_token=None if price_out is None and price_in is None else (price_out or 0.0) / 1e6,
        logprobs=logprobs, redact=redact,
        redact_terms=None if redact_list is None else load_terms(redact_list),
    )


def check_format(value: str, allowed: tuple[str, ...] = ("table", "json")) -> None:
    if value not in allowed:
        raise typer.BadParameter(f"must be one of {', '.join(allowed)}, got {value!r}", param_hint="--format")
