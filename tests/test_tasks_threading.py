"""Threading: seeding, success as MimicGen defines it, the planned expert, Gymnasium's checks."""

import numpy as np
import pytest

from equirobot_envs import testing
from equirobot_envs.geometry import rot_z
from equirobot_envs.tasks.threading import RING_CENTRE, SHAFT_CENTRE, threaded

TASKS = ("threading_d0", "threading_d1", "threading_d2")


@pytest.mark.parametrize("task", TASKS)
def test_same_seed_same_scene(task, make_env):
    testing.assert_seeding(make_env(task))


def test_ring_has_twenty_cells_around_a_hole(make_env):
    env = make_env("threading_d0")
    env.reset(seed=0)
    scene = env.unwrapped.scene
    cells = scene.sim.data.geom_xpos[scene.ring_geoms]
    tripod, _ = env.unwrapped.body_pose("tripod")
    np.testing.assert_allclose(cells.mean(axis=0), tripod + [0, 0, RING_CENTRE[2]], atol=2e-3)
    assert cells[:, 2].mean() == pytest.approx(0.8 + 0.19, abs=0.01)  # the ring 0.19 m above the table


def _needle_at(env, offset: float) -> None:
    """The needle along the ring's axis, its shaft centre ``offset`` metres from the ring's centre."""
    task_env = env.unwrapped
    testing.park_arm(env)
    tripod_pos, tripod_rot = task_env.body_pose("tripod")
    ring = tripod_pos + tripod_rot @ RING_CENTRE
    rot = tripod_rot @ rot_z(-np.pi / 2)  # the needle's y along the tripod's x
    pos = ring + tripod_rot[:, 0] * offset - rot @ SHAFT_CENTRE
    yaw = np.arctan2(rot[1, 0], rot[0, 0])
    testing.set_object(env, "needle", pos, (np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)))


def test_success_is_the_shaft_through_the_ring(make_env):
    env = make_env("threading_d0")
    env.reset(seed=0)
    _needle_at(env, 0.0)
    assert threaded(env.unwrapped) and env.unwrapped.is_success()
    _needle_at(env, 0.03)
    assert not threaded(env.unwrapped)


@pytest.mark.parametrize("control", ["abs", "delta"])
def test_expert_succeeds(control, make_env):
    success, steps = testing.expert_rollout(make_env("threading_d2", control=control), seed=1)
    assert success and steps < 400


@pytest.mark.parametrize("task", TASKS)
def test_check_env(task, make_env):
    testing.assert_check_env(make_env(task, obs=("state",)))


def test_check_env_visual(make_env):
    testing.assert_check_env(make_env("threading_d2", obs=("depth",), image_size=32))
