"""Reading and parsing one cohort item, off the event loop and within a time and size budget.

The event loop runs every judgment's HTTP call; a read that blocks it (a FIFO named *.md, a hung
network drive) stalled every worker and made SIGTERM wait, and one front matter made of YAML
aliases (a "billion laughs" file: small on disk, astronomically large once expanded) hung the
group commit that had to serialise it, so nothing of the run was stored. Each item is now read in
a thread of its own with a deadline; what is not a regular file, too large, too slow or expands
too far fails alone with the reason, and the rest of the cohort is judged.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from evaluator.batch.inputs import BatchItem, key_extra, readable_items
from evaluator.batch.readmemo import ReadMemo
from evaluator.errors import BadInput, EvaluatorError
from evaluator.ingest import Source, parse_source, read_source
from evaluator.models import JudgeInfo, Transcript
from evaluator.pipeline import cache_key
from evaluator.rubrics import Rubric, select_rubric
from evaluator.store.texts import View, view_of

ITEM_SECONDS = 20.0  # reading + parsing one transcript takes milliseconds; this is for what hangs
ITEM_BYTES = 16 << 20  # a transcript with its code files
METADATA_BYTES = 256 << 10  # the front matter as stored (JSON)

T = TypeVar("T")


@dataclass
class Prepared:
    """An item read, checked and keyed, ready to look up in the store or judge."""

    item: BatchItem
    source: Source
    rubric: Rubric
    key: str
    file_metadata: dict[str, Any] | None = None  # the file's own front matter, when a manifest overrides it
    transcript: Transcript | None = None  # parsed by the worker that judges it
    unread: bool = False  # known from the read memo: the source has no text, read it before judging
    view: View | None = None  # what the judge reads of it (store/texts.py), once known
    memo_entry: dict[str, Any] | None = None  # what the read memo keeps of it, once its view is known
    refused: bool = False  # the store has judgments of its cache key, made on another view: judged again


def check_files(item: BatchItem) -> None:
    """Regular files within the size budget; a stat never blocks, where opening a FIFO would."""
    total = 0
    for p in [item.path, *item.code]:
        try:
            st = os.stat(p)
        except OSError as e:
            raise BadInput(f"cannot read {p}: {e.strerror}") from None
        if not stat.S_ISREG(st.st_mode):
            kind = "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a directory" if stat.S_ISDIR(st.st_mode) \
                else "a device or socket"
            raise BadInput(f"{p} is {kind}, not a regular file: skipped")
        total += st.st_size
    if total > ITEM_BYTES:
        raise BadInput(f"{item.path}: {total / (1 << 20):.1f} MB with its code files, over the "
                       f"{ITEM_BYTES >> 20} MB a transcript may have: skipped")


def check_metadata(path: Path, metadata: dict[str, Any]) -> None:
    """The front matter must stay small once expanded (YAML aliases can multiply it without end):
    encoded lazily, stopped as soon as it is too large."""
    size = 0
    for chunk in json.JSONEncoder(default=str, ensure_ascii=False).iterencode(metadata):
        size += len(chunk)
        if size > METADATA_BYTES:
            raise BadInput(f"{path}: the front matter expands to more than {METADATA_BYTES >> 10} KB "
                           "(YAML aliases repeated within each other?): skipped")


def prepare(item: BatchItem, rubric_for: Callable[[str | None], tuple[Rubric, list[str]]],
            judge: JudgeInfo, memo: ReadMemo | None = None) -> Prepared:
    """Read one item and compute its cache key (runs in a reader thread). With a memo, an item none
    of whose files changed since a run read it is not read again (`Prepared.unread`)."""
    if item.error:
        raise BadInput(item.error)
    check_files(item)
    recalled = memo.recall(item) if memo else None
    view, entry = None, None
    if recalled is None:
        source = read_source(item.path, item.code)
    else:
        source, view, entry = recalled
    unread = recalled is not None
    check_metadata(item.path, source.metadata)  # before the memo keeps it: it is written out at once
    if memo and not unread:
        entry = memo.entry(item, source)
    file_metadata = None
    if item.overrides:  # the judge reads the transcript with them (whose words are the candidate's)
        file_metadata, source.metadata = source.metadata, {**source.metadata, **item.overrides}
    rubric, warnings = rubric_for(source.exercise)
    source.warnings = source.warnings + warnings
    key = cache_key(source.content_hash, rubric, judge, key_extra(item.overrides))
    return Prepared(item, source, rubric, key, file_metadata=file_metadata, unread=unread, view=view,
                    memo_entry=None if view is not None else entry)


def settle_view(p: Prepared, memo: ReadMemo | None) -> Transcript | None:
    """Know the item's view, parsing it if no memo entry gave it, and keep the memo entry with it.
    Returns the parse, if one was made. The source must have its text (not `unread`)."""
    transcript = None
    if p.view is None:
        transcript = parse_source(p.source)
        p.view = view_of(transcript)
    if memo is not None and p.memo_entry is not None:
        memo.keep(p.item, p.memo_entry, p.view)
        p.memo_entry = None
    return transcript


def parse_prepared(p: Prepared, memo: ReadMemo | None) -> Transcript:
    """The transcript a worker judges, its view kept in the memo (once, whichever parse knew it first)."""
    return settle_view(p, memo) or parse_source(p.source)


def rubrics_in_use(path: Path) -> list[tuple[Rubric, int]]:
    """The rubrics the items of a cohort input are judged against when no --rubric is given (each
    item's exercise picks one, a manifest's `exercise` column included), with how many items use each.
    For checks that must hold for every rubric a run will use before it makes any call (--fail-under);
    what changed since a run read it is read again (the read memo knows the rest). An item that cannot
    be read is left out here: the run reports it as it always does."""
    memo = ReadMemo(path)
    by_exercise: dict[str | None, Rubric] = {}
    used: dict[str, list[Any]] = {}
    try:
        for item in readable_items(path):
            if item.error:
                continue
            try:
                check_files(item)
                recalled = memo.recall(item)
                source = recalled[0] if recalled else read_source(item.path, item.code)
            except EvaluatorError:
                continue
            source.metadata = {**source.metadata, **item.overrides}
            exercise = source.exercise
            if exercise not in by_exercise:
                by_exercise[exercise] = select_rubric(None, exercise)
            rubric = by_exercise[exercise]
            used.setdefault(rubric.version, [rubric, 0])[1] += 1
    finally:
        memo.close()
    return [(r, n) for r, n in used.values()]


class Reader:
    """One daemon thread, reused for every read (starting a thread per file cost ~1 ms each, most of
    a cached re-run); a read that outlives its deadline is abandoned with its thread, and the next
    read gets a fresh one. Daemon threads do not hold up the process's exit, which a pooled executor
    thread would (asyncio.run joins those)."""

    def __init__(self, seconds: float = ITEM_SECONDS) -> None:
        self.seconds = seconds
        self._jobs: queue.SimpleQueue[Any] | None = None

    @staticmethod
    def _serve(jobs: queue.SimpleQueue[Any]) -> None:
        while (job := jobs.get()) is not None:
            fn, settle = job
            try:
                value, error = fn(), None
            except BaseException as e:  # handed to the awaiting coroutine
                value, error = None, e
            settle(value, error)

    async def run(self, fn: Callable[[], T], what: Path) -> T:
        """`fn()` on the reader thread, waited for at most `seconds`."""
        if self._jobs is None:
            self._jobs = queue.SimpleQueue()
            threading.Thread(target=self._serve, args=(self._jobs,), name="cohort reader", daemon=True).start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def resolve(value: Any, error: BaseException | None) -> None:
            if not future.done():
                future.set_result(value) if error is None else future.set_exception(error)

        def settle(value: Any, error: BaseException | None) -> None:
            try:
                loop.call_soon_threadsafe(resolve, value, error)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass

        self._jobs.put((fn, settle))
        try:  # not wait_for: on 3.11 it returns a result that lands with a Ctrl-C, and the run goes on
            async with asyncio.timeout(self.seconds):
                return await future
        except TimeoutError:
            self._jobs.put(None)  # the stuck thread ends if it ever returns; the next read gets a new one
            self._jobs = None
            raise BadInput(f"{what}: reading it took longer than {self.seconds:g} s (a pipe, or a hung drive?): "
                           "skipped") from None

    def close(self) -> None:
        if self._jobs is not None:
            self._jobs.put(None)
            self._jobs = None
