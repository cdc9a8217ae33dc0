"""What a model, as served, can do: litellm's facts about it, turned into `Capabilities` flags.

Why a module of its own: the transport (llm_adapter.py) sends requests, this decides from data which
requests make sense (structured-output modes, log-probabilities, a batch endpoint, length bounds in
the schema, sampling levers for a repair). The facts come from litellm's bundled model map, looked up
once per model and kept on disk per litellm version, so a fully cached re-run never imports litellm.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from evaluator.judge.litellm_client import load_litellm
from evaluator.judge.memo import cache_dir, read_json, write_json
from evaluator.judge.transport import FORMAT_MODES, SAMPLING_LEVERS, Capabilities

OPENAI_MAX_TOP_LOGPROBS = 20  # OpenAI's documented ceiling for top_logprobs; vLLM/llama.cpp accept it
# Providers with an asynchronous batch endpoint that litellm can drive (files + batches API).
BATCH_PROVIDERS = frozenset({"openai", "azure", "vertex_ai", "bedrock"})
# Providers whose json_schema mode is a llama.cpp grammar, which enforces `maxLength` on strings
# (llama.cpp's common/json-schema.cpp reads minLength/maxLength). OpenAI's strict structured outputs
# accept only a subset of JSON Schema without string length keywords, and other hosted providers
# document no such support: they get the bound in the prompt only.
GRAMMAR_PROVIDERS = frozenset({"ollama", "ollama_chat", "llamafile"})


def _facts_file() -> Path | None:
    """Where litellm's facts about models are kept between runs, per litellm version (its bundled map
    changes with it): $EVALUATOR_CACHE_DIR, else the user's cache directory. None without litellm."""
    try:
        version = metadata.version("litellm")
    except metadata.PackageNotFoundError:
        return None
    return cache_dir() / f"model-facts-litellm-{version}.json"


@lru_cache(maxsize=64)
def _model_facts(model: str) -> tuple[dict[str, Any], list[str], str]:
    """(litellm's map entry or {}, the OpenAI parameters litellm will pass for it, its provider):
    looked up once per model per process, and kept on disk per litellm version. Why on disk: the
    judge's identity (the cache key) needs the model's context size, and a re-run whose judgments
    are all cached must not pay litellm's import (~5-10 s) only to learn it again."""
    path = _facts_file()
    kept = read_json(path) if path else {}
    entry = kept.get(model)
    if isinstance(entry, list) and len(entry) == 3:
        return dict(entry[0]), list(entry[1]), str(entry[2])
    facts = _ask_litellm(model)
    if path is not None:
        write_json(path, {**kept, model: list(facts)})
    return facts


def _ask_litellm(model: str) -> tuple[dict[str, Any], list[str], str]:
    ll = load_litellm()
    try:
        info = dict(ll.get_model_info(model))
    except Exception:  # noqa: BLE001 - litellm raises assorted errors for models its map does not know
        info = {}
    try:
        params = list(ll.get_supported_openai_params(model=model) or [])
    except Exception:  # noqa: BLE001 - as above: unknown means "no facts", not a failure
        params = []
    try:
        provider = ll.get_llm_provider(model)[1]
    except Exception:  # noqa: BLE001 - as above
        provider = ""
    return info, params, provider


def resolve_capabilities(model: str, api_base: str | None) -> Capabilities:
    """The model's flags from litellm's facts. A mode the map says the model lacks is left out of the
    order (no request is wasted on it); an unknown model keeps the full order and learns by fallback.
    A self-hosted server (api_base) has no batch endpoint as far as we can know.

    Length bounds in the schema: only where the json_schema mode is known to be a llama.cpp-style
    grammar (Ollama, llamafile, and an OpenAI-compatible server on this machine or the local network,
    which is llama.cpp's llama-server, LM Studio, Ollama or vLLM in practice). A server that refuses the
    keyword answers with a schema error and the request steps down to json_object like any other
    format refusal. Sampling levers: those litellm says it passes for the model (a reasoning model that
    takes no `temperature` gets none of it)."""
    info, params, provider = _model_facts(model)
    modes: tuple[str, ...] = FORMAT_MODES
    if info.get("supports_response_schema") is False:
        modes = tuple(m for m in modes if m != "json_schema")
    if params and "response_format" not in params:
        modes = ("none",)
    logprobs = "logprobs" in params and "top_logprobs" in params
    grammar = provider in GRAMMAR_PROVIDERS or (provider == "openai" and bool(api_base) and is_local(model, api_base))
    return Capabilities(
        structured_output=modes,
        logprobs=logprobs,
        max_top_logprobs=OPENAI_MAX_TOP_LOGPROBS if logprobs else 0,
        tool_calling=bool(info.get("supports_function_calling") or "tools" in params),
        batch_api=provider in BATCH_PROVIDERS and not api_base,
        string_bounds=grammar and "json_schema" in modes,
        sampling_levers=tuple(p for p in SAMPLING_LEVERS if p in params),
    )


def is_local(model: str, api_base: str | None) -> bool:
    """A server on this machine or the local network (llama.cpp, Ollama, vLLM on a LAN box): slow
    prompt reading is expected there, unlike at a hosted provider."""
    import ipaddress
    from urllib.parse import urlparse

    if not api_base:
        return model.startswith(("ollama/", "ollama_chat/"))  # litellm's default: localhost:11434
    host = (urlparse(api_base).hostname or "").lower()
    if host == "localhost" or host.endswith((".local", ".localhost", ".lan", ".internal")):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private or ip.is_unspecified

