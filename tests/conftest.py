"""Shared fixtures. Every socket a test opens is on 127.0.0.0/8 or ::1."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

GUARD = Path(__file__).parent / "_guard"
sys.path.insert(0, str(GUARD))
import sitecustomize  # noqa: E402,F401  (installs the resolver guard in this process)

ROOT = Path(__file__).resolve().parent.parent


def subprocess_env() -> dict[str, str]:
    """The environment for child processes: the same resolver guard is loaded."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(GUARD), str(ROOT)])
    env.pop("PYTHONSTARTUP", None)
    return env


@pytest.fixture
async def lab() -> AsyncIterator[object]:
    from exporter.lab.servers import Lab

    async with Lab() as running:
        yield running
