"""``equirobot eval``: success rates of checkpoints, per task, with 95% intervals, tables, a plot, videos.

Protocol, stated in every table: each policy acts with its EMA weights from fixed seeds (100000 on),
disjoint from the demonstrations' seeds. For a run folder two checkpoints are evaluated: ``last`` (the
end of training) and ``best`` (the checkpoint whose periodic evaluation during training scored
highest on its own scenes (seeds from 200000), re-evaluated here on the evaluation scenes). The best
periodic score itself, the number the Equivariant Diffusion Policy paper reports, is listed beside
them; it is measured on fewer episodes and chosen as a maximum, so it is biased upwards.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from rich.console import Console
from rich.table import Table

from equirobot.config import EvalConfig
from equirobot.data.robomimic_hdf5 import atomic_path
from equirobot.evaluation.engine import WorkerError
from equirobot.evaluation.evaluate import EvaluationFailed, evaluate_checkpoint
from equirobot.policies.checkpoint import CheckpointError, read_config
from equirobot_envs.registry import BENCHMARK, task_specs

FIELDS = (
    "task",
    "method",
    "protocol",
    "successes",
    "episodes",
    "success_rate",
    "ci_low",
    "ci_high",
    "best_periodic",
    "mean_steps",
    "mean_return",
    "return_ci_low",
    "return_ci_high",
    "obs_noise",
    "checkpoint",
    "status",
)


def _checkpoints_of(path: str) -> list[tuple[str, Path]]:
    """(protocol, checkpoint folder) pairs: a run folder gives last and best, a checkpoint itself."""
    folder = Path(path)
    if (folder / "checkpoints").is_dir():
        found = [("last", folder / "checkpoints" / "latest")]
        best = folder / "checkpoints" / "best.txt"
        if best.exists():
            found.append(("best", folder / "checkpoints" / best.read_text().strip()))
        return found
    read_config(folder)  # raises a clear error for anything that is not a checkpoint
    return [("checkpoint", folder)]


def _suite_tasks() -> list[tuple[str, bool]]:
    """(config name, built) for the twelve MimicGen benchmark tasks."""
    built = {(s.name, s.variant): s.config_name for s in task_specs().values()}
    snake = lambda name: "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")  # noqa: E731
    return [(built.get((n, v), f"{snake(n)}_{v.lower()}"), (n, v) in built) for n, v in BENCHMARK]


def run(cfg: EvalConfig) -> list[dict]:
    """Evaluate every (task, checkpoint) pair; write results.csv/md/json, success.png and videos."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    earlier = [
        p.name for p in (run_dir / f for f in ("results.csv", "results.md", "success.png")) if p.exists()
    ]
    if earlier:  # an eval never replaces another's results
        raise FileExistsError(
            f"{run_dir} holds an earlier evaluation ({earlier}); choose another hydra.run.dir"
        )
    paths = [cfg.checkpoint] if cfg.checkpoint else cfg.checkpoints
    by_task: dict[str, list[tuple[str, Path]]] = {}
    for path in paths:
        found = _checkpoints_of(path)
        task = read_config(found[0][1])["task"]
        by_task.setdefault(task, []).extend(found)
    if cfg.suite:
        # checkpoint= is tried on every task of the suite; checkpoints=[...] gives each task its own.
        shared = next(iter(by_task.values())) if cfg.checkpoint else None
        plan = [(task, built, shared or by_task.get(task, [])) for task, built in _suite_tasks()]
    else:
        plan = [(task, True, found) for task, found in by_task.items()]

    rows = []

    def record(row: dict) -> None:  # files rewritten after every row: an interrupted eval keeps them
        rows.append(row)
        _write_files(run_dir, rows, cfg)

    for task, built, found in plan:
        if not built or not found:
            status = "not built yet" if not built else "no checkpoint for this task"
            record(_row(task, "-", "-", "", status=status))
            continue
        for protocol, folder in found:
            config = read_config(folder)
            method, evaluations = config["policy"]["name"], config.get("evaluations", [])
            videos = run_dir / "videos" / f"{task}_{method}_{protocol}"
            try:
                result = evaluate_checkpoint(
                    folder, task, cfg.episodes, cfg.workers, cfg.seed, videos, cfg.videos, cfg.video_size,
                    cfg.threads, cfg.inference_steps, cfg.obs_noise,
                )  # fmt: skip
            except (
                CheckpointError,
                KeyError,
                ValueError,
                RuntimeError,
            ) as error:  # e.g. another task's inputs
                cause = str(error).strip().splitlines()[-1] if isinstance(error, WorkerError) else str(error)
                record(_row(task, method, protocol, folder, status=f"failed: {cause}"))
                continue
            low, high = result.interval
            return_low, return_high = result.return_interval
            record(
                _row(
                    task, method, protocol, folder,
                    successes=result.successes,
                    episodes=result.episodes,
                    success_rate=round(result.rate, 4),
                    ci_low=round(low, 4),
                    ci_high=round(high, 4),
                    best_periodic=max((e["success_rate"] for e in evaluations), default=""),
                    mean_steps=round(result.mean_steps, 1),
                    mean_return=round(result.mean_return, 3),
                    return_ci_low=round(return_low, 3),
                    return_ci_high=round(return_high, 3),
                    obs_noise=cfg.obs_noise,
                    status="ok",
                )
            )  # fmt: skip
    _print_results(run_dir, rows)
    failed = [r for r in rows if str(r.get("status", "")).startswith("failed")]
    if failed:
        raise EvaluationFailed(
            f"{len(failed)} of {len(rows)} evaluations failed: "
            + "; ".join(f"{r['task']} {r['protocol']}: {r['status']}" for r in failed)
        )
    return rows


def _row(task: str, method: str, protocol: str, checkpoint, **values) -> dict:
    return {"task": task, "method": method, "protocol": protocol, "checkpoint": str(checkpoint), **values}


COLUMNS = (
    "task", "method", "protocol", "success", "95% CI", "best periodic", "mean steps", "mean return (95% CI)",
    "status",
)  # fmt: skip


def _cells(row: dict) -> list[str]:
    """One row's :data:`COLUMNS` as table cells."""
    head = [row["task"], row["method"], row["protocol"]]
    if row.get("status") != "ok":
        return [*head, "", "", "", "", "", row["status"]]
    best = row["best_periodic"]
    return [
        *head,
        f"{row['successes']}/{row['episodes']} = {row['success_rate']:.0%}",
        f"{row['ci_low']:.0%}-{row['ci_high']:.0%}",
        f"{best:.0%}" if best != "" else "",
        str(row["mean_steps"]),
        f"{row['mean_return']:.2f} ({row['return_ci_low']:.2f} .. {row['return_ci_high']:.2f})",
        "ok",
    ]


def _write_files(run_dir: Path, rows: list[dict], cfg: EvalConfig) -> None:
    """results.csv/md/json and success.png, each replaced whole (temporary name, then rename)."""
    with atomic_path(run_dir / "results.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        writer.writerows([{k: row.get(k, "") for k in FIELDS} for row in rows])
    lines = [
        f"Success rate over {cfg.episodes} episodes per row "
        f"(seeds {cfg.seed}..{cfg.seed + cfg.episodes - 1}), "
        "EMA weights, 95% Wilson intervals. `last`: final checkpoint; `best`: the checkpoint with the best "
        "periodic evaluation during training, re-evaluated; `best periodic`: that evaluation's own score. "
        "Return: the sum of rewards, 95% normal interval of its mean"
        + (f"; observations seen with Gaussian noise of std {cfg.obs_noise}." if cfg.obs_noise else "."),
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
        *("| " + " | ".join(_cells(row)) + " |" for row in rows),
    ]
    with atomic_path(run_dir / "results.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    with atomic_path(run_dir / "results.json") as tmp:
        tmp.write_text(json.dumps(rows, indent=2))
    _plot(run_dir, [r for r in rows if r.get("status") == "ok"])


def _print_results(run_dir: Path, rows: list[dict]) -> None:
    table = Table(title="equirobot eval")
    for column in COLUMNS:
        table.add_column(column)
    for row in rows:
        table.add_row(*_cells(row))
    console = Console(width=max(Console().width, 120))
    console.print(table)
    console.print(f"results: {run_dir / 'results.md'}, {run_dir / 'results.csv'}")
    if (run_dir / "success.png").exists():
        console.print(f"plot: {run_dir / 'success.png'}")
    if (run_dir / "videos").exists():
        console.print(f"videos: {run_dir / 'videos'}")


def _plot(run_dir: Path, rows: list[dict]) -> None:
    if not rows:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['task']}\n{r['method']} ({r['protocol']})" for r in rows]
    rates = [r["success_rate"] for r in rows]
    errors = [
        [r["success_rate"] - r["ci_low"] for r in rows],
        [r["ci_high"] - r["success_rate"] for r in rows],
    ]
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(rows)), 3.5))
    ax.bar(labels, rates, yerr=errors, capsize=4, color="tab:blue")
    ax.set_ylim(0, 1)
    ax.set_ylabel("success rate (95% CI)")
    fig.tight_layout()
    with atomic_path(run_dir / "success.png") as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
