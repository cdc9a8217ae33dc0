"""What reading each cohort file gave (its content hash and front matter), kept between runs under
the stat signatures of the files it came from, so a re-run reads and parses only what changed.

Why: reading, decoding, parsing and hashing every transcript again was over half of a fully cached
2,000-transcript re-run's CPU, only to find the same hashes. Like git's index, a file whose size,
modification time, change time, inode and device are all as they were is taken as unchanged: every
write moves the change time (ctime), which no tool can set back. Everything the hash depends on is
signed: the transcript, the code files given with it, and every file name the transcript mentions
(one that was absent must still be absent, or a code file put beside it since would be missed).

Two guards: an entry is kept only for files last changed RACY_SECONDS or more before they were read
(a write within the file system's timestamp granularity could leave a signature as it was: git's
"racy" case), and the whole memo belongs to one version of the package and its dependencies
(judge/memo.py's fingerprint): a change to how files are parsed reads them all again.

A hit gives a Source without its text: enough for the cache lookup and the cohort's rows. An item the
lookup does not find is read in full before it is judged (batch/producer.py), so a judge never sees
the memo, only the file.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

from evaluator.batch.inputs import BatchItem
from evaluator.ingest import Source, named_code_files
from evaluator.judge.memo import cache_dir, fingerprint, read_json, write_json

RACY_SECONDS = 2.0


def signature(path: str) -> list[int] | None:
    """What changes whenever the file does (None: it does not exist)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


class ReadMemo:
    """The memo of one cohort input (a folder or a manifest); loaded on first use, saved at the end of
    a run only if it changed. Used from the reader thread only."""

    def __init__(self, cohort_input: Path) -> None:
        where = os.path.abspath(cohort_input)
        self.path = cache_dir() / "reads" / f"{hashlib.sha256(where.encode()).hexdigest()[:32]}.json"
        self._old: dict[str, Any] | None = None
        self._new: dict[str, Any] = {}
        self._changed = False

    def _entries(self) -> dict[str, Any]:
        if self._old is None:
            doc = read_json(self.path)
            entries = doc.get("entries") if doc.get("fingerprint") == _version() else None
            self._old = entries if isinstance(entries, dict) else {}
        return self._old

    @staticmethod
    def _key(item: BatchItem) -> str:
        return "\0".join(os.path.abspath(p) for p in [item.path, *item.code])

    def recall(self, item: BatchItem) -> Source | None:
        """The item's Source (without its text) when no file it was read from has changed."""
        key = self._key(item)
        entry = self._entries().get(key)
        try:
            if not entry or any(signature(path) != sig for path, sig in entry["files"]):
                return None
            source = Source(Path(item.path), "", dict(entry["meta"]), "", int(entry["body_line"]), [],
                            list(entry["warnings"]), str(entry["hash"]))
        except (KeyError, TypeError, ValueError):  # an entry of another shape: read the file
            return None
        self._new[key] = entry
        return source

    def keep(self, item: BatchItem, source: Source) -> None:
        """Remember what reading the item gave, unless a file it depends on changed too recently to tell
        (then the next run reads it again)."""
        paths = dict.fromkeys([os.path.abspath(item.path), *(os.path.abspath(p) for p in item.code),
                               *(os.path.abspath(c.path) for c in source.code_files if c.path),
                               *(os.path.abspath(p) for p in named_code_files(source.text, Path(item.path).parent))])
        signed = [(path, signature(path)) for path in paths]
        settled = time.time_ns() - int(RACY_SECONDS * 1e9)
        if signed[0][1] is None or any(sig and max(sig[1], sig[2]) > settled for _, sig in signed):
            return
        self._new[self._key(item)] = {"files": [list(f) for f in signed], "hash": source.content_hash,
                                      "meta": source.metadata,
                                      "body_line": source.body_line, "warnings": source.warnings}
        self._changed = True

    def save(self) -> None:
        """Keep the entries of this run's items (the memo is as large as the cohort, never larger)."""
        version = _version()
        if version and (self._changed or (self._old is not None and set(self._old) != set(self._new))):
            write_json(self.path, {"fingerprint": version, "entries": self._new})


def _version() -> str | None:
    """The package's fingerprint; None (no memo kept or trusted) when its files cannot be read."""
    try:
        return fingerprint()
    except OSError:
        return None
