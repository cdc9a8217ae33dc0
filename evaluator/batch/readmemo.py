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

The memo a run finds is not loaded whole either: the file is one JSON object with an entry a line,
and a run keeps only where each key's line starts (`_index`), reading an entry when its item comes
up. Parsed whole, the previous run's memo lived as long as the run: 22 MiB of resident memory at
10,000 transcripts (2 at 1,000), the largest share of a batch collect's growth with the cohort (its
judging pass follows the submitting run over the same files, so it always finds a full memo).

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
from evaluator.judge.memo import cache_dir, fingerprint
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
        self._old: dict[str, tuple[int, int]] | None = None  # key -> (offset, length) of its line in the file
        self._file: IO[bytes] | None = None  # the memo found, open while the run recalls from it
        self._spool: IO[str] | None = None  # this run's entries, one `"key": {...}` line each
        self._recalled: set[str] = set()  # keys of the old entries this run found unchanged
        self._changed = False
        self._broken = False  # the spool could not be written: nothing is saved (the next run reads again)
        self._lock = threading.Lock()

    def _index(self) -> dict[str, tuple[int, int]]:
        """Where each entry of the memo found is: its key and line span, read once (no entry is parsed)."""
        with self._lock:
            if self._old is None:
                self._old = {}
                try:
                    self._file = open(self.path, "rb")  # noqa: SIM115 - open while the run recalls
                    self._old = _line_index(self._file)
                except (OSError, ValueError, UnicodeDecodeError):
                    self._old = {}
        return self._old

    def _entry(self, key: str) -> Any:
        """The memo's entry for this key, parsed from its line (None: none, or unreadable)."""
        span = self._index().get(key)
        if span is None:
            return None
        with self._lock:
            if self._file is None:  # let go (saved or closed): nothing more is recalled
                return None
            try:
                self._file.seek(span[0])
                line = self._file.read(span[1]).decode("utf-8")
            except (OSError, UnicodeDecodeError):
                return None
        try:
            return _parse_line(line, whole=True)[1]
        except ValueError:
            return None

    @staticmethod
    def _key(item: BatchItem) -> str:
        return "\0".join(os.path.abspath(p) for p in [item.path, *item.code])

    def recall(self, item: BatchItem) -> tuple[Source, View | None, dict[str, Any]] | None:
        """The item's Source (without its text) when no file it was read from has changed, with its
        view when the entry has one read under the item's overrides (else None: the caller parses
        the file if it needs the view, and keeps the entry with it)."""
        key = self._key(item)
        entry = self._entry(key)
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
        self._let_go()  # the file found is replaced below (Windows refuses to replace an open file)
        try:
            if version and not self._broken and (self._changed or stale):
                self.path.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
                with open(tmp, "w", encoding="utf-8") as out:
                    out.write(_header(version) + "\n")
                    if self._spool is not None:
                        self._spool.seek(0)
                        for n, line in enumerate(self._spool):  # a key twice (a manifest row repeated): the last wins
                            out.write(line if n == 0 else "," + line)  # an entry a line: see _index
                    out.write("}}\n")
                os.replace(tmp, self.path)
        except OSError:
            pass
        finally:
            self.close()

    def close(self) -> None:
        """Drop the spool and let the memo found go (the run is over, or cut short: the memo stays as it was)."""
        spool, self._spool = self._spool, None
        if spool is not None:
            spool.close()
        self._let_go()

    def _let_go(self) -> None:
        with self._lock:
            file, self._file = self._file, None
        if file is not None:
            file.close()


_DECODER = json.JSONDecoder()


def _header(version: str) -> str:
    """The memo file's first line: the JSON object's opening up to its entries (one a line after it)."""
    return f'{{"fingerprint": {json.dumps(version)}, "entries": {{'


def _parse_line(line: str, whole: bool) -> tuple[str, Any]:
    """(key, entry) of one entry line (`"key": {...}`, after the first with a leading comma); the
    entry is parsed only if `whole`. ValueError: not such a line."""
    text = line.lstrip(",")
    key, end = _DECODER.raw_decode(text)
    if not isinstance(key, str):
        raise ValueError("not an entry line")
    if not whole:
        return key, None
    rest = text[text.index(":", end) + 1:].lstrip()
    return key, _DECODER.raw_decode(rest)[0]


def _line_index(file: IO[bytes]) -> dict[str, tuple[int, int]]:
    """Each key's (offset, length) of its entry line in a memo file of this version (a key twice: the
    last); {} for a file of another version or shape (then every item is read)."""
    version = _version()
    header = file.readline(len(_header(version or "")) + 2) if version else b""
    if not version or header.decode("utf-8").rstrip("\n") != _header(version):
        return {}
    index: dict[str, tuple[int, int]] = {}
    offset = file.tell()
    for raw in file:
        if raw.startswith(b"}}"):
            return index
        index[_parse_line(raw.decode("utf-8"), whole=False)[0]] = (offset, len(raw))
        offset += len(raw)
    return {}  # cut short (a full drive while saving): not trusted


def _version() -> str | None:
    """The package's fingerprint; None (no memo kept or trusted) when its files cannot be read."""
    try:
        return fingerprint()
    except OSError:
        return None
