"""What a child process has used, read from ``/proc`` (Linux): for tests and benchmarks.

Rule: test infrastructure, no I/O but the one file read per call.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cpu_seconds"]

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """The CPU time (user and system) process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK
