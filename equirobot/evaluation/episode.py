"""The rollout loop: one episode of an agent in an env, optionally recorded (video, demonstration).

An agent is anything with ``reset()`` and ``act(obs) -> action`` acting in one env (scripted experts,
MimicGen generation). Learned policies act through :class:`~equirobot.evaluation.engine.RolloutEngine`,
batched across envs; :class:`PolicyAgent` makes one an agent of a single env.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from equirobot_envs.base import TaskEnv


class Agent(Protocol):
    """What the rollout loop drives: reset at the start of an episode, then one action per step."""

    def reset(self) -> None: ...

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray: ...


class PolicyAgent:
    """A policy (``select_action`` on a batch) as the agent of one env: adds and drops the batch axis."""

    def __init__(self, policy, seed: int = 0):
        self.policy, self.seed = policy, seed

    def reset(self) -> None:
        self.policy.reset([0], [self.seed])

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return self.policy.select_action({k: np.asarray(v)[None] for k, v in obs.items()})[0]


@dataclass
class Episode:
    """Outcome of one episode; with ``record=True`` also everything a demonstration file stores."""

    seed: int
    success: bool
    steps: int
    video: Path | None = None
    trajectory: dict[str, np.ndarray] | None = None
    """``obs/<key>`` (T, ...) observed before each action, ``actions``, ``actions_abs``, ``states``,
    ``rewards``, ``dones``."""
    model_xml: str = ""
    """The scene's MJCF (recorded episodes only)."""
    meta: dict | None = None
    """``TaskEnv.episode_meta()`` at reset (recorded episodes only)."""


def run_episode(
    env: gym.Env, agent: Agent, seed: int, video_path: Path | None = None, record: bool = False
) -> Episode:
    """Reset ``env`` with ``seed``, act until termination or truncation; write an mp4 if asked."""
    obs, info = env.reset(seed=seed)
    agent.reset()
    task_env = cast("TaskEnv", env.unwrapped)  # gymnasium types `unwrapped` as the base Env
    meta = task_env.episode_meta() if record else {}
    frames = [render_frame(env)] if video_path else []
    steps: dict[str, list] = {}
    success, n = False, 0
    while True:
        action = agent.act(obs)
        state = task_env.get_state() if record else None
        next_obs, reward, terminated, truncated, info = env.step(action)
        if record:
            for key, value in obs.items():
                steps.setdefault(f"obs/{key}", []).append(value)
            for key, value in (
                ("actions", action),
                ("actions_abs", info["action_abs"]),
                ("states", state),
                ("rewards", reward),
                ("dones", terminated),
            ):
                steps.setdefault(key, []).append(value)
        obs, n = next_obs, n + 1
        success = success or bool(info["is_success"])
        if video_path:
            frames.append(render_frame(env))
        if terminated or truncated:
            break
    if video_path:
        write_video(video_path, frames, fps=env.metadata.get("render_fps", 20))
    trajectory = {k: np.asarray(v) for k, v in steps.items()} if record else None
    model_xml = task_env.model_xml() if record else ""
    return Episode(seed, success, n, video=video_path, trajectory=trajectory, model_xml=model_xml, meta=meta)


def render_frame(env: gym.Env) -> np.ndarray:
    """The env's current rgb frame; the env must have been made with ``render_mode="rgb_array"``."""
    frame = env.render()
    if not isinstance(frame, np.ndarray):
        kind = type(frame).__name__
        raise ValueError(
            f"recording video needs an env made with render_mode='rgb_array' (render gave {kind})"
        )
    return frame


def write_video(path: Path, frames: list[np.ndarray], fps: int) -> None:
    """Write frames as an mp4, under a temporary name first so a crash leaves no truncated file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    # imageio's stub asks for a list[ArrayLike], which a list[np.ndarray] is not (list is invariant)
    imageio.mimsave(tmp, cast("list[npt.ArrayLike]", frames), fps=fps, macro_block_size=1)
    os.replace(tmp, path)
