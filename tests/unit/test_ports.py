"""Ports handed to child processes: outside the ephemeral range, free for TCP and UDP."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from exporter.lab import ports


def test_the_range_is_read_from_the_kernel_or_linux_default(tmp_path: Path) -> None:
    good = tmp_path / "range"
    good.write_text("40000\t50000\n")
    assert ports.ephemeral_range(good) == (40000, 50000)
    bad = tmp_path / "bad"
    bad.write_text("forty\n")
    assert ports.ephemeral_range(bad) == (32768, 60999)
    assert ports.ephemeral_range(tmp_path / "missing") == (32768, 60999)


def test_a_port_is_below_the_ephemeral_range_and_free_for_both() -> None:
    low, _ = ports.ephemeral_range()
    if low - ports.FLOOR < ports.MINIMUM_SPAN:
        pytest.fail(f"this machine's ephemeral range starts at {low}: nothing to pick below it")
    seen = set()
    for _ in range(20):
        port = ports.free_port()
        assert ports.FLOOR <= port < low
        seen.add(port)
        with (
            socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
        ):
            tcp.bind(("127.0.0.1", port))
            udp.bind(("127.0.0.1", port))
    assert len(seen) > 1  # picked at random, not a fixed port


def test_a_taken_port_is_never_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    """Taken for UDP only is taken: Unbound binds both."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp_only:
        udp_only.bind(("127.0.0.1", 0))
        held = int(udp_only.getsockname()[1])
        other = ports.free_port()
        picks = iter([held, held, other])
        monkeypatch.setattr(ports._random, "randrange", lambda low, high: next(picks))
        assert ports.free_port() == other


def test_a_range_starting_low_leaves_the_pick_to_the_kernel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ports, "ephemeral_range", lambda: (ports.FLOOR + 10, 60999))

    def never(low: int, high: int) -> int:
        raise AssertionError("no random pick in a span this small")

    monkeypatch.setattr(ports._random, "randrange", never)
    port = ports.free_port()
    assert port > 0 and port != ports.FLOOR
