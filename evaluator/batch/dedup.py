"""Same content twice in one cohort: judged once, every copy shares the result.

Copies that arrive while their original is being judged wait for it; copies that arrive after it
finished take its judgment at once. With --force the copies are judged too (as before).
"""

from __future__ import annotations

from typing import Any, Literal


class Dedup:
    """Identical items in a run are judged once: the first is judged, its copies wait and share its result."""

    def __init__(self, force: bool) -> None:
        self.force = force
        self.original: dict[str, str] = {}  # cache key -> item key of the one being judged
        self.finished: dict[str, tuple[str, str]] = {}  # cache key -> (judgment id, status) judged this run
        self._waiting: dict[str, list[Any]] = {}

    def classify(self, key: str, item_key: str) -> Literal["judge", "finished", "wait"]:
        """What to do with an item of this content: judge it, share a finished result, or wait."""
        if not self.force and key in self.finished:
            return "finished"
        if not self.force and key in self.original:
            return "wait"
        self.original[key] = item_key
        return "judge"

    def wait(self, key: str, copy: Any) -> None:
        self._waiting.setdefault(key, []).append(copy)

    def finish(self, key: str, judgment_id: str, status: str) -> list[Any]:
        """The original is judged: remember it, and return the copies that waited for it."""
        self.finished[key] = (judgment_id, status)
        return self._waiting.pop(key, [])

    def take(self, key: str | None) -> list[Any]:
        """The copies waiting on an original that will not be judged (failed, skipped)."""
        return self._waiting.pop(key, []) if key else []

    def leftovers(self) -> list[Any]:
        """Copies whose original never finished (the run was aborted or interrupted)."""
        out = [c for copies in self._waiting.values() for c in copies]
        self._waiting.clear()
        return out
