"""Agents that act with privileged access to the env, by name (``rollout agent=``, ``collect``)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from equirobot.demos.mimicgen import MimicGenAgent
from equirobot.evaluation.episode import Agent
from equirobot_envs.experts import ScriptedExpert

AGENTS: dict[str, Callable[..., Agent]] = {
    "expert": lambda env: ScriptedExpert(env),
    "mimicgen": lambda env, **kwargs: MimicGenAgent(env, **kwargs),
}
"""name -> ``(env, **kwargs) -> agent``: ``expert`` (the task's scripted expert) and ``mimicgen`` (needs
``source=<hdf5>``, takes ``n_source``, ``selection``)."""


def make_agent(name: str, env: Any, **kwargs) -> Agent:
    """The agent called ``name`` acting in ``env``."""
    if name not in AGENTS:
        raise ValueError(f"unknown agent {name!r}; valid agents: {sorted(AGENTS)}")
    return AGENTS[name](env, **kwargs)


def agent_factory(name: str, **kwargs) -> Callable[[Any], Agent]:
    """A picklable ``env -> agent`` for the workers of the rollout engine."""
    if name not in AGENTS:
        raise ValueError(f"unknown agent {name!r}; valid agents: {sorted(AGENTS)}")
    return partial(make_agent, name, **kwargs)
