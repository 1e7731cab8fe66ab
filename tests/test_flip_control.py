"""The flip-asymmetric control tasks: exact mirror symmetry at asymmetry 0, broken by the actuator."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from equirobot_envs.flip_control import Reflections, asymmetric_gain
from equirobot_envs.tasks.inverted_double_pendulum import InvertedDoublePendulum
from equirobot_envs.tasks.inverted_pendulum import InvertedPendulum
from equirobot_envs.tasks.reacher import Reacher

TASKS = (InvertedPendulum, InvertedDoublePendulum, Reacher)


def mirror_error(env, steps: int = 50, seed: int = 0) -> float:
    """Largest |obs(mirror s, signs a) - signs obs(s, a)| (and reward difference) over random steps,
    over every generating mirror."""
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    low, high = env.action_space.low, env.action_space.high
    reflections = env.reflections
    error = 0.0
    for i in range(steps):
        state = (env.data.qpos.copy(), env.data.qvel.copy())
        action = rng.uniform(low, high)
        obs, reward, *_ = env.step(action)
        for k, (obs_signs, action_signs) in enumerate(
            zip(reflections.state, reflections.action, strict=True)
        ):
            env.set_state(*state)
            env.mirror_state(k)
            mirrored, mirrored_reward, *_ = env.step(np.asarray(action_signs) * action)
            error = max(
                error, np.abs(mirrored - np.asarray(obs_signs) * obs).max(), abs(mirrored_reward - reward)
            )
        env.set_state(*state)
        _, _, terminated, *_ = env.step(action)
        if terminated:
            env.reset(seed=seed + i + 1)
    return float(error)


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.__name__)
def test_mirroring_state_and_action_mirrors_the_next_observation_exactly_without_asymmetry(task):
    env = task(asymmetry=0.0)
    assert mirror_error(env) < 1e-12
    env.close()


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.__name__)
def test_the_asymmetric_actuator_breaks_the_symmetry(task):
    env = task(asymmetry=0.3)
    assert mirror_error(env) > 1e-2
    env.close()


@pytest.mark.parametrize(
    ("task", "stock"),
    [(InvertedPendulum, "InvertedPendulum-v5"), (InvertedDoublePendulum, "InvertedDoublePendulum-v5")],
    ids=["pendulum", "double_pendulum"],
)
def test_the_stock_models_are_not_exactly_symmetric(task, stock):
    """The 1 mm lean of the stock pole and the stock sideways gravity break the mirror: the patched
    models differ from the stock ones exactly there."""
    env = gym.make(stock).unwrapped
    env.reflections, env.mirror_state = (
        task.reflections,
        lambda k: env.set_state(-env.data.qpos, -env.data.qvel),
    )
    assert mirror_error(env, steps=200) > 1e-9
    env.close()


def test_the_gain_depends_on_the_command_sign_and_is_not_cut_by_the_control_range():
    np.testing.assert_allclose(asymmetric_gain(np.array([2.0, -2.0, 0.0]), 0.25), [2.5, -1.5, 0.0])
    env = InvertedPendulum(asymmetry=0.3)
    np.testing.assert_allclose(env.applied(np.array([3.0])), [3.9])
    np.testing.assert_allclose(env.applied(np.array([-5.0])), [-2.1])  # clipped to -3 first
    assert env.model.actuator_ctrlrange[0].tolist() == pytest.approx([-3.9, 3.9])
    env.step(np.array([3.0]))
    assert env.data.ctrl[0] == pytest.approx(3.9)
    env.close()
    reacher = Reacher(asymmetry=-0.2)  # the shoulder only, stronger for negative commands
    np.testing.assert_allclose(reacher.applied(np.array([1.0, -1.0])), [0.8, -1.0])
    reacher.close()


def test_bad_input_is_refused_clearly():
    with pytest.raises(ValueError, match="asymmetry must be in"):
        InvertedPendulum(asymmetry=1.5)
    env = InvertedPendulum()
    with pytest.raises(ValueError, match="shape"):
        env.applied(np.zeros(2))
    with pytest.raises(ValueError, match="not finite"):
        env.applied(np.array([np.nan]))
    env.close()
    with pytest.raises(ValueError, match="generator"):
        Reflections("D2", state=((1.0,),), action=((1.0,),))
    with pytest.raises(ValueError, match="sign vectors"):
        Reflections("C2", state=((0.5,),), action=((1.0,),))


def test_d2_elements_are_the_identity_both_mirrors_and_their_product():
    elements = Reacher.reflections.elements()
    assert len(elements) == 4
    np.testing.assert_array_equal(elements[0][0], np.ones(10))
    np.testing.assert_array_equal(elements[3][0], np.multiply(*Reacher.reflections.state))
    np.testing.assert_array_equal(elements[3][1], [1.0, 1.0])  # the half turn keeps both torques


def test_the_closed_loop_gantry_x_slide_is_asymmetric_and_the_quarter_turn_symmetry_breaks(make_env):
    """BlockPulling with asymmetry 0.3: a +x step moves the gripper 1.3 x 5 cm, a -x step 0.7 x 5 cm, and
    a quarter-turned scene with the turned action no longer gives the turned outcome."""
    from equirobot_envs.closed_loop import quarter_turn_xy, rotate_action, rotate_scene

    moves = {}
    for delta in (0.0, 0.3):
        env = make_env("block_pulling", heightmap_size=32, asymmetry=delta)
        task_env = env.unwrapped
        obs, _ = env.reset(seed=1)
        start = obs["robot0_eef_pos"][:2].copy()
        plus, *_ = env.step(np.array([-1, 1, 0, 0, 0], np.float32))
        minus, *_ = env.step(np.array([-1, -1, 0, 0, 0], np.float32))
        moves[delta] = (
            plus["robot0_eef_pos"][0] - start[0],
            minus["robot0_eef_pos"][0] - plus["robot0_eef_pos"][0],
        )
        state = task_env.get_state()
        action = np.array([-1, 0.6, 0.2, 0, 0], np.float32)
        after, *_ = env.step(action)
        task_env.set_state(state)
        rotate_scene(env, 1)
        turned, *_ = env.step(rotate_action(action, 1))
        error = np.abs(turned["robot0_eef_pos"][:2] - quarter_turn_xy(after["robot0_eef_pos"][:2], 1)).max()
        assert (error < 1e-4) if delta == 0 else (error > 5e-3), (delta, error)
    assert moves[0.0] == pytest.approx((0.05, -0.05), abs=2e-3)
    assert moves[0.3] == pytest.approx((0.065, -0.035), abs=2e-3)


def test_a_mimicgen_task_refuses_an_asymmetry():
    from equirobot_envs.config import EnvConfig

    with pytest.raises(ValueError, match="no asymmetric actuator"):
        EnvConfig(task="stack_d1", asymmetry=0.1)
    with pytest.raises(ValueError, match="asymmetry must be in"):
        EnvConfig(task="block_pulling", asymmetry=-1.0)


IDS = ("equirobot/InvertedPendulum-v0", "equirobot/InvertedDoublePendulum-v0", "equirobot/Reacher-v0")


@pytest.mark.parametrize("env_id", IDS)
def test_the_gymnasium_ids_observe_the_state_and_scale_commands_to_the_stock_range(env_id):
    env = gym.make(env_id, asymmetry=0.2)
    task = env.unwrapped
    obs, info = env.reset(seed=3)
    assert (
        set(obs) == {"joint_state"} and obs["joint_state"].shape == env.observation_space["joint_state"].shape
    )
    assert obs["joint_state"].shape == (len(task.state_reflection[0]),) and not info["is_success"]
    assert env.action_space.shape == (len(task.action_reflection[0]),)
    assert (
        task.state_reflection == task.reflections.state and task.action_reflection == task.reflections.action
    )
    command = np.full(env.action_space.shape, 0.5)
    env.step(command)
    stock = task.command_high
    applied = task.data.ctrl.copy()
    expected = 0.5 * stock
    expected[task.asymmetric_actuator] *= 1.2  # a positive command meets the stronger gain
    np.testing.assert_allclose(applied, expected, rtol=1e-6)  # the stock range is float32
    with pytest.raises(ValueError, match="not finite"):
        env.step(np.full(env.action_space.shape, np.nan))
    env.close()


def test_success_is_judged_at_the_horizon_by_the_task_test():
    from equirobot_envs.flip_control import FlipControlEnv

    env = FlipControlEnv(InvertedPendulum(), horizon=3)
    env.reset(seed=0)
    flags = [env.step(np.zeros(1))[4]["is_success"] for _ in range(3)]
    assert flags == [False, False, True]  # the pole stands for three steps: the episode's test passes
    reacher = Reacher()
    near, far = np.zeros(10), np.zeros(10)
    near[-2:], far[-2:] = (0.01, 0.01), (0.03, 0.0)
    assert reacher.succeeded(near) and not reacher.succeeded(far)
    env.close()
    reacher.close()


def test_a_nonfinite_command_can_be_held_as_zero_torque():
    env = gym.make("equirobot/InvertedPendulum-v0", nonfinite_action="hold")
    env.reset(seed=0)
    *_, info = env.step(np.array([np.inf]))
    assert info["nonfinite_action"] and env.unwrapped.data.ctrl[0] == 0.0
    env.close()
