"""Measure MimicGen-style generation success per task, and how far failed attempts got.

    python scripts/generation_success.py stack_d1 square_d2 --attempts 20 --out runs/generation

For each task: collect ``--n-source`` expert source demos (state observations; kept in ``--source-dir``
and reused), then run ``--attempts`` generation episodes on seeds 1000, 1001, ... (as ``equirobot
generate`` does) in this one process, and count, besides successes, how many attempts reached each
subtask's signal (e.g. "nut grasped", "nut on peg") in order. Writes ``<out>.csv`` and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import gymnasium as gym

import equirobot_envs
from equirobot.demos.collect import collect
from equirobot.demos.mimicgen import MimicGenAgent
from equirobot.evaluation.episode import run_episode

GENERATION_SEED = 1000


class SignalTracker:
    """Wraps an agent; records the step at which each subtask signal first fires, in order."""

    def __init__(self, agent: MimicGenAgent):
        self.agent, self.env = agent, agent.env
        self.signals = [s.signal for s in self.env.task.subtasks if s.signal is not None]

    def reset(self) -> None:
        self.agent.reset()
        self.reached: list[int] = []
        self.t = 0

    def act(self, obs):
        if len(self.reached) < len(self.signals) and self.signals[len(self.reached)](self.env):
            self.reached.append(self.t)
        self.t += 1
        return self.agent.act(obs)


def source_demos(task: str, n_source: int, source_dir: Path) -> Path:
    out = source_dir / f"{task}_source_{n_source}"
    if not out.with_suffix(".hdf5").exists():
        env_id = equirobot_envs.get_task(task).env_id
        collect(env_id, {"obs": ("state",)}, out, n_demos=n_source, workers=1)
    return out.with_suffix(".hdf5")


def measure(task: str, args: argparse.Namespace) -> dict:
    source = source_demos(task, args.n_source, args.source_dir)
    env = gym.make(equirobot_envs.get_task(task).env_id, obs=("state",))
    kwargs = {"noise": args.noise} | ({"selection": args.selection} if args.selection else {})
    tracker = SignalTracker(MimicGenAgent(env, source, n_source=args.n_source, **kwargs))
    reached = [0] * len(tracker.signals)
    successes, steps, failed = 0, 0, []
    start = time.perf_counter()
    for seed in range(GENERATION_SEED, GENERATION_SEED + args.attempts):
        video = args.video_dir / f"{task}_{seed}.mp4" if args.video_dir else None
        episode = run_episode(env, tracker, seed=seed, video_path=video)
        successes += episode.success
        steps += episode.steps
        for k in range(len(tracker.reached)):
            reached[k] += 1
        if not episode.success:
            failed.append(f"{seed}:{len(tracker.reached)}")
        print(f"{task} seed {seed}: success={episode.success} signals at {tracker.reached}", flush=True)
    seconds = time.perf_counter() - start
    env.close()
    return {
        "task": task,
        "sources": len(tracker.agent.sources),
        "attempts": args.attempts,
        "successes": successes,
        "success_rate": round(successes / args.attempts, 3),
        "signals_reached": " ".join(map(str, reached)),
        "steps_per_attempt": round(steps / args.attempts),
        "seconds_per_attempt": round(seconds / args.attempts, 2),
        "demos_per_minute": round(60 * successes / seconds, 2),
        "failed_seed:signals": " ".join(failed),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("tasks", nargs="+")
    parser.add_argument("--attempts", type=int, default=20)
    parser.add_argument("--n-source", type=int, default=10)
    parser.add_argument("--selection", default="", help="random or nearest (default: the task's own)")
    parser.add_argument("--noise", type=float, default=0.05, help="action noise (MimicGen's 0.05)")
    parser.add_argument("--source-dir", type=Path, default=Path("datasets/generation_sources"))
    parser.add_argument("--video-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("runs/generation_success"))
    args = parser.parse_args()
    args.source_dir.mkdir(parents=True, exist_ok=True)
    rows = [measure(task, args) for task in args.tasks]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(str(v) for v in row.values()) + " |" for row in rows]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
