"""The dqn method: equivariant Q-map, discrete actions, update, learning on the real task, presets."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from test_cli import equirobot

from equirobot.commands.check_equivariance import actor_critic_rows
from equirobot.config import TrainConfig
from equirobot.data.inputs import DataSpec
from equirobot.policies.base import TrainStep
from equirobot.policies.checkpoint import load_policy
from equirobot.policies.checks import act_on_inputs
from equirobot.policies.dqn.modeling import N_ACTIONS, DQNPolicy
from equirobot.policies.registry import make_policy
from equirobot.symmetry import transforms as T
from equirobot.symmetry.group import SceneSymmetry
from equirobot.training.online import OnlineSource
from equirobot.training.trainer import make_spec
from equirobot_envs.features import CONTROL_MODES

TINY = {"type": "dqn", "encoder_channels": [8, 16], "features": 16, "hidden": 16}


class _Size:
    heightmap_size = 32


def _spec() -> DataSpec:
    return DataSpec.from_features(["gripper_heightmap"], "closed_loop", _Size, 0, [0.1, -0.2])


def _policy(**config) -> DQNPolicy:
    policy = make_policy({**TINY, **config}, _spec())
    assert isinstance(policy, DQNPolicy)
    return policy


def _inputs(spec: DataSpec, batch: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    lowdim = torch.rand(batch, 1, spec.shapes["lowdim"][0], generator=g)
    heightmap = torch.rand(batch, 1, 1, 32, 32, generator=g) * 0.1
    return {"lowdim": lowdim, "gripper_heightmap": heightmap}


@pytest.mark.parametrize("train", [True, False])
def test_q_map_of_a_turned_scene_is_the_turned_map_and_the_greedy_move_turns(train):
    torch.manual_seed(0)
    policy = _policy(group="C4").train(train)
    spec, sym = policy.spec, policy.sym
    inputs = _inputs(spec)
    one_step = {k: v[:, 0] for k, v in inputs.items()}
    q = policy.q_map(one_step)
    assert q.shape == (3, 18, 3, 3)
    generators = [torch.Generator() for _ in range(3)]
    greedy = policy.eval().predict_chunk(inputs, generators)[:, 0]
    policy.train(train)
    quantities = CONTROL_MODES["closed_loop"].quantities
    for g in sym.elements:
        turned = act_on_inputs(policy, g, inputs)
        q_turned = policy.q_map({k: v[:, 0] for k, v in turned.items()})
        torch.testing.assert_close(q_turned, T.act_on_top_down(sym, g, q), atol=1e-5, rtol=1e-4)
        expected = T.act_on_quantities(sym, g, greedy, quantities, (0.0, 0.0, 0.0))
        got = policy.eval().predict_chunk(turned, generators)[:, 0]
        policy.train(train)
        torch.testing.assert_close(got, expected)
    # not trivially so: a quarter turn moves the map
    quarter = next(g for g in sym.elements if abs(sym.angle(g) - np.pi / 2) < 1e-9)
    assert not torch.allclose(T.act_on_top_down(sym, quarter, q), q, atol=1e-4)
    q_quarter = policy.q_map({k: v[:, 0] for k, v in act_on_inputs(policy, quarter, inputs).items()})
    # rows run from +y to -y: a quarter turn takes the +x cell (1, 2) to the +y cell (0, 1)
    torch.testing.assert_close(q_quarter[:, :, 0, 1], q[:, :, 1, 2], atol=1e-5, rtol=1e-4)


def test_check_equivariance_lists_the_q_map_exact_on_c4():
    for group, exact in (("C4", "C4 (all of it)"), ("C8", "C4")):
        rows = {
            (mode, part): on
            for _, mode, part, _, on in actor_critic_rows(SceneSymmetry.from_name(group), 1e-4)
        }
        assert rows[("dqn (gripper_heightmap)", "q-map")] == exact
        assert rows[("dqn (gripper_heightmap)", "greedy action")] == exact


def test_discrete_and_continuous_actions_round_trip_and_expert_actions_snap():
    policy = _policy(group="C1")
    table = policy.action_table
    assert table.shape == (N_ACTIONS, 5) and len(torch.unique(table, dim=0)) == N_ACTIONS
    assert torch.equal(policy.discrete(table), torch.arange(N_ACTIONS))
    levels = {c: sorted(set(table[:, c].tolist())) for c in range(5)}
    assert levels[0] == [-1.0, 1.0]
    for c in (1, 2, 3):
        np.testing.assert_allclose(levels[c], [-0.4, 0.0, 0.4], atol=1e-7)  # 2 cm
    np.testing.assert_allclose(levels[4], [-0.5, 0.0, 0.5])  # pi / 16
    # index = channel * 9 + row * 3 + col, channel = (gripper * 3 + z) * 3 + theta; row 0 is +y
    close_right = torch.tensor([[1.0, 0.4, 0.0, 0.0, 0.0]])
    assert int(policy.discrete(close_right)) == ((1 * 3 + 1) * 3 + 1) * 9 + 1 * 3 + 2
    open_up_down_turn = torch.tensor([[-1.0, 0.0, 0.4, -0.4, 0.5]])
    assert int(policy.discrete(open_up_down_turn)) == ((0 * 3 + 0) * 3 + 2) * 9 + 0 * 3 + 1
    # the Q-map's cell of an index: the flattened (18, 3, 3) map
    q = torch.arange(N_ACTIONS).float().reshape(1, 18, 3, 3)
    assert q[0, 13, 1, 2] == int(policy.discrete(close_right))
    expert = torch.tensor([[0.3, 0.37, -0.9, 0.05, -0.3], [-0.2, -0.1, 0.25, 1.0, 0.1]])
    snapped = table[policy.discrete(expert)]
    torch.testing.assert_close(snapped, torch.tensor([[1, 0.4, -0.4, 0, -0.5], [-1, 0, 0.4, 0.4, 0]]))
    warm_up = policy.random_actions(500, np.random.default_rng(0))
    assert warm_up.dtype == np.float32 and warm_up.shape == (500, 5)
    indices = policy.discrete(torch.from_numpy(warm_up))
    torch.testing.assert_close(table[indices].numpy(), warm_up)
    assert len(set(indices.tolist())) > 140 and int(policy.env_steps) == 500


def test_epsilon_decays_linearly_over_env_steps_and_each_env_explores_with_its_own_generator():
    policy = _policy(group="C4", eps_start=1.0, eps_end=0.0, eps_steps=4)
    inputs = _inputs(policy.spec, batch=2)
    greedy = policy.eval().predict_chunk(inputs, [torch.Generator()] * 2)
    assert int(policy.env_steps) == 0  # eval mode: greedy, not counted
    policy.train()
    assert policy.epsilon() == 1.0
    first = policy.predict_chunk(inputs, [torch.Generator().manual_seed(s) for s in (1, 2)])
    assert int(policy.env_steps) == 2 and policy.epsilon() == 0.5
    policy.env_steps.zero_()
    again = policy.predict_chunk(inputs, [torch.Generator().manual_seed(s) for s in (1, 2)])
    torch.testing.assert_close(first, again)  # per-env generators decide
    policy.env_steps.fill_(10)
    assert policy.epsilon() == 0.0
    torch.testing.assert_close(policy.predict_chunk(inputs, [torch.Generator()] * 2), greedy)


def _batch(spec: DataSpec, policy: DQNPolicy, batch: int = 8) -> dict:
    obs = {k: v[:, 0] for k, v in _inputs(spec, batch).items()}
    return {
        "obs": obs,
        "next_obs": {k: v.flip(0) for k, v in obs.items()},
        "action": policy.action_table[torch.arange(batch) * 17],
        "reward": (torch.arange(batch) % 2).float(),
        "terminal": (torch.arange(batch) % 2).float(),
        "demo": torch.zeros(batch, dtype=torch.bool),
        "weight": torch.ones(batch),
        "index": torch.arange(batch),
    }


def test_update_steps_the_q_network_copies_it_to_the_target_every_target_update_and_sets_priorities():
    policy = _policy(group="C4", target_update=2)
    spec = policy.spec
    optimizers = policy.make_optimizers(SimpleNamespace(lr=1e-2))
    assert list(optimizers) == ["q"]
    step = TrainStep(
        forward=policy, optimizers=optimizers, grad_clip=10.0, parameters=policy.optimized_parameters
    )
    batch = _batch(spec, policy)
    loss, _ = policy(batch)
    halved, _ = policy({**batch, "weight": batch["weight"] * 0.5})
    torch.testing.assert_close(halved, loss * 0.5)  # importance weights scale each sample's loss
    start = {k: v.clone() for k, v in policy.state_dict().items()}
    metrics = policy.update(batch, step)
    assert {"loss", "q", "target", "epsilon", "grad_norm"} <= set(metrics)
    once = {k: v.clone() for k, v in policy.state_dict().items()}
    weights = [k for k in start if k.startswith("q_net.") and k.endswith("weights")]
    assert weights and all(not torch.equal(start[k], once[k]) for k in weights)
    for key in weights:  # one update: the target is still the initial network
        assert torch.equal(once[key.replace("q_net.", "target_net.")], start[key])
    policy.update(batch, step)
    twice = policy.state_dict()
    assert int(twice["updates"]) == 2
    for key in weights:  # the second: a copy of the Q-network
        assert torch.equal(twice[key.replace("q_net.", "target_net.")], twice[key])
    index, td_error = policy.new_priorities
    assert index.tolist() == list(range(8)) and td_error.shape == (8,) and (td_error >= 0).all()


def test_dqn_refuses_data_and_groups_it_cannot_act_on():
    state = DataSpec.from_features(["state"], "abs", SimpleNamespace(), 2, [0.0, 0.0])
    with pytest.raises(ValueError, match="policy dqn reads one top-down map"):
        make_policy({"type": "dqn"}, state)
    with pytest.raises(ValueError, match="rotation group"):
        make_policy({"type": "dqn", "group": "D4"}, _spec())
    with pytest.raises(ValueError, match="eps_end"):
        make_policy({"type": "dqn", "eps_end": 0.5, "eps_start": 0.1}, _spec())


def test_dqn_fits_the_demonstrations_of_the_real_task(tmp_path):
    """Updates on two expert episodes of BlockPicking (continuous actions, snapped for the target) raise
    Q of the successful last steps towards their reward 1."""
    train = TrainConfig(
        task="block_picking", heightmap_size=32, policy={**TINY, "demos": 2}, run_dir=str(tmp_path)
    )
    spec = make_spec(train, None)
    torch.manual_seed(0)
    policy = make_policy({**TINY, "group": "C4", "demos": 2, "target_update": 10}, spec)
    assert isinstance(policy, DQNPolicy)
    source = OnlineSource(policy, spec, "equirobot/BlockPicking-v0", train.env_kwargs(), 1, 500, 32, seed=0)
    source._add_demonstrations()
    buffer = source.buffer
    n = len(buffer)
    obs = {k: torch.from_numpy(buffer.arrays[f"obs/{k}"][:n]).float() for k in spec.shapes}
    index = policy.discrete(torch.from_numpy(buffer.arrays["action"][:n]))
    last = torch.from_numpy(np.flatnonzero(buffer.arrays["terminal"][:n]))
    assert len(last) == 2 and (buffer.arrays["reward"][last.numpy()] == 1).all()

    @torch.no_grad()
    def q_last() -> float:
        return float(policy.q_map(obs).flatten(1).gather(1, index[:, None])[last].mean())

    before = q_last()
    optimizers = policy.make_optimizers(SimpleNamespace(lr=3e-3))
    step = TrainStep(
        forward=policy, optimizers=optimizers, grad_clip=10.0, parameters=policy.optimized_parameters
    )
    rng = np.random.default_rng(0)
    for _ in range(60):
        policy.update(buffer.sample(32, rng), step)
    after = q_last()
    assert after > before + 0.3 and abs(after - 1) < abs(before - 1), (before, after)


def test_one_override_switches_to_equi_dqn_and_the_run_trains(tmp_path):
    run = tmp_path / "run"
    args = ["train", "task=block_picking", "policy=equi_dqn", "steps=3", "envs=1", "batch_size=8",
            "heightmap_size=32", "eval_episodes=0", "log_every=3", "threads=1", "policy.random_steps=2",
            "policy.encoder_channels=[8]", "policy.features=8", "policy.hidden=8",
            f"run_dir={run}"]  # fmt: skip
    result = equirobot(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    policy = load_policy(run / "checkpoints" / "latest")
    assert isinstance(policy, DQNPolicy)
    assert (policy.config.name, policy.config.group, policy.config.gamma) == ("equi_dqn", "C4", 0.95)
    assert int(policy.env_steps) == 3 and int(policy.updates) == 3
