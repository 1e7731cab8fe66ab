"""Checks the task tests share: seeding, hand-set scenes, expert rollouts (for ``tests/test_tasks_*``)."""

from __future__ import annotations

import numpy as np
from gymnasium.utils.env_checker import check_env

from equirobot_envs.experts import ScriptedExpert


def assert_seeding(env, seeds: tuple[int, int] = (7, 8)) -> None:
    """The same seed gives the same scene (objects and robot), another seed another scene."""
    first, _ = env.reset(seed=seeds[0])
    other, _ = env.reset(seed=seeds[1])
    again, _ = env.reset(seed=seeds[0])
    np.testing.assert_array_equal(first["object"], again["object"])
    np.testing.assert_array_equal(first["robot0_eef_pos"], again["robot0_eef_pos"])
    assert not np.allclose(first["object"], other["object"])
    assert env.observation_space.contains(first)


def set_object(env, name: str, pos, quat_wxyz=(1.0, 0.0, 0.0, 0.0)) -> None:
    """Put a movable object of the task (key of ``TaskSpec.objects``) at a pose, at rest."""
    scene = env.unwrapped.scene
    joint = scene.free_joints[name]
    scene.sim.data.set_joint_qpos(joint, np.concatenate([pos, quat_wxyz]))
    scene.sim.data.set_joint_qvel(joint, np.zeros(6))
    scene.sim.forward()


def settle(env, steps: int = 10) -> None:
    """Let physics run with the arm held where it is and the gripper open."""
    task_env = env.unwrapped
    pos, rot = task_env.eef_pose()
    for _ in range(steps):
        task_env.step(task_env.pose_to_action(pos, rot, -1.0))


def park_arm(env, height: float = 0.25) -> None:
    """Raise the gripper ``height`` above the table (away from the objects), gripper open."""
    task_env = env.unwrapped
    pos, rot = task_env.eef_pose()
    target = np.array([pos[0], pos[1], task_env.workspace.center[2] + height])
    for _ in range(40):
        task_env.step(task_env.pose_to_action(target, rot, -1.0))


def expert_rollout(env, seed: int) -> tuple[bool, int]:
    """Run the task's scripted expert for one episode; returns (success, steps)."""
    expert = ScriptedExpert(env)
    obs, _ = env.reset(seed=seed)
    expert.reset()
    steps = 0
    while True:
        obs, _, terminated, truncated, info = env.step(expert.act(obs))
        steps += 1
        if terminated or truncated:
            return bool(info["is_success"]), steps


def assert_check_env(env) -> None:
    """Gymnasium's own API checks."""
    check_env(env.unwrapped, skip_render_check=True)
