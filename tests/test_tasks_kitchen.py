"""Kitchen: seeding, the button, success as MimicGen defines it (with its latch), the expert, check_env."""

import numpy as np
import pytest

from equirobot_envs import testing
from equirobot_envs.tasks.kitchen import pot_on_burner, served, stove_on

TASKS = ("kitchen_d0", "kitchen_d1")


@pytest.mark.parametrize("task", TASKS)
def test_same_seed_same_scene_stove_off(task, make_env):
    env = make_env(task)
    testing.assert_seeding(env)
    assert not stove_on(env.unwrapped)


def _set_button(env, angle: float) -> None:
    scene = env.unwrapped.scene
    scene.sim.data.qpos[scene.button_qpos] = angle
    scene.sim.forward()


def _pot_with_bread_on(env, fixture: str) -> None:
    task_env = env.unwrapped
    pos, _ = task_env.body_pose(fixture)
    height = 0.0225 + 0.0025 + 0.001 if fixture == "stove" else 0.0245 + 0.001
    testing.set_object(env, "pot", pos + [0, 0, height])
    testing.set_object(env, "bread", pos + [0, 0, height + 0.0075 + 0.021])
    testing.settle(env, 15)


def test_success_needs_the_cooking_latch(make_env):
    env = make_env("kitchen_d0")
    env.reset(seed=0)
    task_env = env.unwrapped
    testing.park_arm(env, 0.3)
    _pot_with_bread_on(env, "serving_region")
    assert served(task_env) and not stove_on(task_env)
    assert not task_env.is_success()  # served, but never cooked
    _set_button(env, 0.25)
    _pot_with_bread_on(env, "stove")
    assert stove_on(task_env) and pot_on_burner(task_env)
    assert not task_env.is_success()  # cooking: not served, stove on
    _pot_with_bread_on(env, "serving_region")
    assert not task_env.is_success()  # served, but the stove is still on
    _set_button(env, -0.25)
    testing.settle(env, 2)
    assert task_env.is_success()
    env.reset(seed=0)  # the latch is reset with the episode
    assert not task_env.scene.cooked


@pytest.mark.parametrize("control", ["abs", "delta"])
def test_expert_succeeds(control, make_env):
    success, steps = testing.expert_rollout(make_env("kitchen_d0", control=control), seed=0)
    assert success and steps < 800


@pytest.mark.parametrize("task", TASKS)
def test_check_env(task, make_env):
    testing.assert_check_env(make_env(task, obs=("state",)))


def test_check_env_visual(make_env):
    testing.assert_check_env(make_env("kitchen_d1", obs=("depth",), image_size=32))


def test_button_is_on_when_its_angle_is_not_negative(make_env):
    env = make_env("kitchen_d1")
    env.reset(seed=2)
    _set_button(env, 0.0)
    assert stove_on(env.unwrapped)
    _set_button(env, -0.01)
    assert not stove_on(env.unwrapped)
    assert np.isfinite(env.unwrapped.body_pose("button")[0]).all()
