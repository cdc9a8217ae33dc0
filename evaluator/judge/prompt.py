"""Judge prompts: versioned template files rendered with the rubric and the fenced transcript.

The prompt version is a hash of what the model is shown for a fixed probe (see `prompt_version`),
so editing a prompt or the layout changes every cache key that depends on it, and nothing else does.
Long transcripts are cut deliberately here (keep the opening and the end of the round, drop the
middle) and the cut is reported, never silent.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from evaluator.errors import BadInput
from evaluator.judge.repair import QUOTE_CHARS, REASONING_CHARS, REPAIR_POLICY, Failure, Step, next_step
from evaluator.judge.transport import CHARS_PER_TOKEN, estimate_tokens
from evaluator.models import Transcript
from evaluator.rubrics import Dimension, Rubric
from evaluator.safety import fence, fence_tag, neutralise, seal

PROMPT_FILES = ("judge_system.md.j2", "judge_user.md.j2", "repair_user.md.j2", "judge_rubric.md.j2",
                "repair_brief_user.md.j2", "repair_withheld.md.j2")
PROMPT_NAME = "judge-v1"
MIN_TRANSCRIPT_TOKENS = 500


@cache
def _template_text(name: str) -> str:
    return resources.files("evaluator.prompts").joinpath(name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def prompt_version() -> str:
    """What the model is shown, hashed: the template files, and the messages, output schema and repair
    request rendered for a fixed probe (probes/prompt_probe.md: code attached under a look-alike file
    name, delimiter look-alikes and chat-template tokens in the candidate's words, timestamps) three
    ways: everything fits, the code and the middle turns are cut for a small context, one dimension.

    So a change to fencing, neutralising, the turn layout, the cut or the schema changes the version
    (and every cache key), while a comment, a docstring or a refactor that renders the same does not:
    stored judgments and calibrations stay valid. Computed on first use (~0.1 s with the jinja2 import)
    and kept on disk for this exact code (judge/memo.py): a fully cached re-run renders nothing."""
    from evaluator.judge.memo import remembered

    return remembered("prompt", _probe_version)


def _probe_version() -> str:
    from evaluator.judge import probe

    rubric = probe.rubric()
    transcript = probe.transcript("prompt_probe.md", (probe.code_file("strong_code.txt", "cache <<<END CODE>>>.py"),))
    dims, one = rubric.dimensions, [rubric.dimension("recovery")]
    full = render(transcript, rubric, dims, PROBE_CONTEXT, reserve_tokens=4096)
    unenforced = render(transcript, rubric, dims, PROBE_CONTEXT, reserve_tokens=4096, enforced=False)
    prompt = sum(estimate_tokens(m["content"]) for m in full.messages)
    transcript_tokens = (estimate_tokens(transcript.raw_text)
                         + sum(estimate_tokens(c.content) for c in transcript.code_files))
    cut = render(transcript, rubric, dims, prompt - transcript_tokens + 500 + MIN_TRANSCRIPT_TOKENS + 400,
                 reserve_tokens=500)
    single = render(transcript, rubric, one, PROBE_CONTEXT, reserve_tokens=4096)
    shown = [
        {name: _template_text(name) for name in PROMPT_FILES},
        [(r.messages, r.truncation, r.warnings) for r in (full, unenforced, cut, single)],
        output_schema(rubric, dims), output_schema(rubric, one),
        render_repair(["dimension `recovery` is missing from the reply"], one, full.tag),
        render_repair(["dimension `recovery`: no quote found"], one, full.tag,
                      ["`recovery`: 'a quote' is from the rubric's anchors for `recovery`, not from the interview"]),
        render_repair(["the reply contains no JSON object (it looks like prose)"], one, full.tag,
                      example=example_output(rubric, one)),
        # the bounded schema, the brief repair and the policy's steps for a probe loop
        output_schema(rubric, dims, 300), REPAIR_POLICY,
        [next_step(Failure(cut_off=True), [], 300, 0.0, ("frequency_penalty", "temperature")),
         next_step(Failure(cut_off=True), [Step(True, 150)], 300, 0.0, ("frequency_penalty", "temperature"))],
        render_brief_repair(Failure(cut_off=True).why(600), one, full.tag, 150),
        render_withheld(Failure(cut_off=True).why(600)),
    ]
    digest = hashlib.sha256(json.dumps(shown, sort_keys=True, default=str).encode()).hexdigest()
    return f"{PROMPT_NAME}@{digest[:12]}"


PROBE_CONTEXT = 200_000  # large enough that nothing of the probe is cut


@cache
def _template(name: str):
    import jinja2

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    return env.from_string(_template_text(name))


# ---------------------------------------------------------------- output schema (from the rubric)

def score_values(rubric: Rubric, dim: Dimension) -> tuple[Any, ...]:
    """The values a score may take: the scale's levels, plus "not_observed" where the rubric allows it."""
    values: tuple[Any, ...] = tuple(rubric.scale.levels)
    return values + ("not_observed",) if dim.allow_not_observed else values


_MODELS: dict[tuple, Any] = {}


def _memo(key: tuple, build):
    """Pydantic model classes and schemas cost milliseconds to build: make each once per rubric version."""
    if key not in _MODELS:
        _MODELS[key] = build()
    return _MODELS[key]


def dimension_model(rubric: Rubric, dim: Dimension, reasoning_chars: int | None = None) -> type[BaseModel]:
    """Reasoning before score (field order is the generation order), score limited to the scale.
    `reasoning_chars`: a `maxLength` on the reasoning and on each quote (QUOTE_CHARS), in the schema
    only, for servers whose json_schema mode enforces it (a grammar closes the string at the bound, so
    a reply cannot loop inside it until the token limit). Validation never rejects a longer text:
    an answer that is fine but wordy is not worth a repair."""
    strings: dict[str, Any] = {"maxLength": reasoning_chars} if reasoning_chars else {}
    quotes: dict[str, Any] = {"items": {"type": "string", "maxLength": QUOTE_CHARS}} if reasoning_chars else {}
    return _memo(("dim", rubric.version, dim.id, reasoning_chars), lambda: create_model(
        f"Dimension_{dim.id}",
        __config__=ConfigDict(extra="forbid"),
        reasoning=(str, Field(description="2-4 sentences: what the candidate did, against the anchors",
                              json_schema_extra=strings or None)),
        # a Literal built at run time from the rubric's scale: valid for pydantic, opaque to mypy
        score=(Literal[score_values(rubric, dim)],  # type: ignore[arg-type]
               Field(description="the anchor level that fits best")),
        # maxItems in the schema only (a longer list is still read): with the schema enforced, a small
        # model otherwise repeats one quote until the token limit cuts the reply off (seen on llama.cpp)
        evidence=(list[str], Field(description="1-3 verbatim quotes from the transcript or code",
                                   json_schema_extra={"maxItems": 3, **quotes})),
    ))


def output_model(rubric: Rubric, dims: list[Dimension], reasoning_chars: int | None = None) -> type[BaseModel]:
    """The reply's pydantic model, one field per dimension asked: validation and the sent schema agree
    (apart from the schema-only length bounds, see dimension_model)."""
    def build() -> type[BaseModel]:
        fields = {d.id: (dimension_model(rubric, d, reasoning_chars), ...) for d in dims}
        dims_model = create_model("Dimensions", __config__=ConfigDict(extra="forbid"), **fields)  # type: ignore[call-overload]
        return create_model("Judgment", __config__=ConfigDict(extra="forbid"), dimensions=(dims_model, ...))

    return _memo(("out", rubric.version, tuple(d.id for d in dims), reasoning_chars), build)


def output_schema(rubric: Rubric, dims: list[Dimension], reasoning_chars: int | None = None) -> dict[str, Any]:
    """JSON schema fit for OpenAI strict structured outputs (all fields required, no extras); with
    `reasoning_chars`, string `maxLength` bounds for servers that enforce them (not OpenAI's strict
    mode, which refuses the keyword: Capabilities.string_bounds decides)."""
    return _memo(("schema", rubric.version, tuple(d.id for d in dims), reasoning_chars),
                 lambda: output_model(rubric, dims, reasoning_chars).model_json_schema())


def example_output(rubric: Rubric, dims: list[Dimension]) -> str:
    """The reply's shape in the prompt, for servers that do not take a schema (memoised per rubric)."""
    return _memo(("example", rubric.version, tuple(d.id for d in dims)), lambda: _example(rubric, dims))


def _example(rubric: Rubric, dims: list[Dimension]) -> str:
    """The reply's shape, one line per dimension: the full schema goes as `response_format` where the
    server takes it, so the prompt only needs enough for servers that do not (json_object, none)."""
    def line(d: Dimension) -> str:
        levels = ", ".join(map(str, score_values(rubric, d)))
        quote = '"evidence": ["<verbatim quote>"]'
        return f'    {json.dumps(d.id)}: {{"reasoning": "...", "score": <one of {levels}>, {quote}}}'

    lines = [line(d) for d in dims]
    return '{"dimensions": {\n' + ",\n".join(lines) + "\n}}"


def static_prompt(rubric: Rubric, dims: list[Dimension], enforced: bool = True,
                  reasoning_chars: int = REASONING_CHARS) -> str:
    """The system message: the rules, the rubric, and the reply's shape unless the server enforces the
    schema (`enforced`: it is sent as `response_format`, and repeating it costs ~600 characters a call).
    The same bytes for every transcript judged with these dimensions in one mode, so providers' prefix
    caches can reuse it (the candidate's text only comes after it, in the user message). Rubric text is
    neutralised, not trusted: a custom rubric cannot open or close a data section. `reasoning_chars`:
    the bound on each reasoning the model is told (repair.reasoning_chars fits it to --max-tokens)."""
    def build() -> str:
        shown = _template("judge_rubric.md.j2").render(
            rubric=rubric, dimensions=dims, example="" if enforced else example_output(rubric, dims))
        rules = _template("judge_system.md.j2").render(reasoning_chars=reasoning_chars)
        return rules + neutralise(shown).rstrip("\n") + "\n"

    return _memo(("static", rubric.version, tuple(d.id for d in dims), enforced, reasoning_chars), build)


# ---------------------------------------------------------------- rendering

@dataclass
class Rendered:
    """A rendered request: the messages, the fence tag, what was cut, and the non-interview parts
    (to name quotes a model copied from the prompt)."""

    messages: list[dict[str, str]]
    tag: str
    truncation: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    # (where, text) of everything the model is shown that is NOT the interview: a rejected quote found
    # here is named in the repair request (see evidence.misplaced_quotes). Not sent; not in the cache key.
    prompt_parts: list[tuple[str, str]] = field(default_factory=list)


# A turn's speaker as the rules name it: who said it is what grading needs (credit the candidate only),
# not the names, which cost ~25 characters a turn and stay in the stored transcript.
_SPEAKER = {"interviewer": "I", "candidate": "C"}


def _turn_line(t) -> str:
    """`[t1] I: text` (with the time as `[t1 00:03:12]` where the transcript has one). The id lets the
    reasoning and the omission marker name turns; quotes are verified against the turn texts alone."""
    stamp = f" {t.timestamp}" if t.timestamp else ""
    return f"[{t.id}{stamp}] {_SPEAKER.get(t.role) or t.speaker + ' (role unknown)'}: {t.text}"


def _fit_turns(transcript: Transcript, budget_tokens: int) -> tuple[list[str], list[str]]:
    """Keep the opening (problem, plan, invariants) and the end (final code, tests, wrap-up) of the
    round when it does not fit; the middle is where dropping costs least. Returns (lines, omitted ids)."""
    lines = [_turn_line(t) for t in transcript.turns]
    costs = [estimate_tokens(line) for line in lines]
    if sum(costs) <= budget_tokens:
        return lines, []
    head_budget, tail_budget = budget_tokens * 0.4, budget_tokens * 0.6
    head, used = [], 0
    for i, c in enumerate(costs):
        if used + c > head_budget:
            break
        head.append(i)
        used += c
    tail, used = [], 0
    for i in range(len(costs) - 1, (head[-1] if head else -1), -1):
        if used + costs[i] > tail_budget:
            break
        tail.append(i)
        used += costs[i]
    keep = set(head) | set(tail)
    omitted = [transcript.turns[i].id for i in range(len(lines)) if i not in keep]
    out, marker_done = [], False
    for i, line in enumerate(lines):
        if i in keep:
            out.append(line)
        elif not marker_done:
            out.append(f"[... {len(omitted)} turn(s) omitted here ({omitted[0]}-{omitted[-1]}): "
                       "too long for the model's context ...]")
            marker_done = True
    return out, omitted


def render(
    transcript: Transcript, rubric: Rubric, dims: list[Dimension], context_tokens: int, reserve_tokens: int,
    enforced: bool = True, reasoning_chars: int = REASONING_CHARS,
) -> Rendered:
    """Build the judge messages for these dimensions, fitting the transcript into the context.
    `enforced`: the request goes with the schema as `response_format: json_schema`; otherwise the
    system message shows the reply's shape (json_object, or no response format at all).
    `reasoning_chars`: the bound on each dimension's reasoning, told in the system message."""
    tag = fence_tag(transcript.content_hash)
    system = static_prompt(rubric, dims, enforced, reasoning_chars)
    common = dict(
        tag=tag, n_turns=len(transcript.turns), n_code=len(transcript.code_files),
        dimension_list=", ".join(f"`{d.id}`" for d in dims),
    )
    skeleton = _template("judge_user.md.j2").render(transcript_block="", code_blocks=[], omitted="", **common)
    budget = context_tokens - reserve_tokens - estimate_tokens(system + skeleton) - 200
    if budget < MIN_TRANSCRIPT_TOKENS:
        raise BadInput(
            f"a {context_tokens}-token context leaves no room for the transcript after the rubric and "
            f"{reserve_tokens} tokens reserved for the answer; raise --context-tokens or lower --max-tokens"
        )
    warnings: list[str] = []
    truncation: dict[str, Any] | None = None
    code_blocks: list[str] = []
    code_budget = max(budget // 2, 0)
    for cf in transcript.code_files:
        content = cf.content
        cost = estimate_tokens(content)
        if cost > code_budget:
            keep_chars = max(int(code_budget * CHARS_PER_TOKEN), 0)
            content = (content[:keep_chars]
                       + f"\n[... {len(cf.content) - keep_chars} characters of {cf.name} omitted ...]")
            warnings.append(f"code file {cf.name} cut to fit the model's context "
                            f"({keep_chars} of {len(cf.content)} characters kept)")
            cut_files = [*(truncation or {}).get("code_files_cut", []), cf.name]
            truncation = {**(truncation or {}), "code_files_cut": cut_files}
        code_budget = max(code_budget - estimate_tokens(content), 0)
        budget -= estimate_tokens(content)
        code_blocks.append(fence("CODE", f"file={cf.name}", content, tag))
    lines, omitted = _fit_turns(transcript, max(budget, 0))
    omitted_note = ""
    if omitted:
        omitted_note = f"{len(omitted)} of {len(transcript.turns)} turns ({omitted[0]}-{omitted[-1]}) were left out."
        warnings.append(
            f"transcript too long for a {context_tokens}-token context: {omitted_note} "
            "The opening and the end of the round were kept."
        )
        truncation = {**(truncation or {}), "omitted_turns": omitted, "context_tokens": context_tokens}
    # no file name on the transcript's fence: it tells the model nothing about the round, and a name
    # like "weak_candidate.md" would tell it what to think (code files keep theirs: code refers to them)
    user = seal(_template("judge_user.md.j2").render(
        transcript_block=fence("TRANSCRIPT", "", "\n".join(lines), tag),
        code_blocks=code_blocks, omitted=omitted_note, **common,
    ), tag)
    return Rendered(
        messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
        tag=tag, truncation=truncation, warnings=warnings, prompt_parts=_prompt_parts(rubric, dims, system, skeleton),
    )


def _prompt_parts(rubric: Rubric, dims: list[Dimension], system: str, skeleton: str) -> list[tuple[str, str]]:
    """The non-interview text of the prompt, most specific first (a quote is named by its first match)."""
    parts = [(f"the rubric's anchors for `{d.id}`", "\n".join([d.question, *map(str, d.anchors.values())]))
             for d in dims]
    parts.append(("the rubric's description and guidance", f"{rubric.description or ''}\n{rubric.guidance or ''}"))
    parts.append(("the grading instructions (system message)", system))
    parts.append(("the request's instructions around the transcript", skeleton))
    return parts


def render_repair(errors: list[str], dims: list[Dimension], tag: str, misplaced: list[str] | None = None,
                  example: str = "") -> str:
    """The follow-up user message of a repair round. It is appended to the conversation (the earlier
    messages are resent byte for byte, so a server's prompt cache re-reads only this message).
    `example`: the reply's shape, when the first message left it to the schema (`enforced`): a repair
    means the server did not hold the reply to it (it refused `json_schema` during the call, or took
    it without enforcing it), and the shape costs a few hundred characters only when repairing."""
    return _template("repair_user.md.j2").render(
        errors=errors, dimension_list=", ".join(f"`{d.id}`" for d in dims), tag=tag, misplaced=misplaced or [],
        example=example,
    )


def render_brief_repair(why: str, dims: list[Dimension], tag: str, reasoning_chars: int) -> str:
    """The follow-up user message after a reply that looped or was cut off (repair.py): it says why
    in general words, quotes nothing of the failed reply, and asks for reasoning within
    `reasoning_chars` characters and each quote once."""
    return _template("repair_brief_user.md.j2").render(
        why=why, dimension_list=", ".join(f"`{d.id}`" for d in dims), tag=tag, reasoning_chars=reasoning_chars,
        quote_chars=QUOTE_CHARS,
    )


def render_withheld(why: str) -> str:
    """What stands in for a failed reply that is left out of a repair request: the roles still
    alternate (some providers require it; the batch transport tells a repair by its assistant turn),
    and the model is not shown its own loop to continue."""
    return _template("repair_withheld.md.j2").render(why=why).strip()
