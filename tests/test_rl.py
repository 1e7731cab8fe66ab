"""Reinforcement learning through the shared trainer: online collection, learning, checkpoints, resume."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from test_cli import equirobot

from equirobot.cli import CONFIG_DIR
from equirobot.config import TrainConfig
from equirobot.evaluation.evaluate import evaluate_checkpoint
from equirobot.policies.base import TrainStep
from equirobot.policies.checkpoint import learned_state, load_policy
from equirobot.policies.registry import make_policy
from equirobot.policies.sac.modeling import SACPolicy
from equirobot.training.online import OnlineSource
from equirobot.training.trainer import Trainer, make_spec

PRESETS = ("equi_sac", "sac", "rad", "drq", "sac_rot_aug", "equi_sacfd", "sacfd")
TINY_SAC = {"encoder_channels": [8, 16], "features": 16, "hidden": 16, "random_steps": 5}


def rl_config(run_dir, steps=20, **policy) -> TrainConfig:
    return TrainConfig(
        task="block_picking", heightmap_size=32, policy={"type": "sac", **TINY_SAC, **policy}, steps=steps,
        batch_size=16, envs=2, buffer_size=500, eval_episodes=0, log_every=5, checkpoint_every=10,
        threads=1, run_dir=str(run_dir),
    )  # fmt: skip


def test_online_training_collects_into_the_buffer_checkpoints_loads_and_evaluates(tmp_path):
    run = tmp_path / "run"
    cfg = rl_config(run, steps=20, group="C4", demos=2, prioritized=True, bc_weight=0.1)
    cfg.eval_episodes, cfg.eval_every, cfg.eval_workers = 2, 0, 1
    trainer = Trainer(cfg, run)
    assert trainer.dataset is None and isinstance(trainer.source, OnlineSource)
    assert trainer.ema is None  # target critics are submodules; nothing else averages weights
    summary = trainer.fit()
    source = trainer.source
    assert summary["steps"] == 20 and source.env_steps == 40
    assert source.buffer.n_demos > 0 and len(source.buffer) == source.buffer.n_demos + 40
    assert source.buffer.arrays["demo"][: source.buffer.n_demos].all()
    # the demonstrations are the expert's successful episodes: each ends with reward 1, terminal
    ends = np.flatnonzero(source.buffer.arrays["terminal"][: source.buffer.n_demos])
    assert len(ends) == 2 and (source.buffer.arrays["reward"][ends] == 1).all()
    # prioritised replay: sampled slots got their |TD error| back, so priorities are no longer all equal
    assert len(set(source.buffer.arrays["priority"][: len(source.buffer)].round(8))) > 1
    evaluation = summary["evaluations"][-1]
    assert evaluation["env_steps"] == 40 and 0 <= evaluation["success_rate"] <= 1

    policy = load_policy(run / "checkpoints" / "latest")
    assert isinstance(policy, SACPolicy) and policy.config.group == "C4" and not policy.training
    for key, value in learned_state(trainer.policy).items():
        torch.testing.assert_close(learned_state(policy)[key], value, rtol=0, atol=0)
    result = evaluate_checkpoint(run / "checkpoints" / "latest", episodes=2, workers=1, seed=100_000)
    assert result.episodes == 2 and 1 <= result.mean_steps <= 100


def test_a_resumed_online_run_restores_buffer_weights_optimisers_and_step(tmp_path):
    run = tmp_path / "run"
    first = Trainer(rl_config(run, steps=20, group="C1"), run)
    first.fit(until=10)  # leaves checkpoints/latest as a kill after step 10 would
    saved = {k: v.clone() for k, v in learned_state(first.policy).items()}
    buffer = {k: v[: len(first.source.buffer)].copy() for k, v in first.source.buffer.arrays.items()}
    resumed = Trainer(rl_config(run, steps=20, group="C1"), run)
    assert resumed.resume()
    assert resumed.step == 10 and resumed.source.env_steps == 20 and len(resumed.source.buffer) == 20
    for key, value in buffer.items():
        np.testing.assert_array_equal(resumed.source.buffer.arrays[key][:20], value)
    for key, value in saved.items():
        torch.testing.assert_close(learned_state(resumed.policy)[key], value, rtol=0, atol=0)
    for name, opt in first.optimizers.items():
        assert opt.state_dict()["state"].keys() == resumed.optimizers[name].state_dict()["state"].keys()
    summary = Trainer(rl_config(run, steps=20, group="C1"), run).fit()
    assert summary["steps"] == 20
    meta = json.loads((run / "checkpoints" / "latest" / "trainer" / "state.json").read_text())
    assert meta["step"] == 20


def preset(name: str) -> dict:
    """A policy preset of configs/policy/ as a dict (its keys over the method's defaults)."""
    values = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "policy" / f"{name}.yaml"))
    assert isinstance(values, dict) and values.pop("defaults") == ["sac_schema", "_self_"]
    return {"type": "sac", **values}


@pytest.fixture(scope="module")
def demonstrations(tmp_path_factory):
    """Two expert episodes of BlockPicking in a buffer, collected once for every preset."""
    train = rl_config(tmp_path_factory.mktemp("demos"))
    spec = make_spec(train, None)
    policy = make_policy({"type": "sac", **TINY_SAC, "demos": 2}, spec)
    source = OnlineSource(policy, spec, "equirobot/BlockPicking-v0", train.env_kwargs(), 2, 500, 32, seed=0)
    source._add_demonstrations()
    return spec, source.buffer


@pytest.mark.parametrize("name", PRESETS)
def test_every_agent_fits_the_demonstrations_of_the_real_task(name, demonstrations):
    """Each preset's update, repeated on expert episodes of BlockPicking, learns from them: the critics'
    value of the successful last steps rises towards their reward, and with a BC term the actor's mean
    moves towards the expert's actions."""
    spec, buffer = demonstrations
    torch.manual_seed(0)
    policy = make_policy({**preset(name), **TINY_SAC, "demos": 2, "bc_weight": 1.0}, spec)
    assert isinstance(policy, SACPolicy)
    n = len(buffer)
    obs = {k: torch.from_numpy(buffer.arrays[f"obs/{k}"][:n]).float() for k in spec.shapes}
    action = torch.from_numpy(buffer.arrays["action"][:n])
    last = torch.from_numpy(np.flatnonzero(buffer.arrays["terminal"][:n]))

    @torch.no_grad()
    def measure() -> tuple[float, float]:
        images = policy._acting_view(policy.image(obs))
        q = policy.q_values(policy.critic_encoder(images), action).min(0).values
        mean, _ = policy.actor(policy.actor_encoder(images))
        return float(q[last].mean()), float(((torch.tanh(mean) - action) ** 2).sum(-1).mean())

    q_before, bc_before = measure()
    optimizers = policy.make_optimizers(SimpleNamespace(lr=3e-3))
    step = TrainStep(
        forward=policy, optimizers=optimizers, grad_clip=10.0, parameters=policy.optimized_parameters
    )
    rng = np.random.default_rng(0)
    for i in range(100):
        policy.update(buffer.sample(32, rng), step, torch.Generator().manual_seed(i))
    q_after, bc_after = measure()
    assert q_after > q_before + 0.15, (q_before, q_after)
    assert bc_after < 0.8 * bc_before, (bc_before, bc_after)


def test_one_override_switches_the_agent_and_the_run_trains(tmp_path):
    run = tmp_path / "run"
    args = ["train", "task=block_picking", "policy=drq", "steps=6", "envs=1", "batch_size=8",
            "heightmap_size=32", "eval_episodes=0", "log_every=3", "threads=1", "policy.random_steps=2",
            "policy.encoder_channels=[8]", "policy.features=8", "policy.hidden=8",
            f"run_dir={run}"]  # fmt: skip
    result = equirobot(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    policy = load_policy(run / "checkpoints" / "latest")
    assert (
        policy.config.name == "drq" and policy.config.augmentation == "shift" and policy.config.group == "C1"
    )
    refused = equirobot(
        "train", "task=block_picking", "policy=sac", "obs=[voxels]", f"run_dir={tmp_path / 'x'}"
    )
    assert refused.returncode == 2 and "gripper_heightmap" in refused.stderr
