"""``equirobot bench obs``: milliseconds per env step for each observation mode.

Every mode runs the same scripted-expert episode start (same seed, same actions), so the only
difference between rows is the observation pipeline; ``physics`` (proprio only, nothing rendered) is
the reference, and ``x physics`` is each mode's cost as a ratio to it, measured in the same run.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import gymnasium as gym
import numpy as np
from hydra.core.hydra_config import HydraConfig
from rich.console import Console
from rich.table import Table
from tqdm import tqdm

import equirobot_envs  # noqa: F401  (registers the tasks)
from equirobot.config import BenchObsConfig
from equirobot_envs.experts import ScriptedExpert
from equirobot_envs.registry import get_task


def time_steps(cfg: BenchObsConfig, modes: tuple[str, ...]) -> np.ndarray:
    """Seconds of each of ``cfg.steps`` env steps (after ``cfg.warmup``) observing ``modes``."""
    task = get_task(cfg.task)
    env = gym.make(task.env_id, **{**cfg.env_kwargs(), "obs": modes})
    expert = ScriptedExpert(env)
    obs, _ = env.reset(seed=cfg.seed)
    expert.reset()
    times = []
    for i in range(cfg.warmup + cfg.steps):
        action = expert.act(obs)
        start = time.perf_counter()
        obs, *_ = env.step(action)
        if i >= cfg.warmup:
            times.append(time.perf_counter() - start)
    env.close()
    return np.array(times)


def run(cfg: BenchObsConfig) -> dict:
    """Time every mode of ``cfg.modes``, print the table, write ``bench_obs.json``; returns the results."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    results = {}
    for mode in tqdm(cfg.modes, desc="observation modes"):
        modes = () if mode == "physics" else (mode,)
        ms = 1000 * time_steps(cfg, modes)
        results[mode] = {
            "ms_mean": float(ms.mean()),
            "ms_median": float(np.median(ms)),
            "ms_std": float(ms.std()),
        }
    reference = results.get("physics", {}).get("ms_median")
    table = Table(title=f"ms per env step, {get_task(cfg.task).env_id}, {cfg.steps} steps")
    for column in ("mode", "median ms", "mean ms", "x physics"):
        table.add_column(column, justify="right")
    for mode, r in results.items():
        ratio = f"{r['ms_median'] / reference:.1f}" if reference else "-"
        table.add_row(mode, f"{r['ms_median']:.1f}", f"{r['ms_mean']:.1f}", ratio)
    Console().print(table)
    report = {"task": cfg.task, "steps": cfg.steps, "config": vars(replace(cfg)), "results": results}
    path = run_dir / "bench_obs.json"
    path.write_text(json.dumps(report, indent=2, default=list))
    Console().print(f"written: {path}")
    return results
