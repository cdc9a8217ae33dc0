"""Options shared by the commands, declared once.

The judge options (model, sampling, retries, prices...) are one list, `JUDGE_PARAMS`, added to a
command by `@with_judge_options`: the command receives them as one `JudgeOptions` (`judge=`).
Ranges are checked by click for every judge, baseline or model, and for values from the
environment or the config file alike (a `--max-tokens 0` the baseline ignores is still wrong).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

if TYPE_CHECKING:
    from evaluator.pipeline import JudgeOptions



def positive(ctx: typer.Context, param: typer.CallbackParam, value: float | None) -> float | None:
    """Callback for a number that must be above 0 (typer's min= is inclusive)."""
    if value is not None and value <= 0:
        raise typer.BadParameter(f"{value:g} is not above 0", ctx=ctx, param_hint=f"--{param.name.replace('_', '-')}")
    return value


def _db_path(value: Optional[Path]) -> Optional[Path]:
    """A database whose folder does not exist is a typo more often than a wish: refuse it (exit 2)
    rather than create the folders (the store would). The default and $EVALUATOR_DB pass here too.
    """
    if value is not None and not value.parent.is_dir():
        raise typer.BadParameter(f"the folder {value.parent} does not exist: create it first, or fix the path",
                                 param_hint="--db")
    return value


def _format(value: str) -> str:
    if value not in ("table", "json"):
        raise typer.BadParameter(f"must be one of table, json, got {value!r}", param_hint="--format")
    return value


Rubric = Annotated[Optional[str], typer.Option(help="Rubric id or YAML path (default: from the transcript's exercise, else 'default').")]
Model = Annotated[Optional[str], typer.Option(envvar="EVALUATOR_MODEL", show_envvar=False, help="litellm model, e.g. openai/gpt-4o-mini, anthropic/claude-3-5-haiku-latest, ollama/llama3.1 (env: EVALUATOR_MODEL). Unset: the offline baseline judge.")]
ApiBase = Annotated[Optional[str], typer.Option(envvar="EVALUATOR_API_BASE", show_envvar=False, help="Base URL of an OpenAI-compatible server, Ollama, vLLM, llama.cpp (env: EVALUATOR_API_BASE).")]
Temperature = Annotated[Optional[float], typer.Option(min=0.0, max=2.0, help="Sampling temperature (default 0; with --samples above 1, 0.7).")]
MaxTokens = Annotated[int, typer.Option(min=1, help="Cap on the judge's reply tokens.")]
Seed = Annotated[Optional[int], typer.Option(help="Sampling seed, where the provider supports it.")]
Timeout = Annotated[float, typer.Option(callback=positive, help="Seconds before one model request times out.")]
Retries = Annotated[int, typer.Option(min=0, help="Retries of a model request on 429, 5xx, timeouts and dropped connections.")]
RetryWait = Annotated[float, typer.Option(min=0.0, help="First backoff wait in seconds (doubles, with jitter; Retry-After wins).")]
RepairAttempts = Annotated[int, typer.Option(min=0, help="Times to ask the model again after invalid output.")]
ContextTokens = Annotated[Optional[int], typer.Option(min=1, help="The model's context window when litellm does not know it (unknown: 16000).")]
PriceIn = Annotated[Optional[float], typer.Option(min=0.0, help="USD per million prompt tokens, for models litellm has no price for.")]
PriceOut = Annotated[Optional[float], typer.Option(min=0.0, help="USD per million completion tokens.")]
Logprobs = Annotated[Optional[int], typer.Option(min=0, max=20, help="Ask for this many alternatives per reply token (1-20; 0: off) and record each dimension's score distribution and expected score, when the model returns log-probabilities (env: EVALUATOR_LOGPROBS; default: off).")]
Redact = Annotated[Optional[bool], typer.Option("--redact/--no-redact", help="Replace names, e-mails, phone numbers, personal URLs and listed company names with placeholders before the prompt is sent, and restore them in what is stored (default: on for hosted providers, off for a local --api-base such as 127.0.0.1 or a private address).")]
Samples = Annotated[int, typer.Option(help="Judge each transcript this many times and score each dimension by the median, flagging unstable ones; costs SAMPLES times the calls. Above 1 the temperature defaults to 0.7 and sample i uses seed --seed+i. Samples already stored are reused.")]
Jury = Annotated[Optional[str], typer.Option(help="Judge with several models, MODEL[@API_BASE],MODEL...; each dimension gets the jurors' median and their disagreement is flagged. Costs one judgment per juror (times --samples). 'baseline' names the offline judge.")]
RedactList = Annotated[Optional[Path], typer.Option(help="File of company (or other) names to redact, one per line (env: EVALUATOR_REDACT_LIST).")]
Db = Annotated[Optional[Path], typer.Option(envvar="EVALUATOR_DB", show_envvar=False, callback=_db_path, help="DuckDB file (env: EVALUATOR_DB; default ./evaluator.duckdb). Its folder must exist.")]
Force = Annotated[bool, typer.Option("--force", help="Judge again even when this exact judgment is stored.")]
Format = Annotated[str, typer.Option("--format", "-f", callback=_format, help="table or json.")]
FailUnder = Annotated[Optional[list[str]], typer.Option(
    "--fail-under", metavar="[DIM=]SCORE",
    help="CI gate: exit 4 when a dimension's score is below SCORE (DIM=SCORE, repeatable), or the mean over "
         "all scored dimensions (a plain SCORE).")]


def _param(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)


# The judge flags: (parameter, JudgeOptions field it fills). Declared here only.
JUDGE_PARAMS = [
    _param("rubric", Rubric, None),
    _param("model", Model, None),
    _param("api_base", ApiBase, None),
    _param("temperature", Temperature, None),
    _param("max_tokens", MaxTokens, 4096),
    _param("seed", Seed, None),
    _param("timeout", Timeout, 120.0),
    _param("retries", Retries, 4),
    _param("retry_wait", RetryWait, 1.0),
    _param("repair_attempts", RepairAttempts, 2),
    _param("context_tokens", ContextTokens, None),
    _param("price_in", PriceIn, None),
    _param("price_out", PriceOut, None),
    _param("logprobs", Logprobs, None),
    _param("redact", Redact, None),
    _param("redact_list", RedactList, None),
    _param("samples", Samples, 1),
    _param("jury", Jury, None),
]
JUDGE_NAMES = tuple(p.name for p in JUDGE_PARAMS if p.name != "rubric")


def judge_options(*, model: str | None = None, api_base: str | None = None, temperature: float | None = None,
                  max_tokens: int = 4096, seed: int | None = None, timeout: float = 120.0, retries: int = 4,
                  retry_wait: float = 1.0, repair_attempts: int = 2, context_tokens: int | None = None,
                  price_in: float | None = None, price_out: float | None = None,
                  logprobs: int | None = None, redact: bool | None = None,
                  redact_list: Path | None = None, samples: int = 1, jury: str | None = None) -> JudgeOptions:
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
        redact_terms=None if redact_list is None else load_terms(redact_list), samples=samples, jury=jury,
    )


def with_judge_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Give a command the judge flags (and `--rubric`): its `judge` parameter is replaced by them in
    the signature typer reads, and it is called with `judge=JudgeOptions(...)` and `rubric=`.
    """
    signature = inspect.signature(command, eval_str=True)
    own = [p for p in signature.parameters.values() if p.name not in ("judge", "rubric")]
    params = [*own, *JUDGE_PARAMS]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        flags = {name: kwargs.pop(name) for name in JUDGE_NAMES}
        return command(**kwargs, judge=judge_options(**flags))

    wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper
