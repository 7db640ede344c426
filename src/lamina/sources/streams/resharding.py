"""UpdateShardCount's plan (UNIFORM_SCALING): which shards to open, and their parents.

Every open shard closes; the target number of shards opens with the even split of the key space
(`even_ranges`, as at creation). Each new shard names as parents the closed shards whose ranges
overlap it: `ParentShardId` and, for a second one, `AdjacentParentShardId` (Kinesis allows no
more). A scale-up (to at most twice the current count) always fits: each new range is narrower
than an old one. A scale-down whose targets are not exact merges of the old ranges could overlap
three parents, so it goes through an intermediate generation, as Kinesis's own split/merge steps
do: each target range split at its midpoint (each half narrower than an old range), closed at
once (they hold no records), then merged pairwise into the targets. A record's hash key lies in one
shard of each generation, each the parent of the next: reading parents before children keeps
the order per partition key.
https://docs.aws.amazon.com/kinesis/latest/APIReference/API_UpdateShardCount.html
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lamina.sources.streams.model import even_ranges


@dataclass(frozen=True, slots=True)
class NewShard:
    """A shard a reshard opens. `closed`: an intermediate shard, closed as soon as it opens."""

    index: int
    start_hash: int
    end_hash: int
    parent_index: int
    adjacent_parent_index: int | None
    closed: bool = False


Range = tuple[int, int, int]  # (shard index, start hash, end hash)


def plan(open_shards: Sequence[Range], target: int, next_index: int) -> list[NewShard]:
    """The shards to open so that `target` open shards evenly split the key space; every shard
    in `open_shards` closes. Indexes are assigned from `next_index` up, generation by generation."""
    parents = sorted(open_shards, key=lambda r: r[1])
    final = even_ranges(target)
    direct = _children(parents, final)
    if all(len(p) <= 2 for p in direct):
        return _shards(direct, final, next_index, closed=False)
    middle = [half for lo, hi in final for half in ((lo, (lo + hi) // 2), ((lo + hi) // 2 + 1, hi))]
    first = _shards(_children(parents, middle), middle, next_index, closed=True)
    second = _children([(s.index, s.start_hash, s.end_hash) for s in first], final)
    return first + _shards(second, final, next_index + len(first), closed=False)


def _children(parents: Sequence[Range], ranges: Sequence[tuple[int, int]]) -> list[list[int]]:
    """For each range, the indexes of the parents overlapping it (in key order)."""
    return [[i for i, plo, phi in parents if plo <= hi and lo <= phi] for lo, hi in ranges]


def _shards(parents: list[list[int]], ranges: Sequence[tuple[int, int]], first: int, closed: bool) -> list[NewShard]:
    out = []
    for n, (owners, (lo, hi)) in enumerate(zip(parents, ranges, strict=True)):
        if not 1 <= len(owners) <= 2:  # cannot happen for targets within [current / 2, 2 * current]
            raise ValueError(f"a new shard would have {len(owners)} parents")
        out.append(NewShard(first + n, lo, hi, owners[0], owners[1] if len(owners) == 2 else None, closed))
    return out
