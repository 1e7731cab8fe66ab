"""``equirobot collect``: scripted-expert demonstrations as robomimic hdf5 and a zarr replay buffer."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from equirobot.config import CollectConfig
from equirobot.demos.collect import CollectionReport, collect
from equirobot_envs.registry import get_task


def run(cfg: CollectConfig) -> CollectionReport:
    """Collect (resuming an interrupted run of the same ``out``), then print the report."""
    report = collect(
        get_task(cfg.task).env_id,
        cfg.env_kwargs(),
        Path(cfg.out_path()),
        cfg.n_demos,
        cfg.workers,
        seed=cfg.seed,
        max_attempts=cfg.max_attempts or None,
    )
    Console().print(
        f"{report.demos} demos from {report.attempts} attempts (success {report.success_rate:.0%}) in "
        f"{report.seconds:.0f} s ({60 * report.demos / report.seconds:.1f} demos/min)\n"
        f"hdf5: {report.hdf5}\nzarr: {report.zarr}"
    )
    return report
