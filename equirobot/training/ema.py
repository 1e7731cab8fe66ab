"""Exponential moving average of a model's weights, with Diffusion Policy's warm-up schedule."""

from __future__ import annotations

import torch
from torch import nn

from equirobot.nn.fields import derived_buffer


class EMA:
    """Keeps ``averaged`` (a model of the same architecture) as the EMA of ``model``.

    The decay grows as ``1 - (1 + step) ** -power`` up to ``max_decay``: early averages forget the random
    initialisation quickly, late ones smooth over many steps. Buffers (normaliser, batch-norm statistics)
    are copied, not averaged. Parameters and buffers are matched by name, and escnn's derived buffers
    (kernels it caches in eval mode only, so the two models need not hold the same ones) are left out.
    """

    def __init__(self, model: nn.Module, averaged: nn.Module, power: float = 0.75, max_decay: float = 0.9999):
        self.model, self.averaged, self.power, self.max_decay = model, averaged, power, max_decay
        state = {k: v for k, v in model.state_dict().items() if not derived_buffer(k)}
        missing = [
            k for k in averaged.load_state_dict(state, strict=False).missing_keys if not derived_buffer(k)
        ]
        if missing:
            raise ValueError(f"EMA: the averaged model lacks {missing[:4]}")
        averaged.requires_grad_(False)

    def decay(self, step: int) -> float:
        return min(max(1 - (1 + step) ** -self.power, 0.0), self.max_decay)

    @torch.no_grad()
    def update(self, step: int) -> None:
        decay = self.decay(step)
        averaged = dict(self.averaged.named_parameters())
        for name, current in self.model.named_parameters():
            averaged[name].lerp_(current.detach(), 1 - decay)
        buffers = dict(self.averaged.named_buffers())
        for name, source in self.model.named_buffers():
            if not derived_buffer(name):
                buffers[name].copy_(source)
