"""``equirobot bench experts``: success rate of every task's scripted expert in both control modes."""

from __future__ import annotations

import json
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from rich.console import Console
from rich.table import Table
from tqdm import tqdm

from equirobot.config import BenchExpertsConfig
from equirobot.demos.agents import agent_factory
from equirobot.evaluation.engine import RolloutEngine
from equirobot_envs.registry import get_task


def run(cfg: BenchExpertsConfig) -> dict:
    """Run every (task, control) for ``cfg.episodes`` seeds in ``cfg.workers`` processes; write tables."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    outcomes: dict[tuple[str, str], list[tuple[int, bool, int]]] = {}
    runs = [(task, control) for task in cfg.tasks for control in cfg.controls_of(task)]
    progress = tqdm(total=len(runs) * cfg.episodes, desc="expert episodes")
    for task, control in runs:
        env_id, workers = get_task(task).env_id, min(cfg.workers, cfg.episodes)
        with RolloutEngine(env_id, {"control": control}, workers, agent_factory("expert")) as engine:
            for outcome in engine.map_episodes(range(cfg.episodes)):
                outcomes.setdefault((task, control), []).append(outcome)
                progress.update(1)
    progress.close()

    report = {}
    table = Table(title=f"scripted expert success, seeds 0..{cfg.episodes - 1}")
    for column in ("task", "control", "success", "rate", "mean steps", "failed seeds"):
        table.add_column(column)
    lines = ["| task | control | success | mean steps |", "|---|---|---|---|"]
    for task, control in runs:
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
