"""``equirobot bench policy``: training throughput and action-chunk latency of whole policies.

For each observation mode and each method preset (``configs/policy/<name>.yaml``) a policy is built at
the data shapes of the task, and timed in one process, one after another (ratios are comparable on a
noisy machine): samples per second of a full training step (loss, backward, AdamW) at the training
batch size, and milliseconds per action chunk (``predict_chunk`` at batch 1: encoder plus every
sampler step) for each number of sampler steps, eager and (``compile=true``) with the encoder and
denoiser compiled by ``torch.compile``. Weights are random and the normaliser is the identity:
speed does not depend on them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import torch
from hydra import compose
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf
from rich.console import Console
from rich.table import Table

from equirobot.commands.bench_nets import median_ms
from equirobot.config import BenchPolicyConfig
from equirobot.data.inputs import DataSpec
from equirobot.policies.base import Policy, PolicyConfig
from equirobot.policies.registry import make_config, make_policy
from equirobot_envs.config import EnvConfig
from equirobot_envs.features import feature
from equirobot_envs.registry import get_task


def preset(name: str) -> PolicyConfig:
    """The method preset ``configs/policy/<name>.yaml``, as ``equirobot train policy=<name>`` composes it."""
    values = OmegaConf.to_container(compose(config_name="train", overrides=[f"policy={name}"]).policy)
    # to_container is typed for any node (lists, non-str keys); a preset is a mapping with str keys
    return make_config(cast("dict[str, Any]", values))


def _inputs(spec: DataSpec, batch: int, steps: int) -> dict[str, torch.Tensor]:
    out = {}
    for key, shape in spec.shapes.items():
        x = torch.rand(batch, steps, *shape)
        out[key] = (x * 255).to(torch.uint8) if key != "lowdim" and feature(key).dtype == "uint8" else x
    return out


def _time(policy: Policy, batch: dict, cfg: BenchPolicyConfig) -> dict:
    """Training samples/s at the batch's size, then ms per action chunk for each sampler step count."""
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-4)

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        policy(batch)[0].backward()
        optimizer.step()

    policy.train()
    size = batch["action"].shape[0]
    out = {"train_samples_per_s": round(1000 * size / median_ms(train_step, cfg.repeats), 1)}
    policy.eval()
    obs = _inputs(policy.spec, 1, policy.n_obs)

    def time_chunks(name: str) -> None:
        for steps in cfg.inference_steps:
            policy.config.inference_steps = steps  # type: ignore[attr-defined]
            chunk = lambda: policy.predict_chunk(obs, [torch.Generator().manual_seed(0)])  # noqa: E731
            out[f"{name}_{steps}"] = round(median_ms(chunk, cfg.repeats), 1)

    time_chunks("chunk_ms")
    if cfg.compile:
        from equirobot.policies.diffusion.modeling import DiffusionPolicy

        if not isinstance(policy, DiffusionPolicy):
            raise ValueError(f"compile=true compiles diffusion policies; {type(policy).__name__} cannot")
        torch._dynamo.reset()  # a fresh compile cache per policy: earlier ones' count to recompile limits
        policy.compile_inference()  # in place, after the eager timings
        time_chunks("compiled_chunk_ms")
    return out


def run(cfg: BenchPolicyConfig) -> list[dict]:
    """Time every (mode, method) pair; write ``bench_policy.json`` and ``.md`` to the run folder."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(0)
    task = get_task(cfg.task)
    settings = EnvConfig(task=cfg.task, n_points=cfg.n_points, voxel_size=cfg.voxel_size)
    rows = []
    for mode in cfg.modes:
        for method in cfg.policies:
            policy_cfg = preset(method)
            n_objects = len(task.objects) if mode == "state" else 0
            spec = DataSpec.from_features([mode], "abs", settings, n_objects, [0.0, 0.0])
            policy = make_policy(policy_cfg, spec)
            batch_size = cfg.batch_size if mode == "state" else cfg.visual_batch_size
            batch = {
                "obs": _inputs(spec, batch_size, policy_cfg.n_obs_steps),
                "action": torch.randn(batch_size, policy_cfg.horizon, spec.action_dim),
            }
            row = {
                "mode": mode,
                "method": method,
                "group": policy_cfg.group,
                "params_M": round(sum(policy.n_parameters().values()) / 1e6, 3),
                "train_batch": batch_size,
                **_time(policy, batch, cfg),
            }
            rows.append(row)
            Console().print(row)
    _report(rows, cfg)
    return rows


def _report(rows: list[dict], cfg: BenchPolicyConfig) -> None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    (run_dir / "bench_policy.json").write_text(json.dumps(rows, indent=2))
    columns = list(rows[0])
    table = Table(title=f"bench policy ({cfg.threads} threads; chunk = DDIM steps, batch 1)")
    for column in columns:
        table.add_column(column)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        table.add_row(*(str(row[c]) for c in columns))
        lines.append("| " + " | ".join(str(row[c]) for c in columns) + " |")
    (run_dir / "bench_policy.md").write_text("\n".join(lines) + "\n")
    console = Console(width=max(Console().width, 160))
    console.print(table)
    console.print(f"written: {run_dir / 'bench_policy.md'}")
