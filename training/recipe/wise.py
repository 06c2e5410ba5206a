"""WiSE-FT (Wortsman et al. 2022): interpolate finetuned weights with the base model's.

``theta(alpha) = (1 - alpha) * theta_base + alpha * theta_finetuned``; ``alpha = 1`` is the
finetuned model, ``alpha = 0`` the base. Interpolating keeps much of a finetune's in-domain gain
while giving back what it forgot elsewhere; the recipe picks ``alpha`` on the dev splits.
"""

from __future__ import annotations

import copy

import torch

from instructor_plugins.model import InstructorEncoder

__all__ = ["interpolate"]


def interpolate(base: InstructorEncoder, finetuned: InstructorEncoder, alpha: float) -> InstructorEncoder:
    """A new encoder whose floating-point weights are ``(1 - alpha) * base + alpha * finetuned``.

    Raises:
        ValueError: ``alpha`` outside ``[0, 1]`` or the two models' parameters differ in names or shapes.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    base_state = base.module.state_dict()
    tuned_state = finetuned.module.state_dict()
    if base_state.keys() != tuned_state.keys():
        diff = sorted(set(base_state) ^ set(tuned_state))[:5]
        raise ValueError(f"the models have different parameters (e.g. {diff}); interpolate a finetune with its base")
    mixed = {}
    for name, tuned in tuned_state.items():
        ref = base_state[name]
        if ref.shape != tuned.shape:
            raise ValueError(f"parameter {name}: shape {tuple(ref.shape)} vs {tuple(tuned.shape)}")
        mixed[name] = (
            torch.lerp(ref.float(), tuned.float(), alpha).to(tuned.dtype) if tuned.is_floating_point() else tuned
        )
    out = copy.deepcopy(finetuned)
    out.module.load_state_dict(mixed)
    return out
