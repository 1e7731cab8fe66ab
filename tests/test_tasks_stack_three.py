"""StackThree: seeding, success as MimicGen defines it, the planned expert, Gymnasium's checks."""

import numpy as np
import pytest

from equirobot_envs import testing
from equirobot_envs.tasks.stack_three import a_stacked, c_stacked

TASKS = ("stack_three_d0", "stack_three_d1")


@pytest.mark.parametrize("task", TASKS)
def test_same_seed_same_scene(task, make_env):
    env = make_env(task)
    testing.assert_seeding(env)
    obs, _ = env.reset(seed=0)
    cubes = obs["object"].reshape(3, 7)[:, :2]
    limit = 0.10 if task.endswith("d0") else 0.20
    assert np.all(np.abs(cubes) <= limit + 1e-6)


def _stack(env, c_on_a: bool) -> None:
    testing.park_arm(env)
    testing.set_object(env, "cubeB", (0.05, 0.05, 0.825))
    testing.set_object(env, "cubeA", (0.05, 0.05, 0.8705))
    testing.set_object(env, "cubeC", (0.05, 0.05, 0.9106) if c_on_a else (-0.1, 0.05, 0.8205))
    testing.settle(env)


def test_success_needs_both_stacks(make_env):
    env = make_env("stack_three_d1")
    env.reset(seed=0)
    _stack(env, c_on_a=False)
    assert a_stacked(env.unwrapped) and not c_stacked(env.unwrapped)
    assert not env.unwrapped.is_success()
    _stack(env, c_on_a=True)
    assert env.unwrapped.is_success()


@pytest.mark.parametrize("control", ["abs", "delta"])
def test_expert_succeeds(control, make_env):
    success, steps = testing.expert_rollout(make_env("stack_three_d1", control=control), seed=0)
    assert success and steps < 400


@pytest.mark.parametrize("task", TASKS)
def test_check_env(task, make_env):
    testing.assert_check_env(make_env(task, obs=("state",)))


def test_check_env_visual(make_env):
    testing.assert_check_env(make_env("stack_three_d1", obs=("depth",), image_size=32))
