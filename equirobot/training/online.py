"""The online batch source of reinforcement learning: act, store, sample, once per trainer step.

:class:`OnlineSource` is the :class:`~equirobot.training.sources.BatchSource` of every online method
(``Policy.online``). For each trainer step it

1. steps every env of a :class:`~equirobot.evaluation.engine.RolloutEngine` (spawned workers, one
   thread each) once, with the policy being trained acting in training mode (SAC: a sample of its
   Gaussian, from a generator seeded per episode), or random actions (``policy.random_actions``:
   uniform, or DQN's uniform over its discrete set) during the first ``random_steps`` env steps of each
   env;
2. stores the transitions in the :class:`~equirobot.data.transitions.TransitionBuffer` (``terminal``
   when an episode ended by success, not when the time limit cut it), followed by the policy's
   augmented copies of them (``Policy.transition_copies``: sac_rot_aug's rotated ones), and resets
   ended envs with fresh seeds;
3. yields a batch sampled with the generator of (seed, step), so that the batches do not depend on
   anything but the buffer's content and the step;
4. after the trainer's update, writes the policy's new priorities back (prioritised replay).

Before the first step it puts ``policy.config.demos`` successful expert episodes (the task's scripted
planner, run in the workers) into the buffer as demonstrations, which stay there (SACfD).

Episode seeds: training episodes use ``TRAIN_SEED + seed * 1_000_000 + k``, disjoint from the periodic
evaluations (200000 + i) and ``equirobot eval`` (100000 + i).

Resume: ``state_dict`` holds the whole buffer, the counters and the episode statistics. The envs' own
states are not saved: a resumed run starts new episodes where the interrupted one was mid-episode, so
it continues from the same buffer, weights and optimisers but does not reproduce the uninterrupted
run transition for transition.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from functools import partial
from typing import Any

import numpy as np

from equirobot.data.inputs import DataSpec, policy_inputs
from equirobot.data.transitions import TransitionBuffer
from equirobot.evaluation.engine import RolloutEngine
from equirobot.evaluation.episode import run_episode
from equirobot_envs.experts import ScriptedExpert

TRAIN_SEED = 10_000_000
DEMO_SEED = 5_000_000


def _expert(env) -> ScriptedExpert:
    return ScriptedExpert(env)


def demonstration(env, agent, seed: int, video: str | None, spec: DataSpec) -> dict[str, Any] | None:
    """One expert episode as transitions (policy inputs), or ``None`` if the expert failed.

    The observation after the last action is not recorded; the last transition of a successful
    episode is terminal, so its next observation (here: its own) never enters a target.
    """
    episode = run_episode(env, agent, seed=seed, record=True)
    if not episode.success:
        return None
    trajectory = episode.trajectory
    assert trajectory is not None  # record=True
    raw = {k.removeprefix("obs/"): v for k, v in trajectory.items() if k.startswith("obs/")}
    obs = policy_inputs(raw, spec)
    next_obs = {k: np.concatenate([v[1:], v[-1:]]) for k, v in obs.items()}
    terminal = np.zeros(len(trajectory["actions"]), np.float32)
    terminal[-1] = 1.0
    return {
        "obs": obs,
        "action": trajectory["actions"],
        "reward": trajectory["rewards"],
        "next_obs": next_obs,
        "terminal": terminal,
    }


class OnlineSource:
    """Collects with ``policy`` into a replay buffer and samples its batches; see the module docstring.

    Args:
        policy: the policy being trained (an online method); it acts in training mode.
        spec: its data spec (the env's inputs and actions).
        env_id, env_kwargs: the task.
        envs: parallel envs (worker processes).
        buffer_size: transitions the buffer holds.
        batch_size: transitions per batch.
        seed: the run's seed.
    """

    def __init__(
        self,
        policy,
        spec: DataSpec,
        env_id: str,
        env_kwargs: dict,
        envs: int,
        buffer_size: int,
        batch_size: int,
        seed: int,
    ):
        if envs < 1:
            raise ValueError(f"envs must be positive, got {envs}")
        self.policy, self.spec, self.env_id, self.env_kwargs = policy, spec, env_id, env_kwargs
        self.envs, self.batch_size, self.seed = envs, batch_size, seed
        self.config = policy.config
        shapes = {k: (tuple(v), "float32") for k, v in spec.shapes.items()}
        self.buffer = TransitionBuffer(
            buffer_size, shapes, spec.action_dim, prioritized=self.config.prioritized
        )
        self.env_steps = 0
        self.episodes = 0
        # (success, length, return) of the last training episodes
        self.recent: deque[tuple[bool, int, float]] = deque(maxlen=50)

    # -- the BatchSource interface ------------------------------------------------------------------------
    def batches(self, start: int, stop: int) -> Iterator[dict[str, Any]]:
        if self.config.demos and self.buffer.n_demos == 0:
            self._add_demonstrations()
        with RolloutEngine(self.env_id, self.env_kwargs, self.envs) as engine:
            obs = [self._start(engine, i) for i in range(self.envs)]
            lengths, returns = [0] * self.envs, [0.0] * self.envs
            for step in range(start, stop):
                obs = self._collect(engine, obs, lengths, returns, step)
                yield self.buffer.sample(self.batch_size, np.random.default_rng([self.seed, step, 2]))
                if self.buffer.prioritized and self.policy.new_priorities is not None:
                    self.buffer.update_priorities(*self.policy.new_priorities)

    def state_dict(self) -> dict[str, Any]:
        recent = [[int(s), int(n), float(r)] for s, n, r in self.recent]
        counters = {"env_steps": self.env_steps, "episodes": self.episodes, "recent": recent}
        return {"buffer": self.buffer.state_dict(), **counters}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        self.buffer.load_state_dict(state["buffer"])
        self.env_steps, self.episodes = int(state["env_steps"]), int(state["episodes"])
        # runs saved before returns were kept have (success, length) pairs
        self.recent.extend(
            (bool(e[0]), int(e[1]), float(e[2]) if len(e) > 2 else 0.0) for e in state["recent"]
        )

    def progress(self) -> dict[str, float]:
        """Env steps so far and the success rate, length and return of the last 50 training episodes."""
        out = {"env_steps": float(self.env_steps), "episodes": float(self.episodes)}
        if self.recent:
            out["train_success_rate"] = float(np.mean([s for s, _, _ in self.recent]))
            out["train_episode_length"] = float(np.mean([n for _, n, _ in self.recent]))
            out["train_return"] = float(np.mean([r for _, _, r in self.recent]))
        return out

    # -- collecting ---------------------------------------------------------------------------------------
    def _start(self, engine: RolloutEngine, i: int) -> dict[str, np.ndarray]:
        seed = TRAIN_SEED + self.seed * 1_000_000 + self.episodes + i
        self.policy.reset([i], [seed])
        return engine.reset_env(i, seed)

    def _collect(
        self, engine: RolloutEngine, obs: list, lengths: list[int], returns: list[float], step: int
    ) -> list:
        stacked = {k: np.stack([o[k] for o in obs]) for k in obs[0]}
        if self.env_steps < self.config.random_steps * self.envs:
            rng = np.random.default_rng([self.seed, step, 3])
            actions = self.policy.random_actions(self.envs, rng)
        else:
            actions = self.policy.select_action(stacked)
        results = engine.step_envs(actions)
        next_obs = [results[i].obs for i in range(self.envs)]
        transitions = {
            "obs": policy_inputs(stacked, self.spec),
            "action": actions,
            "reward": np.array([results[i].reward for i in range(self.envs)]),
            "next_obs": policy_inputs(
                {k: np.stack([o[k] for o in next_obs]) for k in next_obs[0]}, self.spec
            ),
            "terminal": np.array([results[i].terminated for i in range(self.envs)], np.float32),
        }
        self._store(transitions, np.random.default_rng([self.seed, step, 4]))
        self.env_steps += self.envs
        for i in range(self.envs):
            lengths[i] += 1
            returns[i] += results[i].reward
            if results[i].done:
                self.recent.append((results[i].success, lengths[i], returns[i]))
                lengths[i], returns[i] = 0, 0.0
                self.episodes += 1
                next_obs[i] = self._start(engine, i)
        return next_obs

    def _store(self, transitions: dict[str, Any], rng: np.random.Generator, demo: bool = False) -> None:
        """Transitions into the buffer, followed by the policy's augmented copies of them (if any)."""
        for batch in (transitions, *self.policy.transition_copies(transitions, rng)):
            self.buffer.add(**batch, demo=demo)

    def _add_demonstrations(self) -> None:
        """``config.demos`` successful expert episodes into the buffer (failed ones are skipped)."""
        job = partial(demonstration, spec=self.spec)
        seeds = (DEMO_SEED + self.seed * 100_000 + k for k in range(100 * self.config.demos))
        with RolloutEngine(self.env_id, self.env_kwargs, self.envs, agent_factory=_expert) as engine:
            kept = 0
            for demo in engine.map_episodes(seeds, job=job):
                if demo is not None and kept < self.config.demos:
                    self._store(demo, np.random.default_rng([self.seed, kept, 5]), demo=True)
                    kept += 1
                if kept == self.config.demos:
                    break
        if kept < self.config.demos:
            raise RuntimeError(
                f"the expert of {self.env_id} succeeded {kept} times in {100 * self.config.demos} seeds"
            )
