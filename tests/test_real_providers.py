"""Against real hosted models: run only when the provider's key is in the environment.

No hosted model is reachable from CI, so these are skipped there; they exist so that a developer
with a key can check the documented provider paths (OpenAI structured outputs, Anthropic) end to end.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evaluator.cli import app

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "transcripts" / "lru_ttl_cache.md"

PROVIDERS = [
    pytest.param("OPENAI_API_KEY", os.environ.get("EVALUATOR_TEST_OPENAI_MODEL", "openai/gpt-4o-mini"), id="openai"),
    pytest.param("ANTHROPIC_API_KEY",
                 os.environ.get("EVALUATOR_TEST_ANTHROPIC_MODEL", "anthropic/claude-3-5-haiku-latest"), id="anthropic"),
]


@pytest.mark.real_provider
@pytest.mark.parametrize(("key_var", "model"), PROVIDERS)
def test_real_provider_scores_a_sample(key_var: str, model: str, tmp_path: Path) -> None:
    if not os.environ.get(key_var):
        pytest.skip(f"{key_var} not set: real-provider test skipped")
    result = CliRunner().invoke(app, [
        str(SAMPLE), "--model", model, "--db", str(tmp_path / "real.duckdb"), "--format", "json", "--timeout", "90",
    ])
    assert result.exit_code in (0, 1), result.output
    doc = json.loads(result.stdout)
    assert (doc["judge"]["kind"], doc["judge"]["model"]) == ("llm", model)
    assert doc["usage"]["calls"] >= 1 and doc["usage"]["prompt_tokens"] > 0
    scored = [d for d in doc["dimensions"] if d["status"] == "scored"]
    assert scored, doc
    for d in scored:
        assert 1 <= d["score"] <= 5
        assert d["evidence"] and all(e["match"] >= 90 for e in d["evidence"])
