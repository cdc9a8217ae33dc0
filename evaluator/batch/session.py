"""The cohort's DuckDB sessions and its SIGTERM handling: how a long async run shares the store and
stops cleanly."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evaluator.store.db import Store, open_store, store_error

DB_WAIT_SECONDS = 30.0
HOLD_SECONDS = 3.0  # the longest the run keeps the file at a stretch: a reader waits up to 5 s
REST_SECONDS = 1.0  # after letting go, the writer leaves the file to readers at least this long
HOLD_ROWS = 200  # judgments a connection writes before it is let go (checkpointed): see StoreLink


class StoreLink:
    """Serialised DB sessions, run in a thread so the event loop keeps the calls flowing.

    Sessions that follow each other closely share one connection: connecting, checking the
    migrations and closing (a checkpoint) cost more than a small group commit, a run commits about
    once a second, and each checkpoint leaves a row group behind (fewer checkpoints: fewer, larger
    row groups, less memory for every later scan). DuckDB admits one process at a time, so the
    file is let go after HOLD_SECONDS at most, and as soon as there is nothing to write
    (`release`); the writer then leaves it alone for REST_SECONDS (`resting`), so `evaluate report
    --serve` and other readers, which retry for a few seconds, get in between.

    It is also let go once it has written HOLD_ROWS judgments: until its checkpoint, DuckDB keeps
    what a connection wrote in memory (0.1-0.2 MiB a judgment measured, indexes reloaded on top), so a backlog
    committed back to back (a slow machine, a stall) made the run's peak RSS grow by tens of MiB
    with it, more often the larger the cohort. And it is let go before a write that would take it
    past HOLD_ROWS (a fresh connection writes it): a connection that had written 199 took another
    group commit of up to 200, and the run's peak was the largest such session's (resident memory
    just before a close rose with the judgments the connection held: 332-367 MiB at 170-220,
    358-385 at 280-320, in one 10,000 run); a larger cohort has more sessions to reach that tail."""

    def __init__(self, path: Path, notice: Callable[[str], None] | None = None,
                 hold: float = HOLD_SECONDS, hold_rows: int = HOLD_ROWS) -> None:
        self.path = path
        self.lock = asyncio.Lock()
        self.notice = notice
        self.hold, self.hold_rows = hold, hold_rows
        self._store: Store | None = None
        self._opened = 0.0  # when the file was taken (time.monotonic)
        self._rows = 0  # judgments written through the connection that is open
        self._released = float("-inf")  # when it was last let go

    def _session(self, fn: Callable[[Store], Any], rows: int = 0) -> Any:
        if self._store is not None and self._rows and self._rows + rows > self.hold_rows:
            self._close()  # this write would take the connection past HOLD_ROWS: a fresh one writes it
        if self._store is None:
            self._store = _appending(open_store(self.path, wait_seconds=DB_WAIT_SECONDS, on_wait=self.notice))
            self._opened, self._rows = time.monotonic(), 0
        try:
            result = fn(self._store)
        except BaseException:
            self._close(quiet=True)  # the next session starts from a fresh connection; this error is the news
            raise
        self._rows += rows
        if time.monotonic() - self._opened >= self.hold or self._rows >= self.hold_rows:
            self._close()
        return result

    def _close(self, quiet: bool = False) -> None:
        store, self._store = self._store, None
        if store is None:
            return
        self._released = time.monotonic()
        try:
            store.close()  # checkpoints: what was committed is safe in the WAL even if this fails
        except Exception as e:
            if not quiet:
                raise store_error(self.path, "could not close it", e) from None

    def resting(self) -> bool:
        """The file was let go moments ago: readers' turn (the writer's commit can wait a tick)."""
        return self._store is None and time.monotonic() - self._released < REST_SECONDS

    async def run(self, fn: Callable[[Store], Any], rows: int = 0) -> Any:
        """`fn(store)` in a session; `rows`: how many judgments it writes (see HOLD_ROWS)."""
        return await self._serialised(lambda f: self._session(f, rows), fn)

    async def release(self) -> None:
        """Let go of the file (nothing to write for now, or the run is over)."""
        if self._store is not None:
            await self._serialised(lambda _: self._close(), None)

    async def _serialised(self, call: Callable[[Any], Any], arg: Any) -> Any:
        async with self.lock:
            session = asyncio.ensure_future(asyncio.to_thread(call, arg))
            try:
                return await asyncio.shield(session)
            except asyncio.CancelledError:  # Ctrl-C: the thread still writes; keep the lock until it ends
                await asyncio.gather(session, return_exceptions=True)
                raise


def _appending(store: Store) -> Store:
    """A connection for many small appends (every writing connection already skips the row-group
    vacuum: Store.setting). One DuckDB thread: a commit of a second's judgments gains nothing
    from more, and each thread holds buffers of its own (peak RSS at 10,000 transcripts: 506 MiB
    instead of 543)."""
    store.setting("SET threads = 1")
    return store


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
