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

Acting (``predict_chunk``; one action per observation, horizon 1): eval mode greedy; training mode
epsilon-greedy, each env drawing from its own generator, epsilon decaying linearly from ``eps_start`` to
``eps_end`` over ``eps_steps`` env steps counted by the policy (``env_steps``, a buffer saved with the
weights, so a resumed run continues the schedule). The online source's random warm-up draws uniformly
from the 162 actions through :meth:`DQNPolicy.random_actions` (counted too).

One update (``update``), top to bottom: Q(s, a) of the snapped stored action; target r + gamma (1 -
terminal) max_a' Q_target(s', a'); Huber loss weighted by the batch's importance weights (ones when
uniform); one Adam step; the target network becomes a copy of the Q-network every ``target_update``
updates (a hard update, as the paper's DQN; counted by the buffer ``updates``); the |TD errors| are left
in ``new_priorities`` for a prioritised replay buffer.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from equirobot.nn.heads import EquivariantMoveQ
from equirobot.policies.base import Batch, Policy, TrainStep
from equirobot.policies.dqn.configuration import DQNConfig
from equirobot.policies.top_down import TopDownInput

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


class DQNPolicy(Policy):
    """A Q-map over the 162 moves and its target network; see the module docstring."""

    config_class = DQNConfig
    config: DQNConfig
    online = True

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
        self.target_net = copy.deepcopy(self.q_net).requires_grad_(False)
        self.action_table: torch.Tensor
        self.register_buffer("action_table", action_table(config), persistent=False)
        self.env_steps: torch.Tensor
        self.register_buffer("env_steps", torch.zeros((), dtype=torch.long))
        """Env steps the policy acted on in training mode (random warm-up included): epsilon's clock."""
        self.updates: torch.Tensor
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))
        """Updates so far: the target network's clock."""
        self.new_priorities: tuple[np.ndarray, np.ndarray] | None = None
        """(slots, |TD error|) of the last update's batch, for a prioritised replay buffer."""

    # -- actions --------------------------------------------------------------------------------------
    def q_map(self, obs: dict[str, torch.Tensor], target: bool = False) -> torch.Tensor:
        """Policy inputs of one step -> (B, 18, 3, 3) Q-values (of the target network if ``target``)."""
        net = self.target_net if target else self.q_net
        return net(self.inputs.image(obs))

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

    def epsilon(self) -> float:
        """Epsilon of epsilon-greedy acting now (linear in ``env_steps``)."""
        cfg = self.config
        done = min(1.0, float(self.env_steps) / cfg.eps_steps)
        return cfg.eps_start + done * (cfg.eps_end - cfg.eps_start)

    # -- acting ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def predict_chunk(self, obs: dict[str, torch.Tensor], generators: list[torch.Generator]) -> torch.Tensor:
        """Eval mode: the greedy action; training mode: epsilon-greedy, env i drawing from its generator."""
        index = self.q_map({k: v[:, -1] for k, v in obs.items()}).flatten(1).argmax(1)
        if self.training:
            epsilon = self.epsilon()
            for i, generator in enumerate(generators):
                device = generator.device
                if float(torch.rand((), generator=generator, device=device)) < epsilon:
                    index[i] = int(torch.randint(N_ACTIONS, (), generator=generator, device=device))
            self.env_steps += len(index)
        return self.action_table[index][:, None]

    def random_actions(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, 5) uniformly drawn discrete actions (the online source's warm-up), counted as env steps."""
        self.env_steps += n
        return self.action_table[torch.from_numpy(rng.integers(N_ACTIONS, size=n))].cpu().numpy()

    # -- training -------------------------------------------------------------------------------------
    def make_optimizers(self, train) -> dict[str, torch.optim.Optimizer]:
        """Adam (default betas, no weight decay) at the trainer's ``lr`` for the Q-network."""
        return {"q": torch.optim.Adam(self.optimized_parameters("q"), lr=train.lr)}

    def optimized_parameters(self, optimizer: str) -> list[nn.Parameter]:
        return list(self.q_net.parameters())

    def forward(self, batch: Batch, generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
        """The weighted Huber TD loss of a batch (what ``update`` minimises) and its metrics."""
        loss, td_error, metrics = self._td_loss(batch)
        return loss, metrics

    def update(self, batch: Batch, step: TrainStep, generator: torch.Generator | None = None) -> dict:
        loss, td_error, metrics = self._td_loss(batch)
        metrics["grad_norm"] = step.step(loss, "q")
        self.updates += 1
        if int(self.updates) % self.config.target_update == 0:
            with torch.no_grad():
                for p_target, p in zip(self.target_net.parameters(), self.q_net.parameters(), strict=True):
                    p_target.copy_(p)
        self.new_priorities = (batch["index"].cpu().numpy(), td_error.abs().cpu().numpy())
        return metrics

    def _td_loss(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """Loss, TD errors (B,) (detached) and metrics: Q(s, a) against r + gamma (1 - d) max Q_target(s')."""
        index = self.discrete(batch["action"].float())
        q = self.q_map(batch["obs"]).flatten(1).gather(1, index[:, None])[:, 0]
        with torch.no_grad():
            next_value = self.q_map(batch["next_obs"], target=True).flatten(1).amax(1)
            target = batch["reward"] + self.config.gamma * (1 - batch["terminal"]) * next_value
        loss = (batch["weight"] * F.smooth_l1_loss(q, target, reduction="none")).mean()
        metrics = {
            "loss": float(loss.detach()),
            "q": float(q.detach().mean()),
            "target": float(target.mean()),
            "epsilon": self.epsilon(),
        }
        return loss, (q - target).detach(), metrics
