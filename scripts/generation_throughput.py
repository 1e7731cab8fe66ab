"""Demonstrations per minute, one worker, after start-up (env built, source demos segmented).

    python scripts/generation_throughput.py --tasks stack_d1 square_d2 --obs-task stack_d1 --n-demos 5

Per task: the scripted expert and MimicGen generation (from ``--source-dir``/<task>_source_10.hdf5, as
scripts/generation_success.py leaves them), state observations; per observation mode: the expert on
``--obs-task``. Episodes are recorded as ``equirobot collect`` records them; successes per minute of
episode time. Writes ``<out>.md``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import gymnasium as gym

import equirobot_envs
from equirobot.demos.agents import make_agent
from equirobot.evaluation.episode import run_episode
from equirobot_envs.features import OBS_MODES


def rate(task: str, obs: str, agent: str, n_demos: int, seed: int, **agent_kwargs) -> tuple[float, int, int]:
    """(demos per minute, demos, attempts) for ``n_demos`` successes (at most 3 n_demos attempts)."""
    env = gym.make(equirobot_envs.get_task(task).env_id, obs=(obs,))
    actor = make_agent(agent, env, **agent_kwargs)
    demos = attempts = 0
    start = time.perf_counter()
    while demos < n_demos and attempts < 3 * n_demos:
        demos += run_episode(env, actor, seed=seed + attempts, record=True).success
        attempts += 1
    seconds = time.perf_counter() - start
    env.close()
    return 60 * demos / seconds, demos, attempts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--tasks", nargs="*", default=["stack_d1", "square_d2", "nut_assembly_d0", "pick_place_d0"]
    )
    parser.add_argument("--obs-task", default="stack_d1")
    parser.add_argument("--n-demos", type=int, default=5)
    parser.add_argument("--source-dir", type=Path, default=Path("datasets/generation_sources"))
    parser.add_argument("--out", type=Path, default=Path("runs/generation_throughput"))
    args = parser.parse_args()
    lines = ["| task | obs | agent | demos/min | demos | attempts |", "|---|---|---|---|---|---|"]
    runs = [(task, "state", "expert", {}) for task in args.tasks]
    runs += [
        (task, "state", "mimicgen", {"source": str(args.source_dir / f"{task}_source_10.hdf5")})
        for task in args.tasks
    ]
    runs += [
        (args.obs_task, obs, "expert", {})
        for obs in OBS_MODES
        if (args.obs_task, obs, "expert", {}) not in runs
    ]
    for task, obs, agent, kwargs in runs:
        seed = 1000 if agent == "mimicgen" else 0
        per_minute, demos, attempts = rate(task, obs, agent, args.n_demos, seed, **kwargs)
        lines.append(f"| {task} | {obs} | {agent} | {per_minute:.1f} | {demos} | {attempts} |")
        print(lines[-1], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
