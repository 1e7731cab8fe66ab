"""Encoders of grid observations: steerable CNNs (escnn) for images and voxels, a plain CNN for wrist views.

A steerable convolution on a square grid is exactly equivariant to the rotations that map the grid onto
itself (multiples of 90 degrees) and mirrors; for the other elements of C8 (45 degrees) it is
equivariant up to the discretisation of the filters, which ``equivariance_error`` measures.
"""

from __future__ import annotations

from typing import cast

import torch
from escnn import nn as enn
from torch import nn

from equirobot.nn.fields import regular, trivial
from equirobot.symmetry.group import SceneSymmetry


class _ResidualStage(nn.Module):
    """conv -> BN -> ReLU -> conv -> BN, plus the input (1x1 conv if widths differ), ReLU, max pool."""

    def __init__(self, in_type: enn.FieldType, out_type: enn.FieldType, conv, pool, kernel_size: int):
        super().__init__()
        pad = kernel_size // 2
        self.body = enn.SequentialModule(
            conv(in_type, out_type, kernel_size, padding=pad, bias=False),
            enn.InnerBatchNorm(out_type),
            enn.ReLU(out_type, inplace=True),
            conv(out_type, out_type, kernel_size, padding=pad, bias=False),
            enn.InnerBatchNorm(out_type),
        )
        self.skip = (
            conv(in_type, out_type, 1, bias=False) if in_type != out_type else enn.IdentityModule(in_type)
        )
        self.act = enn.ReLU(out_type, inplace=True)
        self.pool = pool(out_type, 2)

    def forward(self, x: enn.GeometricTensor) -> enn.GeometricTensor:
        return self.pool(self.act(self.body(x) + self.skip(x)))

    def export(self) -> nn.Module:
        exported = (self.body.export(), self.skip.export(), self.act.export(), self.pool.export())
        return _PlainResidualStage(*exported)


class _PlainResidualStage(nn.Module):
    """An exported :class:`_ResidualStage`: the same computation on plain tensors."""

    def __init__(self, body: nn.Module, skip: nn.Module, act: nn.Module, pool: nn.Module):
        super().__init__()
        self.body, self.skip, self.act, self.pool = body, skip, act, pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.act(self.body(x) + self.skip(x)))


class SteerableGridEncoder(nn.Module):
    """(B, C, *grid) -> (B, out_fields * |G|) regular features, for 2-D images or 3-D voxel grids.

    Residual stages halve the resolution each; a global max pool removes the grid, keeping the regular
    fields (whose group axis carries the orientation). ``dims=2`` acts on images by rotating them about
    their centre (a top-down view); ``dims=3`` on voxel grids indexed [x, y, z] by rotating about z.
    """

    def __init__(
        self,
        sym: SceneSymmetry,
        in_channels: int,
        dims: int = 2,
        widths: tuple[int, ...] = (8, 16, 32, 64),
        out_fields: int = 64,
        kernel_size: int = 3,
        input_pool: int = 1,
    ):
        super().__init__()
        if dims not in (2, 3):
            raise ValueError(f"dims must be 2 (images) or 3 (voxels), got {dims}")
        self.sym, self.dims = sym, dims
        gspace = sym.gspace2d if dims == 2 else sym.gspace3d
        conv = enn.R2Conv if dims == 2 else enn.R3Conv
        pool = enn.PointwiseMaxPool2D if dims == 2 else enn.PointwiseMaxPool3D
        self.in_type = trivial(gspace, in_channels)
        # Average-pooling the (invariant) input channels first is equivariant and cuts the cost of a 64^3
        # voxel grid by 8 before the first convolution.
        avg_pool = nn.AvgPool2d if dims == 2 else nn.AvgPool3d
        self.input_pool = avg_pool(input_pool) if input_pool > 1 else nn.Identity()
        stages, t = [], self.in_type
        for w in widths:
            nxt = regular(gspace, w)
            stages.append(_ResidualStage(t, nxt, conv, pool, kernel_size))
            t = nxt
        self.stages = nn.Sequential(*stages)  # on GeometricTensors
        self.out_type = regular(gspace, out_fields)
        self.head = enn.SequentialModule(
            conv(t, self.out_type, 1),
            enn.ReLU(self.out_type),
            enn.PointwiseAdaptiveMaxPool2D(self.out_type, 1)
            if dims == 2
            else enn.PointwiseAdaptiveMaxPool3D(self.out_type, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 + self.dims or x.shape[1] != self.in_type.size:
            raise ValueError(
                f"expected (B, {self.in_type.size}, {'D, ' * self.dims}...), got {tuple(x.shape)}"
            )
        x = self.input_pool(to_escnn_grid(x, self.dims))
        y = self.head(self.stages(enn.GeometricTensor(x, self.in_type)))
        return y.tensor.flatten(1)

    def export(self) -> nn.Module:
        """The same encoder as plain torch modules (eval mode: batch norm uses its running statistics)."""
        self.eval()
        # nn.Sequential types its items as Module; these are the _ResidualStage s built in __init__
        stages = nn.Sequential(*(cast(_ResidualStage, stage).export() for stage in self.stages))
        return _PlainGridEncoder(self.dims, nn.Sequential(self.input_pool, stages), self.head.export())


def to_escnn_grid(x: torch.Tensor, dims: int) -> torch.Tensor:
    """Our grids -> escnn's axis convention, which reads grid axes in order as coordinate axes.

    Voxels [x, y, z] become [z, x, y] (escnn's rot2dOnR3 turns about the first axis); top-down images
    [rows = -y, cols = x] become [x, y].
    """
    return x.permute(0, 1, 4, 2, 3) if dims == 3 else x.flip(-2).transpose(-1, -2)


class _PlainGridEncoder(nn.Module):
    """An exported :class:`SteerableGridEncoder`."""

    def __init__(self, dims: int, stages: nn.Module, head: nn.Module):
        super().__init__()
        self.dims, self.stages, self.head = dims, stages, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(to_escnn_grid(x, self.dims))).flatten(1)


def conv_pool_stages(
    in_type: enn.FieldType, fields: tuple[int, ...]
) -> tuple[list[enn.EquivariantModule], enn.FieldType]:
    """The stages of the light RL networks and their output type.

    Stage i: 3x3 steerable conv to ``fields[i]`` regular fields, ReLU, 2x2 max pool (halves the grid).
    """
    layers: list[enn.EquivariantModule] = []
    t = in_type
    for n in fields:
        nxt = regular(in_type.gspace, n)
        layers += [
            enn.R2Conv(t, nxt, 3, padding=1),
            enn.ReLU(nxt, inplace=True),
            enn.PointwiseMaxPool2D(nxt, 2),
        ]
        t = nxt
    return layers, t


class SteerableConvEncoder(nn.Module):
    """(B, C, H, W) top-down image -> (B, out_fields |G|) regular features: conv-ReLU-max-pool stages.

    The light encoder of reinforcement learning (the SO(2)-equivariant SAC's layout: one steerable
    convolution per stage, no normalisation, since the networks act in training mode): each stage
    halves the resolution, a 1x1 convolution makes ``out_fields`` regular fields, and a global max pool
    removes the grid. With group C1 it is an ordinary CNN of the same channel counts.
    """

    def __init__(
        self,
        sym: SceneSymmetry,
        in_channels: int,
        fields: tuple[int, ...] = (2, 4, 8, 8),
        out_fields: int = 8,
    ):
        super().__init__()
        gspace = sym.gspace2d
        self.in_type = trivial(gspace, in_channels)
        layers, t = conv_pool_stages(self.in_type, fields)
        self.out_type = regular(gspace, out_fields)
        layers += [
            enn.R2Conv(t, self.out_type, 1),
            enn.ReLU(self.out_type, inplace=True),
            enn.PointwiseAdaptiveMaxPool2D(self.out_type, 1),
        ]
        self.net = enn.SequentialModule(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_type.size:
            raise ValueError(f"expected (B, {self.in_type.size}, H, W), got {tuple(x.shape)}")
        x = to_escnn_grid(x, 2).contiguous()  # pooling is several times slower on a transposed view
        return self.net(enn.GeometricTensor(x, self.in_type)).tensor.flatten(1)


class InvariantImageEncoder(nn.Module):
    """(B, 3, H, W) wrist-camera image -> (B, out_features) invariant features (a plain CNN).

    The wrist camera turns with the gripper, so its image does not rotate with the scene: its features
    enter the policy as invariant (trivial) fields.
    """

    def __init__(self, in_channels: int = 3, widths: tuple[int, ...] = (32, 64, 128), out_features: int = 64):
        super().__init__()
        layers, c = [], in_channels
        for w in widths:
            layers += [nn.Conv2d(c, w, 3, padding=1), nn.GroupNorm(8, w), nn.ReLU(), nn.MaxPool2d(2)]
            c = w
        self.net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, out_features))
        self.out_features = out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
