"""Exponential moving average of a model's weights, with Diffusion Policy's warm-up schedule."""

from __future__ import annotations

import torch
from torch import nn


class EMA:
    """Keeps ``averaged`` (a model of the same architecture) as the EMA of ``model``.

    The decay grows as ``1 - (1 + step) ** -power`` up to ``max_decay``: early averages forget the random
    initialisation quickly, late ones smooth over many steps. Buffers (normaliser, batch-norm statistics)
    are copied, not averaged.
    """

    def __init__(self, model: nn.Module, averaged: nn.Module, power: float = 0.75, max_decay: float = 0.9999):
        self.model, self.averaged, self.power, self.max_decay = model, averaged, power, max_decay
        averaged.load_state_dict(model.state_dict())
        averaged.requires_grad_(False)

    def decay(self, step: int) -> float:
        return min(max(1 - (1 + step) ** -self.power, 0.0), self.max_decay)

    @torch.no_grad()
    def update(self, step: int) -> None:
        decay = self.decay(step)
        for averaged, current in zip(self.averaged.parameters(), self.model.parameters(), strict=True):
            averaged.lerp_(current.detach(), 1 - decay)
        for buffer, source in zip(self.averaged.buffers(), self.model.buffers(), strict=True):
            buffer.copy_(source)
