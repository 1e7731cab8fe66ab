"""The fcn method: a U-Net Q-map over pixels x yaws, its actions, its update, learning on the real task."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from test_cli import equirobot

from equirobot.commands.check_equivariance import spatial_action_rows
from equirobot.config import TrainConfig
from equirobot.data.inputs import DataSpec
from equirobot.policies.base import TrainStep
from equirobot.policies.checkpoint import load_policy, save_policy
from equirobot.policies.checks import act_on_inputs
from equirobot.policies.fcn.modeling import FCNPolicy
from equirobot.policies.registry import make_policy
from equirobot.symmetry import transforms as T
from equirobot.symmetry.group import SceneSymmetry
from equirobot.training.online import OnlineSource
from equirobot.training.trainer import make_spec
from equirobot_envs.features import CONTROL_MODES

TINY = {"type": "fcn", "encoder_channels": [16, 32, 64], "features": 32, "hidden": 16}
QUANTITIES = CONTROL_MODES["pick_place"].quantities


class _Size:
    heightmap_size = 32


def _spec() -> DataSpec:
    return DataSpec.from_features(["workspace_heightmap"], "pick_place", _Size, 0, [0.1, -0.2])


def _policy(**config) -> FCNPolicy:
    policy = make_policy({**TINY, **config}, _spec())
    assert isinstance(policy, FCNPolicy)
    return policy


def _inputs(spec: DataSpec, batch: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    lowdim = torch.rand(batch, 1, spec.shapes["lowdim"][0], generator=g)
    heightmap = torch.rand(batch, 1, 1, 32, 32, generator=g) * 0.1
    return {"lowdim": lowdim, "workspace_heightmap": heightmap}


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).detach().abs().max() / b.detach().abs().max())


@pytest.mark.parametrize("train", [True, False])
def test_q_map_of_a_turned_scene_is_the_turned_map_with_its_yaws_shifted_and_the_pick_turns(train):
    torch.manual_seed(0)
    policy = _policy(group="C8").train(train)
    sym = policy.sym
    inputs = _inputs(policy.spec)
    one_step = {k: v[:, 0] for k, v in inputs.items()}
    q = policy.q_map(one_step)
    assert q.shape == (3, 4, 16, 16)  # R = 8 / 2 yaws, the 32 x 32 map pooled by 2
    generators = [torch.Generator() for _ in range(3)]
    greedy = policy.eval().predict_chunk(inputs, generators)[:, 0]
    policy.train(train)
    quarters = [g for g in sym.elements if T.is_grid_exact(sym, g)]
    assert len(quarters) == 4
    for g in quarters:
        turned = act_on_inputs(policy, g, inputs)
        q_turned = policy.q_map({k: v[:, 0] for k, v in turned.items()})
        # by hand: rotate the map, move yaw channel r to r + m (the quotient C8 / C2)
        m = round(sym.angle(g) / (np.pi / 4)) % 4
        expected_q = torch.roll(T.act_on_top_down(sym, g, q), m, dims=1)
        assert _relative(q_turned, expected_q) < 1e-4
        torch.testing.assert_close(policy.act_on_q_map(g, q), expected_q)
        expected = T.act_on_quantities(sym, g, greedy, QUANTITIES, (0.0, 0.0, 0.0))
        got = policy.eval().predict_chunk(turned, generators)[:, 0]
        policy.train(train)
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    # not trivially so: a quarter turn moves the map and shifts the yaws by two channels (90 degrees)
    quarter = next(g for g in sym.elements if abs(sym.angle(g) - np.pi / 2) < 1e-9)
    assert _relative(T.act_on_top_down(sym, quarter, q), q) > 0.05
    q_quarter = policy.q_map({k: v[:, 0] for k, v in act_on_inputs(policy, quarter, inputs).items()})
    # rows run from +y to -y: a quarter turn takes cell (8, 12), (x, y) = (9, -1) / 16, to (3, 8), (1, 9) / 16
    torch.testing.assert_close(q_quarter[:, [2, 3, 0, 1], 3, 8], q[:, :, 8, 12], atol=1e-5, rtol=1e-4)


def test_check_equivariance_lists_fcn_exact_on_c4():
    for group, exact in (("C4", "C4 (all of it)"), ("C8", "C4")):
        rows = {
            (mode, part): on
            for _, mode, part, _, on in spatial_action_rows(SceneSymmetry.from_name(group), 1e-4)
        }
        assert rows[("fcn (workspace_heightmap)", "q-map")] == exact
        assert rows[("fcn (workspace_heightmap)", "greedy action")] == exact
    (row,) = spatial_action_rows(SceneSymmetry.from_name("D4"), 1e-4)
    assert "not defined" in row[-1]


def test_actions_index_yaw_row_col_map_to_cell_centres_and_expert_actions_snap():
    policy = _policy(group="C8")
    table, size = policy.action_table, policy.size
    assert size == 16 and table.shape == (4 * 16 * 16, 3) and len(torch.unique(table, dim=0)) == len(table)
    assert torch.equal(policy.discrete(table), torch.arange(len(table)))
    # index (r * S + row) * S + col: x = (2 col + 1) / S - 1, y = 1 - (2 row + 1) / S, theta = 2 r / R - 1
    torch.testing.assert_close(table[(1 * 16 + 0) * 16 + 15], torch.tensor([15 / 16, 15 / 16, -0.5]))
    torch.testing.assert_close(table[(3 * 16 + 15) * 16 + 0], torch.tensor([-15 / 16, -15 / 16, 0.5]))
    assert sorted(set(table[:, 2].tolist())) == [-1.0, -0.5, 0.0, 0.5]  # yaws 0, 45, 90, 135 degrees
    # q-map cell of an index: the flattened (R, S, S) map
    q = torch.arange(len(table)).float().reshape(1, 4, 16, 16)
    assert q[0, 1, 0, 15] == (1 * 16 + 0) * 16 + 15
    expert = torch.tensor([[0.03, -0.06, 0.3], [0.99, 1.0, 0.9], [-1.0, -0.999, -0.8]])
    snapped = table[policy.discrete(expert)]
    # the cell holding (x, y); the nearest yaw modulo the half turn (theta 0.9 is 171 degrees: yaw 0)
    torch.testing.assert_close(
        snapped, torch.tensor([[1 / 16, -1 / 16, 0.5], [15 / 16, 15 / 16, -1], [-15 / 16, -15 / 16, -1]])
    )
    warm_up = policy.random_actions(300, np.random.default_rng(0))
    assert warm_up.shape == (300, 3) and int(policy.env_steps) == 300
    torch.testing.assert_close(table[policy.discrete(torch.from_numpy(warm_up))].numpy(), warm_up)


def test_epsilon_greedy_explores_over_the_whole_set_and_counts_env_steps():
    policy = _policy(group="C1", eps_start=1.0, eps_end=0.0, eps_steps=40)
    inputs = _inputs(policy.spec, batch=2)
    greedy = policy.eval().predict_chunk(inputs, [torch.Generator()] * 2)
    policy.train()
    explored = set()
    for k in range(10):
        generators = [torch.Generator().manual_seed(2 * k), torch.Generator().manual_seed(2 * k + 1)]
        explored |= {tuple(a) for a in policy.predict_chunk(inputs, generators)[:, 0].tolist()}
    assert len(explored) > 10 and int(policy.env_steps) == 20 and policy.epsilon() == 0.5
    policy.env_steps.fill_(40)
    torch.testing.assert_close(policy.predict_chunk(inputs, [torch.Generator()] * 2), greedy)


def test_checkpoint_round_trip_keeps_weights_counters_and_the_greedy_action(tmp_path):
    torch.manual_seed(1)
    policy = _policy(group="C8", rotations=4)
    policy.env_steps.fill_(123)
    policy.updates.fill_(45)
    save_policy(tmp_path, policy, {"task": "block_stacking_pick_place"})
    loaded = load_policy(tmp_path)
    assert isinstance(loaded, FCNPolicy) and (loaded.config.group, loaded.config.rotations) == ("C8", 4)
    assert (int(loaded.env_steps), int(loaded.updates)) == (123, 45)
    inputs = _inputs(policy.spec)
    one_step = {k: v[:, 0] for k, v in inputs.items()}
    policy.eval()
    torch.testing.assert_close(loaded.q_map(one_step), policy.q_map(one_step), atol=0, rtol=0)
    torch.testing.assert_close(loaded.q_map(one_step, target=True), policy.q_map(one_step, target=True))
    generators = [torch.Generator() for _ in range(3)]
    torch.testing.assert_close(
        loaded.predict_chunk(inputs, generators), policy.predict_chunk(inputs, generators)
    )


def test_fcn_refuses_settings_and_data_it_cannot_act_on():
    with pytest.raises(ValueError, match="rotations=4"):
        make_policy({"type": "fcn", "group": "C4"}, _spec())  # C4 / C2 has 2 yaws
    with pytest.raises(ValueError, match="rotations must be positive"):
        make_policy({"type": "fcn", "group": "C1", "rotations": 0}, _spec())
    with pytest.raises(ValueError, match="rotation group"):
        make_policy({"type": "fcn", "group": "D4", "rotations": 2}, _spec())
    with pytest.raises(ValueError, match="eps_end"):
        make_policy({"type": "fcn", "eps_end": 0.9, "eps_start": 0.1}, _spec())
    with pytest.raises(ValueError, match="rotationz"):
        make_policy({"type": "fcn", "rotationz": 4}, _spec())
    closed_loop = DataSpec.from_features(["gripper_heightmap"], "closed_loop", _Size, 0, [0.0, 0.0])
    with pytest.raises(ValueError, match="policy fcn acts in control=pick_place"):
        make_policy({"type": "fcn"}, closed_loop)
    odd = DataSpec.from_features(
        ["workspace_heightmap"], "pick_place", SimpleNamespace(heightmap_size=36), 0, [0, 0]
    )
    with pytest.raises(ValueError, match="divides by 8"):
        make_policy({"type": "fcn"}, odd)  # 36 / 2 = 18 cells cannot be halved twice


def test_td_updates_on_demonstrations_of_the_real_task_raise_q_of_the_expert_actions():
    """Updates on a fixed buffer of four expert episodes of BlockStackingPickPlace (continuous actions,
    snapped): the loss (TD + margin) falls and Q of the successful places rises towards their reward 1."""
    train = TrainConfig(task="block_stacking_pick_place", heightmap_size=32, policy={**TINY, "demos": 4})
    spec = make_spec(train, None)
    torch.manual_seed(0)
    policy = make_policy({**TINY, "group": "C8", "demos": 4, "target_update": 20}, spec)
    assert isinstance(policy, FCNPolicy)
    env_id = "equirobot/BlockStackingPickPlace-v0"
    source = OnlineSource(policy, spec, env_id, train.env_kwargs(), 1, 100, 16, seed=0)
    source._add_demonstrations()
    buffer = source.buffer
    n = len(buffer)
    assert n == 8 and buffer.n_demos == 8  # a pick and a place each
    obs = {k: torch.from_numpy(buffer.arrays[f"obs/{k}"][:n]).float() for k in spec.shapes}
    index = policy.discrete(torch.from_numpy(buffer.arrays["action"][:n]))
    last = torch.from_numpy(np.flatnonzero(buffer.arrays["terminal"][:n]))
    assert len(last) == 4 and (buffer.arrays["reward"][last.numpy()] == 1).all()
    everything = buffer.sample(n, np.random.default_rng(0))

    @torch.no_grad()
    def measure() -> tuple[float, float]:
        q_last = policy.q_map(obs).flatten(1).gather(1, index[:, None])[last].mean()
        return float(q_last), float(policy(everything)[0])

    (q_before, loss_before) = measure()
    optimizers = policy.make_optimizers(SimpleNamespace(lr=3e-3))
    step = TrainStep(
        forward=policy, optimizers=optimizers, grad_clip=10.0, parameters=policy.optimized_parameters
    )
    rng = np.random.default_rng(0)
    for _ in range(40):
        policy.update(buffer.sample(16, rng), step)
    (q_after, loss_after) = measure()
    assert q_after > q_before + 0.3 and abs(q_after - 1) < abs(q_before - 1), (q_before, q_after)
    assert loss_after < 0.75 * loss_before, (loss_before, loss_after)


def test_one_override_switches_to_equi_fcn_and_the_run_trains_online(tmp_path):
    run = tmp_path / "run"
    args = ["train", "task=block_stacking_pick_place", "policy=equi_fcn", "steps=4", "envs=1", "batch_size=4",
            "heightmap_size=32", "eval_episodes=1", "eval_workers=1", "log_every=4", "threads=1",
            "policy.demos=1", "policy.encoder_channels=[16,32]", "policy.features=16", "policy.hidden=8",
            f"run_dir={run}"]  # fmt: skip
    result = equirobot(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    policy = load_policy(run / "checkpoints" / "latest")
    assert isinstance(policy, FCNPolicy)
    assert (policy.config.name, policy.config.group, policy.config.rotations) == ("equi_fcn", "C8", 4)
    assert (policy.config.gamma, policy.config.prioritized) == (0.9, True)
    assert int(policy.env_steps) == 4 and int(policy.updates) == 4
    bad = equirobot(*args[:3], "policy.rotations=3", f"run_dir={tmp_path / 'bad'}", cwd=tmp_path)
    assert bad.returncode == 2 and "rotations=3" in bad.stderr and "Traceback" not in bad.stderr
