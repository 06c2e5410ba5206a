"""Hard negatives that only the instruction tells apart: another task's positive for the same query text.

Many query texts of the corpus appear in several tasks (57 % of the wide corpus's training rows: an emoji name
is translated into German in one task and into Italian in another; a changelog entry finds its package name in
one and another entry of the package in the next). For such a row of task A with positive ``p_A``, the
positive ``p_B`` the same query has in task B is a negative that the text alone cannot rank below ``p_A``: the
query side is the same string, so only the instruction says which of the two is wanted. Rows of task B get
``p_A`` the same way. The in-batch loss never shows these contrasts (a batch holds one task), and mined negatives
come from the row's own task, so without this the corpus has no pair whose ranking depends on the instruction
alone.

:func:`instruction_negatives` replaces the negative (mined, or the source's own) of a share ``rate`` of the eligible
training rows (picked by a hash of the row, so a corpus is the same on every build). A candidate is never a positive
of the row's own query in the row's task, nor the query itself. Evaluation rows are not touched. Opt-in: it made the
model use its instructions more in-domain but did not move the held-out instruction effect over two seeds
(``results/recipe.md``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from training.batching import stable_unit
from training.recipe.sources import Pair

__all__ = ["instruction_negatives"]


def instruction_negatives(
    tasks: Mapping[str, tuple[Sequence[Pair], Sequence[str]]], rate: float, *, seed: int = 0
) -> tuple[dict[str, list[str]], dict[str, int]]:
    """Swap mined negatives for other tasks' positives of the same query text.

    Args:
        tasks: each task's training pairs and their current negatives (same order and length).
        rate: share of the eligible rows (those whose query has a positive in another task) that get one;
            0 changes nothing, 1 every eligible row.
        seed: picks which rows and which candidate.

    Returns:
        Each task's negatives (a new list; unchanged rows keep theirs) and how many rows of each task changed.

    Raises:
        ValueError: ``rate`` outside [0, 1], or a task whose negatives and pairs differ in number.
    """
    if not 0 <= rate <= 1:
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    positives: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for name, (pairs, negs) in tasks.items():
        if len(pairs) != len(negs):
            raise ValueError(f"task {name}: {len(negs)} negatives for {len(pairs)} pairs")
        for p in pairs:
            positives[p.query][name].add(p.pos)
    out: dict[str, list[str]] = {}
    changed: dict[str, int] = {}
    for name, (pairs, negs) in tasks.items():
        new = list(negs)
        count = 0
        for i, p in enumerate(pairs):
            by_task = positives[p.query]
            if rate == 0 or len(by_task) < 2:
                continue
            own = by_task[name] | {p.query}
            candidates = sorted({t for task, texts in by_task.items() if task != name for t in texts} - own)
            if not candidates:
                continue
            row = (str(seed), name, p.key, p.query, p.pos)
            if stable_unit("take", *row) >= rate:
                continue
            new[i] = candidates[int(stable_unit("pick", *row) * len(candidates))]
            count += 1
        out[name] = new
        changed[name] = count
    return out, changed
