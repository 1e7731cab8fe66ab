"""The observation encoder of a policy: every input of every history step -> one condition vector.

Each policy input gets the encoder of ``equirobot.nn`` made for it (``lowdim`` by its layout, point
clouds by the group-copy PointNet, voxels and top-down views by steerable CNNs, the wrist image by a
plain CNN). Their regular fields, for all history steps, come first in the condition, the wrist
image's invariant features last: the condition's field type is ``regular(k) + trivial(m)``.
"""

from __future__ import annotations

import torch
from escnn import nn as enn
from torch import nn

from equirobot.data.inputs import LOWDIM, DataSpec
from equirobot.nn.fields import fiber, regular, trivial
from equirobot.nn.grid_encoders import InvariantImageEncoder, SteerableGridEncoder
from equirobot.nn.mlp import LayoutEncoder
from equirobot.nn.point_encoder import EquivariantPointEncoder
from equirobot.symmetry.group import SceneSymmetry
from equirobot.symmetry.representations import Layout


class ObservationEncoder(nn.Module):
    """``{input: (B, n_obs, ...)}`` normalised inputs -> (B, cond_type.size) condition, field order.

    Which encoder an input gets follows its feature's declared group action
    (``equirobot_envs.features``): ``point_cloud``, ``voxels``, ``top_down`` or ``with_gripper``.

    Args:
        sym: the group.
        spec: the policy's data (input shapes and features).
        lowdim: how ``lowdim`` transforms.
        n_obs: history length.
        cfg: sizes (``DiffusionConfig``: lowdim_hidden, lowdim_fields, visual_fields, point_hidden,
            grid_widths, voxel_input_pool, wrist_features, each times ``cfg.scaled``).
    """

    def __init__(self, sym: SceneSymmetry, spec: DataSpec, lowdim: Layout, n_obs: int, cfg):
        super().__init__()
        shapes = spec.shapes
        if lowdim.size != shapes[LOWDIM][-1]:
            raise ValueError(f"lowdim input has {shapes[LOWDIM][-1]} channels, its layout {lowdim.size}")
        self.n_obs = n_obs
        self.encoders = nn.ModuleDict()
        self.invariant_keys: list[str] = []
        encoder: EquivariantPointEncoder | SteerableGridEncoder | InvariantImageEncoder
        lowdim_encoder = LayoutEncoder(
            sym, lowdim, (cfg.scaled(cfg.lowdim_hidden),), cfg.scaled(cfg.lowdim_fields)
        )
        self.encoders[LOWDIM] = lowdim_encoder
        fields, invariant = len(lowdim_encoder.out_type), 0
        for feature in spec.scene_features():
            shape, action = shapes[feature.key], feature.group_action
            if action == "point_cloud":
                encoder = EquivariantPointEncoder(
                    sym,
                    (0.0, 0.0, 0.0),
                    shape[-1] - 3,
                    cfg.scaled(cfg.point_hidden),
                    cfg.scaled(cfg.visual_fields),
                )  # normalised points: the symmetry axis is x = y = 0
            elif action == "voxels":
                encoder = SteerableGridEncoder(
                    sym,
                    shape[0],
                    3,
                    cfg.scaled(cfg.grid_widths),
                    cfg.scaled(cfg.visual_fields),
                    input_pool=cfg.voxel_input_pool,
                )
            elif action == "top_down":
                encoder = SteerableGridEncoder(
                    sym, shape[0], 2, cfg.scaled(cfg.grid_widths), cfg.scaled(cfg.visual_fields)
                )
            elif action == "with_gripper":
                encoder = InvariantImageEncoder(shape[0], out_features=cfg.scaled(cfg.wrist_features))
            else:
                raise ValueError(f"no encoder for policy input {feature.key!r} (group action {action!r})")
            self.encoders[feature.key] = encoder
            if isinstance(encoder, InvariantImageEncoder):  # action "with_gripper"
                invariant += encoder.out_features
                self.invariant_keys.append(feature.key)
            else:
                fields += len(encoder.out_type)
        space = fiber(sym)
        self.regular_size = n_obs * fields * sym.group.order()
        self.cond_type: enn.FieldType = regular(space, n_obs * fields)
        if invariant:
            self.cond_type = self.cond_type + trivial(space, n_obs * invariant)

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        batch = obs[LOWDIM].shape[0]
        regular_parts: list[torch.Tensor] = []
        invariant_parts: list[torch.Tensor] = []
        for key, encoder in self.encoders.items():
            x = obs[key]
            features = encoder(x.flatten(0, 1)).unflatten(0, (batch, self.n_obs))  # (B, n_obs, F)
            # Regular features are field-major per step, so steps simply concatenate as more fields.
            (invariant_parts if key in self.invariant_keys else regular_parts).append(features.flatten(1))
        return torch.cat(regular_parts + invariant_parts, dim=-1)
