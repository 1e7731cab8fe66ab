"""Exact, relaxed and unconstrained SAC across flip asymmetries: returns, noise robustness, the read-out.

Reads the run folders of a ``scripts/rl_curves.py --deltas ...`` sweep (``<runs>/<task>/delta<d>/
<agent>_seed<s>``). For every finished run it evaluates the final checkpoint on the evaluation seeds
(100000 on) without and with Gaussian observation noise (``--noise``; cached in the run folder as
``noise_eval.json``, so the script can be rerun as more runs finish), and reads its periodic evaluations
and its ``symmetry_report.json``. It writes, next to ``--out``:

* ``<out>.md``: per task, delta and agent, the mean return and 95% t-interval over seeds at each
  evaluated step budget, at the end on the evaluation seeds, and under each noise level; and the
  read-out delta_hat of the asymmetric motor (mean over seeds and mirrors) with how many seeds got its
  sign right;
* ``<out>_returns.png`` (final return against delta, one panel per task) and ``<out>_readout.png``
  (delta_hat against the true delta).

    python scripts/relaxed_report.py --runs runs/relaxed --tasks inverted_pendulum reacher \
        --agents mirror_sac relaxed_mirror_sac sac --noise 0 0.05 0.1 --out scripts/results/relaxed
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

import numpy as np
from scipy import stats

from equirobot.evaluation.evaluate import evaluate_checkpoint
from equirobot_envs.registry import get_task

EVAL_SEED = 100_000


def interval(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of the 95% t-interval over seeds (nan half-width for one seed)."""
    x = np.asarray(values, dtype=np.float64)
    if len(x) < 2:
        return float(x.mean()), float("nan")
    return float(x.mean()), float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))


def cell(values: list[float]) -> str:
    if not values:
        return "-"
    mean, half = interval(values)
    return f"{mean:.1f}" if math.isnan(half) else f"{mean:.1f} +- {half:.1f}"


def noise_returns(folder: Path, levels: list[float], episodes: int) -> dict[str, float]:
    """{noise level: mean return on the evaluation seeds} of the run's final checkpoint, cached."""
    path = folder / "noise_eval.json"
    cached = json.loads(path.read_text()) if path.exists() else {}
    missing = [s for s in levels if f"{s:g}" not in cached]
    for sigma in missing:
        result = evaluate_checkpoint(
            folder / "checkpoints" / "latest", episodes=episodes, workers=1, seed=EVAL_SEED, videos=0,
            obs_noise=sigma,
        )  # fmt: skip
        cached[f"{sigma:g}"] = result.mean_return
    if missing:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(cached, indent=2))
        os.replace(tmp, path)
    return {f"{s:g}": cached[f"{s:g}"] for s in levels}


def readout(folder: Path, task: str) -> float | None:
    """The run's delta_hat for the task's asymmetric motor, averaged over the mirrors that negate it."""
    path = folder / "symmetry_report.json"
    if not path.exists():
        return None
    motor = get_task(task).scene_class.asymmetric_actuator
    values = [
        r["delta_hat"] for r in json.loads(path.read_text())["asymmetry_readout"] if r["command"] == motor
    ]
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else None


def collect(args) -> list[dict]:
    """One record per finished run."""
    records = []
    for task in args.tasks:
        for delta_dir in sorted((args.runs / task).glob("delta*")):
            delta = float(delta_dir.name.removeprefix("delta"))
            for agent in args.agents:
                for folder in sorted(delta_dir.glob(f"{agent}_seed*")):
                    summary = folder / "train_summary.json"
                    if not summary.exists():
                        continue
                    evaluations = json.loads(summary.read_text())["evaluations"]
                    records.append(
                        {
                            "task": task, "delta": delta, "agent": agent,
                            "seed": int(folder.name.rsplit("seed", 1)[1]),
                            "curve": {e["step"]: e["mean_return"] for e in evaluations},
                            "noise": noise_returns(folder, args.noise, args.episodes),
                            "delta_hat": readout(folder, task),
                        }
                    )  # fmt: skip
                    print(f"{task} delta {delta:g} {folder.name}: {records[-1]['noise']}", flush=True)
    return records


def table(records: list[dict], noise: list[float]) -> list[str]:
    lines = []
    for task in dict.fromkeys(r["task"] for r in records):
        rows = [r for r in records if r["task"] == task]
        steps = sorted({s for r in rows for s in r["curve"]})
        columns = ["delta", "agent", "seeds", *(f"step {s}" for s in steps)]
        columns += [f"eval, noise {s:g}" for s in noise] + ["delta_hat (asym. motor)", "sign right"]
        lines += [f"### {task}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for delta in sorted({r["delta"] for r in rows}):
            for agent in dict.fromkeys(r["agent"] for r in rows):
                group = [r for r in rows if r["delta"] == delta and r["agent"] == agent]
                if not group:
                    continue
                hats = [r["delta_hat"] for r in group if r["delta_hat"] is not None]
                right = sum(1 for h in hats if np.sign(h) == np.sign(delta)) if delta else None
                cells = [f"{delta:g}", agent, str(len(group))]
                cells += [cell([r["curve"][s] for r in group if s in r["curve"]]) for s in steps]
                cells += [cell([r["noise"][f"{s:g}"] for r in group]) for s in noise]
                cells += [
                    f"{np.mean(hats):+.3f}" if hats else "-",
                    "-" if right is None or not hats else f"{right}/{len(hats)}",
                ]
                lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def plots(records: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(r["task"] for r in records))
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        for agent in dict.fromkeys(r["agent"] for r in records):
            deltas = sorted({r["delta"] for r in records if r["task"] == task and r["agent"] == agent})
            stats_ = [
                interval(
                    [
                        r["noise"]["0"]
                        for r in records
                        if (r["task"], r["agent"], r["delta"]) == (task, agent, d)
                    ]
                )
                for d in deltas
            ]
            ax.errorbar(deltas, [m for m, _ in stats_], yerr=[0 if math.isnan(h) else h for _, h in stats_],
                        label=agent, capsize=3, marker="o")  # fmt: skip
        ax.set_title(task)
        ax.set_xlabel("asymmetry delta")
        ax.set_ylabel("final return (95% CI over seeds)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out.with_name(out.name + "_returns.png"), dpi=120)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(4.5, 3.6))
    for (task, agent), marker in zip(
        dict.fromkeys((r["task"], r["agent"]) for r in records), "osd^v<>", strict=False
    ):
        points = [(r["delta"], r["delta_hat"]) for r in records
                  if (r["task"], r["agent"]) == (task, agent) and r["delta_hat"] is not None]  # fmt: skip
        if points:
            ax.scatter(*zip(*points, strict=True), marker=marker, label=f"{task} {agent}", alpha=0.7)
    ax.plot([0, 0.5], [0, 0.5], "k--", lw=1, label="delta_hat = delta")
    ax.set_xlabel("true delta")
    ax.set_ylabel("read-out delta_hat")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out.with_name(out.name + "_readout.png"), dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=Path, default=Path("runs/relaxed"))
    parser.add_argument("--tasks", nargs="+", default=["inverted_pendulum", "reacher"])
    parser.add_argument("--agents", nargs="+", default=["mirror_sac", "relaxed_mirror_sac", "sac"])
    parser.add_argument("--noise", nargs="+", type=float, default=[0.0, 0.05, 0.1])
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes per noise level")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "relaxed")
    args = parser.parse_args()
    if 0.0 not in args.noise:
        args.noise = [0.0, *args.noise]
    records = collect(args)
    if not records:
        raise SystemExit(f"no finished runs under {args.runs}")
    header = [
        "Return (mean +- 95% t-interval over seeds) of each agent at each asymmetry delta: at the "
        "periodic evaluations (held-out seeds from 200000), and of the final checkpoint on the "
        f"evaluation seeds (from {EVAL_SEED}, {args.episodes} episodes) without and with Gaussian "
        "observation noise of the given std. delta_hat: the actor's read-out of the asymmetric motor "
        "(`SACPolicy.asymmetry_readout`, mean over seeds and mirrors); sign right: seeds whose delta_hat "
        "has the sign of delta.",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(header + table(records, args.noise)) + "\n"
    tmp = args.out.with_name(f".{args.out.name}.md.tmp")
    tmp.write_text(text)
    os.replace(tmp, args.out.with_suffix(".md"))
    plots(records, args.out)
    print(text)


if __name__ == "__main__":
    main()
