"""Rendezvous sharding: one owner per domain, balanced, minimal moves."""

from __future__ import annotations

import pytest

from exporter.shard import Shard, owner, parse_index

NAMES = [f"d{i}.example.com" for i in range(3000)]


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
def test_every_domain_has_exactly_one_owner_and_load_is_balanced(count: int) -> None:
    shards = [Shard(i, count) for i in range(count)]
    for name in NAMES:
        assert sum(s.owns(name) for s in shards) == 1
    sizes = [sum(s.owns(n) for n in NAMES) for s in shards]
    assert max(sizes) - min(sizes) < 0.15 * len(NAMES) / count + 30


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_adding_a_shard_moves_only_what_the_new_shard_takes(count: int) -> None:
    before = {n: owner(n, count) for n in NAMES}
    after = {n: owner(n, count + 1) for n in NAMES}
    moved = [n for n in NAMES if before[n] != after[n]]
    assert all(after[n] == count for n in moved)
    assert abs(len(moved) - len(NAMES) / (count + 1)) < 0.15 * len(NAMES) / (count + 1)


@pytest.mark.parametrize(
    ("value", "index"),
    [("0", 0), ("7", 7), ("acme-http01-exporter-2", 2), ("rel-x-10", 10)],
)
def test_parse_index(value: str, index: int) -> None:
    assert parse_index(value) == index


@pytest.mark.parametrize("value", ["", "pod", "x-y"])
def test_parse_index_rejects(value: str) -> None:
    with pytest.raises(ValueError):
        parse_index(value)


def test_shard_bounds() -> None:
    with pytest.raises(ValueError, match=r"not within 0\.\.2"):
        Shard(3, 3)
    with pytest.raises(ValueError, match="at least 1"):
        Shard(0, 0)
