"""The cohort's DuckDB sessions and its SIGTERM handling: how a long async run shares the store and
stops cleanly."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evaluator.store.db import Store, open_store

DB_WAIT_SECONDS = 30.0


class StoreLink:
    """Serialised short DB sessions, run in a thread so the event loop keeps the calls flowing. The
    file is opened per session and closed again, so `evaluate report --serve` can read in between."""

    def __init__(self, path: Path, notice: Callable[[str], None] | None = None) -> None:
        self.path = path
        self.lock = asyncio.Lock()
        self.notice = notice

    def _session(self, fn: Callable[[Store], Any]) -> Any:
        with open_store(self.path, wait_seconds=DB_WAIT_SECONDS, on_wait=self.notice) as store:
            return fn(store)

    async def run(self, fn: Callable[[Store], Any]) -> Any:
        async with self.lock:
            session = asyncio.ensure_future(asyncio.to_thread(self._session, fn))
            try:
                return await asyncio.shield(session)
            except asyncio.CancelledError:  # Ctrl-C: the thread still writes; keep the lock until it ends
                await asyncio.gather(session, return_exceptions=True)
                raise


def on_sigterm(task: asyncio.Task | None) -> Callable[[], None]:
    """SIGTERM cancels the run like Ctrl-C does (finished work kept, the rest listed); returns the
    undo. Where signal handlers cannot be set (not the main thread, Windows), nothing changes."""
    import signal

    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)  # type: ignore[union-attr]
    except (NotImplementedError, RuntimeError, ValueError, AttributeError):
        return lambda: None

    def undo() -> None:
        loop.remove_signal_handler(signal.SIGTERM)

    return undo
