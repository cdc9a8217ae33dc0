"""Shared pytest fixtures."""

from __future__ import annotations

import os

# litellm downloads its price map at import unless told not to; set before any test imports it.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# the adapter keeps litellm's model facts on disk (evaluator/judge/capabilities.py), and cohorts their
# read memos: not in the user's cache, and removed when the session ends (one a session piled up in /tmp)
if not os.environ.get("EVALUATOR_CACHE_DIR"):
    import atexit
    import shutil
    import tempfile

    _cache_root = tempfile.mkdtemp(prefix="evaluator-test-")
    atexit.register(shutil.rmtree, _cache_root, True)
    os.environ["EVALUATOR_CACHE_DIR"] = os.path.join(_cache_root, "cache")

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


# What a user's shell may set that would change what a test judges, where it stores, or which key it
# sends: removed for every test that asks for `isolated`.
ISOLATED_ENV = ("EVALUATOR_MODEL", "EVALUATOR_API_BASE", "EVALUATOR_API_KEY", "EVALUATOR_DB",
                "EVALUATOR_RUBRICS_DIR", "EVALUATOR_CONFIG", "EVALUATOR_LOGPROBS", "EVALUATOR_REDACT_LIST",
                "OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE")


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """No ambient configuration leaks into a test, and nothing is written into the repository (the
    working directory is the test's own folder). Modules opt in with
    ``pytestmark = pytest.mark.usefixtures("isolated")``."""
    for name in ISOLATED_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def browser():
    """A headless Debian chromium (driven by playwright, never its own download), one per test module."""
    import tempfile

    from playwright.sync_api import sync_playwright
    from support import ARGS, CHROMIUM

    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(tempfile.mkdtemp(prefix="chromium-profile-"),
                                                   executable_path=str(CHROMIUM), args=ARGS, headless=True,
                                                   viewport={"width": 1400, "height": 900})
        yield ctx
        ctx.close()
