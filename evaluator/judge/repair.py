"""The repair policy: what the next request changes after a reply that could not be accepted, and when
to stop instead of paying for a request that cannot change the outcome. Pure functions over data.

Why: a reply that was cut off at the token limit, or that went round in a loop until it, fails
again when the same request is sent again; at temperature 0 (or with a fixed seed) it fails byte for
byte. Appending the failed reply to the conversation makes it worse: the model is shown its own
loop. So after such a reply a repair
- leaves the failed reply out (a one-line note stands in for it, so roles still alternate) and asks
  for brief reasoning under a tighter character bound (in the prompt, and in the schema where the
  server enforces `maxLength`: Capabilities.string_bounds);
- then uses the sampling levers the provider takes (Capabilities.sampling_levers), one more per
  step: `frequency_penalty` first (it acts on the repetition itself), then a small temperature;
- and stops when the request it would send was already sent with deterministic sampling (the reply
  would be the same), recording why, instead of sending it.
Other failures (a missing dimension, an invented quote, prose) keep the conversational repair: the
reply and the list of problems are appended, so the request always differs from the last one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from evaluator.judge.degenerate import Loop
from evaluator.judge.transport import CHARS_PER_TOKEN

REASONING_CHARS = 600  # the most any dimension's reasoning is asked for ("2-4 sentences")
MIN_REASONING_CHARS = 80  # one plain sentence: a tighter bound would leave nothing to read
REASONING_SHARE = 0.4  # of each dimension's share of --max-tokens: score and 1-3 quotes need the rest
QUOTE_CHARS = 200  # the judge's rule for a quote (judge_system.md.j2); a schema bound where enforced
FREQUENCY_PENALTY = 0.5  # OpenAI's range is -2..2; 0.5 breaks a loop without garbling JSON keys
REPAIR_TEMPERATURE = 0.4  # small: enough for a deterministic reply to differ, not enough to ramble
REPAIR_POLICY = "brief-v1"  # part of the judge's identity (cache key): bump when the steps change


def reasoning_chars(max_tokens: int, n_dims: int) -> int:
    """The bound on one dimension's reasoning such that a reply for `n_dims` dimensions fits in
    `max_tokens`: its share of the tokens, in characters, `REASONING_SHARE` of it, rounded down to
    tens, between MIN_REASONING_CHARS and REASONING_CHARS. Why from the budget: a model asked for
    2-4 sentences on each of five dimensions with 600 tokens is cut off before the last one."""
    share = max_tokens * CHARS_PER_TOKEN / max(n_dims, 1) * REASONING_SHARE
    return max(MIN_REASONING_CHARS, min(REASONING_CHARS, int(share) // 10 * 10))


@dataclass(frozen=True)
class Failure:
    """What was wrong with a reply beyond its content: cut off at the limit, looping, or neither."""

    cut_off: bool = False
    loop: Loop | None = None

    @property
    def degenerate(self) -> bool:
        """The reply ran away (or into the limit): re-asking the same way cannot help."""
        return self.cut_off or self.loop is not None

    def why(self, max_tokens: int) -> str:
        """Why the reply could not be used, in words fit for the model: nothing of the loop is quoted."""
        parts = []
        if self.loop is not None:
            parts.append("it went round in circles, repeating the same words")
        if self.cut_off:
            parts.append(f"it was cut off at the {max_tokens}-token limit before the JSON object was complete")
        return " and ".join(parts) or "it could not be read"


@dataclass(frozen=True)
class Step:
    """How one repair request differs from a plain re-ask."""

    brief: bool  # the failed reply is left out and brief reasoning is asked for
    reasoning_chars: int  # the bound the request states (and the schema carries where enforced)
    sampling: dict[str, float] = field(default_factory=dict)  # overrides of the configured sampling

    def describe(self) -> str:
        """For the `repair_changed` flag: what this request changed."""
        what = [f"brief reasoning (at most {self.reasoning_chars} characters)" if self.brief else "the problems listed"]
        what += [f"{k}={v:g}" for k, v in sorted(self.sampling.items())]
        return ", ".join(what)


def next_step(failure: Failure, taken: list[Step], base_chars: int, temperature: float,
              levers: tuple[str, ...]) -> Step:
    """The next repair's changes. `taken`: the brief steps already sent in this judgment (the
    ladder goes on from there); `base_chars`: the first request's bound; `levers`: the sampling
    parameters the provider takes. A non-degenerate failure keeps the sampling of the last step."""
    last = taken[-1] if taken else None
    if not failure.degenerate:
        return Step(brief=False, reasoning_chars=last.reasoning_chars if last else base_chars,
                    sampling=dict(last.sampling) if last else {})
    rung = len(taken)
    chars = max(MIN_REASONING_CHARS, base_chars // (2 ** min(rung + 1, 2)))
    sampling = dict(last.sampling) if last else {}
    if "frequency_penalty" in levers:
        sampling["frequency_penalty"] = FREQUENCY_PENALTY
    if rung >= 1 and "temperature" in levers and temperature < REPAIR_TEMPERATURE:
        sampling["temperature"] = REPAIR_TEMPERATURE
    return Step(brief=True, reasoning_chars=chars, sampling=sampling)


def deterministic(temperature: float, seed: int | None, sampling: dict[str, float]) -> bool:
    """Whether the same request gets the same reply: greedy decoding (temperature 0), or a fixed seed
    (llama.cpp, vLLM and OpenAI's best effort reproduce a seeded sample)."""
    return float(sampling.get("temperature", temperature)) == 0.0 or seed is not None


def fingerprint(messages: list[dict[str, Any]], schema: dict[str, Any], sampling: dict[str, float]) -> str:
    """What decides a request's reply, hashed: messages, the schema sent and the sampling overrides."""
    blob = json.dumps([messages, schema, sampling], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def stop_reason(repeat_of: int, failure: Failure, levers: tuple[str, ...], max_tokens: int) -> str:
    """Why no further repair was sent: it would have repeated request `repeat_of` exactly."""
    used = ", ".join(levers) if levers else "none (the provider takes no frequency_penalty or temperature)"
    return (f"not asked again: the next repair would have repeated request {repeat_of} exactly, with "
            f"deterministic sampling, so it would get the same reply ({failure.why(max_tokens)}); sampling "
            f"levers for this model: {used}")
