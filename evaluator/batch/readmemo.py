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

What a run remembers goes to an unnamed temporary file as it is read (the spool), not into a dict:
an entry (its file signatures, front matter, warnings) is ~1 KiB, and a dict of them lived as long
as the run (~10 MiB at 10,000 transcripts). `save` copies the spool into the memo's file, a line at a
time, so neither the run nor its end holds the cohort's entries.

A hit gives a Source without its text: enough for the cache lookup and the cohort's rows. An item the
lookup does not find is read in full before it is judged (batch/producer.py), so a judge never sees
the memo, only the file.

An entry also keeps the file's VIEW (store/texts.py: its turns and code files as this version reads
them, with the manifest overrides it was read under), which a stored judgment must match to be
reused: a cached re-run checks it without parsing anything. So an entry is written once the view
is known: by the producer for a cache hit (it parses what it read), by the worker for an item it
judges (it parses it to judge it). The memo's fingerprint covers the parser (every package file),
so a parser upgrade reads and parses every file once: the view is never taken from older code.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

from evaluator.batch.inputs import BatchItem
from evaluator.ingest import Source, named_code_files
from evaluator.judge.memo import cache_dir, fingerprint, read_json
from evaluator.store.texts import View

RACY_SECONDS = 2.0


def signature(path: str) -> list[int] | None:
    """What changes whenever the file does (None: it does not exist)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def overrides_stamp(item: BatchItem) -> str:
    """The manifest overrides an item is read under (its view depends on them: who is the candidate)."""
    return json.dumps(item.overrides, sort_keys=True, default=str)


class ReadMemo:
    """The memo of one cohort input (a folder or a manifest); loaded on first use, saved at the end of
    a run only if it changed. Read from the reader thread; entries are spooled from it and from the
    workers (the event loop's thread), under a lock."""

    def __init__(self, cohort_input: Path) -> None:
        where = os.path.abspath(cohort_input)
        self.path = cache_dir() / "reads" / f"{hashlib.sha256(where.encode()).hexdigest()[:32]}.json"
        self._old: dict[str, Any] | None = None
        self._spool: IO[str] | None = None  # this run's entries, one `"key": {...}` line each
        self._recalled: set[str] = set()  # keys of the old entries this run found unchanged
        self._changed = False
        self._broken = False  # the spool could not be written: nothing is saved (the next run reads again)
        self._lock = threading.Lock()

    def _entries(self) -> dict[str, Any]:
        if self._old is None:
            doc = read_json(self.path)
            entries = doc.get("entries") if doc.get("fingerprint") == _version() else None
            self._old = entries if isinstance(entries, dict) else {}
        return self._old

    @staticmethod
    def _key(item: BatchItem) -> str:
        return "\0".join(os.path.abspath(p) for p in [item.path, *item.code])

    def recall(self, item: BatchItem) -> tuple[Source, View | None, dict[str, Any]] | None:
        """The item's Source (without its text) when no file it was read from has changed, with its
        view when the entry has one read under the item's overrides (else None: the caller parses
        the file if it needs the view, and keeps the entry with it)."""
        key = self._key(item)
        entry = self._entries().get(key)
        try:
            if not entry or any(signature(path) != sig for path, sig in entry["files"]):
                return None
            source = Source(Path(item.path), "", dict(entry["meta"]), "", int(entry["body_line"]), [],
                            list(entry["warnings"]), str(entry["hash"]))
            kept = entry.get("view")
            view = (View(str(kept[0]), bool(kept[1])) if isinstance(kept, list) and len(kept) == 2
                    and entry.get("read_as") == overrides_stamp(item) else None)
        except (KeyError, TypeError, ValueError):  # an entry of another shape: read the file
            return None
        self._recalled.add(key)
        if view is not None:
            self._remember(key, entry)
        return source, view, entry

    def entry(self, item: BatchItem, source: Source) -> dict[str, Any] | None:
        """What reading the item gave, signed, to keep once its view is known (`keep`); None when a
        file it depends on changed too recently to tell (then the next run reads it again)."""
        paths = dict.fromkeys([os.path.abspath(item.path), *(os.path.abspath(p) for p in item.code),
                               *(os.path.abspath(c.path) for c in source.code_files if c.path),
                               *(os.path.abspath(p) for p in named_code_files(source.text, Path(item.path).parent))])
        signed = [(path, signature(path)) for path in paths]
        settled = time.time_ns() - int(RACY_SECONDS * 1e9)
        if signed[0][1] is None or any(sig and max(sig[1], sig[2]) > settled for _, sig in signed):
            return None
        return {"files": [list(f) for f in signed], "hash": source.content_hash, "meta": source.metadata,
                "body_line": source.body_line, "warnings": source.warnings}

    def keep(self, item: BatchItem, entry: dict[str, Any], view: View) -> None:
        """Remember an entry with the view the item gives (read under its overrides)."""
        self._remember(self._key(item), {**entry, "view": list(view), "read_as": overrides_stamp(item)})
        self._changed = True

    def _remember(self, key: str, entry: dict[str, Any]) -> None:
        """Spool one entry of the memo this run leaves (as JSON, written at once: the front matter as
        read, whatever is done with the Source later)."""
        with self._lock:
            if self._broken:
                return
            try:
                line = f"{json.dumps(key)}: {json.dumps(entry, default=str)}\n"
                if self._spool is None:
                    self._spool = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 - until save
                self._spool.write(line)
            except (OSError, TypeError, ValueError):
                self._broken = True

    def save(self) -> None:
        """Keep the entries of this run's items (the memo is as large as the cohort, never larger),
        replacing the file whole (a reader never sees half of it); best effort, like every memo."""
        version = _version()
        stale = self._old is not None and len(self._recalled) != len(self._old)  # an item gone since
        try:
            if version and not self._broken and (self._changed or stale):
                self.path.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
                with open(tmp, "w", encoding="utf-8") as out:
                    out.write(f'{{"fingerprint": {json.dumps(version)}, "entries": {{')
                    if self._spool is not None:
                        self._spool.seek(0)
                        for n, line in enumerate(self._spool):  # a key twice (a manifest row repeated): the last wins
                            out.write(line[:-1] if n == 0 else ", " + line[:-1])
                    out.write("}}")
                os.replace(tmp, self.path)
        except OSError:
            pass
        finally:
            self.close()

    def close(self) -> None:
        """Drop the spool (the run is over, or cut short: the memo stays as it was)."""
        spool, self._spool = self._spool, None
        if spool is not None:
            spool.close()


def _version() -> str | None:
    """The package's fingerprint; None (no memo kept or trusted) when its files cannot be read."""
    try:
        return fingerprint()
    except OSError:
        return None
