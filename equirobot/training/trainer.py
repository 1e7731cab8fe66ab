"""The trainer, one for every method: it knows the policy interface, never the method.

What it does for any registered method (``equirobot.policies.registry``): builds the policy from its
config and the data's :class:`DataSpec`, lets it fit what it learns from data (the normaliser), takes
the optimisers the method owns (``make_optimizers``, one cosine LR schedule with warm-up each), keeps an
EMA copy when the method asks (``config.use_ema``), calls ``policy.update(batch, step)`` once per step
(gradient clipping and the non-finite guard live in :class:`TrainStep`), logs its metrics, evaluates
periodically with the rollout engine, keeps the top-k checkpoints, resumes exactly, and runs under DDP.

How a method plugs in:

* offline (imitation): ``forward(batch) -> (loss, metrics)``; the default ``update`` backpropagates it
  through one optimiser. Batches come from :class:`~equirobot.training.sources.OfflineSource`.
* online (reinforcement learning, ``Policy.online = True``): override ``make_optimizers`` (actor,
  critic, temperature, ...) and ``update`` (the whole update, reading top to bottom, stepping each
  optimiser through ``step.step``; target networks are submodules, so they are saved and resumed with
  the weights). The trainer then builds no dataset: its batches come from
  :class:`~equirobot.training.online.OnlineSource`, which collects with the policy into the replay
  buffer between batches and saves the buffer in its ``state_dict``; learning rates stay constant.

Exact resume. Each step's batch indices and each step's randomness (diffusion noise and timesteps,
augmentation angles) come from generators seeded by (seed, step, rank), not from a running stream, so a
run resumed from ``checkpoints/latest`` draws exactly what the uninterrupted run would have; the model,
EMA, every optimiser and LR schedule, the source's state, global RNG states and the step are restored
from ``latest/trainer``, and tensorboard purges events logged after that step. The loss curve of a
resumed run therefore matches the uninterrupted one (tested).

Non-finite numbers: a loss or gradient norm that is not finite stops training with
:class:`FloatingPointError` before the weights change; ``checkpoints/latest`` keeps the last good state.

Multi-GPU: launched by ``torchrun``, every rank trains on its own batches of the same size (gloo on CPU,
NCCL on GPU); rank 0 alone logs, evaluates and writes checkpoints.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from diffusers.optimization import get_constant_schedule, get_cosine_schedule_with_warmup
from omegaconf import OmegaConf
from rich.console import Console
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from equirobot.data.inputs import DataSpec, task_data_spec
from equirobot.data.sequence import SequenceDataset
from equirobot.evaluation.evaluate import evaluate_checkpoint
from equirobot.policies.base import TrainStep
from equirobot.policies.checkpoint import (
    learned_state,
    load_state,
    load_weights,
    save_policy,
    write_atomically,
)
from equirobot.policies.registry import make_policy, policy_class
from equirobot.training.ema import EMA
from equirobot.training.online import OnlineSource
from equirobot.training.sources import BatchSource, OfflineSource
from equirobot_envs.features import mode_features
from equirobot_envs.registry import get_task

# Periodic evaluations use their own scenes, so that `equirobot eval` (seeds from 100000) re-evaluates the
# checkpoint they chose as best on scenes that played no part in choosing it.
PERIODIC_EVAL_SEED = 200_000


def _rng_state() -> dict:
    numpy_state = np.random.get_state()
    assert isinstance(numpy_state, tuple)  # the legacy form: numpy's global generator is an MT19937
    return {
        "python": random.getstate()[1][:625],  # the Mersenne state tuple, JSON-able
        "numpy": numpy_state[1].tolist(),
        "numpy_pos": int(numpy_state[2]),
    }


def _set_rng_state(state: dict, torch_state: torch.Tensor) -> None:
    random.setstate((3, tuple(state["python"]), None))
    np.random.set_state(("MT19937", np.array(state["numpy"], dtype=np.uint32), state["numpy_pos"], 0, 0.0))
    torch.set_rng_state(torch_state)


def make_spec(cfg, dataset: SequenceDataset | None) -> DataSpec:
    """The data spec a train config and its dataset fix (inputs, actions, symmetry axis).

    Without a dataset (online methods) the shapes are those the env's features declare.
    """
    task = get_task(cfg.task)
    if dataset is None:
        return task_data_spec(task, cfg)
    n_objects = len(task.objects) if "object" in {f.key for f in mode_features(cfg.obs)} else 0
    center = [float(c) for c in task.workspace.center[:2]]
    return DataSpec(list(cfg.obs), cfg.control, dataset.shapes(), n_objects, center)


class Trainer:
    """Trains ``cfg.policy`` on ``cfg.dataset`` into ``run_dir``; ``fit()`` resumes where a run stopped."""

    def __init__(self, cfg, run_dir: str | Path, source: BatchSource | None = None):
        self.cfg, self.run_dir = cfg, Path(run_dir)
        self.rank, self.world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
        cuda = torch.cuda.is_available() and cfg.device != "cpu"
        if cfg.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("device=cuda but no GPU is visible")
        local = int(os.environ.get("LOCAL_RANK", 0))
        self.device = torch.device(f"cuda:{local}" if cuda else "cpu")
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if cuda else "gloo")
        torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)
        random.seed(cfg.seed)

        policy_cfg = cfg.policy
        # Offline methods learn from a dataset; online ones from the transitions their source collects.
        self.online = policy_class(policy_cfg.type).online
        self.dataset: SequenceDataset | None = None
        if not self.online:
            self.dataset = SequenceDataset(
                cfg.dataset_path(),
                cfg.obs,
                cfg.control,
                policy_cfg.horizon,
                policy_cfg.n_obs_steps,
                policy_cfg.n_action_steps,
                max_episodes=cfg.max_episodes or None,
            )
        spec = make_spec(cfg, self.dataset)
        self.policy = make_policy(policy_cfg, spec)
        if self.dataset is not None:
            self.policy.fit(self.dataset)
        self.policy.to(self.device)
        # The policy that acts and is saved: the EMA copy if the method keeps one, else the policy itself.
        self.ema: EMA | None = None
        self.acting_policy = self.policy
        if policy_cfg.use_ema:
            self.acting_policy = make_policy(policy_cfg, spec).to(self.device)
            self.ema = EMA(self.policy, self.acting_policy, cfg.ema_power)
        self.model: torch.nn.Module = self.policy
        if self.world > 1:
            self.model = torch.nn.parallel.DistributedDataParallel(
                self.policy, device_ids=[self.device.index] if cuda else None
            )
        self.optimizers = self.policy.make_optimizers(cfg)
        # Imitation: cosine decay after a warm-up; reinforcement learning: a constant rate.
        self.schedulers = {
            name: get_constant_schedule(opt)
            if self.online
            else get_cosine_schedule_with_warmup(opt, cfg.warmup_steps, cfg.steps)
            for name, opt in self.optimizers.items()
        }
        if source is not None:
            self.source: BatchSource = source
        elif self.dataset is not None:
            self.source = OfflineSource(
                self.dataset, cfg.batch_size, cfg.seed, self.rank, cfg.num_workers, self.device.type == "cuda"
            )
        else:
            if self.world > 1:
                raise ValueError("online methods train in one process (no torchrun)")
            env_id, env_kwargs = get_task(cfg.task).env_id, cfg.env_kwargs()
            self.source = OnlineSource(
                self.policy, spec, env_id, env_kwargs, cfg.envs, cfg.buffer_size, cfg.batch_size, cfg.seed
            )
        self.step = 0
        self.evaluations: list[dict] = []  # {"step", "success_rate", "checkpoint"}

    # -- checkpoints --------------------------------------------------------------------------------
    @property
    def checkpoints(self) -> Path:
        return self.run_dir / "checkpoints"

    def _config(self) -> dict:
        cfg = OmegaConf.to_container(OmegaConf.structured(self.cfg))
        task = get_task(self.cfg.task)
        return {
            "task": task.config_name,
            "env": self.cfg.env_kwargs(),
            # the box point clouds and voxels are cropped to: the deploy node crops a robot's clouds to it
            # without loading the task (and the simulator)
            "workspace": dataclasses.asdict(task.workspace),
            "train": cfg,
            "step": self.step,
            "evaluations": self.evaluations,
        }

    def save(self, name: str, with_trainer: bool = False, extra: dict | None = None) -> Path:
        folder = self.checkpoints / name

        def write(tmp: Path) -> None:
            save_policy(tmp, self.acting_policy, {**self._config(), **(extra or {})})
            if with_trainer:
                (tmp / "trainer").mkdir()
                save_file(learned_state(self.policy), tmp / "trainer" / "model.safetensors")
                optimizers = {name: opt.state_dict() for name, opt in self.optimizers.items()}
                torch.save(
                    {
                        "optimizers": optimizers,
                        "torch_rng": torch.get_rng_state(),
                        "source": self.source.state_dict(),
                    },
                    tmp / "trainer" / "optimizer.pt",
                )
                meta = {
                    "step": self.step,
                    "schedulers": {name: sch.state_dict() for name, sch in self.schedulers.items()},
                    "rng": _rng_state(),
                    "evaluations": self.evaluations,
                }
                (tmp / "trainer" / "state.json").write_text(json.dumps(meta))

        write_atomically(folder, write)
        return folder

    def resume(self) -> bool:
        """Restore everything from ``checkpoints/latest`` if it exists; returns whether it did."""
        trainer = self.checkpoints / "latest" / "trainer"
        if not trainer.exists():
            return False
        load_state(self.policy, load_file(trainer / "model.safetensors"), trainer)
        if self.ema is not None:
            load_weights(self.acting_policy, trainer.parent)
        state = torch.load(trainer / "optimizer.pt", weights_only=True)
        meta = json.loads((trainer / "state.json").read_text())
        # Runs saved before methods owned their optimisers had one, under "optimizer" / "scheduler".
        optimizers = state.get("optimizers") or {"main": state["optimizer"]}
        schedulers = meta.get("schedulers") or {"main": meta["scheduler"]}
        if set(optimizers) != set(self.optimizers):
            raise ValueError(
                f"{trainer}: saved optimisers {sorted(optimizers)}, the method has {sorted(self.optimizers)}"
            )
        for name, opt in self.optimizers.items():
            opt.load_state_dict(optimizers[name])
            self.schedulers[name].load_state_dict(schedulers[name])
        self.source.load_state_dict(state.get("source", {}))
        _set_rng_state(meta["rng"], state["torch_rng"])
        self.step, self.evaluations = meta["step"], meta["evaluations"]
        return True

    # -- evaluation ---------------------------------------------------------------------------------
    def evaluate(self) -> float:
        """Roll out the EMA policy; keep its checkpoint if among the top-k (success rate, then return)."""
        name = f"step_{self.step:07d}"
        folder = self.save(name)
        result = evaluate_checkpoint(
            folder,
            episodes=self.cfg.eval_episodes,
            workers=self.cfg.eval_workers,
            seed=PERIODIC_EVAL_SEED,
            video_dir=self.run_dir / "eval" / name,
            videos=1,
        )
        record = {
            "step": self.step,
            "success_rate": result.rate,
            "mean_return": round(result.mean_return, 4),
            "checkpoint": name,
        }
        self.evaluations.append({**record, **self.source.progress()})
        ranked = sorted(
            self.evaluations, key=lambda e: (-e["success_rate"], -e.get("mean_return", 0.0), -e["step"])
        )
        keep = {e["checkpoint"] for e in ranked[: self.cfg.top_k]}
        for evaluation in self.evaluations:
            if evaluation["checkpoint"] not in keep:
                shutil.rmtree(self.checkpoints / evaluation["checkpoint"], ignore_errors=True)
        best = ranked[0]["checkpoint"]
        (self.checkpoints / "best.txt").write_text(best + "\n")  # the best periodic evaluation's checkpoint
        return result.rate

    # -- the loop -----------------------------------------------------------------------------------
    def fit(self, until: int | None = None) -> dict:
        """Train to ``cfg.steps``, or stop after step ``until`` leaving ``latest`` as a kill would."""
        cfg, main = self.cfg, self.rank == 0
        resumed = self.resume()
        console = Console()
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            counts = " + ".join(f"{n} {_count(c)}" for n, c in self.policy.n_parameters().items() if c)
            start = f"resuming at step {self.step}" if resumed else "training"
            data = (
                f"{len(self.dataset)} samples of {self.dataset.n_episodes} demos"
                if self.dataset is not None
                else f"{cfg.task} ({cfg.envs} envs)"
            )
            console.print(
                f"{start} {cfg.policy.name} ({cfg.policy.type}, {cfg.policy.group}) on {data}, "
                f"parameters {counts}, {self.device}"
            )
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(self.run_dir / "tb", purge_step=self.step) if main else None
        wandb_run = self._wandb() if main and cfg.wandb else None
        autocast = torch.autocast(
            "cuda", dtype=torch.bfloat16, enabled=cfg.amp and self.device.type == "cuda"
        )
        progress = tqdm(total=cfg.steps, initial=self.step, desc="train", unit="step", disable=not main)
        self.policy.train()
        # Optimisation time alone (batches, steps), without evaluations and checkpoint writing.
        interval, samples, train_seconds, first_step = 0.0, 0, 0.0, self.step
        tic = time.perf_counter()
        train_step = TrainStep(
            forward=self.model, optimizers=self.optimizers, grad_clip=cfg.grad_clip,
            parameters=self.policy.optimized_parameters,
        )  # fmt: skip
        for batch in self.source.batches(self.step, cfg.steps):
            batch = _to_device(batch, self.device)
            generator = torch.Generator(self.device).manual_seed(
                int(np.random.default_rng([cfg.seed, self.step, self.rank, 1]).integers(2**62))
            )
            try:
                with autocast:
                    metrics = self.policy.update(batch, train_step, generator)
            except FloatingPointError as error:
                progress.close()
                raise FloatingPointError(
                    f"training stopped at step {self.step}: {error}; the last good state is "
                    f"{self.checkpoints / 'latest'} (if any was written). Check the dataset "
                    "(`equirobot dataset info`) and lower lr"
                ) from error
            for scheduler in self.schedulers.values():
                scheduler.step()
            if self.ema is not None:
                self.ema.update(self.step)
            interval += time.perf_counter() - tic
            self.step += 1
            samples += cfg.batch_size * self.world
            progress.update(1)
            if main and (self.step % cfg.log_every == 0 or self.step == cfg.steps):
                train_seconds += interval
                rate = samples / interval
                scalars = {
                    f"train/{k}": float(v) for k, v in {**metrics, **self.policy.diagnostics()}.items()
                }
                scalars |= {
                    f"train/lr_{n}": float(sch.get_last_lr()[0]) for n, sch in self.schedulers.items()
                }
                scalars["train/samples_per_s"] = rate
                scalars |= {f"rollout/{k}": v for k, v in self.source.progress().items()}
                assert writer is not None  # made on the main rank
                for key, value in scalars.items():
                    writer.add_scalar(key, value, self.step)
                if wandb_run:
                    wandb_run.log(scalars, step=self.step)
                progress.set_postfix(loss=f"{metrics.get('loss', float('nan')):.4f}", samples_s=f"{rate:.0f}")
                interval, samples = 0.0, 0
            last = self.step == cfg.steps
            if main and cfg.eval_episodes and (last or (cfg.eval_every and self.step % cfg.eval_every == 0)):
                self.policy.eval()
                rate = self.evaluate()
                self.policy.train()
                assert writer is not None  # made on the main rank
                writer.add_scalar("eval/success_rate", rate, self.step)
                if wandb_run:
                    wandb_run.log({"eval/success_rate": rate}, step=self.step)
                progress.write(
                    f"step {self.step}: success {rate:.0%}, return {self.evaluations[-1]['mean_return']:.2f}"
                )
            if main and (last or self.step % cfg.checkpoint_every == 0 or self.step == until):
                self.save("latest", with_trainer=True)
            if self.step == until:
                break
            tic = time.perf_counter()
        progress.close()
        if main:
            assert writer is not None  # made on the main rank
            writer.close()
            if wandb_run:
                wandb_run.finish()
        summary = {
            "run_dir": str(self.run_dir),
            "steps": self.step,
            "evaluations": self.evaluations,
            "last_success_rate": self.evaluations[-1]["success_rate"] if self.evaluations else None,
            "best_success_rate": max((e["success_rate"] for e in self.evaluations), default=None),
            "train_seconds": round(train_seconds, 1),
            "train_samples_per_s": round(
                (self.step - first_step) * cfg.batch_size * self.world / max(train_seconds, 1e-9), 1
            ),
        }
        if main:
            self._symmetry_report(console)
            (self.run_dir / "train_summary.json").write_text(json.dumps(summary, indent=2))
        return summary

    def _symmetry_report(self, console: Console) -> None:
        """``symmetry_report.json``: the policy's report on states of its replay buffer (online runs)."""
        if not isinstance(self.source, OnlineSource) or self.source.buffer.size == 0:
            return
        states = self.source.buffer.sample(2048, np.random.default_rng([self.cfg.seed, 6]))["obs"]
        self.policy.eval()
        report = self.policy.symmetry_report(_to_device(states, self.device))
        self.policy.train()
        if not report:
            return
        path = self.run_dir / "symmetry_report.json"
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(report, indent=2))
        os.replace(tmp, path)
        readout = ", ".join(
            f"mirror {r['mirror']} command {r['command']}: delta_hat {r['delta_hat']:+.3f}"
            for r in report.get("asymmetry_readout", [])
        )
        breaking = report.get("symmetry_breaking", {})
        largest = f"largest layer symmetry breaking {max(breaking.values()):.3f}; " if breaking else ""
        console.print(f"symmetry: {largest}{readout} -> {path}")

    def _wandb(self):
        try:
            import wandb
        except ImportError as error:
            raise ValueError("wandb=true needs the wandb package (pip install wandb)") from error
        # The run folder names the wandb run, so a resumed training continues the same wandb run.
        run_id = hashlib.sha1(str(self.run_dir.resolve()).encode()).hexdigest()[:16]
        return wandb.init(
            project="equirobot",
            id=run_id,
            dir=str(self.run_dir),
            config=OmegaConf.to_container(OmegaConf.structured(self.cfg)),
            resume="allow",
        )


def _to_device(batch, device: torch.device):
    """A (nested dict of) tensors moved to ``device``."""
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch.to(device, non_blocking=True)


def _count(n: int) -> str:
    """A parameter count for the log: 8.4k, 74.7k, 2.35M."""
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}k"
