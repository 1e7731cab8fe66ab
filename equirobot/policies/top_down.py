"""The input of the reinforcement-learning methods on heightmaps: one top-down map and invariant scalars.

SAC, DQN and FCN read the same thing (the SO(2)-equivariant RL paper feeds SAC and DQN this way): the
policy's one top-down map (``gripper_heightmap`` of the closed-loop tasks, ``workspace_heightmap`` of the
open-loop ones) as channel 0, and every invariant ``lowdim`` scalar (the holding flag, the finger
joints) tiled over the image as one more channel each. SAC and DQN act in the closed-loop action
``[gripper, dx, dy, dz, dtheta]``, FCN in the pick_place primitive ``[x, y, theta]``; all take rotation
groups only (a mirror flips dtheta, and turns a yaw the other way).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from equirobot.data.inputs import LOWDIM, DataSpec, lowdim_quantities
from equirobot.policies.base import PolicyConfig
from equirobot.symmetry.group import SceneSymmetry
from equirobot_envs.features import CONTROL_MODES, QUANTITY_CHANNELS


@dataclass
class TopDownConfig(PolicyConfig):
    """Settings every RL method on heightmaps (sac, dqn, fcn) has.

    One action per step from the current observation, convolution stages on the pooled map, and how
    the online source fills the buffer.

    Channel counts are channels: for C_N, regular fields of ``channels // |G|`` each, so an equivariant
    network and its C1 counterpart cost about the same.
    """

    horizon: int = 1
    n_obs_steps: int = 1
    n_action_steps: int = 1
    use_ema: bool = False
    encoder_channels: list[int] = field(default_factory=lambda: [16, 32, 64])
    """Channels of the convolution stages (each halves the resolution)."""
    input_pool: int = 2
    """The networks average-pool the map by this first (2: a 64 x 64 map is seen at 32 x 32; 1 at the
    paper's size, ``scale=rl_gpu``)."""
    features: int = 64
    """Channels of the encoder's last (1x1) convolution."""
    hidden: int = 64
    """Channels of the hidden layers after the encoder."""
    demos: int = 0
    """Expert episodes put into the replay buffer before training, kept there for the whole run."""
    prioritized: bool = False
    """Prioritised replay: importance weights on the loss, |TD errors| as new priorities."""
    random_steps: int = 200
    """Env steps (per env) of random actions (``Policy.random_actions``) before the policy acts."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.encoder_channels or min(self.encoder_channels) < 1 or min(self.features, self.hidden) < 1:
            raise ValueError("policy.encoder_channels (non-empty), features and hidden must be positive")
        if self.input_pool < 1 or min(self.demos, self.random_steps) < 0:
            raise ValueError("policy: input_pool >= 1 and demos, random_steps >= 0")
        if (self.horizon, self.n_obs_steps, self.n_action_steps) != (1, 1, 1):
            raise ValueError(
                f"policy {self.type} acts on the current observation, one action at a time: horizon 1"
            )


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
    def from_spec(
        cls, spec: DataSpec, sym: SceneSymmetry, method: str, input_pool: int, control: str = "closed_loop"
    ) -> TopDownInput:
        """The input of ``spec``; a ValueError naming ``method`` if it cannot act on this data.

        ``control`` is the control mode the method acts in.
        """
        grids = [f for f in spec.scene_features() if f.group_action == "top_down"]
        if len(grids) != 1 or len(spec.scene_features()) != 1:
            raise ValueError(
                f"policy {method} reads one top-down map (obs=[gripper_heightmap] of the closed-loop tasks, "
                f"obs=[workspace_heightmap] of the open-loop ones); this data has "
                f"{[f.key for f in spec.scene_features()]}"
            )
        if spec.control != control:
            raise ValueError(
                f"policy {method} acts in control={control} ({CONTROL_MODES[control].doc}); this data's "
                f"control is {spec.control!r}"
            )
        if sym.flips:
            raise ValueError(
                f"policy {method} takes a rotation group C_N (mirrors flip dtheta and yaws), got {sym.name}"
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
