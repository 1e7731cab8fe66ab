"""The input of the closed-loop reinforcement-learning methods: one top-down map and invariant scalars.

SAC and DQN read the same thing (the SO(2)-equivariant RL paper feeds both this way): the policy's one
top-down map (``gripper_heightmap`` of the closed-loop tasks) as channel 0, and every invariant
``lowdim`` scalar (the holding flag, the finger joints) tiled over the image as one more channel each.
Both act in the closed-loop action ``[gripper, dx, dy, dz, dtheta]`` and take rotation groups only
(dtheta flips sign under a mirror, and the networks keep it invariant).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from equirobot.data.inputs import LOWDIM, DataSpec, lowdim_quantities
from equirobot.nn.heads import SAC_ACTION
from equirobot.symmetry.group import SceneSymmetry
from equirobot_envs.features import QUANTITY_CHANNELS


@dataclass(frozen=True)
class TopDownInput:
    """How a policy turns its inputs of one step into a network image; see the module docstring."""

    grid_key: str
    """The top-down map's input key."""
    grid_scale: float
    """Its declared scale (raw units -> network units)."""
    scalar_channels: tuple[int, ...]
    """Channels of ``lowdim`` that hold invariant scalars."""
    input_pool: int
    """The map is average-pooled by this first (equivariant: the windows tile the map symmetrically)."""

    @classmethod
    def from_spec(cls, spec: DataSpec, sym: SceneSymmetry, method: str, input_pool: int) -> TopDownInput:
        """The input of ``spec``; a ValueError naming ``method`` if it cannot act on this data."""
        grids = [f for f in spec.scene_features() if f.group_action == "top_down"]
        if len(grids) != 1 or len(spec.scene_features()) != 1:
            raise ValueError(
                f"policy {method} reads one top-down map (obs=[gripper_heightmap] of the closed-loop tasks); "
                f"this data has {[f.key for f in spec.scene_features()]}"
            )
        if spec.action_dim != SAC_ACTION.size:
            raise ValueError(
                f"policy {method} acts in the closed-loop action [gripper, dx, dy, dz, dtheta] (control="
                f"closed_loop); this data's control {spec.control!r} has {spec.action_dim} channels"
            )
        if sym.flips:
            raise ValueError(
                f"policy {method} takes a rotation group C_N (dtheta flips under mirrors), got {sym.name}"
            )
        scalars, c = [], 0
        for quantity in lowdim_quantities(spec):
            if quantity == "scalar":
                scalars.append(c)
            c += QUANTITY_CHANNELS[quantity]
        return cls(grids[0].key, grids[0].scale, tuple(scalars), input_pool)

    @property
    def channels(self) -> int:
        """Channels of the image: the map and one per scalar."""
        return 1 + len(self.scalar_channels)

    def image(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Policy inputs of one step, ``lowdim`` (B, D) and the map (B, 1, H, W) -> the network input.

        That is (B, 1 + S, H / p, W / p), with S invariant scalars and p = ``input_pool``.
        """
        grid = obs[self.grid_key].float() * self.grid_scale
        if self.input_pool > 1:
            grid = F.avg_pool2d(grid, self.input_pool)
        scalars = obs[LOWDIM][:, list(self.scalar_channels)].float()
        tiled = scalars[:, :, None, None].expand(-1, -1, *grid.shape[-2:])
        return torch.cat([grid, tiled], dim=1)
