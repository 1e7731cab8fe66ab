"""Success rate of a checkpoint on a task: parallel rollouts on fixed seeds, with a 95% interval.

The rollout engine steps one env per worker process; the policy, loaded once in this process, acts for
all of them in one batched call per step. Episode i uses seed ``seed + i``; the default seeds start at
100000, disjoint from the seeds demonstrations are collected with (0, 1, ...). An episode's actions
depend on its seed only, not on the number of workers (each env has its own sampling generator).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from equirobot.data.inputs import task_data_spec
from equirobot.evaluation.engine import RolloutEngine
from equirobot.policies.checkpoint import CheckpointError, load_policy, read_config
from equirobot_envs.config import EnvConfig
from equirobot_envs.features import mode_features
from equirobot_envs.registry import get_task

EVAL_SEED = 100_000


class EvaluationFailed(RuntimeError):
    """Some requested evaluations failed; their rows in the results say why."""


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a success rate (sensible at 0% and 100%, unlike the normal one)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_interval(values: list[float], z: float = 1.96) -> tuple[float, float]:
    """95% interval of a mean, normal approximation (a single value: the value itself)."""
    x = np.asarray(values, dtype=np.float64)
    if len(x) < 2:
        return (float(x[0]), float(x[0])) if len(x) else (float("nan"), float("nan"))
    half = z * x.std(ddof=1) / math.sqrt(len(x))
    return float(x.mean() - half), float(x.mean() + half)


@dataclass
class TaskResult:
    """Outcome of evaluating one checkpoint on one task."""

    task: str
    checkpoint: str
    successes: int
    episodes: int
    mean_steps: float
    videos: list[str] = field(default_factory=list)
    returns: list[float] = field(default_factory=list)
    """Each episode's return, in seed order."""
    obs_noise: float = 0.0
    """The standard deviation of the Gaussian noise the policy's observations carried."""

    @property
    def rate(self) -> float:
        return self.successes / self.episodes

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.successes, self.episodes)

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns)) if self.returns else float("nan")

    @property
    def return_interval(self) -> tuple[float, float]:
        """95% interval of the mean return (normal approximation over the episodes)."""
        return mean_interval(self.returns)


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
    obs_noise: float = 0.0,
) -> TaskResult:
    """Roll out a checkpoint's policy for ``episodes`` seeds on ``task`` (default: its training task).

    ``obs_noise``: the standard deviation of Gaussian noise added to every float observation the policy
    reads (raw units: metres, radians, rad/s), as a test of robustness; the env is not disturbed.
    """
    if not (math.isfinite(obs_noise) and obs_noise >= 0):
        raise ValueError(f"obs_noise must be a finite standard deviation >= 0, got {obs_noise}")
    config = read_config(checkpoint)
    task = task or config["task"]
    env = EnvConfig.from_kwargs(task, config["env"])
    env.obs, env.control = list(config["spec"]["modes"]), config["spec"]["control"]
    videos_of = {
        seed + i: str(Path(video_dir) / f"{task}_seed_{seed + i}.mp4") for i in range(min(videos, episodes))
    } if video_dir else {}  # fmt: skip
    overrides = {"inference_steps": inference_steps} if inference_steps else {}
    policy = load_policy(checkpoint, overrides=overrides)
    offered = task_data_spec(get_task(task), env)
    if offered.shapes != policy.spec.shapes:  # refused before any rollout
        raise CheckpointError(
            f"{checkpoint}: the policy takes inputs {policy.spec.shapes}, task {task} gives {offered.shapes}"
        )
    if offered.reflections != policy.spec.reflections:
        raise CheckpointError(
            f"{checkpoint}: the policy was built for mirrors {policy.spec.reflections}, task {task} has "
            f"{offered.reflections}"
        )
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    progress = tqdm(total=episodes, desc=f"eval {task}", unit="episode", leave=False)
    wins = []

    def tick(result) -> None:
        wins.append(result.success)
        progress.update(1)
        progress.set_postfix(success=f"{sum(wins)}/{len(wins)}")

    try:
        with RolloutEngine(
            get_task(task).env_id, env.env_kwargs(), min(workers, episodes),
            render_size=video_size if videos_of else None,
        ) as engine:  # fmt: skip
            noise_keys = [
                f.key for f in mode_features(policy.spec.modes) if f.is_policy_input and f.dtype == "float32"
            ]
            outcomes = engine.run_policy(
                policy, [seed + i for i in range(episodes)], videos_of, tick, obs_noise, noise_keys
            )
    finally:
        torch.set_num_threads(previous_threads)
        progress.close()
    return TaskResult(
        task=task,
        checkpoint=str(checkpoint),
        successes=sum(o.success for o in outcomes),
        episodes=len(outcomes),
        mean_steps=sum(o.steps for o in outcomes) / len(outcomes),
        videos=list(videos_of.values()),
        returns=[o.episode_return for o in outcomes],
        obs_noise=obs_noise,
    )
