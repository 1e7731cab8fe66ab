"""Deep Q-learning over a finite set of actions, written once for the Q-map methods (dqn, fcn).

A method here is a Q-network whose output, flattened, holds one value per action (``dqn``: 162 moves of
the closed-loop gripper; ``fcn``: a pick or place at every pixel and gripper yaw), the table of the
continuous env action of each index, the map back from continuous actions to indices, and the group's
action on its Q-map. Everything else is this module's:

Acting (``predict_chunk``; one action per observation, horizon 1): eval mode greedy (the argmax over the
flattened Q-map); training mode epsilon-greedy, each env drawing from its own generator, epsilon
decaying linearly from ``eps_start`` to ``eps_end`` over ``eps_steps`` env steps counted by the policy
(``env_steps``, a buffer saved with the weights, so a resumed run continues the schedule). The online
source's random warm-up draws uniformly from the actions through :meth:`QLearningPolicy.random_actions`
(counted too).

The replay buffer stores continuous actions (those the env executed); the update maps them back to
indices (``discrete``): the identity on the policy's own actions, the nearest discrete action for an
expert's continuous one (demonstrations).

One update (``update``), top to bottom: Q(s, a) of the stored action's index; target r + gamma (1 -
terminal) max_a' Q_target(s', a'); Huber loss weighted by the batch's importance weights (ones when
uniform); on the batch's demonstrations, plus ``margin_weight`` times the large-margin loss of DQfD
(Hester et al. 2018), ``max_a' [Q(s, a') + margin [a' != a]] - Q(s, a)``, which makes the expert's action
the greedy one by at least ``margin`` where it was shown; one Adam step; the target network becomes a
copy of the Q-network every ``target_update`` updates (a hard update, as DQN's; counted by the buffer
``updates``); the |TD errors| are left in ``new_priorities`` for a prioritised replay buffer.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from escnn.group import GroupElement
from torch import nn

from equirobot.policies.base import Batch, Policy, TrainStep
from equirobot.policies.top_down import TopDownConfig


@dataclass
class QLearningConfig(TopDownConfig):
    """What every Q-map method has: discount, target network, epsilon-greedy schedule."""

    gamma: float = 0.95
    """Discount."""
    target_update: int = 100
    """The target network is a copy of the Q-network, refreshed (hard copy) every this many updates."""
    eps_start: float = 1.0
    """Epsilon of epsilon-greedy acting at the first env step."""
    eps_end: float = 0.05
    """Epsilon after ``eps_steps`` env steps (and from then on)."""
    eps_steps: int = 5000
    """Env steps (all envs together, random warm-up included) over which epsilon decays linearly."""
    margin_weight: float = 0.0
    """Weight of the large-margin loss on demonstration transitions (0: plain DQN)."""
    margin: float = 0.1
    """By how much the expert's action must beat every other one on a demonstration's state."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.margin_weight < 0 or self.margin < 0:
            raise ValueError(
                f"policy: margin_weight and margin must be >= 0, got {self.margin_weight}, {self.margin}"
            )
        if not (0 < self.gamma <= 1 and 0 <= self.eps_end <= self.eps_start <= 1):
            raise ValueError(
                f"policy: need 0 < gamma <= 1 and 0 <= eps_end <= eps_start <= 1; got {self.gamma}, "
                f"{self.eps_end}, {self.eps_start}"
            )
        if min(self.target_update, self.eps_steps) < 1:
            raise ValueError("policy: target_update and eps_steps must be >= 1")


class QLearningPolicy(Policy):
    """A Q-network over a finite action set and its target network; see the module docstring.

    A subclass builds ``q_net`` and ``action_table`` in its ``__init__`` and then calls
    :meth:`_add_target_network`; it implements :meth:`q_map`, :meth:`discrete` and :meth:`act_on_q_map`.
    """

    config: QLearningConfig
    online = True
    q_net: nn.Module
    target_net: nn.Module

    def __init__(self, config: QLearningConfig, spec):
        super().__init__(config, spec)
        self.env_steps: torch.Tensor
        self.register_buffer("env_steps", torch.zeros((), dtype=torch.long))
        """Env steps the policy acted on in training mode (random warm-up included): epsilon's clock."""
        self.updates: torch.Tensor
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))
        """Updates so far: the target network's clock."""
        self.new_priorities: tuple[np.ndarray, np.ndarray] | None = None
        """(slots, |TD error|) of the last update's batch, for a prioritised replay buffer."""
        self.action_table: torch.Tensor

    def _add_target_network(self, action_table: torch.Tensor) -> None:
        """The target network (a frozen copy of ``q_net``) and the (n_actions, A) action table."""
        self.target_net = copy.deepcopy(self.q_net).requires_grad_(False)
        self.register_buffer("action_table", action_table, persistent=False)

    # -- what a method defines --------------------------------------------------------------------
    def q_map(self, obs: dict[str, torch.Tensor], target: bool = False) -> torch.Tensor:
        """Policy inputs of one step -> (B, ...) Q-values whose flattening indexes ``action_table``."""
        raise NotImplementedError

    def discrete(self, action: torch.Tensor) -> torch.Tensor:
        """(B, A) continuous actions -> (B,) indices of the nearest discrete actions."""
        raise NotImplementedError

    def act_on_q_map(self, g: GroupElement, q: torch.Tensor) -> torch.Tensor:
        """The Q-map of the scene turned by ``g``, from the Q-map ``q`` (B, ...) of the scene."""
        raise NotImplementedError

    # -- acting ---------------------------------------------------------------------------------------
    @property
    def n_actions(self) -> int:
        return len(self.action_table)

    def epsilon(self) -> float:
        """Epsilon of epsilon-greedy acting now (linear in ``env_steps``)."""
        cfg = self.config
        done = min(1.0, float(self.env_steps) / cfg.eps_steps)
        return cfg.eps_start + done * (cfg.eps_end - cfg.eps_start)

    @torch.no_grad()
    def predict_chunk(self, obs: dict[str, torch.Tensor], generators: list[torch.Generator]) -> torch.Tensor:
        """Eval mode: the greedy action; training mode: epsilon-greedy, env i drawing from its generator."""
        index = self.q_map({k: v[:, -1] for k, v in obs.items()}).flatten(1).argmax(1)
        if self.training:
            epsilon = self.epsilon()
            for i, generator in enumerate(generators):
                device = generator.device
                if float(torch.rand((), generator=generator, device=device)) < epsilon:
                    index[i] = int(torch.randint(self.n_actions, (), generator=generator, device=device))
            self.env_steps += len(index)
        return self.action_table[index][:, None]

    def random_actions(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, A) uniformly drawn discrete actions (the online source's warm-up), counted as env steps."""
        self.env_steps += n
        index = torch.from_numpy(rng.integers(self.n_actions, size=n))
        return self.action_table[index.to(self.action_table.device)].cpu().numpy()

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
        cfg = self.config
        index = self.discrete(batch["action"].float())
        q_all = self.q_map(batch["obs"]).flatten(1)
        q = q_all.gather(1, index[:, None])[:, 0]
        with torch.no_grad():
            next_value = self.q_map(batch["next_obs"], target=True).flatten(1).amax(1)
            target = batch["reward"] + cfg.gamma * (1 - batch["terminal"]) * next_value
        td = (batch["weight"] * F.smooth_l1_loss(q, target, reduction="none")).mean()
        loss = td
        metrics = {
            "td_loss": float(td.detach()),
            "q": float(q.detach().mean()),
            "target": float(target.mean()),
        }
        if cfg.margin_weight > 0:
            demo = batch["demo"].float()
            margins = torch.full_like(q_all, cfg.margin).scatter(1, index[:, None], 0.0)
            violation = (q_all + margins).amax(1) - q
            margin_loss = (batch["weight"] * demo * violation).sum() / demo.sum().clamp_min(1.0)
            loss = loss + cfg.margin_weight * margin_loss
            metrics["margin_loss"] = float(margin_loss.detach())
        metrics |= {"loss": float(loss.detach()), "epsilon": self.epsilon()}
        return loss, (q - target).detach(), metrics
