"""Instruction-aware pooling: the INSTRUCTOR math, per row, in plain torch.

INSTRUCTOR feeds ``instruction + text`` through the encoder, so the text tokens attend to the
instruction, but pools only over the *text* tokens. For row ``i`` with ``k_i`` instruction tokens
(the instruction's own token count minus the trailing special token the tokenizer appends), the
first ``k_i`` positions get weight 0 in the pooled mean, as do padding positions. Each row of a
batch may carry a different ``k_i``; that is what lets one forward pass mix instructions.
"""

from __future__ import annotations

import torch


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


def pool(hidden: torch.Tensor, mask: torch.Tensor, mode: str = "mean") -> torch.Tensor:
    """Pool ``(batch, seq, dim)`` hidden states over ``mask`` in float32.

    ``mean`` averages the masked positions (the INSTRUCTOR pooling); ``cls`` takes position 0;
    ``max`` takes the element-wise maximum over masked positions.
    """
    hidden = hidden.float()
    if mode == "mean":
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
    if mode == "cls":
        return hidden[:, 0]
    if mode == "max":
        filled = hidden.masked_fill(~mask.bool().unsqueeze(-1), torch.finfo(hidden.dtype).min)
        return filled.max(dim=1).values
    raise ValueError(f"unknown pooling mode {mode!r}; valid: ['mean', 'cls', 'max']")
