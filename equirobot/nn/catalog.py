"""Every equivariant module of ``equirobot.nn`` at a small size, with inputs and how the group acts on them.

The single list that the tests and ``equirobot check-equivariance`` loop over: a module added to the
library is added here once, and both check it for every group element.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from escnn import nn as enn
from escnn.group import GroupElement
from torch import nn

from equirobot.nn.conv1d import EquivariantConv1d, RegularGroupConv1d
from equirobot.nn.fields import fiber, layout_type, regular, trivial
from equirobot.nn.grid_encoders import SteerableConvEncoder, SteerableGridEncoder
from equirobot.nn.heads import (
    SAC_ACTION,
    EquivariantGaussianActor,
    EquivariantMoveQ,
    EquivariantQMap,
    InvariantCritic,
    SpatialQMap,
)
from equirobot.nn.mlp import EquivariantLinear, LayoutEncoder
from equirobot.nn.point_encoder import EquivariantPointEncoder
from equirobot.nn.relaxed import RelaxedGroupConv1d, RelaxedLinear, RelaxedSteerableConv2d
from equirobot.nn.unet import ConditionalUnet1D
from equirobot.symmetry import transforms as T
from equirobot.symmetry.checks import Action, field_action
from equirobot.symmetry.group import SceneSymmetry
from equirobot.symmetry.representations import ABS_ACTION, DELTA_ACTION, Layout, pose_layout

CENTER = (0.1, -0.05, 0.8)

InputAction = Callable[[GroupElement, Any], Any]
"""How g acts on a module's inputs or outputs: an :data:`Action` on a tensor, or one on a tuple of them."""


@dataclass
class Case:
    """A module, an example input, and the group's action on input and output."""

    name: str
    module: nn.Module
    inputs: Any
    act_in: InputAction
    act_out: InputAction
    is_exact: Callable[[GroupElement], bool]
    """Elements for which equivariance must hold to float precision (grids: multiples of 90 degrees)."""

    def __call__(self, inputs: Any) -> torch.Tensor:
        return self.module(*inputs) if isinstance(inputs, tuple) else self.module(inputs)


def layout_action(sym: SceneSymmetry, layout: Layout) -> Action:
    """Action on (..., layout.size) vectors in layout order, through the layout's field type."""
    act = field_action(layout_type(sym, layout))
    return lambda g, x: layout.from_fields(act(g, layout.to_fields(x)))


def _unet_input_action(act_x: Action, act_cond: Action) -> InputAction:
    """Action on the denoiser's inputs (x, timestep, cond): the timestep is invariant."""
    return lambda g, x: (act_x(g, x[0]), x[1], act_cond(g, x[2]))


def channel_action(field_type: enn.FieldType, dim: int = 1) -> Action:
    """Action on tensors whose dim ``dim`` holds the channels of ``field_type`` (e.g. (B, C, T))."""
    act = field_action(field_type)
    return lambda g, x: act(g, x.movedim(dim, -1)).movedim(-1, dim)


def escnn_grid_action(field_type: enn.FieldType) -> Action:
    """Action on tensors in escnn's own grid convention (what escnn layers consume)."""
    return lambda g, x: enn.GeometricTensor(x, field_type).transform(g).tensor


def top_down_field_action(sym: SceneSymmetry, field_type: enn.FieldType) -> Action:
    """Rotate a top-down map spatially and transform its channels by ``field_type``."""
    channels = channel_action(field_type)
    return lambda g, x: channels(g, T.act_on_top_down(sym, g, x))


class _Concatenated(nn.Module):
    """A module with several tensor outputs, concatenated along the last dim."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return torch.cat(self.module(*args), dim=-1)


def smooth_grid(*shape: int) -> torch.Tensor:
    """Random (B, C, *grid) values varying smoothly over the grid (upsampled coarse noise).

    White noise is no sample of a continuous image, so resampling it at 45 degrees measures aliasing,
    not equivariance; smooth inputs make the error at non-grid elements meaningful.
    """
    coarse = torch.rand(*shape[:2], *(max(s // 4, 2) for s in shape[2:]))
    mode = "bilinear" if len(shape) == 4 else "trilinear"
    return torch.nn.functional.interpolate(coarse, size=shape[2:], mode=mode, align_corners=False)


def catalog(sym: SceneSymmetry, seed: int = 0) -> list[Case]:
    """Small instances of every equivariant module with random inputs."""
    torch.manual_seed(seed)
    space = fiber(sym)
    always = lambda g: True  # noqa: E731
    on_grid = lambda g: T.is_grid_exact(sym, g)  # noqa: E731
    reg, reg2 = regular(space, 3), regular(space, 4)
    cond = regular(space, 6) + trivial(space, 2)
    cases = []

    conv = EquivariantConv1d(layout_type(sym, ABS_ACTION), reg, 3)
    cases.append(
        Case(
            "EquivariantConv1d",
            conv,
            torch.randn(2, 10, 8),
            channel_action(conv.in_type),
            channel_action(conv.out_type),
            always,
        )
    )
    if sym.group.order() > 1 and not sym.flips:
        gconv = RegularGroupConv1d(reg, reg2, 3)
        cases.append(
            Case(
                "RegularGroupConv1d",
                gconv,
                torch.randn(2, reg.size, 8),
                channel_action(reg),
                channel_action(reg2),
                always,
            )
        )
    if sym.group.order() > 1:  # any finite group (D_N too): the Cayley table, not a cyclic shift
        relaxed_conv = RelaxedGroupConv1d(reg, reg2, 3)
        cases.append(
            Case(
                "RelaxedGroupConv1d (init)",
                relaxed_conv,
                torch.randn(2, reg.size, 8),
                channel_action(reg),
                channel_action(reg2),
                always,
            )
        )
    for layout in (ABS_ACTION, DELTA_ACTION):
        unet = ConditionalUnet1D(sym, layout, cond, down_dims=(4, 8), step_embed_dim=16)
        act_a, act_c = layout_action(sym, layout), field_action(cond)
        cases.append(
            Case(
                f"ConditionalUnet1D ({layout.name})",
                unet,
                (torch.randn(2, 16, layout.size), torch.tensor([3, 70]), torch.randn(2, cond.size)),
                _unet_input_action(act_a, act_c),
                act_a,
                always,
            )
        )
    points = EquivariantPointEncoder(sym, CENTER, hidden=(16, 32), out_fields=8)
    cloud = torch.rand(2, 128, 6) + torch.tensor([-0.4, -0.55, 0.8, 0, 0, 0])
    cases.append(
        Case(
            "EquivariantPointEncoder",
            points,
            cloud,
            lambda g, x: T.act_on_point_cloud(sym, g, x, CENTER),
            field_action(points.out_type),
            always,
        )
    )
    image = SteerableGridEncoder(sym, 3, dims=2, widths=(4, 8), out_fields=4)
    cases.append(
        Case(
            "SteerableGridEncoder (image)",
            image,
            smooth_grid(2, 3, 24, 24),
            lambda g, x: T.act_on_top_down(sym, g, x),
            field_action(image.out_type),
            on_grid,
        )
    )
    rl_encoder = SteerableConvEncoder(sym, 2, fields=(2, 4), out_fields=4)
    cases.append(
        Case(
            "SteerableConvEncoder (heightmap)",
            rl_encoder,
            smooth_grid(2, 2, 24, 24),
            lambda g, x: T.act_on_top_down(sym, g, x),
            field_action(rl_encoder.out_type),
            on_grid,
        )
    )
    voxels = SteerableGridEncoder(sym, 4, dims=3, widths=(4,), out_fields=4)
    cases.append(
        Case(
            "SteerableGridEncoder (voxels)",
            voxels,
            smooth_grid(2, 4, 12, 12, 12),
            lambda g, x: T.act_on_voxels(sym, g, x),
            field_action(voxels.out_type),
            on_grid,
        )
    )
    proprio = pose_layout("eef").concat(Layout("gripper", (("gripper", (0,), "scalar"),)))
    encoder = LayoutEncoder(sym, proprio, hidden_fields=(4,), out_fields=4)
    cases.append(
        Case(
            "LayoutEncoder (proprio)",
            encoder,
            torch.randn(3, proprio.size),
            layout_action(sym, proprio),
            field_action(encoder.out_type),
            always,
        )
    )
    linear = EquivariantLinear(reg + trivial(space, 2), reg2)
    cases.append(
        Case(
            "EquivariantLinear",
            linear,
            torch.randn(3, linear.in_type.size),
            field_action(linear.in_type),
            field_action(reg2),
            always,
        )
    )
    relaxed_linear = RelaxedLinear(reg, layout_type(sym, SAC_ACTION))
    cases.append(
        Case(
            "RelaxedLinear (init)",
            relaxed_linear,
            torch.randn(3, reg.size),
            field_action(reg),
            field_action(relaxed_linear.out_type),
            always,
        )
    )
    steer_in, steer_out = regular(sym.gspace2d, 2), regular(sym.gspace2d, 2)
    relaxed_steerable = RelaxedSteerableConv2d(steer_in, steer_out, 3, size=12)
    cases.append(
        Case(
            "RelaxedSteerableConv2d (init)",
            relaxed_steerable,
            smooth_grid(2, steer_in.size, 12, 12),
            escnn_grid_action(steer_in),
            escnn_grid_action(steer_out),
            on_grid,
        )
    )
    obs = regular(space, 4)
    critic = InvariantCritic(sym, obs, SAC_ACTION, hidden_fields=4)
    act_sac = layout_action(sym, SAC_ACTION)
    cases.append(
        Case(
            "InvariantCritic",
            critic,
            (torch.randn(3, obs.size), torch.randn(3, 5)),
            lambda g, x: (field_action(obs)(g, x[0]), act_sac(g, x[1])),
            lambda g, y: y,
            always,
        )
    )
    actor = _Concatenated(EquivariantGaussianActor(sym, obs, SAC_ACTION, hidden_fields=4))
    cases.append(
        Case(
            "EquivariantGaussianActor",
            actor,
            torch.randn(3, obs.size),
            field_action(obs),
            lambda g, y: torch.cat([act_sac(g, y[..., :5]), y[..., 5:]], -1),
            always,
        )
    )
    qmap = EquivariantQMap(sym, widths=(4, 8))
    cases.append(
        Case(
            "EquivariantQMap",
            qmap,
            smooth_grid(2, 1, 16, 16),
            lambda g, x: T.act_on_top_down(sym, g, x),
            top_down_field_action(sym, qmap.out_type),
            on_grid,
        )
    )
    moves = EquivariantMoveQ(sym, 2, fields=(2, 4), features=4, hidden=4, out_channels=6)
    cases.append(
        Case(
            "EquivariantMoveQ (heightmap -> 3x3 moves)",
            moves,
            smooth_grid(2, 2, 24, 24),
            lambda g, x: T.act_on_top_down(sym, g, x),
            lambda g, y: T.act_on_top_down(sym, g, y),
            on_grid,
        )
    )
    if not sym.flips and sym.order % 2 == 0:  # yaws over [0, pi): the quotient C_N / C_2
        spatial = SpatialQMap(sym, 2, fields=(2, 4), features=4, hidden=2, rotations=sym.order // 2)
        cases.append(
            Case(
                "SpatialQMap (heightmap -> pixels x yaws)",
                spatial,
                smooth_grid(2, 2, 16, 16),
                lambda g, x: T.act_on_top_down(sym, g, x),
                top_down_field_action(sym, spatial.out_type),
                on_grid,
            )
        )
    return cases
