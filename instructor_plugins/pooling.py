"""Instruction-aware pooling, as the checkpoint says: every sentence-transformers mode, per row, in torch.

Every model reads ``instruction + text`` as one string. What the checkpoint's pooling config
(``1_Pooling/config.json``) says decides what is pooled:

- ``include_prompt: false`` (INSTRUCTOR checkpoints and the ones we train): the instruction is
  attended to inside the encoder but left out of pooling. For row ``i`` with ``k_i`` instruction
  tokens (the instruction's own token count minus the trailing special token the tokenizer
  appends) the first ``k_i`` positions get weight 0, as do padding positions. Each row of a batch
  may carry a different ``k_i``; that is what lets one forward pass mix instructions.
- ``include_prompt: true`` (sentence-transformers' default: E5, BGE, GTE, nomic, Qwen3-Embedding):
  the instruction is a plain prefix and its tokens are pooled like the text's.

The modes are those of ``sentence_transformers.models.Pooling`` with its semantics (ST 6.3):
``cls`` (the first pooled position), ``max``, ``mean``, ``mean_sqrt_len_tokens`` (sum over the
square root of the count), ``weightedmean`` (position weights 1, 2, ... from the first real
token, kept when the prompt is left out) and ``lasttoken`` (the last pooled position, for decoder
embedders). Several modes are concatenated in the checkpoint's order. Pooling runs in float32
whatever the encoder's dtype.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["POOLING_MODES", "PoolingSpec", "pool", "pooling_mask"]

# sentence-transformers' modes, in the order its legacy ``pooling_mode_*`` keys concatenate them.
POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")


@dataclass(frozen=True)
class PoolingSpec:
    """How a checkpoint pools token states into one vector.

    Attributes:
        modes: pooling modes, concatenated in this order (see :data:`POOLING_MODES`).
        include_prompt: whether instruction tokens are pooled too (False: INSTRUCTOR-style).
        source: where this was read from (a file path, or why it is a default), for ``/info`` and logs.
    """

    modes: tuple[str, ...] = ("mean",)
    include_prompt: bool = True
    source: str = "default"

    def __post_init__(self) -> None:
        if not self.modes:
            raise ValueError(f"pooling needs at least one mode; valid: {list(POOLING_MODES)}")
        unknown = [m for m in self.modes if m not in POOLING_MODES]
        if unknown:
            raise ValueError(f"unsupported pooling mode(s) {unknown}; valid: {list(POOLING_MODES)}")
        if len(set(self.modes)) != len(self.modes):
            raise ValueError(f"pooling modes repeat: {list(self.modes)}")
        if not isinstance(self.include_prompt, bool):
            raise TypeError(f"include_prompt must be a bool, got {self.include_prompt!r}")

    def to_dict(self) -> dict[str, Any]:
        """``{"modes": [...], "include_prompt": bool, "source": str}`` (for ``/info``).

        >>> PoolingSpec(("cls", "mean"), include_prompt=False).to_dict()
        {'modes': ['cls', 'mean'], 'include_prompt': False, 'source': 'default'}
        """
        return {"modes": list(self.modes), "include_prompt": self.include_prompt, "source": self.source}


def pooling_mask(attention_mask: torch.Tensor, instruction_lengths: torch.Tensor) -> torch.Tensor:
    """Return the attention mask with each row's leading instruction positions zeroed.

    Args:
        attention_mask: ``(batch, seq)`` 0/1 mask of real tokens, right-padded.
        instruction_lengths: ``(batch,)`` number of leading positions to exclude per row.

    At least the last real token of a row is always kept, so a text truncated away still pools
    its trailing special token instead of producing a zero vector.
    """
    seq_lens = attention_mask.sum(dim=1)
    lengths = torch.minimum(instruction_lengths.to(seq_lens.dtype), (seq_lens - 1).clamp(min=0))
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device).unsqueeze(0)
    return attention_mask * (positions >= lengths.unsqueeze(1)).to(attention_mask.dtype)


def _first_last(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Index of the first and the last pooled position of each row (0 for a row with none)."""
    seq = mask.shape[1]
    on = mask.to(torch.int32)
    first = on.argmax(dim=1)
    values, flipped = on.flip(1).max(dim=1)
    last = torch.where(values == 0, torch.zeros_like(flipped), seq - 1 - flipped)
    return first, last


def pool(hidden: torch.Tensor, mask: torch.Tensor, modes: str | tuple[str, ...] = ("mean",)) -> torch.Tensor:
    """Pool ``(batch, seq, dim)`` hidden states over the 0/1 ``mask`` in float32.

    Args:
        hidden: the encoder's last hidden states.
        mask: ``(batch, seq)`` positions to pool: the attention mask, with the instruction zeroed
            when the checkpoint leaves the prompt out (:func:`pooling_mask`). Right-padded.
        modes: one mode or several (concatenated in order); see :data:`POOLING_MODES`.

    Returns:
        float32 ``(batch, dim * len(modes))``.
    """
    modes = (modes,) if isinstance(modes, str) else tuple(modes)
    hidden = hidden.float()
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    index = torch.arange(hidden.shape[0], device=hidden.device)
    count = weights.sum(dim=1).clamp(min=1e-9)
    first, last = _first_last(mask) if {"cls", "lasttoken"} & set(modes) else (index, index)
    out: list[torch.Tensor] = []
    for mode in modes:
        if mode == "cls":
            out.append(hidden[index, first])
        elif mode == "lasttoken":  # zero for a row that pools nothing, as in sentence-transformers
            out.append(hidden[index, last] * weights[index, last])
        elif mode == "max":
            out.append(hidden.masked_fill(weights == 0, float("-inf")).max(dim=1).values)
        elif mode == "mean":
            out.append((hidden * weights).sum(dim=1) / count)
        elif mode == "mean_sqrt_len_tokens":
            out.append((hidden * weights).sum(dim=1) / count.sqrt())
        elif mode == "weightedmean":
            positions = torch.arange(1, hidden.shape[1] + 1, device=hidden.device, dtype=hidden.dtype)
            weighted = weights * positions.view(1, -1, 1)
            out.append((hidden * weighted).sum(dim=1) / weighted.sum(dim=1).clamp(min=1e-9))
        else:
            raise ValueError(f"unknown pooling mode {mode!r}; valid: {list(POOLING_MODES)}")
    return out[0] if len(out) == 1 else torch.cat(out, dim=-1)
