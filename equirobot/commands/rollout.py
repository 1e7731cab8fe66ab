"""``equirobot rollout``: run an agent on a task, report the success rate, write videos."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
from hydra.core.hydra_config import HydraConfig
from rich.console import Console
from tqdm import tqdm

import equirobot_envs  # noqa: F401  (registers the tasks)
from equirobot.agents import make_agent
from equirobot.config import RolloutConfig
from equirobot.evaluation.rollout import run_episode
from equirobot_envs.registry import get_task


def run(cfg: RolloutConfig) -> float:
    """Returns the success rate."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    task = get_task(cfg.task)
    env = gym.make(
        task.env_id,
        render_mode="rgb_array" if cfg.video else None,
        render_size=cfg.video_size,
        render_camera=cfg.video_camera,
        **cfg.env_kwargs(),
    )
    agent = make_agent(cfg.agent, env)
    episodes = []
    progress = tqdm(range(cfg.episodes), desc=f"{cfg.agent} on {task.env_id}", unit="episode")
    for i in progress:
        record = cfg.video and i < cfg.video_episodes
        video = run_dir / "videos" / f"episode_{i:03d}_seed_{cfg.seed + i}.mp4" if record else None
        episodes.append(run_episode(env, agent, seed=cfg.seed + i, video_path=video))
        progress.set_postfix(success=f"{sum(e.success for e in episodes)}/{len(episodes)}")
    env.close()

    rate = sum(e.success for e in episodes) / len(episodes)
    summary = {
        "task": task.env_id,
        "agent": cfg.agent,
        "control": cfg.control,
        "episodes": len(episodes),
        "success_rate": rate,
        "mean_steps": sum(e.steps for e in episodes) / len(episodes),
        "per_episode": [{"seed": e.seed, "success": e.success, "steps": e.steps} for e in episodes],
    }
    (run_dir / "rollout.json").write_text(json.dumps(summary, indent=2))
    console = Console()
    console.print(
        f"[bold]{task.env_id}[/bold] {cfg.agent} ({cfg.control}): success "
        f"{sum(e.success for e in episodes)}/{len(episodes)} = {rate:.0%}"
    )
    videos = [str(e.video) for e in episodes if e.video]
    if videos:
        console.print("videos: " + ", ".join(videos))
    console.print(f"run folder: {run_dir}")
    return rate
