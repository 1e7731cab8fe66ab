"""``equirobot train``: train a policy; an existing run folder (``run_dir=``) resumes with its own config."""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf
from rich.console import Console

from equirobot.config import TrainConfig
from equirobot.data.replay_buffer import DatasetError
from equirobot.policies.checkpoint import read_config
from equirobot.policies.registry import policy_class
from equirobot.training.trainer import Trainer


def saved_config(run_dir: Path, overrides: list[str]) -> TrainConfig | None:
    """The train config a run saved in ``checkpoints/latest``, with the command line's ``overrides`` applied.

    ``None`` if the run has no checkpoint yet. Overrides are ``key=value`` strings (e.g. ``steps=6000`` to
    train a finished run further); ``run_dir`` itself is ignored.
    """
    latest = run_dir / "checkpoints" / "latest"
    if not (latest / "config.yaml").exists():
        return None
    saved = OmegaConf.merge(OmegaConf.structured(TrainConfig), read_config(latest)["train"])
    changes = [o for o in overrides if not o.split("=", 1)[0].lstrip("+~").startswith(("run_dir", "hydra"))]
    merged = OmegaConf.merge(saved, OmegaConf.from_dotlist(changes))
    merged.run_dir = str(run_dir)
    return OmegaConf.to_object(merged)  # type: ignore[return-value]


def run(cfg: TrainConfig) -> dict:
    """Train (or resume), then print where the checkpoints and logs are."""
    run_dir = Path(cfg.run_dir or HydraConfig.get().runtime.output_dir)
    if cfg.run_dir:
        resumed = saved_config(run_dir, list(HydraConfig.get().overrides.task))
        if resumed is not None:
            Console().print(f"resuming {run_dir} with its saved config (plus the overrides given)")
            cfg = resumed
    if not policy_class(cfg.policy.type).online and not Path(cfg.dataset_path()).exists():
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
