"""A long cohort run caps glibc's malloc arenas at two, so its memory does not creep with its length.

Why: glibc gives a thread that meets another in malloc an arena of its own (up to 8 per core), and
memory freed into an arena is reused only by the threads that arena serves. A cohort run's threads
come and go all the time: the event loop's executor runs every DuckDB session and file read, and
DuckDB starts threads of its own at every connection (~8, gone at its close, the store is let go
every few seconds). Each arena kept the high-water mark of whatever its threads last did, scattered
free chunks it cannot hand back, so the run's resident memory between sessions crept up the longer
it ran: measured at 10,000 transcripts (benchmarks/cohort_bench.py, glibc's mallinfo2), free memory
held by the arenas grew from 19 to 93 MiB and the resident memory after each session from 295 to
335 MiB; capped at two arenas (the main thread's and one the other threads share) the free memory
stayed at 12-39 MiB, the resident memory after each session at 294-314 MiB, and the peak fell by
~30 MiB. `malloc_trim` after each session gave nothing measurable on top, so it is not called.

What it does not touch: DuckDB's buffers (its bundled jemalloc, not glibc's malloc) and Python's
small objects (pymalloc's own arenas). The cap is process-wide and stays (glibc fixes its arena
limit when the first extra arena is made); fewer arenas can only mean more waiting on a malloc lock
between threads, and a run's threads are mostly waiting on the GIL or the network anyway.

Where the C library is not glibc (macOS, Windows, musl) nothing is done.
"""

from __future__ import annotations

import os

M_ARENA_MAX = -8  # glibc's <malloc.h>: mallopt's parameter for the most arenas it creates
RUN_ARENAS = 2


def glibc() -> bool:
    """Whether this process runs on glibc (asked of the C library itself: no file is read)."""
    try:
        version = os.confstr("CS_GNU_LIBC_VERSION")
    except (AttributeError, ValueError, OSError):  # no confstr (Windows), or a C library that does not know the name
        return False
    return (version or "").startswith("glibc")


def limit_arenas(arenas: int = RUN_ARENAS) -> bool:
    """Cap glibc's malloc arenas (see the module docstring); True if the C library took it. Call it
    before the run starts its threads. Anywhere but glibc, or if the call is missing, nothing is done."""
    if not glibc():
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, arenas))
