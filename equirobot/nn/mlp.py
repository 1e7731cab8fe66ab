"""Equivariant linear layers and MLPs on flat feature vectors (B, C), channels in field order."""

from __future__ import annotations

import torch
from escnn import nn as enn
from torch import nn

from equirobot.nn.conv1d import make_conv1d
from equirobot.nn.fields import fiber, layout_type, regular
from equirobot.symmetry.group import SceneSymmetry
from equirobot.symmetry.representations import Layout


class EquivariantLinear(nn.Module):
    """``in_type -> out_type`` equivariant affine map of (B, C) vectors (a 1-tap equivariant convolution)."""

    def __init__(self, in_type: enn.FieldType, out_type: enn.FieldType, bias: bool = True):
        super().__init__()
        self.in_type, self.out_type = in_type, out_type
        self.conv = make_conv1d(in_type, out_type, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x[..., None])[..., 0]

    def export(self) -> nn.Linear:
        """The same map as a plain ``nn.Linear``."""
        with torch.no_grad():
            eye = torch.eye(self.in_type.size)
            bias = self.forward(torch.zeros(1, self.in_type.size))[0]
            weight = (self.forward(eye) - bias).T
        linear = nn.Linear(self.in_type.size, self.out_type.size)
        linear.weight.data.copy_(weight)
        linear.bias.data.copy_(bias)
        return linear


class EquivariantMLP(nn.Module):
    """in_type -> [regular hidden fields, ReLU] x L -> out_type."""

    def __init__(self, in_type: enn.FieldType, hidden_fields: tuple[int, ...], out_type: enn.FieldType):
        super().__init__()
        self.in_type, self.out_type = in_type, out_type
        layers: list[nn.Module] = []
        t = in_type
        for h in hidden_fields:
            nxt = regular(in_type.gspace, h)
            layers += [EquivariantLinear(t, nxt), nn.ReLU()]
            t = nxt
        layers.append(EquivariantLinear(t, out_type))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_type.size:
            raise ValueError(f"expected {self.in_type.size} channels ({self.in_type}), got {x.shape[-1]}")
        return self.net(x)


class LayoutEncoder(nn.Module):
    """A robot-quantity vector (B, layout.size) in layout order -> (B, out_fields |G|) regular features.

    For proprio (end-effector pose relative to the symmetry axis, gripper) and object poses: each part is
    mapped by its declared representation, e.g. position xy as rho_1 and z as rho_0.
    """

    def __init__(
        self, sym: SceneSymmetry, layout: Layout, hidden_fields: tuple[int, ...] = (32,), out_fields: int = 32
    ):
        super().__init__()
        self.layout = layout
        self.out_type = regular(fiber(sym), out_fields)
        self.mlp = EquivariantMLP(layout_type(sym, layout), hidden_fields, self.out_type)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.layout.to_fields(x))
