"""Sharding a domain list across replicas with rendezvous (highest random weight) hashing.

Rule: pure functions. Every domain has exactly one owner among ``count`` shards, the
owner depends only on the name and ``count``, and going from N to N+1 shards moves
only the domains the new shard wins (about 1/(N+1) of them).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

__all__ = ["Shard", "owner", "parse_index"]


def _weight(shard: int, name: str) -> int:
    digest = hashlib.blake2b(f"{shard}\x00{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(name: str, count: int) -> int:
    """The shard (0..count-1) that validates ``name``."""
    return max(range(count), key=lambda shard: _weight(shard, name))


@dataclass(frozen=True, slots=True)
class Shard:
    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError("--shard.count must be at least 1")
        if not 0 <= self.index < self.count:
            raise ValueError(f"--shard.index {self.index} is not within 0..{self.count - 1}")

    def owns(self, name: str) -> bool:
        return self.count == 1 or owner(name, self.count) == self.index


_ORDINAL = re.compile(r"-(\d+)$")


def parse_index(value: str) -> int:
    """``2``, or a StatefulSet pod name such as ``acme-http01-exporter-2``."""
    if value.isdigit():
        return int(value)
    match = _ORDINAL.search(value)
    if match is None:
        raise ValueError(f"--shard.index {value!r}: expected a number or a name ending in -N")
    return int(match.group(1))
