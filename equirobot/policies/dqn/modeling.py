"""Deep Q-learning on a top-down heightmap over discrete closed-loop moves, equivariant (C_N) or not (C1).

Input: as SAC's (:class:`~equirobot.policies.top_down.TopDownInput`): the policy's one top-down map and
the invariant ``lowdim`` scalars (the holding flag) tiled as channels.

Actions: 162 discrete ones, the Q-network's output (B, 18, 3, 3) flattened. Index
``k = channel * 9 + row * 3 + col`` with ``channel = (gripper * 3 + z) * 3 + theta``::

    col 0 1 2     ->  dx = (col - 1) * xy_step                         (cells: right = +x)
    row 0 1 2     ->  dy = (1 - row) * xy_step                         (rows run from +y to -y)
    z, theta 0 1 2 -> dz = (z - 1) * z_step, dtheta = (theta - 1) * theta_step
    gripper 0 1   ->  -1 (open), 1 (close)

The continuous action ``[gripper, dx, dy, dz, dtheta]`` of an index is row k of ``action_table``; the
replay buffer stores continuous actions (those the env executed), and the update maps them back to
indices by snapping each component to its nearest level (:meth:`DQNPolicy.discrete`): the identity on
the policy's own actions, the nearest discrete action for an expert's continuous one (demonstrations).

Symmetry, for ``group=C_N``: a rotation g of the scene turns the map about its centre, and the Q-map of
the turned scene is the turned Q-map (its 3 x 3 grid turns as a top-down image, the 18 channels stay),
so the greedy move turns with the scene. Exact for multiples of 90 degrees (the 3 x 3 grid of moves
maps onto itself only under those); ``equi_dqn`` uses C4.

Acting, the update and the target network: :mod:`equirobot.policies.q_learning`, as for every Q-map
method.
"""

from __future__ import annotations

import torch
from escnn.group import GroupElement

from equirobot.nn.heads import EquivariantMoveQ
from equirobot.policies.dqn.configuration import DQNConfig
from equirobot.policies.q_learning import QLearningPolicy
from equirobot.policies.top_down import TopDownInput
from equirobot.symmetry import transforms as T

GRID = 3
"""Cells per side of the grid of xy moves."""
CHANNELS = 18
"""Invariant action channels per xy cell: 2 gripper x 3 dz x 3 dtheta."""
N_ACTIONS = CHANNELS * GRID * GRID


def action_table(config: DQNConfig) -> torch.Tensor:
    """(162, 5) the continuous action ``[gripper, dx, dy, dz, dtheta]`` of each index (module docstring)."""
    level = torch.tensor([-1.0, 0.0, 1.0])
    gripper, z, theta, row, col = torch.meshgrid(
        torch.tensor([-1.0, 1.0]), level, level, level, level, indexing="ij"
    )
    table = torch.stack(
        [
            gripper,
            col * config.xy_step,
            -row * config.xy_step,
            z * config.z_step,
            theta * config.theta_step,
        ],
        dim=-1,
    )
    return table.reshape(N_ACTIONS, 5)


class DQNPolicy(QLearningPolicy):
    """A Q-map over the 162 moves and its target network; see the module docstring."""

    config_class = DQNConfig
    config: DQNConfig

    def __init__(self, config: DQNConfig, spec):
        super().__init__(config, spec)
        self.inputs = TopDownInput.from_spec(spec, self.sym, "dqn", config.input_pool)
        order = self.sym.group.order()

        def fields(channels: int) -> int:
            return config.fields(channels, order)

        stages = tuple(fields(c) for c in config.encoder_channels)
        self.q_net = EquivariantMoveQ(
            self.sym,
            self.inputs.channels,
            stages,
            fields(config.features),
            fields(config.hidden),
            CHANNELS,
            GRID,
        )
        self._add_target_network(action_table(config))

    # -- actions --------------------------------------------------------------------------------------
    def q_map(self, obs: dict[str, torch.Tensor], target: bool = False) -> torch.Tensor:
        """Policy inputs of one step -> (B, 18, 3, 3) Q-values (of the target network if ``target``)."""
        net = self.target_net if target else self.q_net
        return net(self.inputs.image(obs))

    def act_on_q_map(self, g: GroupElement, q: torch.Tensor) -> torch.Tensor:
        """The 3 x 3 grid of moves turns as a top-down image; the 18 channels stay."""
        return T.act_on_top_down(self.sym, g, q)

    def discrete(self, action: torch.Tensor) -> torch.Tensor:
        """(B, 5) continuous actions -> (B,) indices of the nearest discrete actions (each part snapped)."""
        cfg = self.config

        def level(value: torch.Tensor, step: float) -> torch.Tensor:  # 0, 1, 2 for -step, 0, +step
            return (torch.round(value / step).clamp(-1, 1) + 1).long()

        gripper = (action[:, 0] > 0).long()
        z, theta = level(action[:, 3], cfg.z_step), level(action[:, 4], cfg.theta_step)
        col, row = level(action[:, 1], cfg.xy_step), 2 - level(action[:, 2], cfg.xy_step)
        channel = (gripper * 3 + z) * 3 + theta
        return channel * GRID * GRID + row * GRID + col
