"""``equirobot train``: train a policy; an existing run folder (``run_dir=``) is resumed."""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from rich.console import Console

from equirobot.config import TrainConfig
from equirobot.data.replay_buffer import DatasetError
from equirobot.training.trainer import Trainer


def run(cfg: TrainConfig) -> dict:
    """Train (or resume), then print where the checkpoints and logs are."""
    run_dir = Path(cfg.run_dir or HydraConfig.get().runtime.output_dir)
    if not Path(cfg.dataset_path()).exists():
        raise DatasetError(
            f"{cfg.dataset_path()}: no such replay buffer; make it with `equirobot collect task={cfg.task} "
            f"obs=[{','.join(cfg.obs)}] control={cfg.control} n_demos=100` or give dataset=<zarr>"
        )
    summary = Trainer(cfg, run_dir).fit()
    last, best = summary["last_success_rate"], summary["best_success_rate"]
    rates = (
        f"success rate: last {last:.0%}, best periodic {best:.0%}" if last is not None else "not evaluated"
    )
    Console().print(
        f"trained {summary['steps']} steps; {rates}\n"
        f"checkpoints: {run_dir / 'checkpoints'} (latest, top-{cfg.top_k} by success)\n"
        f"tensorboard --logdir {run_dir / 'tb'}"
    )
    return summary
