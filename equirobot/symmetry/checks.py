"""Numerical equivariance checks: transform the input by each group element, compare the outputs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from escnn import nn as enn
from escnn.group import GroupElement

Action = Callable[[GroupElement, torch.Tensor], torch.Tensor]


def field_action(field_type: enn.FieldType) -> Action:
    """How ``g`` acts on flat (..., field_type.size) vectors: by the field type's representation."""

    def act(g: GroupElement, y: torch.Tensor) -> torch.Tensor:
        return y @ torch.as_tensor(field_type.representation(g), dtype=y.dtype, device=y.device).T

    return act


@dataclass
class ElementError:
    """Equivariance error of one group element."""

    element: str
    relative_error: float
    exact: bool
    """Whether the input transform is exact for this element (grids: multiples of 90 degrees)."""


def equivariance_error(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    act_in: Action,
    act_out: Action,
    elements: list[GroupElement],
    is_exact: Callable[[GroupElement], bool] = lambda g: True,
) -> list[ElementError]:
    """Max |fn(g x) - g fn(x)| / max |fn(x)| for every element g (float64 where the module allows)."""
    with torch.no_grad():
        y = fn(x)
        scale = y.abs().max().clamp_min(1e-12)
        return [
            ElementError(str(g), float((fn(act_in(g, x)) - act_out(g, y)).abs().max() / scale), is_exact(g))
            for g in elements
        ]
