"""The ``equirobot`` command: ``equirobot <command> [hydra overrides]``.

Each command is a hydra app whose config is ``configs/<command>.yaml`` (``bench obs`` reads
``configs/bench_obs.yaml``), so every option is a ``key=value`` override and ``--help``, ``--cfg job``
and ``-m`` sweeps work as in any hydra app.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"

# command -> (config name, "module:function" that takes the typed config)
COMMANDS: dict[str, tuple[str, str]] = {
    "tasks": ("tasks", "equirobot.commands.tasks:run"),
    "rollout": ("rollout", "equirobot.commands.rollout:run"),
    "collect": ("collect", "equirobot.commands.collect:run"),
    "generate": ("generate", "equirobot.commands.collect:generate"),
    "dataset info": ("dataset_info", "equirobot.commands.dataset_info:run"),
    "dataset render": ("dataset_render", "equirobot.commands.dataset_render:run"),
    "dataset video": ("dataset_video", "equirobot.commands.dataset_view:video"),
    "dataset plot": ("dataset_plot", "equirobot.commands.dataset_view:plot"),
    "train": ("train", "equirobot.commands.train:run"),
    "eval": ("eval", "equirobot.commands.eval:run"),
    "deploy": ("deploy", "equirobot.commands.deploy:run"),
    "sim-robot": ("sim_robot", "equirobot.commands.deploy:sim_robot"),
    "bench obs": ("bench_obs", "equirobot.commands.bench_obs:run"),
    "bench experts": ("bench_experts", "equirobot.commands.bench_experts:run"),
    "bench nets": ("bench_nets", "equirobot.commands.bench_nets:run"),
    "bench policy": ("bench_policy", "equirobot.commands.bench_policy:run"),
    "bench deploy": ("bench_deploy", "equirobot.commands.deploy:bench"),
    "check-equivariance": ("check_equivariance", "equirobot.commands.check_equivariance:run"),
}

USAGE = "usage: equirobot <command> [key=value ...]\n\ncommands:\n" + "\n".join(
    f"  {name:<12} configs/{config}.yaml" for name, (config, _) in COMMANDS.items()
)


class UsageError(ValueError):
    """A command line that names no known command."""


def parse_command(argv: list[str]) -> tuple[str, list[str]]:
    """Split ``argv`` into a command name of :data:`COMMANDS` and the hydra overrides after it."""
    for words in (2, 1):
        name = " ".join(argv[:words])
        if len(argv) >= words and name in COMMANDS:
            # A bare argument is the path of dataset commands: `equirobot dataset info data.hdf5`.
            rest = [
                f"path={a}" if name.startswith("dataset") and "=" not in a and not a.startswith("-") else a
                for a in argv[words:]
            ]
            rest = [f"input={a[3:]}" if a.startswith("in=") else a for a in rest]  # `in` is a Python keyword
            return name, rest
    raise UsageError(f"unknown command {' '.join(argv[:2])!r}\n\n{USAGE}")


def _load(target: str) -> Callable:
    module, function = target.split(":")
    return getattr(importlib.import_module(module), function)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``equirobot`` console script."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return
    try:
        name, overrides = parse_command(argv)
    except UsageError as error:
        print(error, file=sys.stderr)
        sys.exit(2)
    config_name, target = COMMANDS[name]

    from equirobot.config import register_schemas
    from equirobot.data.replay_buffer import DatasetError
    from equirobot.deploy.bridge import BridgeError
    from equirobot.deploy.messages import MessageError
    from equirobot.deploy.node import DeployError
    from equirobot.evaluation.engine import WorkerError
    from equirobot.evaluation.evaluate import EvaluationFailed
    from equirobot.policies.checkpoint import CheckpointError

    register_schemas()

    def task_function(cfg: DictConfig) -> None:
        try:
            typed = OmegaConf.to_object(cfg)  # runs the schema's __post_init__ checks
        except ValueError as error:
            print(f"equirobot {name}: invalid config: {error}", file=sys.stderr)
            sys.exit(2)
        try:
            _load(target)(typed)
        except (
            DatasetError,
            CheckpointError,
            FileExistsError,
            DeployError,
            MessageError,
        ) as error:  # bad input: nothing was done
            print(f"equirobot {name}: {error}", file=sys.stderr)
            sys.exit(2)
        except (
            FloatingPointError,
            WorkerError,
            EvaluationFailed,
            BridgeError,
        ) as error:  # the job failed part-way
            print(f"equirobot {name}: failed: {error}", file=sys.stderr)
            sys.exit(1)

    sys.argv = [f"equirobot {name}", *overrides]
    hydra.main(version_base=None, config_path=str(CONFIG_DIR), config_name=config_name)(task_function)()
