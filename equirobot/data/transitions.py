"""The replay buffer of reinforcement learning: transitions in a ring, sampled uniformly or by priority.

A transition is ``(obs, action, reward, next_obs, terminal)`` with the observations as policy inputs
(``equirobot.data.inputs.policy_inputs`` of one step, so ``lowdim`` and the scene keys). The buffer holds
``capacity`` of them; when full, the oldest *collected* transition is overwritten, while demonstrations
(``add(..., demo=True)``, the SACfD buffer) stay for the whole run. Float grids (heightmaps) are stored
as float16, which halves the memory (a 64 x 64 heightmap: 8 KiB per observation) and changes a height
by at most 0.05% of its value.

Sampling (``sample(batch_size, rng)``):

* uniform: every stored transition with equal probability;
* prioritised (Schaul et al. 2016, as SACfD uses it): transition i with probability
  ``p_i^alpha / sum_j p_j^alpha``, ``p_i = |TD error| + eps`` (+ ``demo_eps`` for demonstrations); new
  transitions get the largest priority so far; the batch carries importance weights
  ``(N P(i))^-beta / max_j (N P(j))^-beta``. The learner reports new TD errors through
  :meth:`update_priorities`.

Sampling draws from an explicit ``numpy.random.Generator``, so a run seeded by (seed, step) draws the
same batches after a resume; :meth:`state_dict` holds everything (arrays as tensors) that a resume needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

REQUIRED = ("action", "reward", "terminal")


class TransitionBuffer:
    """A fixed-capacity ring of transitions; see the module docstring.

    Args:
        capacity: transitions held (demonstrations included).
        obs_shapes: ``{input: (shape, dtype)}`` of one observation, as ``policy_inputs`` gives it.
        action_dim: action size.
        prioritized: sample by priority instead of uniformly.
        alpha, beta, eps, demo_eps: the prioritised-replay constants above.
    """

    def __init__(
        self,
        capacity: int,
        obs_shapes: Mapping[str, tuple[tuple[int, ...], str]],
        action_dim: int,
        prioritized: bool = False,
        alpha: float = 0.6,
        beta: float = 0.4,
        eps: float = 1e-6,
        demo_eps: float = 1.0,
    ):
        if capacity < 1:
            raise ValueError(f"buffer capacity must be positive, got {capacity}")
        self.capacity, self.prioritized = capacity, prioritized
        self.alpha, self.beta, self.eps, self.demo_eps = alpha, beta, eps, demo_eps
        self.obs_dtypes = {
            k: np.dtype(_stored_dtype(shape, dtype)) for k, (shape, dtype) in obs_shapes.items()
        }
        self.arrays: dict[str, np.ndarray] = {}
        for key, (shape, _) in obs_shapes.items():
            for prefix in ("obs", "next_obs"):
                self.arrays[f"{prefix}/{key}"] = np.zeros((capacity, *shape), self.obs_dtypes[key])
        self.arrays["action"] = np.zeros((capacity, action_dim), np.float32)
        self.arrays["reward"] = np.zeros(capacity, np.float32)
        self.arrays["terminal"] = np.zeros(capacity, np.float32)
        self.arrays["demo"] = np.zeros(capacity, bool)
        self.arrays["priority"] = np.zeros(capacity, np.float64)
        self.size = 0
        """Transitions stored."""
        self.n_demos = 0
        """Demonstration transitions, kept in slots ``[0, n_demos)``."""
        self.cursor = 0
        """The slot the next collected transition goes to."""
        self.max_priority = 1.0

    def __len__(self) -> int:
        return self.size

    # -- writing ------------------------------------------------------------------------------------
    def add(
        self,
        obs: Mapping[str, np.ndarray],
        action: np.ndarray,
        reward: np.ndarray,
        next_obs: Mapping[str, np.ndarray],
        terminal: np.ndarray,
        demo: bool = False,
    ) -> None:
        """Append a batch of B transitions (every array (B, ...)); non-finite values raise a ValueError.

        ``terminal`` is 1 where the episode ended by reaching a terminal state (success), not where it
        was cut by the time limit: the critic bootstraps from ``next_obs`` unless it is terminal.
        """
        batch = {"action": np.asarray(action, np.float32), "reward": np.asarray(reward, np.float32)}
        batch["terminal"] = np.asarray(terminal, np.float32)
        n = len(batch["action"])
        for prefix, values in (("obs", obs), ("next_obs", next_obs)):
            missing = sorted(set(self.obs_dtypes) - set(values))
            if missing:
                raise KeyError(
                    f"transition {prefix} lacks {missing}; the buffer stores {sorted(self.obs_dtypes)}"
                )
            batch |= {f"{prefix}/{k}": np.asarray(values[k]) for k in self.obs_dtypes}
        for key, value in batch.items():
            if value.shape != (n, *self.arrays[key].shape[1:]):
                raise ValueError(
                    f"transition {key!r}: shape {value.shape}, expected {(n, *self.arrays[key].shape[1:])}"
                )
            if value.dtype.kind == "f" and not np.isfinite(value).all():
                raise ValueError(f"transition {key!r} is not finite; it was not stored")
        if demo:
            if self.size > self.n_demos:
                raise ValueError("demonstrations go into the buffer before any collected transition")
            if self.n_demos + n > self.capacity:
                raise ValueError(
                    f"{self.n_demos + n} demonstration transitions exceed capacity {self.capacity}"
                )
            slots = np.arange(self.n_demos, self.n_demos + n)
            self.n_demos += n
            self.cursor = self.n_demos
        else:
            if self.capacity == self.n_demos:
                raise ValueError("the buffer is full of demonstrations; raise its capacity")
            ring = self.capacity - self.n_demos
            slots = self.n_demos + (self.cursor - self.n_demos + np.arange(n)) % ring
            self.cursor = int(self.n_demos + (slots[-1] + 1 - self.n_demos) % ring)
        for key, value in batch.items():
            self.arrays[key][slots] = value
        self.arrays["demo"][slots] = demo
        self.arrays["priority"][slots] = self.max_priority
        self.size = min(self.capacity, max(self.size, int(slots.max()) + 1))

    # -- sampling -----------------------------------------------------------------------------------
    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, Any]:
        """A batch of tensors: ``obs``, ``next_obs`` (dicts, float32), ``action``, ``reward``, ``terminal``.

        Also ``demo`` (bool), ``weight`` (importance weights; ones when uniform) and ``index`` (slots).
        """
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        if self.prioritized:
            p = self.arrays["priority"][: self.size] ** self.alpha
            cumulative = np.cumsum(p)
            index = np.searchsorted(cumulative, rng.random(batch_size) * cumulative[-1], side="right")
            index = np.minimum(index, self.size - 1)
            probability = p[index] / cumulative[-1]
            weight = (self.size * probability) ** -self.beta
            weight = weight / ((self.size * p.min() / cumulative[-1]) ** -self.beta)
        else:
            index = rng.integers(self.size, size=batch_size)
            weight = np.ones(batch_size)
        out: dict[str, Any] = {"obs": {}, "next_obs": {}}
        for key, array in self.arrays.items():
            if key == "priority":
                continue
            value = torch.from_numpy(array[index])
            if "/" in key:
                prefix, name = key.split("/", 1)
                out[prefix][name] = value.float() if value.is_floating_point() else value
            else:
                out[key] = value
        out["weight"] = torch.from_numpy(weight.astype(np.float32))
        out["index"] = torch.from_numpy(index)
        return out

    def update_priorities(self, index: np.ndarray, td_error: np.ndarray) -> None:
        """New priorities ``|td_error| + eps`` (+ ``demo_eps`` for demonstrations) of sampled slots."""
        index, td_error = np.asarray(index), np.abs(np.asarray(td_error, np.float64))
        if not np.isfinite(td_error).all():
            raise ValueError("TD errors for the priorities are not finite")
        priority = td_error + self.eps + self.demo_eps * self.arrays["demo"][index]
        self.arrays["priority"][index] = priority
        self.max_priority = max(self.max_priority, float(priority.max()))

    # -- resume -------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything stored (the filled part of each array as a tensor) and the counters."""
        arrays = {k: torch.from_numpy(np.ascontiguousarray(v[: self.size])) for k, v in self.arrays.items()}
        counters = {"size": self.size, "n_demos": self.n_demos, "cursor": self.cursor}
        return {"arrays": arrays, "max_priority": self.max_priority, **counters}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if set(state["arrays"]) != set(self.arrays):
            raise ValueError(
                f"saved replay buffer holds {sorted(state['arrays'])}, this one {sorted(self.arrays)}"
            )
        size = int(state["size"])
        if size > self.capacity:
            raise ValueError(f"saved replay buffer holds {size} transitions, capacity is {self.capacity}")
        for key, value in state["arrays"].items():
            value = value.numpy()
            if value.shape[1:] != self.arrays[key].shape[1:]:
                expected = self.arrays[key].shape[1:]
                raise ValueError(
                    f"saved replay buffer {key!r} has shape {value.shape[1:]}, expected {expected}"
                )
            self.arrays[key][:size] = value
        self.size, self.n_demos, self.cursor = size, int(state["n_demos"]), int(state["cursor"])
        self.max_priority = float(state["max_priority"])


def _stored_dtype(shape: tuple[int, ...], dtype: str) -> str:
    """float16 for float grids (2-D or more per observation), the observation's own dtype otherwise."""
    return "float16" if np.dtype(dtype).kind == "f" and len(shape) >= 2 else dtype
