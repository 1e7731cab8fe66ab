"""``equirobot bench experts``: success rate of every task's scripted expert in both control modes."""

from __future__ import annotations

import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import gymnasium as gym
from hydra.core.hydra_config import HydraConfig
from rich.console import Console
from rich.table import Table
from tqdm import tqdm

from equirobot.config import BenchExpertsConfig


def _run_seeds(task: str, control: str, seeds: list[int]) -> list[tuple[int, bool, int]]:
    import equirobot_envs
    from equirobot.agents import make_agent
    from equirobot.evaluation.rollout import run_episode

    env = gym.make(equirobot_envs.get_task(task).env_id, control=control)
    agent = make_agent("expert", env)
    results = []
    for seed in seeds:
        episode = run_episode(env, agent, seed=seed)
        results.append((seed, episode.success, episode.steps))
    env.close()
    return results


def run(cfg: BenchExpertsConfig) -> dict:
    """Run every (task, control) for ``cfg.episodes`` seeds in ``cfg.workers`` processes; write tables."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    chunk = 10
    jobs = [
        (task, control, list(range(start, min(start + chunk, cfg.episodes))))
        for task in cfg.tasks
        for control in cfg.controls
        for start in range(0, cfg.episodes, chunk)
    ]
    outcomes: dict[tuple[str, str], list[tuple[int, bool, int]]] = {}
    context = multiprocessing.get_context("spawn")  # forked MuJoCo GL contexts crash
    with ProcessPoolExecutor(cfg.workers, mp_context=context) as pool:
        futures = {pool.submit(_run_seeds, *job): job for job in jobs}
        for future in tqdm(as_completed(futures), total=len(futures), desc="expert episodes (x10)"):
            task, control, _ = futures[future]
            outcomes.setdefault((task, control), []).extend(future.result())

    report = {}
    table = Table(title=f"scripted expert success, seeds 0..{cfg.episodes - 1}")
    for column in ("task", "control", "success", "rate", "mean steps", "failed seeds"):
        table.add_column(column)
    lines = ["| task | control | success | mean steps |", "|---|---|---|---|"]
    for task in cfg.tasks:
        for control in cfg.controls:
            episodes = sorted(outcomes[(task, control)])
            wins = sum(success for _, success, _ in episodes)
            steps = sum(s for _, _, s in episodes) / len(episodes)
            failed = [seed for seed, success, _ in episodes if not success]
            report[f"{task}/{control}"] = {
                "success": wins,
                "episodes": len(episodes),
                "mean_steps": steps,
                "failed_seeds": failed,
            }
            table.add_row(
                task,
                control,
                f"{wins}/{len(episodes)}",
                f"{wins / len(episodes):.0%}",
                f"{steps:.0f}",
                " ".join(map(str, failed)),
            )
            lines.append(f"| {task} | {control} | {wins}/{len(episodes)} | {steps:.0f} |")
    Console(width=150).print(table)
    (run_dir / "bench_experts.json").write_text(json.dumps(report, indent=2))
    (run_dir / "bench_experts.md").write_text("\n".join(lines) + "\n")
    Console().print(f"written: {run_dir / 'bench_experts.md'}")
    return report
