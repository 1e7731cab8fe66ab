"""Q-learning in spatial action spaces: a fully convolutional Q-map over pixels x gripper yaws.

The method of Equivariant Q Learning in Spatial Action Spaces (Wang, Walters, Platt, CoRL 2021) on the
open-loop pick-and-place tasks: one Q-value per (yaw, pixel) of the top-down workspace heightmap; the
greedy action is the argmax, executed as a pick (nothing held) or a place (holding) there.

Input: as SAC's and DQN's (:class:`~equirobot.policies.top_down.TopDownInput`): the heightmap and the
invariant ``lowdim`` scalars (the holding flag, the finger joints) tiled as channels, average-pooled by
``input_pool``: an S x S grid, S = H / ``input_pool``.

Actions: R S^2 discrete ones, the Q-network's output (B, R, S, S) flattened, index
``k = r S^2 + row S + col``; the pick_place action ``[x, y, theta]`` of an index (``action_table``)::

    col 0 .. S-1  ->  x = (2 col + 1) / S - 1        the cell centre (cells: right = +x)
    row 0 .. S-1  ->  y = 1 - (2 row + 1) / S        (rows run from +y to -y)
    r   0 .. R-1  ->  theta = 2 r / R - 1            yaw r pi / R

The replay buffer stores continuous actions; :meth:`FCNPolicy.discrete` maps them to the cell that
contains (x, y) and the nearest of the R yaws (modulo the half turn): the identity on the policy's own
actions, the nearest discrete action for an expert's continuous one (demonstrations).

Symmetry, for ``group=C_N`` (N = 2 R): a rotation g of the scene by 2 pi m / N turns the map about its
centre, and the Q-map of the turned scene is the turned Q-map with its yaw channels shifted by m (the
quotient representation C_N / C_2: yaws theta and theta + pi are one grasp), so the greedy pick turns
with the scene: its cell centre by rho1 and its yaw by 2 pi m / N modulo pi. Exact for multiples of 90
degrees (cell centres map onto cell centres only under those); the 45-degree elements of C8 resample the
grid.

Acting (epsilon-greedy over the R S^2 actions), the update (Huber TD loss, target network, prioritised
replay's new priorities) and the schedules: :mod:`equirobot.policies.q_learning`, as for ``dqn``.
"""

from __future__ import annotations

import numpy as np
import torch
from escnn.group import GroupElement

from equirobot.nn.heads import SpatialQMap
from equirobot.policies.fcn.configuration import FCNConfig
from equirobot.policies.q_learning import QLearningPolicy
from equirobot.policies.top_down import TopDownInput
from equirobot.symmetry import transforms as T


def action_table(rotations: int, size: int) -> torch.Tensor:
    """(R S^2, 3) the pick_place action ``[x, y, theta]`` of each index (module docstring)."""
    r, row, col = torch.meshgrid(
        torch.arange(rotations), torch.arange(size), torch.arange(size), indexing="ij"
    )
    table = torch.stack([(2 * col + 1) / size - 1, 1 - (2 * row + 1) / size, 2 * r / rotations - 1.0], dim=-1)
    return table.reshape(-1, 3).float()


class FCNPolicy(QLearningPolicy):
    """A U-Net Q-map over (yaw, pixel) and its target network; see the module docstring."""

    config_class = FCNConfig
    config: FCNConfig

    def __init__(self, config: FCNConfig, spec):
        super().__init__(config, spec)
        self.inputs = TopDownInput.from_spec(spec, self.sym, "fcn", config.input_pool, control="pick_place")
        height, width = spec.shapes[self.inputs.grid_key][-2:]
        levels = len(config.encoder_channels)
        multiple = config.input_pool * 2 ** (levels - 1)
        if height != width or height % multiple:
            raise ValueError(
                f"policy fcn: its {levels} levels (encoder_channels) and input_pool={config.input_pool} need "
                f"a square {self.inputs.grid_key} whose side divides by {multiple}; this data's is "
                f"{height} x {width} (heightmap_size)"
            )
        self.size = height // config.input_pool
        """S: cells per side of the Q-map."""
        order = self.sym.group.order()

        def fields(channels: int) -> int:
            return config.fields(channels, order)

        self.q_net = SpatialQMap(
            self.sym,
            self.inputs.channels,
            tuple(fields(c) for c in config.encoder_channels),
            fields(config.features),
            fields(config.hidden),
            config.rotations,
        )
        self._add_target_network(action_table(config.rotations, self.size))

    def q_map(self, obs: dict[str, torch.Tensor], target: bool = False) -> torch.Tensor:
        """Policy inputs of one step -> (B, R, S, S) Q-values (of the target network if ``target``)."""
        net = self.target_net if target else self.q_net
        return net(self.inputs.image(obs))

    def act_on_q_map(self, g: GroupElement, q: torch.Tensor) -> torch.Tensor:
        """The map turns as a top-down image; yaw channel r moves to r + m for a turn by m pi / R."""
        if self.sym.order == 1:
            return q
        shift = round(self.sym.angle(g) / (np.pi / self.config.rotations)) % self.config.rotations
        return torch.roll(T.act_on_top_down(self.sym, g, q), shifts=shift, dims=1)

    def discrete(self, action: torch.Tensor) -> torch.Tensor:
        """(B, 3) pick_place actions -> (B,) indices: the cell holding (x, y), the nearest yaw (mod pi)."""
        size, rotations = self.size, self.config.rotations
        col = torch.floor((action[:, 0] + 1) * size / 2).long().clamp(0, size - 1)
        row = torch.floor((1 - action[:, 1]) * size / 2).long().clamp(0, size - 1)
        r = torch.round((action[:, 2] + 1) * rotations / 2).long() % rotations
        return (r * size + row) * size + col
