"""Shared pytest fixtures."""

from __future__ import annotations

import os

# litellm downloads its price map at import unless told not to; set before any test imports it.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# the adapter keeps litellm's model facts on disk (evaluator/judge/llm_adapter.py): not in the user's cache
os.environ.setdefault("EVALUATOR_CACHE_DIR", os.path.join(__import__("tempfile").mkdtemp(prefix="evaluator-test-"), "cache"))

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402

from fakellm import FakeLLM  # noqa: E402  (tests/ is on sys.path: pytest's rootdir-less conftest import)


@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    """A started scripted OpenAI-compatible server (see tests/fakellm.py); stopped after the test.

    Script it with ``fake_llm.script(Reply(...), Error(429), ...)``; point clients at ``fake_llm.base_url``.
    """
    server = FakeLLM().start()
    try:
        yield server
    finally:
        server.stop()
