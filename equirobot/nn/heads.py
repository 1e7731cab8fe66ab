"""Heads for reinforcement learning: invariant critic, equivariant Gaussian actor, equivariant Q-maps."""

from __future__ import annotations

import torch
from escnn import nn as enn
from torch import nn

from equirobot.nn.fields import fiber, layout_type, regular, trivial
from equirobot.nn.grid_encoders import conv_pool_stages, to_escnn_grid
from equirobot.nn.mlp import EquivariantMLP
from equirobot.nn.relaxed import RelaxedMLP
from equirobot.symmetry.group import SceneSymmetry
from equirobot.symmetry.representations import Layout

SAC_ACTION = Layout(
    "sac_action",
    (
        ("gripper", (0,), "scalar"),
        ("dxy", (1, 2), "vector"),
        ("dz", (3,), "scalar"),
        ("dtheta", (4,), "pseudo_scalar"),
    ),
)
"""The top-down action of SO(2)-equivariant SAC: [gripper, dx, dy, dz, dtheta], world frame."""


def make_mlp(
    in_type: enn.FieldType, hidden_fields: tuple[int, ...], out_type: enn.FieldType, relaxed_banks: int = 0
) -> nn.Module:
    """An exactly equivariant MLP (``relaxed_banks=0``) or its relaxed version with that many banks."""
    if relaxed_banks:
        return RelaxedMLP(in_type, hidden_fields, out_type, relaxed_banks)
    return EquivariantMLP(in_type, hidden_fields, out_type)


def group_pool(x: torch.Tensor, order: int) -> torch.Tensor:
    """(B, F |G|) regular fields -> (B, F) invariants: max over each field's group axis."""
    return x.unflatten(-1, (-1, order)).amax(-1)


class InvariantCritic(nn.Module):
    """Q(obs, action): equivariant MLP on [obs features, action] to regular fields, group pooling, MLP.

    Rotating the observation and the action together leaves Q unchanged (exactly); with
    ``relaxed_banks`` the MLP before the pooling is relaxed (:class:`~equirobot.nn.relaxed.RelaxedMLP`),
    invariant at initialisation only.
    """

    def __init__(
        self,
        sym: SceneSymmetry,
        obs_type: enn.FieldType,
        action_layout: Layout,
        hidden_fields: int = 64,
        relaxed_banks: int = 0,
    ):
        super().__init__()
        self.order = sym.group.order()
        self.action_layout = action_layout
        self.in_type = obs_type + layout_type(sym, action_layout)
        hidden_type = regular(fiber(sym), hidden_fields)
        self.mlp = make_mlp(self.in_type, (hidden_fields,), hidden_type, relaxed_banks)
        self.out = nn.Sequential(
            nn.ReLU(), nn.Linear(hidden_fields, hidden_fields), nn.ReLU(), nn.Linear(hidden_fields, 1)
        )

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """(B, obs), (B, A) layout order -> (B, 1)."""
        x = torch.cat([obs, self.action_layout.to_fields(action)], dim=-1)
        return self.out(group_pool(self.mlp(x), self.order))


class EquivariantGaussianActor(nn.Module):
    """pi(a | obs) = N(mean, diag(std^2)), with mean equivariant and std invariant.

    The mean follows the action layout (dxy as rho_1, the rest by their kinds). The log-std is one
    invariant per part, shared by a vector's two components, so the distribution itself is equivariant.
    With ``relaxed_banks`` the MLP is relaxed, equivariant at initialisation only.
    """

    def __init__(
        self,
        sym: SceneSymmetry,
        obs_type: enn.FieldType,
        action_layout: Layout,
        hidden_fields: int = 64,
        relaxed_banks: int = 0,
    ):
        super().__init__()
        self.action_layout = action_layout
        self.n_parts = len(action_layout.parts)
        space = fiber(sym)
        out_type = layout_type(sym, action_layout) + trivial(space, self.n_parts)
        self.mlp = make_mlp(obs_type, (hidden_fields, hidden_fields), out_type, relaxed_banks)
        self.mean_size = action_layout.size
        # Which log-std part each channel of the action (in field order) uses.
        self.register_buffer(
            "part_of_channel",
            torch.tensor([p for p, (_, idx, _) in enumerate(action_layout.parts) for _ in idx]),
        )

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, obs) -> mean (B, A) and log-std (B, A), both in layout order."""
        out = self.mlp(obs)
        mean_fields, log_std_parts = out[..., : self.mean_size], out[..., self.mean_size :]
        log_std_fields = log_std_parts[..., self.part_of_channel].clamp(-20, 2)
        return self.action_layout.from_fields(mean_fields), self.action_layout.from_fields(log_std_fields)


class EquivariantQMap(nn.Module):
    """Top-down heightmap (B, 1, H, W) -> Q-values (B, |G|, H, W) for every pixel and gripper rotation.

    A steerable fully convolutional network whose output is one regular field per pixel: channel g is
    the value of grasping at that pixel with the gripper turned by g. Rotating the heightmap by h
    rotates the map and shifts the rotation channels (exactly, for multiples of 90 degrees).
    """

    def __init__(self, sym: SceneSymmetry, in_channels: int = 1, widths: tuple[int, ...] = (8, 16, 32)):
        super().__init__()
        gspace = sym.gspace2d
        self.in_type = trivial(gspace, in_channels)
        types = [regular(gspace, w) for w in widths]
        self.down = nn.ModuleList()
        t = self.in_type
        for nxt in types:
            self.down.append(enn.SequentialModule(enn.R2Conv(t, nxt, 3, padding=1), enn.ReLU(nxt)))
            t = nxt
        self.up = nn.ModuleList()
        for skip, nxt in zip(reversed(types[:-1]), reversed(types[:-1]), strict=True):
            self.up.append(enn.SequentialModule(enn.R2Conv(t + skip, nxt, 3, padding=1), enn.ReLU(nxt)))
            t = nxt
        self.out_type = regular(gspace, 1)
        self.head = enn.R2Conv(t, self.out_type, 1)

    def forward(self, heightmap: torch.Tensor) -> torch.Tensor:
        x = enn.GeometricTensor(to_escnn_grid(heightmap, 2), self.in_type)
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        skips.pop()
        for block in self.up:
            x = block(enn.tensor_directsum([x, skips.pop()]))
        return self.head(x).tensor.transpose(-1, -2).flip(-2)  # back to [rows = -y, cols = x]


class EquivariantMoveQ(nn.Module):
    """Top-down image (B, C, H, W) -> Q-values (B, K, n, n): K invariant channels, n x n xy moves.

    The Q-network of the SO(2)-equivariant DQN (Wang, Walters, Platt, ICLR 2022). Cell (i, j) of the
    output is the move of the gripper by (dx, dy) = ((j - c), (c - i)) steps, c = n // 2 (rows run from
    +y to -y, as in the input image); channel k is one combination of the invariant action parts
    (gripper, dz, dtheta).

    Layers, for group G: ``conv_pool_stages`` (3x3 steerable conv - ReLU - 2x2 max pool, regular fields),
    a 1x1 conv to ``features`` regular fields with ReLU, adaptive max pooling to n x n, a 3x3 conv with
    zero padding across the cells (``hidden`` regular fields, ReLU), and a 1x1 conv to K trivial fields.

    Constraint: Q(g . x) = g . Q(x), g acting on the input and on the n x n grid as on a top-down image
    (``act_on_top_down``), the K channels unchanged. It holds exactly for multiples of 90 degrees: the
    steerable kernels, the pooling windows (adaptive bin i of m inputs is [floor(i m / n),
    ceil((i + 1) m / n)), mirror-symmetric) and zero padding map onto themselves. With G = C1 it is an
    ordinary CNN of the same channel counts.

    Args:
        sym: the group (its ``gspace2d``).
        in_channels: invariant input channels (the map and tiled scalars): ``in_type`` is trivial fields.
        fields: regular fields of each conv-pool stage.
        features, hidden: regular fields of the 1x1 conv before pooling and of the conv across cells.
        out_channels: K, trivial fields of ``out_type``.
        grid: n.
    """

    def __init__(
        self,
        sym: SceneSymmetry,
        in_channels: int,
        fields: tuple[int, ...] = (4, 8, 16),
        features: int = 16,
        hidden: int = 16,
        out_channels: int = 18,
        grid: int = 3,
    ):
        super().__init__()
        gspace = sym.gspace2d
        self.in_type = trivial(gspace, in_channels)
        layers, t = conv_pool_stages(self.in_type, fields)
        feature_type, hidden_type = regular(gspace, features), regular(gspace, hidden)
        self.out_type = trivial(gspace, out_channels)
        layers += [
            enn.R2Conv(t, feature_type, 1),
            enn.ReLU(feature_type, inplace=True),
            enn.PointwiseAdaptiveMaxPool2D(feature_type, grid),
            enn.R2Conv(feature_type, hidden_type, 3, padding=1),
            enn.ReLU(hidden_type, inplace=True),
            enn.R2Conv(hidden_type, self.out_type, 1),
        ]
        self.net = enn.SequentialModule(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_type.size:
            raise ValueError(f"expected (B, {self.in_type.size}, H, W), got {tuple(x.shape)}")
        x = to_escnn_grid(x, 2).contiguous()
        y = self.net(enn.GeometricTensor(x, self.in_type)).tensor
        return y.transpose(-1, -2).flip(-2)  # escnn's [x, y] back to [rows = -y, cols = x]

    def export(self) -> nn.Module:
        """The same network as plain torch modules."""
        self.eval()
        return _PlainMoveQ(self.net.export())


class _PlainMoveQ(nn.Module):
    """An exported :class:`EquivariantMoveQ`."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(to_escnn_grid(x, 2).contiguous()).transpose(-1, -2).flip(-2)


def yaw_type(sym: SceneSymmetry, gspace, rotations: int) -> enn.FieldType:
    """The field of R gripper yaws r pi / R, r = 0 .. R - 1, of a half-turn-symmetric gripper.

    For C_N (N even) the quotient representation C_N / C_2 (R = N / 2 channels): the element turning by
    2 pi m / N moves channel r to r + m mod R, since yaws theta and theta + pi are one grasp. For C1,
    R trivial channels (no constraint).
    """
    if sym.flips:
        raise ValueError(f"gripper yaws over [0, pi) are a field of a rotation group C_N, not of {sym.name}")
    if sym.order == 1:
        return trivial(gspace, rotations)
    if sym.order % 2 or rotations != sym.order // 2:
        raise ValueError(
            f"group {sym.name} acts on N / 2 = {sym.order / 2:g} gripper yaws over [0, pi) (the quotient "
            f"C{sym.order} / C2), not on {rotations}: use an even N = 2 x {rotations} (C{2 * rotations}), "
            "or C1"
        )
    return enn.FieldType(gspace, [gspace.quotient_repr(2)])


class SpatialQMap(nn.Module):
    """Top-down image (B, C, H, W) -> Q-values (B, R, H, W): a pick or place at every pixel and R yaws.

    The fully convolutional Q-network of Equivariant Q Learning in Spatial Action Spaces (Wang, Walters,
    Platt, CoRL 2021): a U-Net of steerable convolutions. Encoder level i: (a 2x2 max pool for i > 0,)
    a 3x3 conv to ``fields[i]`` regular fields, ReLU; a 3x3 conv to ``features`` regular fields at the
    lowest resolution; decoder level i (from the bottom): nearest 2x upsampling, concatenation with the
    encoder's level-i output (skip), 3x3 conv to ``fields[i]`` regular fields, ReLU; then a 1x1 conv to
    ``hidden`` regular fields, ReLU, and a 1x1 conv to the yaw field (:func:`yaw_type`): channel r at
    pixel (i, j) is the value of the primitive there with the gripper at yaw r pi / R. Rows run from +y
    to -y, as in the input image.

    Constraint: Q(g . x) = g . Q(x), g turning the map as a top-down image (``act_on_top_down``) and
    shifting the R channels by the quotient representation. Exact for multiples of 90 degrees when H and
    W are divisible by 2^(levels - 1) (the pooling windows tile the grid symmetrically, nearest 2x
    upsampling and zero padding commute with quarter turns); with G = C1 an ordinary U-Net of the same
    channel counts.

    Args:
        sym: the group (C_N with N even, or C1).
        in_channels: invariant input channels (the map and tiled scalars): ``in_type`` is trivial fields.
        fields: regular fields of each level, top (full resolution) first.
        features: regular fields of the bottleneck conv.
        hidden: regular fields of the 1x1 conv before the output.
        rotations: R, the yaws over [0, pi) (N / 2 for C_N).
    """

    def __init__(
        self,
        sym: SceneSymmetry,
        in_channels: int,
        fields: tuple[int, ...] = (4, 8),
        features: int = 8,
        hidden: int = 4,
        rotations: int = 4,
    ):
        super().__init__()
        gspace = sym.gspace2d
        self.in_type = trivial(gspace, in_channels)
        self.out_type = yaw_type(sym, gspace, rotations)
        self.levels = len(fields)
        types = [regular(gspace, n) for n in fields]
        self.down = nn.ModuleList()
        t = self.in_type
        for i, nxt in enumerate(types):
            pool = [enn.PointwiseMaxPool2D(t, 2)] if i else []
            self.down.append(enn.SequentialModule(*pool, enn.R2Conv(t, nxt, 3, padding=1), enn.ReLU(nxt)))
            t = nxt
        bottleneck = regular(gspace, features)
        self.bottleneck = enn.SequentialModule(enn.R2Conv(t, bottleneck, 3, padding=1), enn.ReLU(bottleneck))
        t = bottleneck
        self.upsample = nn.ModuleList()
        self.up = nn.ModuleList()
        for i in reversed(range(self.levels)):
            bottom = i == self.levels - 1
            self.upsample.append(enn.IdentityModule(t) if bottom else enn.R2Upsampling(t, 2, mode="nearest"))
            joined = t + types[i]
            self.up.append(
                enn.SequentialModule(enn.R2Conv(joined, types[i], 3, padding=1), enn.ReLU(types[i]))
            )
            t = types[i]
        hidden_type = regular(gspace, hidden)
        self.head = enn.SequentialModule(
            enn.R2Conv(t, hidden_type, 1), enn.ReLU(hidden_type), enn.R2Conv(hidden_type, self.out_type, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_type.size:
            raise ValueError(f"expected (B, {self.in_type.size}, H, W), got {tuple(x.shape)}")
        multiple = 2 ** (self.levels - 1)
        if x.shape[-1] % multiple or x.shape[-2] % multiple:
            raise ValueError(
                f"SpatialQMap with {self.levels} levels needs H and W divisible by {multiple}, got "
                f"{tuple(x.shape[-2:])}"
            )
        h = enn.GeometricTensor(to_escnn_grid(x, 2).contiguous(), self.in_type)
        skips = []
        for block in self.down:
            h = block(h)
            skips.append(h)
        h = self.bottleneck(h)
        for upsample, block in zip(self.upsample, self.up, strict=True):
            h = block(enn.tensor_directsum([upsample(h), skips.pop()]))
        return self.head(h).tensor.transpose(-1, -2).flip(-2)  # escnn's [x, y] back to [rows = -y, cols = x]
