"""Plot ``scripts/results/rl_curves.csv``: success rate against env steps, mean and 95% interval over seeds.

Writes one png per task and ``rl_steps_to_90.md``: per task and agent the first evaluated env step at
which the mean over seeds reaches 90% success ("not reached" otherwise), the final mean and the seeds.
The interval is mean +- t(0.975, n-1) * sd / sqrt(n) over seeds (the seeds are the only repeats).

    python scripts/plot_rl_curves.py [--csv scripts/results/rl_curves.csv scripts/results/rl_sb3.csv]
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def curves(rows: list[dict]) -> dict[tuple[str, str], dict[int, list[float]]]:
    """(task, agent) -> {env steps: [success rate of each seed]}."""
    out: dict[tuple[str, str], dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        out[(r["task"], r["agent"])][int(r["env_steps"])].append(float(r["success_rate"]))
    return out


def interval(values: list[float]) -> tuple[float, float]:
    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, 0.0
    return mean, float(stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / np.sqrt(len(values)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--csv", type=Path, nargs="+", default=[RESULTS / "rl_curves.csv", RESULTS / "rl_sb3.csv"]
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rows = []
    for path in args.csv:
        if path.exists():
            with open(path) as f:
                rows += list(csv.DictReader(f))
    data = curves(rows)
    lines = [
        "| task | agent | seeds | up to env steps | env steps to 90% (seed mean) | success there (95% CI) |",
        "|---|---|---|---|---|---|",
    ]
    for task in sorted({t for t, _ in data}):
        fig, ax = plt.subplots(figsize=(6, 4))
        for (t, agent), points in sorted(data.items()):
            if t != task:
                continue
            steps = sorted(points)
            means, halves = zip(*(interval(points[s]) for s in steps), strict=True)
            ax.plot(steps, means, label=agent)
            low, high = np.clip(np.subtract(means, halves), 0, 1), np.clip(np.add(means, halves), 0, 1)
            ax.fill_between(steps, low, high, alpha=0.2)  # a success rate lies in [0, 1]
            # the table reads only the steps every seed reached (some runs may have been trained longer)
            seeds = max(len(v) for v in points.values())
            full = [i for i, s in enumerate(steps) if len(points[s]) == seeds]
            reached = next((steps[i] for i in full if means[i] >= 0.9), None)
            last = full[-1]
            lines.append(
                f"| {task} | {agent} | {seeds} | {steps[last]} | "
                f"{reached if reached is not None else 'not reached'} | "
                f"{means[last]:.2f} {f'+- {halves[last]:.2f}' if seeds > 1 else '(one seed: no interval)'} |"
            )
        ax.set(xlabel="env steps", ylabel="success rate (held-out seeds)", title=task, ylim=(-0.02, 1.02))
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.out / f"rl_curves_{task}.png", dpi=100)
        plt.close(fig)
    (args.out / "rl_steps_to_90.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
