"""HammerCleanup: seeding, the drawer, success as MimicGen defines it, the planned expert, check_env."""

import numpy as np
import pytest

from equirobot_envs import testing
from equirobot_envs.drawer import LINK, drawer_qpos
from equirobot_envs.tasks.hammer_cleanup import hammer_stowed, hammer_stowed_zoo

TASKS = ("hammer_cleanup_d0", "hammer_cleanup_d1")


@pytest.mark.parametrize("task", TASKS)
def test_same_seed_same_scene_drawer_shut(task, make_env):
    env = make_env(task)
    testing.assert_seeding(env)
    assert drawer_qpos(env.unwrapped) == pytest.approx(0.0, abs=1e-6)
    assert env.unwrapped.body_pose("hammer")[0][2] < 0.95  # lying on the 0.9 m table


def test_drawer_fixture_pose_is_episode_meta(make_env):
    env = make_env("hammer_cleanup_d1")
    env.reset(seed=3)
    meta = env.unwrapped.episode_meta()
    pose = meta["fixtures"]["cabinet_main"]
    assert pose[2] == pytest.approx(0.905)
    env.reset(seed=4)
    env.unwrapped.set_episode_meta(meta)
    np.testing.assert_allclose(env.unwrapped.body_pose("drawer")[0], pose[:3])


def _stow(env, shut: bool) -> None:
    """Open the drawer, lay the hammer on its bottom, optionally shut it."""
    task_env = env.unwrapped
    scene = task_env.scene
    testing.park_arm(env, 0.35)
    joint = "cabinet_goal_slidey"
    scene.sim.data.set_joint_qpos(joint, -0.2)
    scene.sim.forward()
    cabinet, rot = task_env.body_pose("drawer")
    tray = cabinet + rot @ (np.array(LINK) + [0, -0.2, -0.04 + 0.008 + 0.016])
    quat = scene.sim.data.get_joint_qpos(scene.free_joints["hammer"])[3:]
    testing.set_object(env, "hammer", tray, quat)
    testing.settle(env, 15)
    if shut:
        scene.sim.data.set_joint_qpos(joint, 0.0)
        scene.sim.forward()
        hammer = scene.sim.data.get_joint_qpos(scene.free_joints["hammer"]).copy()
        testing.set_object(env, "hammer", hammer[:3] + rot @ [0, 0.2, 0.002], hammer[3:])
        testing.settle(env, 15)


@pytest.mark.parametrize("task", TASKS)
def test_success_needs_the_hammer_in_the_shut_drawer(task, make_env):
    env = make_env(task)
    env.reset(seed=0)
    check = hammer_stowed_zoo if task.endswith("d0") else hammer_stowed
    _stow(env, shut=False)
    assert not check(env.unwrapped) and not env.unwrapped.is_success()  # in, but the drawer is open
    _stow(env, shut=True)
    assert check(env.unwrapped) and env.unwrapped.is_success()


@pytest.mark.parametrize("control", ["abs", "delta"])
def test_expert_succeeds(control, make_env):
    success, steps = testing.expert_rollout(make_env("hammer_cleanup_d1", control=control), seed=0)
    assert success and steps < 500


@pytest.mark.parametrize("task", TASKS)
def test_check_env(task, make_env):
    testing.assert_check_env(make_env(task, obs=("state",)))


def test_check_env_visual(make_env):
    testing.assert_check_env(make_env("hammer_cleanup_d1", obs=("depth",), image_size=32))
