"""The shared planner: reachability refused clearly, approaches clear of the scene, the grasp check."""

import numpy as np
import pytest

from equirobot_envs import testing
from equirobot_envs.experts import DOWN
from equirobot_envs.planner import CLEARANCE, Pick, Planner, PlanningError, body_geoms, grasped, pose


@pytest.fixture
def env(make_env):
    env = make_env("stack_three_d0")
    env.reset(seed=0)
    return env


def test_unreachable_target_is_refused_with_a_clear_error(env):
    testing.set_object(env, "cubeA", (1.6, 0.0, 0.82))  # far beyond the Panda's 0.86 m reach
    planner = Planner(env.unwrapped)
    assert planner.reach(pose((1.6, 0.0, 0.82), DOWN)) is None
    step = Pick("cubeA", (pose((0, 0, 0), DOWN),), symmetry=4)
    with pytest.raises(PlanningError, match=r"pick 'cubeA': none of \d+ candidate poses is reachable"):
        next(step.waypoints(env.unwrapped, planner))


def test_reachable_pose_is_reached_by_ik(env):
    planner = Planner(env.unwrapped)
    target = pose((0.1, -0.1, 0.9), DOWN)
    q = planner.reach(target)
    assert q is not None
    assert np.all(q >= planner.low) and np.all(q <= planner.high)


def test_chosen_approach_is_collision_free(env):
    """Cube B touches cube A's side: of A's grasps, the planner takes one whose fingers miss B."""
    task_env = env.unwrapped
    testing.park_arm(env)
    testing.set_object(env, "cubeA", (0.0, 0.0, 0.82))
    testing.set_object(env, "cubeB", (0.0, 0.047, 0.825))  # 2 mm gap along y
    testing.set_object(env, "cubeC", (0.2, -0.2, 0.82))
    planner = Planner(task_env)
    step = Pick("cubeA", (pose((0, 0, 0), DOWN),), symmetry=4, tilts=(0.0,))  # upright grasps only
    ignore = body_geoms(task_env, "cubeA")
    clearances = {}
    for _, path in step.candidates(task_env):
        q = planner.reach(path[-1])
        opening = path[-1][:3, 0]  # the fingers open along the gripper's x axis
        clearances.setdefault(abs(round(opening[1])), []).append(planner.clearance(q, ignore=ignore))
    # Fingers opening along y would sink into B; along x they clear it.
    assert max(clearances[1]) < 0 < CLEARANCE < min(clearances[0])
    waypoints = step.waypoints(task_env, planner)
    first = next(waypoints)
    assert abs(first.rot[1, 0]) < 0.1  # the chosen grasp opens along world x, away from B


def test_grasped_needs_both_pads(env):
    task_env = env.unwrapped
    testing.park_arm(env)
    assert not grasped(task_env, "cubeA")
    pos, _ = task_env.body_pose("cubeA")
    rot = DOWN
    for gripper, steps in ((-1.0, 80), (1.0, 15)):
        for _ in range(steps):
            target = pos if gripper > 0 else pos + [0, 0, 0.0]
            env.step(task_env.pose_to_action(target, rot, gripper))
    assert grasped(task_env, "cubeA")
