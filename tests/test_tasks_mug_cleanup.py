"""MugCleanup: seeding, success as MimicGen defines it, the planned expert, Gymnasium's checks."""

import numpy as np
import pytest

from equirobot_envs import testing
from equirobot_envs.drawer import LINK, drawer_qpos
from equirobot_envs.tasks.mug_cleanup import mug_stowed, upright

TASKS = ("mug_cleanup_d0", "mug_cleanup_d1")


@pytest.mark.parametrize("task", TASKS)
def test_same_seed_same_scene_drawer_shut(task, make_env):
    env = make_env(task)
    testing.assert_seeding(env)
    assert drawer_qpos(env.unwrapped) == pytest.approx(0.0, abs=1e-6)


def _mug_in_drawer(env, tilt: float = 0.0) -> None:
    task_env = env.unwrapped
    scene = task_env.scene
    testing.park_arm(env, 0.35)
    cabinet, rot = task_env.body_pose("drawer")
    tray = cabinet + rot @ (np.array(LINK) + [0, 0, -0.04 + 0.008 + 0.033])
    quat = (np.cos(tilt / 2), np.sin(tilt / 2), 0.0, 0.0)
    testing.set_object(env, "mug", tray, quat)
    scene.sim.forward()
    testing.settle(env, 15)


def test_success_needs_the_mug_upright_in_the_shut_drawer(make_env):
    env = make_env("mug_cleanup_d1")
    env.reset(seed=0)
    task_env = env.unwrapped
    assert not mug_stowed(task_env)
    _mug_in_drawer(env)
    assert upright(task_env, "mug_root") and task_env.is_success()
    _mug_in_drawer(env, tilt=np.pi / 2)  # lying on its side in the drawer
    assert not upright(task_env, "mug_root") and not task_env.is_success()


@pytest.mark.parametrize("control", ["abs", "delta"])
def test_expert_succeeds(control, make_env):
    success, steps = testing.expert_rollout(make_env("mug_cleanup_d1", control=control), seed=0)
    assert success and steps < 500


@pytest.mark.parametrize("task", TASKS)
def test_check_env(task, make_env):
    testing.assert_check_env(make_env(task, obs=("state",)))


def test_check_env_visual(make_env):
    testing.assert_check_env(make_env("mug_cleanup_d1", obs=("depth",), image_size=32))
