"""The rollout loop: one episode of an agent in an env, optionally recorded as a video."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np

from equirobot.agents import Agent


@dataclass
class Episode:
    """Outcome of one episode."""

    seed: int
    success: bool
    steps: int
    video: Path | None = None


def run_episode(env: gym.Env, agent: Agent, seed: int, video_path: Path | None = None) -> Episode:
    """Reset ``env`` with ``seed``, act until termination or truncation; write an mp4 if asked."""
    obs, info = env.reset(seed=seed)
    agent.reset()
    frames = [env.render()] if video_path else []
    steps, success = 0, False
    while True:
        obs, _, terminated, truncated, info = env.step(agent.act(obs))
        steps += 1
        success = success or bool(info["is_success"])
        if video_path:
            frames.append(env.render())
        if terminated or truncated:
            break
    if video_path:
        write_video(video_path, frames, fps=env.metadata.get("render_fps", 20))
    return Episode(seed=seed, success=success, steps=steps, video=video_path)


def write_video(path: Path, frames: list[np.ndarray], fps: int) -> None:
    """Write frames as an mp4, under a temporary name first so a crash leaves no truncated file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    imageio.mimsave(tmp, frames, fps=fps, macro_block_size=1)
    os.replace(tmp, path)
