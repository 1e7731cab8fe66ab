"""``equirobot rollout``: run an agent on a task, report the success rate, write videos."""

from __future__ import annotations

import json

from hydra.core.hydra_config import HydraConfig
from rich.console import Console
from tqdm import tqdm

from equirobot.config import RolloutConfig
from equirobot.demos.agents import agent_factory
from equirobot.evaluation.engine import RolloutEngine
from equirobot_envs.registry import get_task


def run(cfg: RolloutConfig) -> float:
    """Returns the success rate."""
    run_dir = HydraConfig.get().runtime.output_dir
    task = get_task(cfg.task)
    seeds = [cfg.seed + i for i in range(cfg.episodes)]
    videos = (
        {
            s: f"{run_dir}/videos/episode_{i:03d}_seed_{s}.mp4"
            for i, s in enumerate(seeds[: cfg.video_episodes])
        }
        if cfg.video
        else {}
    )
    factory = agent_factory(cfg.agent, **cfg.agent_args)
    episodes = []
    progress = tqdm(total=cfg.episodes, desc=f"{cfg.agent} on {task.env_id}", unit="episode")
    with RolloutEngine(
        task.env_id, cfg.env_kwargs(), min(cfg.workers, cfg.episodes), agent_factory=factory,
        render_size=cfg.video_size if videos else None, render_camera=cfg.video_camera,
    ) as engine:  # fmt: skip
        for seed, success, steps in engine.map_episodes(seeds, videos=videos):
            episodes.append({"seed": seed, "success": success, "steps": steps})
            progress.update(1)
            progress.set_postfix(success=f"{sum(e['success'] for e in episodes)}/{len(episodes)}")
    progress.close()
    episodes.sort(key=lambda e: e["seed"])
    wins = sum(e["success"] for e in episodes)
    rate = wins / len(episodes)
    summary = {
        "task": task.env_id,
        "agent": cfg.agent,
        "control": cfg.control,
        "episodes": len(episodes),
        "success_rate": rate,
        "mean_steps": sum(e["steps"] for e in episodes) / len(episodes),
        "per_episode": episodes,
    }
    with open(f"{run_dir}/rollout.json", "w") as f:
        json.dump(summary, f, indent=2)
    console = Console()
    console.print(
        f"[bold]{task.env_id}[/bold] {cfg.agent} ({cfg.control}): success {wins}/{len(episodes)} = {rate:.0%}"
    )
    if videos:
        console.print("videos: " + ", ".join(videos.values()))
    console.print(f"run folder: {run_dir}")
    return rate
