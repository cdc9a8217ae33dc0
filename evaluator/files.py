"""Open and read user-named files safely: regular files only, with a hard byte cap.

`st_size` cannot be trusted to bound a read: a FIFO, a terminal, `/dev/zero` or `/dev/urandom`
report 0 bytes and then never end (or never start: opening a FIFO blocks until a writer comes).
So a path is opened with O_NONBLOCK (the open of a FIFO returns at once), checked with fstat on
the open descriptor (no race between the check and the read), and read with a cap of its own
that does not depend on what the file claims to be. Every reader of transcripts, code, label,
score and manifest files goes through here, so the rule is the same everywhere; so does their text
encoding: UTF-8 (a byte-order mark allowed), or UTF-16 with its byte-order mark.
"""

from __future__ import annotations

import fcntl
import io
import os
import stat
from pathlib import Path
from typing import BinaryIO, TextIO

from evaluator.errors import BadInput

_KIND = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
         (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def special_kind(path: Path | str) -> str:
    """What a path that is neither a regular file nor a folder is ("a FIFO (named pipe)", "a socket"...)."""
    mode = os.stat(path).st_mode
    return next((name for test, name in _KIND if test(mode)), "not a regular file")


def open_regular(path: Path | str, what: str) -> BinaryIO:
    """Open `path` for binary reading if, and only if, it is a regular file (symlinks followed).

    Raises BadInput naming `what` for a missing file, a directory, a device, a FIFO or a socket."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise BadInput(f"{what}: file not found: {path}") from None
    except IsADirectoryError:
        raise BadInput(f"{what}: {path} is a directory, expected a file") from None
    except OSError as e:
        raise BadInput(f"{what}: cannot read {path}: {e.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise BadInput(f"{what}: {path} is a directory, expected a file")
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _KIND if test(mode)), "not a regular file")
            raise BadInput(f"{what}: {path} is {kind}, not a regular file; save its content to a file first")
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_capped(path: Path | str, limit: int, what: str) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; BadInput otherwise (never reads more
    than limit + 1 bytes, whatever the file claims its size is)."""
    with open_regular(path, what) as f:
        size = os.fstat(f.fileno()).st_size
        if size > limit:
            raise BadInput(f"{what}: {path} is {size:,} bytes, over the {limit:,}-byte limit")
        try:  # what fstat says, and one byte more to see growth: a read of `limit` bytes would
            data = f.read(size + 1)  # allocate that much (5 MB per transcript, half its read's cost)
            if len(data) > size:  # the file grew since: read on, up to the cap
                data += f.read(limit + 1 - len(data))
        except OSError as e:
            raise BadInput(f"{what}: cannot read {path}: {e.strerror}") from None
    if len(data) > limit:  # the file grew while we read it
        raise BadInput(f"{what}: {path} is over the {limit:,}-byte limit")
    return data


def csv_delimiter(text: str) -> str:
    """The field separator of a CSV text, read from its header line: a comma, unless the header has
    none and has semicolons or tabs. Spreadsheets set to a locale whose decimal mark is a comma save
    "CSV" with semicolons, and TSV exports use tabs; read with commas, their whole header is one
    column and every column looks missing. Only the header decides, so a comma inside a value (a
    note, a decimal comma) never changes how the file is read."""
    header = text.lstrip("\ufeff").split("\n", 1)[0]
    if "," in header:
        return ","
    return next((d for d in (";", "\t") if d in header), ",")


def utf16_as_utf8(data: bytes, what: str) -> bytes:
    """Bytes of a text file that starts with a UTF-16 byte-order mark, re-encoded as UTF-8; any other
    bytes unchanged. Windows writes UTF-16 more often than people know (PowerShell 5's `>` and
    `Out-File`, Excel's "Unicode Text" export, Notepad's "Unicode"); read as UTF-8 such a file is full
    of NUL bytes and was refused as binary. With the mark the encoding is certain, so it is decoded;
    without one nothing is guessed."""
    if not _utf16_mark(data):
        return data
    try:
        return data.decode("utf-16").encode("utf-8")
    except UnicodeDecodeError as e:
        raise BadInput(f"{what}: starts as UTF-16 text but is not valid UTF-16 (byte {e.start}); "
                       "re-save it as UTF-8") from None


def _utf16_mark(head: bytes) -> bool:
    return head[:2] in (b"\xff\xfe", b"\xfe\xff") and head[:4] != b"\xff\xfe\x00\x00"  # not UTF-32


def read_text(path: Path | str, limit: int, what: str) -> str:
    """The text of a regular file of at most `limit` bytes: UTF-8 (a byte-order mark allowed), or
    UTF-16 with its mark, as every user file is read. BadInput for anything else."""
    data = utf16_as_utf8(read_capped(path, limit, what), f"{what} {path}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise BadInput(f"{what}: {path} is not UTF-8 text (byte {e.start}); re-save it as UTF-8") from None


def open_text(path: Path | str, limit: int, what: str) -> TextIO:
    """A regular file of at most `limit` bytes opened for streaming text (newlines untranslated, for
    the csv module), decoded as `read_text` decodes: the encoding is chosen from its first bytes, so a
    file read a line at a time (a cohort manifest of 100k rows) is never held whole."""
    raw = open_regular(path, what)
    try:
        if os.fstat(raw.fileno()).st_size > limit:
            raise BadInput(f"{what}: {path} is over the {limit:,}-byte limit")
        head = raw.read(4)
        raw.seek(0)
    except BaseException:
        raw.close()
        raise
    return io.TextIOWrapper(raw, encoding="utf-16" if _utf16_mark(head) else "utf-8-sig", newline="")
