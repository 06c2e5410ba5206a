"""Deterministic train/dev/test assignment by split key (a hash, so independent of order and machine).

A pair's split is a function of its key alone; same-label tasks pick a partner from the same
split (:func:`same_split_partner`), so a symmetric pair never joins texts of two splits.
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from training.recipe.sources import Pair

__all__ = ["DEV_FRACTION", "SPLITS", "TEST_FRACTION", "Split", "same_label_pairs", "same_split_partner", "split_of"]

Split = Literal["train", "dev", "test"]
SPLITS: tuple[Split, ...] = ("train", "dev", "test")
DEV_FRACTION = 0.05
TEST_FRACTION = 0.05


def _unit(key: str) -> float:
    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def split_of(key: str) -> Split:
    """The split of a key: ``test`` for 5 % of keys, ``dev`` for 5 %, else ``train``.

    >>> split_of("wordnet:n:00001740") in SPLITS
    True
    """
    u = _unit(key)
    if u < TEST_FRACTION:
        return "test"
    if u < TEST_FRACTION + DEV_FRACTION:
        return "dev"
    return "train"


def same_split_partner(members: Sequence[str], key: Callable[[str], str], rng: random.Random) -> list[tuple[str, str]]:
    """Pair each member with another member of the same split whose key differs.

    Members alone in their split (or sharing one key) get no partner.
    """
    by_split: dict[Split, list[str]] = defaultdict(list)
    for m in members:
        by_split[split_of(key(m))].append(m)
    out: list[tuple[str, str]] = []
    for split in SPLITS:
        group = by_split[split]
        for m in group:
            options = [o for o in rng.sample(group, min(len(group), 8)) if key(o) != key(m)]
            if options:
                out.append((m, options[0]))
    return out


def same_label_pairs(
    groups: Mapping[str, Sequence[str]], key: Callable[[str], str], rng: random.Random | None = None
) -> list[Pair]:
    """A same-label task's pairs: ``Pair(a, b, key(a), label)`` for each label (sorted) and member ``a``.

    ``b`` is ``a``'s partner from :func:`same_split_partner`; one ``rng`` (default ``Random(0)``) serves all
    labels in order, so the pairs are deterministic.
    """
    from training.recipe.sources import Pair

    rng = rng or random.Random(0)
    return [
        Pair(a, b, key(a), label=label)
        for label, members in sorted(groups.items())
        for a, b in same_split_partner(members, key, rng)
    ]
