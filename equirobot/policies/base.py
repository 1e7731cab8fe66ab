"""The interface every method implements, and the configuration fields every method has.

A method is a folder ``equirobot/policies/<method>/`` with ``configuration.py`` (a dataclass deriving
:class:`PolicyConfig`, its ``type`` the method's registry name) and ``modeling.py`` (a class deriving
:class:`Policy`), plus one line in ``equirobot.policies.registry``. The trainer, the checkpoints, the
rollout engine and the ROS node talk to this interface only:

* ``reset(env_ids=None, seeds=None)``: forget the observation history and queued actions (of some envs);
* ``select_action(obs) -> action``: raw observations of B envs in, one action per env out;
* ``forward(batch) -> (loss, metrics)``: the training loss of a batch of the batch source;
* ``update(batch, step) -> metrics``: one optimisation step (default: ``forward``, then one optimiser);
  a method with several optimisers or target networks overrides it;
* ``make_optimizers(train)``: the optimisers the method owns, by name (default: one AdamW).

Time indexing of ``select_action`` (``n_obs`` = ``n_obs_steps``, ``n_act`` = ``n_action_steps``,
``H`` = ``horizon``)::

    env step        t-1    t     t+1   ...  t+n_act-1   ...   t+H-n_obs
    observations    [o(t-1)  o(t)]                                         the last n_obs observations
    predicted        a(t-1)  a(t)  a(t+1) ... a(t+n_act-1) ...  a(t+H-n_obs)  H actions from step t-n_obs+1
    executed                 a(t)  a(t+1) ... a(t+n_act-1)                    n_act of them, from step t

A new chunk is predicted when an env's queue is empty, so the policy thinks every ``n_act`` steps;
before ``n_obs`` observations exist the first one stands in for the missing ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from equirobot.data.inputs import ACTION, LOWDIM, DataSpec, action_norm, lowdim_norm, policy_inputs
from equirobot.data.normalizer import Normalizer
from equirobot.symmetry.group import SceneSymmetry
from equirobot_envs.features import mode_features

TASK_GROUP = "task"
"""``policy.group`` value for the group a control task declares (C2 or D2)."""

Batch = dict[str, Any]
"""``{"obs": {input: (B, n_obs, ...)}, "action": (B, horizon, A)}`` tensors (offline source)."""


@dataclass
class PolicyConfig:
    """Settings every method has. Subclasses add their own, each documented, checked in ``__post_init__``."""

    type: str = ""
    """Registry name of the method (``equirobot.policies.registry``)."""
    name: str = ""
    """Label in logs and result tables (a preset's name); empty: the type."""
    group: str = "C8"
    """Symmetry group of the networks: C<N> or D<N>; C1 means no symmetry constraint. On a control task
    (``equirobot_envs.flip_control``): C1, C2 (its first mirror), D2 (both mirrors of a D2 task) or
    ``task``, the group the task declares."""
    horizon: int = 16
    """Actions predicted per chunk."""
    n_obs_steps: int = 2
    """Observations the policy conditions on."""
    n_action_steps: int = 8
    """Actions of a chunk executed before the next prediction."""
    width: float = 1.0
    """Multiplies every network width of the method (``scale=gpu`` sets 2)."""
    use_ema: bool = True
    """Act with an exponential moving average of the weights (the trainer keeps it)."""

    def __post_init__(self) -> None:
        if not self.name:
            self.name = self.type
        if self.group != TASK_GROUP:
            SceneSymmetry.from_name(self.group)  # raises on a malformed group name
        if (
            min(self.n_obs_steps, self.n_action_steps) < 1
            or self.n_obs_steps + self.n_action_steps - 1 > self.horizon
        ):
            raise ValueError(
                "policy: need n_obs_steps, n_action_steps >= 1 and n_obs_steps + n_action_steps - 1 <= "
                f"horizon, got {self.n_obs_steps}, {self.n_action_steps}, {self.horizon}"
            )
        if not self.width > 0:
            raise ValueError(f"policy.width must be positive, got {self.width}")

    def scaled(self, n: int | Sequence[int]) -> Any:
        """A width (or widths) times ``width``."""
        if isinstance(n, int):
            return max(1, round(n * self.width))
        return tuple(max(1, round(x * self.width)) for x in n)

    def fields(self, channels: int, order: int) -> int:
        """A width in channels, times ``width``, as regular fields of a group of this order (at least 1)."""
        return max(1, self.scaled(channels) // order)


def resolve_group(group: str, reflections: dict | None) -> str:
    """The network group a policy config asks for, checked against the data's symmetry.

    A control task (``reflections``, as in ``DataSpec``) takes C1, C2 (its first mirror) or its own
    group (``task``); ``task`` is refused for the scene tasks, whose group is the method's choice.
    """
    if reflections is None:
        if group == TASK_GROUP:
            raise ValueError(
                "policy.group=task is for the control tasks, which declare their mirrors; a scene task "
                "takes C<N> or D<N> (e.g. C8)"
            )
        return group
    declared = reflections["group"]
    allowed = sorted({"C1", "C2", declared})
    resolved = declared if group == TASK_GROUP else group
    if resolved not in allowed:
        raise ValueError(f"policy.group={group}: this control task's group is {declared}; valid: {allowed}")
    return resolved


@dataclass
class TrainStep:
    """What :meth:`Policy.update` needs from the trainer for one step."""

    forward: Callable[[Batch], tuple[torch.Tensor, dict[str, float]]]
    """The policy's ``forward`` (through DistributedDataParallel when distributed)."""
    optimizers: dict[str, torch.optim.Optimizer]
    grad_clip: float
    parameters: Callable[[str], list[torch.nn.Parameter]]
    """The parameters an optimiser steps (for clipping)."""

    def step(self, loss: torch.Tensor, optimizer: str = "main") -> float:
        """zero_grad, backward, clip the gradient norm, step ``optimizer``; returns the norm before clipping.

        Raises FloatingPointError when the loss or the gradient is not finite, before the weights change.
        """
        opt = self.optimizers[optimizer]
        opt.zero_grad(set_to_none=True)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()}")
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(self.parameters(optimizer), self.grad_clip)
        if not torch.isfinite(norm):
            raise FloatingPointError(f"gradient norm of optimiser {optimizer!r} is {norm.item()}")
        opt.step()
        return float(norm)


class Policy(nn.Module):
    """Base of every method; see the module docstring for the interface and the time indexing.

    It owns the normaliser of ``lowdim``, ``action`` and (when present) ``point_cloud``, the conversion of
    raw observations into policy inputs, and the per-env observation history and action queue. A method
    implements :meth:`predict_chunk` and :meth:`forward`.

    Args:
        config: the method's configuration (a :class:`PolicyConfig` subclass).
        spec: what the data fixes (inputs, actions, symmetry axis).
    """

    config_class: ClassVar[type[PolicyConfig]] = PolicyConfig
    online: ClassVar[bool] = False
    """Whether the method learns from its own interaction (an online source fills a replay buffer for
    it) rather than from a dataset."""

    def __init__(self, config: PolicyConfig, spec: DataSpec):
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(
                f"{type(self).__name__} takes a {self.config_class.__name__}, got {type(config).__name__}"
            )
        self.config, self.spec = config, spec
        self.sym = SceneSymmetry.from_name(resolve_group(config.group, spec.reflections))
        self.n_obs, self.n_action, self.horizon = config.n_obs_steps, config.n_action_steps, config.horizon
        # Fitted statistics for lowdim, actions and point clouds (positions); grids are scaled as declared.
        self._clouds = [f.key for f in spec.scene_features() if f.group_action == "point_cloud"]
        kinds = {LOWDIM: lowdim_norm(spec), ACTION: action_norm(spec)}
        kinds |= {key: (("position", 3), ("identity", spec.shapes[key][-1] - 3)) for key in self._clouds}
        self.normalizer = Normalizer(kinds, spec.center_xy)
        self._read_keys = [f.key for f in mode_features(spec.modes) if f.is_policy_input]
        self._scales = {f.key: f.scale for f in spec.scene_features() if f.key not in kinds}
        self.reset()

    # -- data ---------------------------------------------------------------------------------------
    def fit(self, dataset) -> None:
        """Fit what the method learns from the data before training (the normaliser's statistics)."""
        for key in self.normalizer.keys:
            self.normalizer.fit(key, dataset.statistics_data(key))

    def normalize_obs(self, obs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Policy inputs -> network inputs: fitted keys by the normaliser, grids by their declared scale."""
        out = {}
        for key, x in obs.items():
            if key in self.normalizer.keys:
                out[key] = self.normalizer.normalize(key, x.float())
            else:
                out[key] = x.float() * self._scales[key]
        return out

    # -- training -----------------------------------------------------------------------------------
    def forward(self, batch: Batch, generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
        """The training loss of a batch and metrics to log (floats)."""
        raise NotImplementedError

    def make_optimizers(self, train: Any) -> dict[str, torch.optim.Optimizer]:
        """The optimisers this method owns, by name; ``train`` has ``lr``, ``weight_decay``, ``betas``."""
        return {
            "main": torch.optim.AdamW(
                self.parameters(), lr=train.lr, betas=tuple(train.betas), weight_decay=train.weight_decay
            )
        }

    def optimized_parameters(self, optimizer: str) -> list[nn.Parameter]:
        """The parameters ``optimizer`` steps (default: all)."""
        return [p for p in self.parameters() if p.requires_grad]

    def diagnostics(self) -> dict[str, float]:
        """Numbers about the model itself that the trainer logs beside the losses (default: none)."""
        return {}

    def symmetry_report(self, obs: dict[str, torch.Tensor]) -> dict:
        """What the trainer writes to ``symmetry_report.json`` after training.

        ``obs``: policy inputs of states the run saw. Default: nothing; SAC reports the symmetry its
        relaxed layers learned and, on a control task, the read-out of its actor.
        """
        return {}

    def update(self, batch: Batch, step: TrainStep, generator: torch.Generator | None = None) -> dict:
        """One optimisation step; returns metrics to log. Default: the loss of ``forward``, one optimiser."""
        loss, metrics = step.forward(batch, generator)  # type: ignore[call-arg]
        metrics = {"loss": float(loss.detach()), **metrics}
        metrics["grad_norm"] = step.step(loss)
        return metrics

    # -- acting -------------------------------------------------------------------------------------
    def random_actions(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, A) float32 actions of an online method's random warm-up (default: uniform in [-1, 1]).

        A method whose actions are a discrete set (DQN) draws from that set instead.
        """
        return rng.uniform(-1, 1, (n, self.spec.action_dim)).astype(np.float32)

    def transition_copies(
        self, transitions: dict[str, Any], rng: np.random.Generator
    ) -> list[dict[str, Any]]:
        """Augmented copies an online method stores next to each batch of collected transitions.

        ``transitions`` is what the replay buffer's ``add`` takes (policy inputs of B transitions);
        each returned copy has the same form. Default: none.
        """
        return []

    def predict_chunk(self, obs: dict[str, torch.Tensor], generators: list[torch.Generator]) -> torch.Tensor:
        """``{input: (B, n_obs, ...)}`` policy inputs -> (B, n_action, A) actions to execute.

        ``generators`` holds one random generator per env, so an env's actions do not depend on which
        other envs happen to share its batch.
        """
        raise NotImplementedError

    def reset(self, env_ids: Sequence[int] | None = None, seeds: Sequence[int] | None = None) -> None:
        """Start new episodes: of every env (``env_ids=None``) or of some; ``seeds`` seed their sampling."""
        if env_ids is None:
            self._history: dict[int, list[dict[str, np.ndarray]]] = {}
            self._queue: dict[int, list[np.ndarray]] = {}
            self._generators: dict[int, torch.Generator] = {}
            env_ids = []
        for j, i in enumerate(env_ids):
            self._history.pop(i, None)
            self._queue.pop(i, None)
            self._generators[i] = self._generator(seeds[j] if seeds is not None else 0)

    def _generator(self, seed: int) -> torch.Generator:
        device = next(iter(self.normalizer.buffers())).device
        return torch.Generator(device).manual_seed(int(seed))

    @torch.no_grad()
    def select_action(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Raw observations of B envs (every key (B, ...)) -> (B, A) actions; env i is row i.

        A non-finite value in any observation the policy reads raises a ValueError naming the key and
        the index: a NaN never becomes an action.
        """
        for key in self._read_keys:
            value = np.asarray(obs[key]) if key in obs else None
            if value is not None and value.dtype.kind == "f" and not np.isfinite(value).all():
                index = np.argwhere(~np.isfinite(value))[0].tolist()
                raise ValueError(f"observation {key!r} is not finite at {index}: {value[tuple(index)]}")
        inputs = policy_inputs(obs, self.spec)
        batch = len(inputs[LOWDIM])
        for i in range(batch):
            step = {k: v[i] for k, v in inputs.items()}
            history = self._history.get(i) or [step] * self.n_obs
            self._history[i] = history[1:] + [step]
        waiting = [i for i in range(batch) if not self._queue.get(i)]
        if waiting:
            device = next(iter(self.normalizer.buffers())).device
            stacked = {
                k: torch.from_numpy(
                    np.stack([np.stack([h[k] for h in self._history[i]]) for i in waiting])
                ).to(device)
                for k in inputs
            }
            generators = [self._generators.setdefault(i, self._generator(0)) for i in waiting]
            chunk = self.predict_chunk(stacked, generators).float().cpu().numpy()
            for j, i in enumerate(waiting):
                self._queue[i] = list(chunk[j])
        return np.stack([self._queue[i].pop(0) for i in range(batch)])

    def n_parameters(self) -> dict[str, int]:
        """Parameter counts of the top-level submodules (for the training log)."""
        return {name: sum(p.numel() for p in m.parameters()) for name, m in self.named_children()}
