"""The parts of reinforcement learning that need no simulator: the replay buffer and the SAC networks."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from equirobot.data.inputs import DataSpec, lowdim_quantities, policy_inputs
from equirobot.data.transitions import TransitionBuffer
from equirobot.policies.base import TrainStep
from equirobot.policies.checks import act_on_inputs
from equirobot.policies.registry import make_policy
from equirobot.symmetry import transforms as T
from equirobot.symmetry.group import SceneSymmetry
from equirobot.symmetry.transforms import is_grid_exact
from equirobot.training.online import OnlineSource
from equirobot_envs.closed_loop import rotate_action, rotate_scene
from equirobot_envs.features import CONTROL_MODES

SHAPES = {"lowdim": ((3,), "float32"), "grid": ((1, 4, 4), "float32")}


def _transitions(n: int, start: int = 0) -> dict:
    """n transitions whose values encode their number (obs lowdim = [k, k, k])."""
    k = np.arange(start, start + n, dtype=np.float32)
    obs = {"lowdim": np.repeat(k[:, None], 3, 1), "grid": np.zeros((n, 1, 4, 4), np.float32)}
    next_obs = {"lowdim": obs["lowdim"] + 0.5, "grid": obs["grid"]}
    return {
        "obs": obs,
        "action": np.tile(k[:, None], (1, 5)),
        "reward": k,
        "next_obs": next_obs,
        "terminal": k * 0,
    }


def test_ring_overwrites_the_oldest_collected_transitions_and_keeps_demonstrations():
    buffer = TransitionBuffer(10, SHAPES, 5)
    buffer.add(**_transitions(3, start=100), demo=True)
    buffer.add(**_transitions(6))
    buffer.add(**_transitions(4, start=6))  # 10 collected into 7 ring slots: 0, 1, 2 are overwritten
    assert len(buffer) == 10 and buffer.n_demos == 3
    stored = sorted(buffer.arrays["reward"].tolist())
    assert stored == [3, 4, 5, 6, 7, 8, 9, 100, 101, 102]
    assert buffer.arrays["demo"].sum() == 3
    batch = buffer.sample(256, np.random.default_rng(0))
    assert set(batch["obs"]["lowdim"][:, 0].tolist()) == set(stored)
    np.testing.assert_array_equal(batch["next_obs"]["lowdim"], batch["obs"]["lowdim"] + 0.5)
    assert batch["demo"].tolist() == (batch["reward"] >= 100).tolist()
    with pytest.raises(ValueError, match="before any collected"):
        buffer.add(**_transitions(1), demo=True)


def test_prioritised_sampling_follows_the_priorities_with_importance_weights():
    buffer = TransitionBuffer(4, SHAPES, 5, prioritized=True, alpha=1.0, beta=1.0, eps=0.0, demo_eps=0.0)
    buffer.add(**_transitions(4))
    buffer.update_priorities(np.arange(4), np.array([1.0, 1.0, 2.0, 4.0]))
    batch = buffer.sample(40_000, np.random.default_rng(1))
    frequency = np.bincount(batch["index"].numpy(), minlength=4) / 40_000
    np.testing.assert_allclose(frequency, [1 / 8, 1 / 8, 2 / 8, 4 / 8], atol=0.01)
    # (N P(i))^-1, normalised by the largest: the rarest transitions weigh 1, the most likely 1/4
    weight = {int(i): float(w) for i, w in zip(batch["index"], batch["weight"], strict=True)}
    np.testing.assert_allclose([weight[i] for i in range(4)], [1.0, 1.0, 0.5, 0.25], rtol=1e-6)
    uniform = TransitionBuffer(4, SHAPES, 5)
    uniform.add(**_transitions(4))
    assert torch.all(uniform.sample(8, np.random.default_rng(0))["weight"] == 1)


def test_buffer_state_round_trip_samples_the_same_batches():
    buffer = TransitionBuffer(8, SHAPES, 5, prioritized=True)
    buffer.add(**_transitions(2, start=50), demo=True)
    buffer.add(**_transitions(9))
    buffer.update_priorities(np.array([0, 3, 5]), np.array([0.5, 3.0, 1.5]))
    restored = TransitionBuffer(8, SHAPES, 5, prioritized=True)
    restored.load_state_dict(buffer.state_dict())
    a, b = (x.sample(16, np.random.default_rng(7)) for x in (buffer, restored))
    for key in ("action", "reward", "weight", "index", "demo"):
        torch.testing.assert_close(a[key], b[key])
    restored.add(**_transitions(1, start=9))
    buffer.add(**_transitions(1, start=9))
    np.testing.assert_array_equal(restored.arrays["reward"], buffer.arrays["reward"])
    with pytest.raises(ValueError, match="capacity"):
        TransitionBuffer(4, SHAPES, 5).load_state_dict(buffer.state_dict())


def test_buffer_refuses_non_finite_values_and_wrong_shapes():
    buffer = TransitionBuffer(8, SHAPES, 5)
    bad = _transitions(2)
    bad["reward"][1] = np.nan
    with pytest.raises(ValueError, match="'reward' is not finite"):
        buffer.add(**bad)
    wrong = _transitions(2)
    wrong["action"] = wrong["action"][:, :3]
    with pytest.raises(ValueError, match="'action': shape"):
        buffer.add(**wrong)
    assert len(buffer) == 0
    with pytest.raises(ValueError, match="empty"):
        buffer.sample(1, np.random.default_rng(0))


# -- SAC -----------------------------------------------------------------------------------------------
class _Size:
    heightmap_size = 32


def _spec() -> DataSpec:
    return DataSpec.from_features(["gripper_heightmap"], "closed_loop", _Size, 0, [0.1, -0.2])


def _inputs(spec: DataSpec, batch: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    lowdim = torch.rand(batch, 1, spec.shapes["lowdim"][0], generator=g)
    heightmap = torch.rand(batch, 1, 1, 32, 32, generator=g) * 0.1
    return {"lowdim": lowdim, "gripper_heightmap": heightmap}


@pytest.mark.parametrize("group", ["C4", "C8"])
def test_sac_actor_turns_dxy_with_the_scene_and_the_critics_are_invariant(group):
    spec = _spec()
    policy = make_policy({"type": "sac", "group": group, "encoder_channels": [8, 16], "features": 16}, spec)
    policy.eval()
    inputs = _inputs(spec)
    generators = [torch.Generator() for _ in range(3)]
    action = policy.predict_chunk(inputs, generators)[:, 0]
    quantities = CONTROL_MODES["closed_loop"].quantities
    assert lowdim_quantities(spec)[-1] == "scalar"  # the holding flag: invariant
    exact_errors = []
    for g in policy.sym.elements:
        turned = act_on_inputs(policy, g, inputs)
        expected = T.act_on_quantities(policy.sym, g, action, quantities, (0.0, 0.0, 0.0))
        got = policy.predict_chunk(turned, generators)[:, 0]
        image, turned_image = policy.image({k: v[:, 0] for k, v in inputs.items()}), None
        turned_image = policy.image({k: v[:, 0] for k, v in turned.items()})
        q = policy.q_values(policy.critic_encoder(image), action)
        q_turned = policy.q_values(policy.critic_encoder(turned_image), expected)
        if is_grid_exact(policy.sym, g):  # quarter turns: exact
            torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(q_turned, q, atol=1e-5, rtol=1e-4)
            exact_errors.append(float((got - expected).abs().max()))
        else:  # 45 degrees: the pixel grid does not map onto itself
            assert not torch.allclose(got, expected, atol=1e-6)
    assert len(exact_errors) == 4
    # dx, dy do turn: a quarter turn moves dx into dy
    quarter = next(g for g in policy.sym.elements if abs(policy.sym.angle(g) - np.pi / 2) < 1e-9)
    turned_action = policy.predict_chunk(act_on_inputs(policy, quarter, inputs), generators)[:, 0]
    torch.testing.assert_close(
        turned_action[:, 1:3], torch.stack([-action[:, 2], action[:, 1]], -1), atol=1e-5, rtol=1e-4
    )


def _sac_batch(spec: DataSpec, batch: int = 8, demo: bool = False) -> dict:
    inputs = _inputs(spec, batch)
    obs = {k: v[:, 0] for k, v in inputs.items()}
    next_obs = {k: v.flip(0) for k, v in obs.items()}
    return {
        "obs": obs,
        "next_obs": next_obs,
        "action": torch.rand(batch, 5) * 2 - 1,
        "reward": (torch.arange(batch) % 2).float(),
        "terminal": (torch.arange(batch) % 2).float(),
        "demo": torch.full((batch,), demo),
        "weight": torch.ones(batch),
        "index": torch.arange(batch),
    }


@pytest.mark.parametrize("augmentation", ["none", "crop", "shift", "rotate"])
def test_sac_update_steps_every_optimiser_and_the_targets_follow_by_tau(augmentation):
    spec = _spec()
    config = {
        "type": "sac",
        "group": "C1",
        "encoder_channels": [8, 16],
        "features": 16,
        "augmentation": augmentation,
    }
    policy = make_policy({**config, "demos": 1, "bc_weight": 1.0, "tau": 0.25}, spec)
    optimizers = policy.make_optimizers(SimpleNamespace(lr=1e-2))
    assert sorted(optimizers) == ["actor", "alpha", "critic"]
    step = TrainStep(
        forward=policy, optimizers=optimizers, grad_clip=10.0, parameters=policy.optimized_parameters
    )
    before = {k: v.clone() for k, v in policy.state_dict().items()}
    metrics = policy.update(_sac_batch(spec, demo=True), step, torch.Generator().manual_seed(0))
    assert {"loss", "actor_loss", "alpha", "entropy", "bc"} <= set(metrics)
    assert all(np.isfinite(v) for v in metrics.values())
    after = policy.state_dict()
    for prefix in ("actor_encoder.", "actor.", "critic_encoder.", "critics.", "log_alpha"):
        assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix)), prefix
    # Polyak: target = 0.75 old target + 0.25 new critic (targets start as copies of the critics)
    for key in [k for k in after if k.startswith("target_critics.") and k.endswith("weight")]:
        critic = key.replace("target_critics.", "critics.")
        torch.testing.assert_close(after[key], 0.75 * before[key] + 0.25 * after[critic])
    index, td_error = policy.new_priorities
    assert index.tolist() == list(range(8)) and td_error.shape == (8,) and (td_error >= 0).all()


def test_sac_rot_aug_stores_rotated_copies_and_a_quarter_turn_is_the_turned_scene(make_env):
    """The buffer's rotated copies are transitions of the turned scene: at 90 degrees the turned
    observation, next observation and action are the real env's after ``rotate_scene``."""
    env = make_env("block_picking", heightmap_size=32)
    task_env = env.unwrapped
    obs, _ = env.reset(seed=3)
    for _ in range(3):  # off the centre and lower, so that the block and the table edge show
        obs, *_ = env.step(np.array([0, 0.6, 0.3, -0.5, 0.3], np.float32))
    state = task_env.get_state()
    action = np.array([0.3, 0.8, -0.4, -0.3, 0.5], np.float32)
    next_obs, *_ = env.step(action)
    spec = _spec()
    config = {"type": "sac", "group": "C1", "encoder_channels": [8], "features": 8}
    policy = make_policy({**config, "augmentation": "rotate", "rotated_copies": 3}, spec)

    def inputs(o: dict) -> dict:
        return policy_inputs({k: v[None] for k, v in o.items()}, spec)

    transition = {
        "obs": inputs(obs),
        "action": action[None],
        "reward": np.ones(1),
        "next_obs": inputs(next_obs),
        "terminal": np.ones(1),
    }
    turned = policy._turned(transition, torch.full((1,), np.pi / 2))
    task_env.set_state(state)
    rotate_scene(env, 1)
    turned_obs = task_env.observe()
    turned_next, *_ = env.step(rotate_action(action, 1))
    for got, want in ((turned["obs"], inputs(turned_obs)), (turned["next_obs"], inputs(turned_next))):
        assert got.keys() == want.keys()
        for key in sorted(want):  # the map first
            np.testing.assert_allclose(got[key], want[key], atol=2e-3, err_msg=key)
    np.testing.assert_allclose(turned["action"][0], rotate_action(action, 1), atol=1e-6)

    copies = policy.transition_copies(transition, np.random.default_rng(0))
    assert len(copies) == 3
    for copy in copies:  # dx, dy turn; the gripper, dz, dtheta, the reward and the terminal flag stay
        np.testing.assert_allclose(
            np.linalg.norm(copy["action"][0, 1:3]), np.linalg.norm(action[1:3]), rtol=1e-5
        )
        np.testing.assert_array_equal(copy["action"][0, [0, 3, 4]], action[[0, 3, 4]])
        assert copy["reward"] is transition["reward"] and copy["terminal"] is transition["terminal"]
    assert len({tuple(c["action"][0, 1:3].round(4)) for c in copies}) == 3  # each its own angle
    source = OnlineSource(policy, spec, "equirobot/BlockPicking-v0", {}, 1, 100, 8, seed=0)
    source._store(transition, np.random.default_rng(0))
    assert len(source.buffer) == 4  # the transition and its 3 copies
    plain = make_policy(config, spec)
    assert plain.transition_copies(transition, np.random.default_rng(0)) == []


def test_rad_acts_on_the_central_crop_of_the_map_it_trained_on_crops_of():
    spec = _spec()
    config = {"type": "sac", "group": "C1", "encoder_channels": [8], "features": 8, "augmentation": "crop"}
    policy = make_policy({**config, "crop": 3}, spec).eval()
    inputs = _inputs(spec, batch=2)
    action = policy.predict_chunk(inputs, [torch.Generator()] * 2)
    # pooled map 16 x 16, crop 3: only the central 10 x 10 pooled pixels (20 x 20 raw) count
    edited = {k: v.clone() for k, v in inputs.items()}
    edited["gripper_heightmap"][..., :6, :] = 5.0
    torch.testing.assert_close(policy.predict_chunk(edited, [torch.Generator()] * 2), action)
    edited["gripper_heightmap"][..., 10:12, 10:12] = 5.0
    assert not torch.allclose(policy.predict_chunk(edited, [torch.Generator()] * 2), action)


def test_sac_refuses_data_it_cannot_act_on():
    state = DataSpec.from_features(["state"], "abs", SimpleNamespace(), 2, [0.0, 0.0])
    with pytest.raises(ValueError, match="one top-down map"):
        make_policy({"type": "sac"}, state)
    with pytest.raises(ValueError, match="rotation group"):
        make_policy({"type": "sac", "group": "D4"}, _spec())
    with pytest.raises(ValueError, match="augmentation"):
        make_policy({"type": "sac", "augmentation": "flip"}, _spec())


def test_check_equivariance_reports_the_rl_networks_exact_on_the_quarter_turns():
    from equirobot.commands.check_equivariance import actor_critic_rows

    for group, exact in (("C8", "C4"), ("C4", "C4 (all of it)")):
        rows = actor_critic_rows(SceneSymmetry.from_name(group), 1e-4)
        names = {"sac (gripper_heightmap)", "dqn (gripper_heightmap)", "relaxed_sac (gripper_heightmap)"}
        assert {r[1] for r in rows} == names  # relaxed_sac at initialisation
        assert all(subgroup == exact for *_, subgroup in rows), rows
