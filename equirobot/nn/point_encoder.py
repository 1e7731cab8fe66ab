"""Exactly equivariant point-cloud encoder: a shared point network over group-transformed copies.

For a cloud X (positions relative to the symmetry axis) the encoder computes, for every group element
g, the same invariant-free point network on g^-1 X, and stacks the results: F(X)[g] = phi(g^-1 X). Then
F(h X)[g] = phi(g^-1 h X) = F(X)[h^-1 g], which is exactly the regular representation, so the output is
a regular field per channel, for C_N and D_N alike (reflections included), with no interpolation and no
approximation. The cost is |G| passes of a small PointNet (DP3-style: per-point MLP + max pool), run as
one batched pass; the invariant inputs (height, colour) enter the first layer once for all copies.
"""

from __future__ import annotations

import numpy as np
import torch
from escnn import nn as enn
from torch import nn

from equirobot.nn.fields import fiber, regular
from equirobot.symmetry.group import SceneSymmetry


class EquivariantPointEncoder(nn.Module):
    """(B, P, 3 + F) world-frame points -> (B, out_fields * |G|) regular features.

    Args:
        sym: the group.
        center: a point on the symmetry axis (world frame).
        point_features: F, the per-point features after xyz (3 for rgb).
        hidden: widths of the per-point MLP.
        out_fields: regular fields of the output.
    """

    center: torch.Tensor  # buffer (3,)
    inverse_planar: torch.Tensor  # buffer (|G|, 2, 2)

    def __init__(
        self,
        sym: SceneSymmetry,
        center: tuple[float, float, float],
        point_features: int = 3,
        hidden: tuple[int, ...] = (64, 128, 256),
        out_fields: int = 64,
    ):
        super().__init__()
        self.sym, self.point_features, self.out_fields = sym, point_features, out_fields
        self.register_buffer("center", torch.tensor(center, dtype=torch.float32))
        # Planar action of g^-1 for every element, in the order of the regular representation's basis.
        inverses = np.stack([sym.planar_matrix(g).T for g in sym.elements])  # orthogonal: inverse = transpose
        self.register_buffer("inverse_planar", torch.tensor(inverses, dtype=torch.float32))
        self.xy_in = nn.Linear(2, hidden[0], bias=False)
        self.invariant_in = nn.Linear(1 + point_features, hidden[0])  # z and colour: same for every copy
        layers: list[nn.Module] = [nn.LayerNorm(hidden[0]), nn.ReLU()]
        for a, b in zip(hidden[:-1], hidden[1:], strict=True):
            layers += [nn.Linear(a, b), nn.LayerNorm(b), nn.ReLU()]
        self.point_mlp = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(hidden[-1], out_fields), nn.LayerNorm(out_fields))
        self.out_type: enn.FieldType = regular(fiber(sym), out_fields)

    def forward(self, cloud: torch.Tensor) -> torch.Tensor:
        if cloud.dim() != 3 or cloud.shape[-1] != 3 + self.point_features:
            raise ValueError(
                f"expected a point cloud (B, P, {3 + self.point_features}), got {tuple(cloud.shape)}"
            )
        rel = cloud[..., :3] - self.center
        xy = torch.einsum("gij,bpj->bgpi", self.inverse_planar, rel[..., :2])  # (B, |G|, P, 2)
        invariant = self.invariant_in(torch.cat([rel[..., 2:], cloud[..., 3:]], dim=-1))  # (B, P, H)
        h = self.point_mlp(self.xy_in(xy) + invariant[:, None])  # (B, |G|, P, H')
        per_element = self.head(h.amax(dim=2))  # (B, |G|, out_fields)
        return per_element.transpose(1, 2).reshape(cloud.shape[0], -1)  # field-major: [field][element]
