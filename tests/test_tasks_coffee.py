"""Coffee: seeding, success as MimicGen defines it, the planned expert, Gymnasium's checks."""

import numpy as np
import pytest

from equirobot_envs import testing
from equirobot_envs.coffee_machine import HOLDER, LID_OPEN
from equirobot_envs.tasks.coffee import lid_angle, lid_closed, pod_in_holder

TASKS = ("coffee_d0", "coffee_d1", "coffee_d2")


@pytest.mark.parametrize("task", TASKS)
def test_same_seed_same_scene_lid_open(task, make_env):
    env = make_env(task)
    testing.assert_seeding(env)
    env.reset(seed=3)
    assert lid_angle(env.unwrapped) == pytest.approx(LID_OPEN)


def _pod_in_holder(env) -> None:
    task_env = env.unwrapped
    machine, rot = task_env.body_pose("coffee_machine")
    seated = machine + rot @ (np.array(HOLDER) + [0, 0, 0.008])
    testing.set_object(env, "coffee_pod", seated)


def test_success_needs_the_pod_in_and_the_lid_shut(make_env):
    env = make_env("coffee_d0")
    env.reset(seed=0)
    task_env = env.unwrapped
    testing.park_arm(env)
    _pod_in_holder(env)
    testing.settle(env, 20)
    assert pod_in_holder(task_env) and not lid_closed(task_env)
    assert not task_env.is_success()
    scene = task_env.scene
    scene.sim.data.qpos[scene.hinge_qpos] = 0.0
    scene.sim.forward()
    testing.settle(env, 5)
    assert task_env.is_success()
    testing.set_object(env, "coffee_pod", (-0.1, 0.2, 0.825))  # lid shut, pod on the table
    testing.settle(env, 5)
    assert lid_closed(task_env) and not task_env.is_success()


@pytest.mark.parametrize("control", ["abs", "delta"])
def test_expert_succeeds(control, make_env):
    success, steps = testing.expert_rollout(make_env("coffee_d2", control=control), seed=1)
    assert success and steps < 400


@pytest.mark.parametrize("task", TASKS)
def test_check_env(task, make_env):
    testing.assert_check_env(make_env(task, obs=("state",)))


def test_check_env_visual(make_env):
    testing.assert_check_env(make_env("coffee_d2", obs=("depth",), image_size=32))
