"""Length buckets: split one right-padded batch into a few sub-batches, each padded to its own longest row.

A training batch of triples puts short rows (a word, a one-line summary) beside long ones (a
package description) in one block padded to the longest row, so most of the compute of the short
rows goes to padding. :func:`length_buckets` picks, for rows sorted by length, the cut points that
minimise the padded tokens plus a fixed cost per extra forward pass (an exact dynamic programme;
a batch has at most a few hundred rows). The embeddings do not change: attention never looks at
padding, so a row's vector is the same in any bucket (the unit tests check values and gradients).

This module never imports torch or Ray.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "CPU_PASS_TOKENS",
    "DEFAULT_OVERHEAD_TOKENS",
    "INFERENCE_MAX_BUCKETS",
    "inference_buckets",
    "length_buckets",
    "padded_tokens",
]

DEFAULT_OVERHEAD_TOKENS = 1024
"""Cost of one more forward pass, in padded tokens (a few small matmuls' dispatch on CPU or GPU)."""

INFERENCE_MAX_BUCKETS = 4
"""Most sub-batches one inference batch is run as, on CPU (see :func:`inference_buckets`)."""

CPU_PASS_TOKENS = {"torch": 64, "onnx": 64, "openvino": 32}
"""Cost of one more forward pass on CPU, in padded tokens, per runtime (``backend=``). On CPU a padded token costs
about as much as a real one, while a pass costs little more than its tokens: the bundled MiniLM on 2 cores ran
random 4-row batches of real short texts 1.18-1.52x faster and 100-text requests 1.25-1.41x faster in up to 4 buckets
at these costs than in one padded block (results/quantization.md, "Length buckets at inference")."""


def inference_buckets(device_type: str, backend: str, max_buckets: int | None = None) -> tuple[int, int]:
    """``(max_buckets, overhead_tokens)`` for encoding a batch on ``device_type`` with ``backend``.

    ``max_buckets`` None chooses: :data:`INFERENCE_MAX_BUCKETS` on CPU with :data:`CPU_PASS_TOKENS`, one bucket
    elsewhere (not measured off CPU, so a GPU batch runs as before: one padded block). A given ``max_buckets``
    (1 turns splitting off) keeps the chosen per-pass cost.

    >>> inference_buckets("cpu", "openvino")
    (4, 32)
    >>> inference_buckets("cuda", "torch")
    (1, 1024)
    """
    cpu = device_type == "cpu"
    overhead = CPU_PASS_TOKENS.get(backend, DEFAULT_OVERHEAD_TOKENS) if cpu else DEFAULT_OVERHEAD_TOKENS
    if max_buckets is None:
        max_buckets = INFERENCE_MAX_BUCKETS if cpu else 1
    if max_buckets < 1:
        raise ValueError(f"max_buckets must be >= 1 or None, got {max_buckets}")
    return max_buckets, overhead


def padded_tokens(lengths: Sequence[int], buckets: Sequence[Sequence[int]]) -> int:
    """Tokens computed (rows x each bucket's longest row) when ``buckets`` are run separately."""
    return sum(len(rows) * max(lengths[r] for r in rows) for rows in buckets if rows)


def length_buckets(
    lengths: Sequence[int], max_buckets: int, overhead_tokens: int = DEFAULT_OVERHEAD_TOKENS
) -> list[list[int]]:
    """Row indices grouped into at most ``max_buckets`` buckets of similar length, cheapest first found.

    Args:
        lengths: real (unpadded) token count of each row.
        max_buckets: most sub-batches to return (1 = all rows in one bucket).
        overhead_tokens: cost of each extra bucket in padded tokens; a split is only made when it
            saves more than this.

    Returns:
        Lists of row indices, shortest rows first; every row appears exactly once.

    Raises:
        ValueError: ``max_buckets < 1`` or ``overhead_tokens < 0``.

    >>> length_buckets([3, 100, 4, 98], max_buckets=2, overhead_tokens=10)
    [[0, 2], [3, 1]]
    >>> length_buckets([3, 100, 4, 98], max_buckets=2, overhead_tokens=1000)
    [[0, 2, 3, 1]]
    """
    if max_buckets < 1:
        raise ValueError(f"max_buckets must be >= 1, got {max_buckets}")
    if overhead_tokens < 0:
        raise ValueError(f"overhead_tokens must be >= 0, got {overhead_tokens}")
    order = sorted(range(len(lengths)), key=lambda r: (lengths[r], r))
    n = len(order)
    if n == 0:
        return []
    sorted_lengths = [lengths[r] for r in order]
    inf = float("inf")
    # best[k][j]: cheapest cost of rows order[:j] in k buckets; cut[k][j]: where the last bucket starts.
    best = [[inf] * (n + 1) for _ in range(max_buckets + 1)]
    cut = [[0] * (n + 1) for _ in range(max_buckets + 1)]
    best[0][0] = 0.0
    for k in range(1, max_buckets + 1):
        for j in range(1, n + 1):
            width = sorted_lengths[j - 1]  # the longest row of a bucket ending at j
            for i in range(k - 1, j):
                cost = best[k - 1][i] + (j - i) * width + overhead_tokens
                if cost < best[k][j]:
                    best[k][j], cut[k][j] = cost, i
    k = min(range(1, max_buckets + 1), key=lambda b: (best[b][n], b))
    bounds: list[tuple[int, int]] = []
    j = n
    while k > 0:
        i = cut[k][j]
        bounds.append((i, j))
        j, k = i, k - 1
    return [order[i:j] for i, j in reversed(bounds)]
