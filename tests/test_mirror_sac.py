"""SAC on the flip-asymmetric control tasks: exact and relaxed mirror equivariance, the read-out, training."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from equirobot.config import TrainConfig
from equirobot.data.inputs import DataSpec, action_layout, lowdim_layout, task_data_spec
from equirobot.evaluation.evaluate import evaluate_checkpoint
from equirobot.nn.fields import fiber
from equirobot.nn.relaxed import RelaxedGroupConv1d, RelaxedLinear, relaxed_layers
from equirobot.policies.checkpoint import load_policy
from equirobot.policies.registry import make_policy
from equirobot.policies.sac.modeling import SACPolicy
from equirobot.symmetry.group import SceneSymmetry
from equirobot.training.trainer import Trainer
from equirobot_envs.config import EnvConfig
from equirobot_envs.registry import CONTROL, get_task

TASKS = [entry[0] for entry in CONTROL]
SMALL = {"type": "sac", "hidden": 16, "features": 16}


def control_spec(name: str) -> DataSpec:
    return task_data_spec(get_task(name), EnvConfig(task=name))


def sac(name: str, **values) -> SACPolicy:
    torch.manual_seed(0)
    policy = make_policy({**SMALL, "group": "task", **values}, control_spec(name))
    assert isinstance(policy, SACPolicy)
    return policy.eval()


def element_mirrors(group: str) -> list[list[int]]:
    """Every group element as the generating mirrors applied in turn, in ``Reflections.elements`` order."""
    return [[], [0]] if group == "C2" else [[], [0], [1], [0, 1]]


@pytest.mark.parametrize("name", TASKS)
def test_every_group_element_acts_on_state_and_commands_by_the_task_signs(name):
    spec, reflections = control_spec(name), get_task(name).reflections
    sym = SceneSymmetry.from_name(reflections.group)
    state_type = lowdim_layout(spec).field_type(sym, fiber(sym))
    action_type = action_layout(spec).field_type(sym, fiber(sym))
    generators = sym.mirror_generators()
    elements = [sym.group.identity, *generators] + (
        [generators[0] @ generators[1]] if len(generators) == 2 else []
    )
    assert len(elements) == sym.group.order() == len(reflections.elements())
    for g, (state_signs, action_signs) in zip(elements, reflections.elements(), strict=True):
        np.testing.assert_array_equal(np.diag(state_type.representation(g)), state_signs)
        np.testing.assert_array_equal(np.diag(action_type.representation(g)), action_signs)


def real_states(env, n: int = 8, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(qpos, qvel) of states a random policy visits."""
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    states = []
    while len(states) < n:
        _, _, terminated, *_ = env.step(rng.uniform(env.action_space.low, env.action_space.high))
        states.append((env.data.qpos.copy(), env.data.qvel.copy()))
        if terminated:
            env.reset(seed=seed + len(states))
    return states


@torch.no_grad()
def mirrored_errors(policy: SACPolicy, name: str) -> tuple[float, float]:
    """Largest relative error of the commands and of the critics over every group element, on real
    states mirrored by the simulator (``mirror_state``), the commands mirrored by the task's signs."""
    task = get_task(name)
    env = task.scene_class()
    signs = task.reflections.elements()
    actor_error = critic_error = 0.0
    for qpos, qvel in real_states(env):
        env.set_state(qpos, qvel)
        obs = torch.tensor(env._get_obs(), dtype=torch.float32)[None]
        action = policy.predict_chunk({"lowdim": obs[:, None]}, [torch.Generator()])[:, 0]
        q = policy.q_values(policy.critic_encoder(policy.image({"lowdim": obs})), action)
        for mirrors, (state_signs, action_signs) in zip(
            element_mirrors(task.reflections.group), signs, strict=True
        ):
            env.set_state(qpos, qvel)
            for k in mirrors:
                env.mirror_state(k)
            turned = torch.tensor(env._get_obs(), dtype=torch.float32)[None]
            np.testing.assert_allclose(turned[0].numpy(), state_signs * obs[0].numpy(), atol=1e-6)
            turned_action = policy.predict_chunk({"lowdim": turned[:, None]}, [torch.Generator()])[:, 0]
            expected = action * torch.tensor(action_signs, dtype=torch.float32)
            actor_error = max(actor_error, float((turned_action - expected).abs().max() / action.abs().max()))
            turned_q = policy.q_values(policy.critic_encoder(policy.image({"lowdim": turned})), expected)
            critic_error = max(critic_error, float((turned_q - q).abs().max() / q.abs().max()))
    env.close()
    return actor_error, critic_error


@pytest.mark.parametrize("name", TASKS)
@pytest.mark.parametrize("banks", [0, 2], ids=["exact", "relaxed"])
def test_the_agent_is_equivariant_on_real_mirrored_states_for_every_group_element(name, banks):
    policy = sac(name, relaxed_banks=banks)
    actor, critic = mirrored_errors(policy, name)
    assert actor < 1e-5 and critic < 1e-5  # relaxed: exact at initialisation
    if banks:  # once its layers leave the symmetric solution, the relaxed agent is no longer equivariant
        with torch.no_grad():
            for layer in relaxed_layers(policy):
                if isinstance(layer, RelaxedLinear):
                    layer.free.weight.normal_(0, 0.3)
                elif isinstance(layer, RelaxedGroupConv1d):
                    layer.alpha.normal_(1, 0.3)
        actor, critic = mirrored_errors(policy, name)
        assert actor > 1e-2 and critic > 1e-2
        assert min(policy.symmetry_breaking().values()) > 0


def fit_actor(policy: SACPolicy, target, steps: int = 250) -> None:
    """Regress the actor's squashed mean onto ``target(state)`` over random states."""
    parameters = [*policy.actor_encoder.parameters(), *policy.actor.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=3e-3)
    generator = torch.Generator().manual_seed(1)
    policy.train()
    for _ in range(steps):
        state = torch.randn(128, 4, generator=generator) * 0.5
        mean = policy.actor(policy.actor_encoder(policy.image({"lowdim": state})))[0]
        loss = ((torch.tanh(mean) - target(state)) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    policy.eval()


def compensating(delta: float):
    """What an actor facing a motor of gain 1 + delta (u > 0) and 1 - delta (u < 0) should command to
    apply the mirror-symmetric force c(s) = 0.8 tanh(w . s)."""
    w = torch.tensor([1.0, 2.0, 0.5, 0.3])

    def target(state: torch.Tensor) -> torch.Tensor:
        c = 0.8 * torch.tanh(state @ w)[:, None]
        return torch.where(c > 0, c / (1 + delta), c / (1 - delta))

    return target


@pytest.mark.parametrize("delta", [0.3, -0.3])
def test_the_readout_recovers_the_sign_and_size_of_a_known_asymmetry(delta):
    states = {"lowdim": torch.randn(1024, 4, generator=torch.Generator().manual_seed(2)) * 0.5}
    relaxed = sac("inverted_pendulum", relaxed_banks=2)
    fit_actor(relaxed, compensating(delta))
    (readout,) = relaxed.asymmetry_readout(states)
    assert readout["mirror"] == 0 and readout["command"] == 0 and readout["states"] > 100
    assert abs(readout["delta_hat"] - delta) < 0.1, readout
    assert max(v for k, v in relaxed.symmetry_breaking().items() if k.startswith("actor")) > 0.01
    exact = sac("inverted_pendulum")
    fit_actor(exact, compensating(delta))
    (readout,) = exact.asymmetry_readout(states)
    assert abs(readout["delta_hat"]) < 1e-5  # an exact actor cannot prefer a direction
    assert exact.symmetry_breaking() == {}


def test_a_short_run_learns_to_balance_and_reports_its_symmetry(tmp_path):
    run = tmp_path / "run"
    cfg = TrainConfig(
        task="inverted_pendulum", asymmetry=0.3, steps=400, envs=1, eval_every=0, eval_episodes=3,
        eval_workers=1, threads=1, run_dir=str(run),
        policy={"type": "sac", "name": "relaxed_mirror_sac", "group": "task", "relaxed_banks": 2},
    )  # fmt: skip
    summary = Trainer(cfg, run).fit()
    (evaluation,) = summary["evaluations"]
    assert evaluation["mean_return"] > 100  # a random policy balances ~10 steps
    report = json.loads((run / "symmetry_report.json").read_text())
    assert set(report) == {"symmetry_breaking", "asymmetry_readout"}
    assert report["asymmetry_readout"][0]["command"] == 0 and len(report["symmetry_breaking"]) == 11
    # test-time observation noise: reproducible per seed, and it changes what the policy does
    checkpoint = run / "checkpoints" / "latest"
    clean = evaluate_checkpoint(checkpoint, episodes=2, workers=1, videos=0)
    noisy = [
        evaluate_checkpoint(checkpoint, episodes=2, workers=1, videos=0, obs_noise=0.3) for _ in range(2)
    ]
    assert noisy[0].returns == noisy[1].returns != clean.returns
    assert noisy[0].obs_noise == 0.3
    with pytest.raises(ValueError, match="obs_noise"):
        evaluate_checkpoint(checkpoint, episodes=1, workers=1, videos=0, obs_noise=-1.0)


def test_bad_agent_settings_are_refused_clearly():
    with pytest.raises(ValueError, match="control task's group is C2"):
        sac("inverted_pendulum", group="D2")
    with pytest.raises(ValueError, match="relaxes a symmetry"):
        sac("reacher", group="C1", relaxed_banks=2)
    with pytest.raises(ValueError, match="augmentation=crop"):
        sac("reacher", augmentation="crop")
    heightmap = DataSpec.from_features(
        ["gripper_heightmap"], "closed_loop", EnvConfig(task="block_picking"), 0, [0, 0]
    )
    with pytest.raises(ValueError, match="policy.group=task is for the control tasks"):
        make_policy({**SMALL, "group": "task"}, heightmap)
    with pytest.raises(ValueError, match="need reflections"):
        DataSpec(["joint_state"], "torque", {"lowdim": [4]}, 0, [0.0, 0.0])
    with pytest.raises(ValueError, match="relaxed_banks and relaxed_weight"):
        sac("reacher", relaxed_weight=-1.0)
    # a D2 agent's subgroup: C2 (the first mirror) and C1 are allowed on Reacher
    assert sac("reacher", group="C2").sym.name == "C2" and sac("reacher", group="C1").sym.name == "C1"


def test_one_override_switches_to_the_relaxed_agent_and_a_scene_agent_is_refused(tmp_path):
    from test_cli import equirobot

    run = tmp_path / "run"
    result = equirobot(
        "train", "task=reacher", "policy=relaxed_mirror_sac", "asymmetry=0.3", "steps=6", "envs=1",
        "batch_size=8", "eval_episodes=0", "log_every=3", "threads=1", "policy.random_steps=2",
        f"run_dir={run}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    policy = load_policy(run / "checkpoints" / "latest")
    assert policy.config.name == "relaxed_mirror_sac" and policy.sym.name == "D2"
    assert policy.spec.reflections == get_task("reacher").reflections.to_dict()
    assert (run / "symmetry_report.json").exists()
    refused = equirobot("train", "task=reacher", "policy=equi_sac", f"run_dir={tmp_path / 'x'}", cwd=tmp_path)
    assert refused.returncode == 2 and "this control task's group is D2" in refused.stderr, refused.stderr


def test_relaxed_sac_on_the_heightmap_starts_as_exact_as_equi_sac():
    from equirobot.policies.checks import actor_critic_errors, exact_subgroup

    spec = DataSpec.from_features(
        ["gripper_heightmap"],
        "closed_loop",
        EnvConfig(task="block_picking", heightmap_size=16),
        0,
        [0.0, 0.0],
    )
    torch.manual_seed(0)
    tiny = {"type": "sac", "encoder_channels": [8, 16], "features": 16, "hidden": 16, "group": "C4"}
    policy = make_policy({**tiny, "relaxed_banks": 2}, spec)
    assert isinstance(policy, SACPolicy)
    inputs = {"gripper_heightmap": torch.rand(2, 1, 1, 16, 16) * 0.1, "lowdim": torch.rand(2, 1, 12)}
    for part, errors in actor_critic_errors(policy, inputs).items():
        assert exact_subgroup(policy.sym, errors, 1e-4) == "C4 (all of it)", (part, errors)
    assert len(policy.symmetry_breaking()) > 0 and max(policy.symmetry_breaking().values()) == 0.0
