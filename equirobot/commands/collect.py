"""``equirobot collect``: scripted-expert demonstrations as robomimic hdf5 and a zarr replay buffer."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from equirobot.config import CollectConfig, GenerateConfig
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


def generate(cfg: GenerateConfig) -> CollectionReport:
    """Collect source demos with the expert unless given, then generate from them with MimicGen."""
    env_id = get_task(cfg.task).env_id
    source = cfg.source
    if not source:
        source_out = Path(cfg.out_path() + "_source")
        if not source_out.with_suffix(".hdf5").exists():
            collect(
                env_id,
                {**cfg.env_kwargs(), "obs": ("state",)},
                source_out,
                cfg.n_source,
                cfg.workers,
                seed=cfg.seed,
            )
        source = str(source_out.with_suffix(".hdf5"))
    # Generated scenes use seeds disjoint from the source demos' (which start at cfg.seed).
    report = collect(
        env_id,
        cfg.env_kwargs(),
        Path(cfg.out_path()),
        cfg.n_demos,
        cfg.workers,
        seed=cfg.seed + 1000,
        max_attempts=cfg.max_attempts or None,
        agent="mimicgen",
        agent_kwargs={"source": source, "n_source": cfg.n_source, "selection": cfg.selection or None},
    )
    Console().print(
        f"generated {report.demos} demos from {report.attempts} attempts: generation success "
        f"{report.success_rate:.0%} ({60 * report.demos / report.seconds:.1f} demos/min)\n"
        f"hdf5: {report.hdf5}\nzarr: {report.zarr}"
    )
    return report
