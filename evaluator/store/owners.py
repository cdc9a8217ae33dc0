"""Who owns a run: its process id and host, and whether that process still lives.

A run is written as 'running' when it starts and gets its final status when it ends. A process killed
outright (SIGKILL, OOM killer, power loss) never writes that status, so a stored 'running' alone
does not prove anything. Each run records its process id and host; a 'running' run on this host
whose process is gone is 'killed'. Runs of other hosts (a database on a shared drive) cannot be
checked from here and keep their stored status.

Kept apart from store/runs.py (which opens the store to list runs) so that store/db.py can use it
without an import cycle.
"""

from __future__ import annotations

import os
import socket
from typing import Any


def this_host() -> str:
    """This machine's name, recorded with a run: liveness is judged only for this host's runs."""
    return socket.gethostname()


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host (signal 0 checks without signalling)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    except OSError:  # pragma: no cover - e.g. an id the platform cannot address
        return False
    return True


def effective_status(status: str | None, pid: int | None, host: str | None) -> str | None:
    """'killed' for a run stored as running whose process on this host is gone; else the stored status."""
    if status == "running" and pid is not None and host == this_host() and pid != os.getpid() \
            and not process_alive(pid):
        return "killed"
    return status


def mark_killed(con: Any) -> int:
    """Record 'killed' for this host's runs whose process is gone (called when a run starts, in the
    writer's session). Returns how many were marked."""
    rows = con.execute("SELECT id, pid, host FROM runs WHERE status = 'running' AND pid IS NOT NULL AND host = ?",
                       [this_host()]).fetchall()
    dead = [r[0] for r in rows if effective_status("running", r[1], r[2]) == "killed"]
    if dead:
        con.execute("UPDATE runs SET status = 'killed' WHERE id IN (SELECT unnest(?))", [dead])
    return len(dead)


def other_live_runs(con: Any, run_id: str) -> list[dict[str, Any]]:
    """Runs other than `run_id` still in progress on this database (their process is alive, or on
    another host where that cannot be checked)."""
    rows = con.execute("SELECT id, cohort, pid, host FROM runs WHERE status = 'running' AND id <> ?",
                       [run_id]).fetchall()
    return [{"id": r[0], "cohort": r[1], "pid": r[2], "host": r[3]} for r in rows
            if effective_status("running", r[2], r[3]) == "running"]
