"""Loading litellm: the one import of the client library, done lazily and once.

Why a module of its own: the live adapter (llm_adapter.py), the model facts (capabilities.py) and
the provider batch calls (batch_transport.py) all need the litellm module, and importing it costs
4-5 s (more on a cold disk). Each asks here, so it is imported at most once, only when a model call
or an uncached fact needs it, with its network fetch of the price map turned off, and a terminal
can say what the wait is.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable
from typing import Any

_on_load: list[Callable[[], None]] = []


def on_client_load(announce: Callable[[], None]) -> None:
    """Have `announce` called once, just before litellm is first imported (5-25 s on a cold disk), so
    a terminal can say what the wait is. Nothing is imported now: a run whose judgments are all
    cached never loads the client, and announces nothing."""
    _on_load.append(announce)


def load_litellm() -> Any:
    """Import litellm lazily (4-5 s) and without its network fetch of the price map.

    Also import what litellm would otherwise import inside the first call (the openai SDK's resource
    classes and a proxy helper, ~0.9 s): paid here once, the first judgment of a cohort is not ~1 s
    late while the others queue behind it."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    first = "litellm" not in sys.modules
    while _on_load and first:
        _on_load.pop(0)()
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    try:
        import litellm.proxy.openai_files_endpoints.common_utils
        import openai.resources  # noqa: F401
    except ImportError:  # pragma: no cover - a litellm that moved them: they load on first call instead
        pass
    if first:
        # ~400k objects of module state that never become garbage: out of the cycle collector's
        # full passes, which otherwise re-scan them all (~0.3 s each, every call in flight stalled)
        gc.freeze()
    return litellm
