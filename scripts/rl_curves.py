"""Learning curves of the reinforcement-learning agents: success rate against env steps, over seeds.

Runs ``equirobot train task=<task> policy=<agent> seed=<s>`` for every combination (and with
``--deltas``, every ``asymmetry=<delta>`` of the flip-asymmetric tasks), ``--parallel`` at a time with
one torch thread each (CPU size: the defaults of ``configs/policy/sac.yaml``), then appends each run's
periodic evaluations (held-out seeds: success rate and mean return) to
``scripts/results/rl_curves.csv`` (plot them with ``scripts/plot_rl_curves.py``). A run that finished
is skipped; an interrupted one, or a finished one given a larger ``--steps``, resumes from its run
folder, so the script can be stopped and started again at any time.

    python scripts/rl_curves.py --tasks block_picking block_pulling --agents equi_sac sac rad drq \
        --seeds 0 1 2 --steps 2500
    python scripts/rl_curves.py --tasks inverted_pendulum --agents mirror_sac relaxed_mirror_sac sac \
        --deltas 0 0.1 0.3 0.5 --steps 1500 --envs 1 --runs runs/relaxed --out scripts/results/relaxed.csv
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
FIELDS = (
    "task", "agent", "seed", "asymmetry", "step", "env_steps", "success_rate", "mean_return", "train_seconds",
)  # fmt: skip
Job = tuple[str, str, int, float | None]
"""(task, agent, seed, asymmetry delta or None: the task's default)."""


def run_dir(root: Path, task: str, agent: str, seed: int, delta: float | None = None) -> Path:
    if delta is None:
        return root / task / f"{agent}_seed{seed}"
    return root / task / f"delta{delta:g}" / f"{agent}_seed{seed}"


def command(args, task: str, agent: str, seed: int, delta: float | None) -> list[str]:
    asymmetry = [] if delta is None else [f"asymmetry={delta:g}"]
    return [
        str(Path(sys.executable).parent / "equirobot"), "train",
        f"task={task}", f"policy={agent}", f"seed={seed}", *asymmetry,
        f"steps={args.steps}", f"envs={args.envs}", f"eval_every={args.eval_every}",
        f"eval_episodes={args.eval_episodes}", f"eval_workers={args.eval_workers}", "threads=1",
        "checkpoint_every=500", "top_k=1", "log_every=100",
        f"run_dir={run_dir(args.runs, task, agent, seed, delta)}", *args.overrides,
    ]  # fmt: skip


def finished_steps(folder: Path) -> int:
    """Steps of a finished run (0 if none): a larger ``--steps`` resumes it further."""
    summary = folder / "train_summary.json"
    return json.loads(summary.read_text())["steps"] if summary.exists() else 0


def rows_of(folder: Path, task: str, agent: str, seed: int, delta: float | None) -> list[dict]:
    summary = json.loads((folder / "train_summary.json").read_text())
    return [
        {
            "task": task,
            "agent": agent,
            "seed": seed,
            "asymmetry": "" if delta is None else delta,
            "step": e["step"],
            "env_steps": int(e.get("env_steps", 0)),
            "success_rate": e["success_rate"],
            "mean_return": e.get("mean_return", ""),
            "train_seconds": summary["train_seconds"],
        }
        for e in summary["evaluations"]
    ]


def _key(row: dict) -> tuple[str, str, int, str]:
    return row["task"], row["agent"], int(row["seed"]), str(row.get("asymmetry") or "")


def write_csv(args, jobs: list[Job]) -> list[dict]:
    """(Re)write the CSV: the evaluations of every finished run of ``jobs``, other rows kept."""
    rows = [
        r
        for j in jobs
        if (run_dir(args.runs, *j) / "train_summary.json").exists()
        for r in rows_of(run_dir(args.runs, *j), *j)
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    old = []
    if args.out.exists():  # keep the rows of other tasks and agents
        with open(args.out) as f:
            keys = {_key(r) for r in rows}
            old = [r for r in csv.DictReader(f) if _key(r) not in keys]
    tmp = args.out.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        writer.writerows(old + rows)
    tmp.replace(args.out)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["block_picking"])
    parser.add_argument("--agents", nargs="+", default=["equi_sac", "sac", "rad", "drq"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--deltas", nargs="+", type=float, default=None, help="asymmetry values (flip-asymmetric tasks)"
    )
    parser.add_argument(
        "--steps", type=int, default=2500, help="trainer steps (updates); env steps = steps x envs"
    )
    parser.add_argument("--envs", type=int, default=2)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument("--eval-workers", type=int, default=1, help="envs of each periodic evaluation")
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--runs", type=Path, default=Path("runs/rl_curves"))
    parser.add_argument("--out", type=Path, default=RESULTS / "rl_curves.csv")
    parser.add_argument("overrides", nargs="*", help="more train overrides, e.g. policy.input_pool=1")
    args = parser.parse_args()

    # seed by seed, so that a stopped sweep has every agent on its first seeds
    deltas = args.deltas or [None]
    jobs: list[Job] = [
        (t, a, s, d) for s, t, d, a in itertools.product(args.seeds, args.tasks, deltas, args.agents)
    ]
    pending = [j for j in jobs if finished_steps(run_dir(args.runs, *j)) < args.steps]
    running: list[tuple[Job, subprocess.Popen, float]] = []
    failed = []
    while pending or running:
        while pending and len(running) < args.parallel:
            job = pending.pop(0)
            folder = run_dir(args.runs, *job)
            folder.mkdir(parents=True, exist_ok=True)
            log = open(folder / "train.log", "a")  # noqa: SIM115  (closed with the process)
            process = subprocess.Popen(command(args, *job), stdout=log, stderr=subprocess.STDOUT)
            running.append((job, process, time.time()))
            print(f"started {job}", flush=True)
        time.sleep(5)
        for entry in list(running):
            job, process, start = entry
            if process.poll() is None:
                continue
            running.remove(entry)
            status = "done" if process.returncode == 0 else f"FAILED ({process.returncode})"
            print(f"{status} {job} in {time.time() - start:.0f} s", flush=True)
            if process.returncode:
                failed.append(job)
            else:
                write_csv(args, jobs)  # after every run, so that a stopped session loses none

    rows = write_csv(args, jobs)
    print(f"{len(rows)} evaluations of {len(jobs) - len(failed)} runs -> {args.out}")
    if failed:
        sys.exit(f"failed runs: {failed} (see their train.log)")


if __name__ == "__main__":
    main()
