"""Agents the rollout loop can run: anything with ``reset()`` and ``act(obs) -> action``."""

from __future__ import annotations

from typing import Protocol

import gymnasium as gym
import numpy as np

from equirobot_envs.experts import ScriptedExpert


class Agent(Protocol):
    """What the rollout loop drives: reset at the start of an episode, then one action per step."""

    def reset(self) -> None: ...

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray: ...


AGENTS = ("expert", "mimicgen")


def make_agent(name: str, env: gym.Env, **kwargs) -> Agent:
    """The agent called ``name`` acting in ``env`` (``mimicgen`` takes ``source=<hdf5>``, ``n_source``)."""
    if name == "expert":
        return ScriptedExpert(env)
    if name == "mimicgen":
        from equirobot.demos.mimicgen import MimicGenAgent

        return MimicGenAgent(env, **kwargs)
    raise ValueError(f"unknown agent {name!r}; valid agents: {list(AGENTS)}")
