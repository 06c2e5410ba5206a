"""In-batch false negatives: which candidates of a row are not negatives of it, so the loss leaves them out.

The in-batch loss treats every other row's positive (and every hard negative) as a negative of a query. Two kinds
of candidate are not:

- **the same text**: two rows with one positive text (two changelog entries of one package, two paragraphs of one
  documentation topic), or a row's hard negative that is another row's positive. The logits are equal, so the loss
  pushes the target against itself and cannot fall below ``log 2``.
- **the same label**, in a same-label task (MEDI rows with a ``"label"``: texts of one man page section, one
  newsgroup, one sentiment): the task says texts sharing a label belong together, and a batch of 32 from an
  8-label task holds about four positives per query that the plain loss pushes away.

Opt-in (``--mask-false-negatives``): on the recipe's wide corpus it raised a held-out clustering task but lowered
the held-out instruction effect (results/recipe.md), so the default is the paper's loss.

Each row side gets a group id: its label where the row has one (``neg_label`` for the negative), else its text.
A candidate whose group equals the target's group, other than the target itself, is masked (its logit set to
``-inf``); a batch without shared groups gives exactly the plain loss. Ids are stable hashes, equal on every
worker, so cross-device batches mask the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch

from training.medi import MediExample

__all__ = ["group_ids", "mask_same_group"]


def _id(kind: str, value: str) -> int:
    digest = hashlib.blake2b(f"{kind}\0{value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def group_ids(batch: Sequence[MediExample]) -> torch.Tensor:
    """``(3, B)`` int64 group ids of the batch's queries, positives and negatives (rows 0, 1, 2).

    >>> a = MediExample(("", "q1"), ("", "doc"), ("", "other"), "t")
    >>> b = MediExample(("", "q2"), ("", "doc"), ("", "q1"), "t")
    >>> g = group_ids([a, b])
    >>> bool(g[1, 0] == g[1, 1]), bool(g[0, 0] == g[2, 1]), bool(g[0, 0] == g[0, 1])
    (True, True, False)
    """

    def side(example: MediExample, which: int) -> int:
        label = example.neg_label if which == 2 else example.label
        if label is not None:
            return _id("label", label)
        return _id("text", (example.query, example.pos, example.neg)[which][1])

    return torch.tensor([[side(e, which) for e in batch] for which in range(3)], dtype=torch.int64)


def mask_same_group(row_groups: torch.Tensor, candidate_groups: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``(B, C)`` bool: candidate ``j`` shares row ``i``'s group and is not its target ``targets[i]``.

    >>> mask_same_group(torch.tensor([1, 2]), torch.tensor([1, 2, 1]), torch.tensor([0, 1])).tolist()
    [[False, False, True], [False, False, False]]
    """
    mask = row_groups[:, None] == candidate_groups[None, :]
    mask[torch.arange(len(targets), device=targets.device), targets] = False
    return mask
