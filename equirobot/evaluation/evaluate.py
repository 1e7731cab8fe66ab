"""Success rate of a checkpoint on a task: parallel rollouts on fixed seeds, with a 95% interval.

Workers are spawned processes, each with its own env and a copy of the policy loaded from the
checkpoint folder (one torch thread each). Episode i uses seed ``seed + i``; the default seeds start
at 100000, disjoint from the seeds demonstrations are collected with (0, 1, ...).
"""

from __future__ import annotations

import math
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from equirobot.training.checkpoint import read_config

EVAL_SEED = 100_000
_worker: dict = {}


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a success rate (sensible at 0% and 100%, unlike the normal one)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class TaskResult:
    """Outcome of evaluating one checkpoint on one task."""

    task: str
    checkpoint: str
    successes: int
    episodes: int
    mean_steps: float
    videos: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.successes / self.episodes

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.successes, self.episodes)


def _init_worker(
    checkpoint: str, task: str, env_kwargs: dict, threads: int, video_size: int, overrides: dict
) -> None:
    import gymnasium as gym
    import torch

    import equirobot_envs  # noqa: F401  (registers the tasks)
    from equirobot.training.checkpoint import load_policy
    from equirobot_envs.registry import get_task

    torch.set_num_threads(threads)
    env = gym.make(get_task(task).env_id, render_mode="rgb_array", render_size=video_size, **env_kwargs)
    _worker.update(env=env, policy=load_policy(checkpoint, overrides=overrides))


def _episode(seed: int, video: str | None) -> tuple[int, bool, int]:
    from equirobot.evaluation.rollout import run_episode
    from equirobot.policies.diffusion import PolicyAgent

    agent = PolicyAgent(_worker["policy"], seed=seed)
    episode = run_episode(_worker["env"], agent, seed=seed, video_path=Path(video) if video else None)
    return seed, episode.success, episode.steps


def evaluate_checkpoint(
    checkpoint: str | Path,
    task: str | None = None,
    episodes: int = 50,
    workers: int = 2,
    seed: int = EVAL_SEED,
    video_dir: Path | None = None,
    videos: int = 3,
    video_size: int = 192,
    threads: int = 1,
    inference_steps: int = 0,
) -> TaskResult:
    """Roll out a checkpoint's policy for ``episodes`` seeds on ``task`` (default: its training task)."""
    config = read_config(checkpoint)
    task = task or config["task"]
    env_kwargs = {
        **config["env"],
        "obs_modes": tuple(config["spec"]["modes"]),
        "control": config["spec"]["control"],
    }
    jobs = []
    for i in range(episodes):
        video = str(Path(video_dir) / f"{task}_seed_{seed + i}.mp4") if video_dir and i < videos else None
        jobs.append((seed + i, video))
    overrides = {"inference_steps": inference_steps} if inference_steps else {}
    context = multiprocessing.get_context("spawn")  # forked MuJoCo GL contexts crash
    outcomes = []
    with ProcessPoolExecutor(
        min(workers, episodes),
        mp_context=context,
        initializer=_init_worker,
        initargs=(str(checkpoint), task, env_kwargs, threads, video_size, overrides),
    ) as pool:
        futures = [pool.submit(_episode, s, v) for s, v in jobs]
        progress = tqdm(futures, desc=f"eval {task}", unit="episode", leave=False)
        for future in progress:
            outcomes.append(future.result())
            progress.set_postfix(success=f"{sum(o[1] for o in outcomes)}/{len(outcomes)}")
    return TaskResult(
        task=task,
        checkpoint=str(checkpoint),
        successes=sum(o[1] for o in outcomes),
        episodes=len(outcomes),
        mean_steps=sum(o[2] for o in outcomes) / len(outcomes),
        videos=[v for _, v in jobs if v],
    )
