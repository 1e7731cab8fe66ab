"""The closed-loop RL tasks (SO(2)-equivariant RL, BulletArm) on the gantry gripper."""

import gymnasium as gym
import numpy as np
import pytest

import equirobot_envs
from equirobot_envs.closed_loop import (
    HEIGHTMAP_SPAN,
    WORKSPACE,
    ClosedLoopEnv,
    quarter_turn_xy,
    rotate_action,
    rotate_scene,
)
from equirobot_envs.config import EnvConfig
from equirobot_envs.experts import ScriptedExpert
from equirobot_envs.registry import CATALOGUE, CLOSED_LOOP
from equirobot_envs.testing import assert_check_env, expert_rollout

TASKS = list(equirobot_envs.closed_loop_specs())


def test_registered_with_ids_without_variant():
    assert [name for name, *_ in CLOSED_LOOP] == TASKS
    assert TASKS[:2] == ["block_picking", "block_pulling"]
    for name, spec in equirobot_envs.closed_loop_specs().items():
        assert spec.variant == "" and spec.config_name == name
        assert spec.env_id == "equirobot/" + spec.name + "-v0"
        assert gym.spec(spec.env_id).max_episode_steps == 100
        assert gym.spec(spec.env_id).entry_point == "equirobot_envs.closed_loop:ClosedLoopEnv"
        assert equirobot_envs.get_task(spec.env_id) is spec or equirobot_envs.get_task(spec.env_id) == spec
    assert not set(TASKS) & set(equirobot_envs.task_specs())  # the MimicGen catalogue is unchanged
    assert len(CATALOGUE) == 25 and equirobot_envs.get_task("stack_d1").env_id == "equirobot/Stack-D1-v0"


def test_env_config_defaults_and_refusals():
    cfg = EnvConfig(task="block_pulling")
    assert (cfg.obs, cfg.control) == (["gripper_heightmap"], "closed_loop")
    for kwargs in ({"obs": ["state"], "control": "delta"}, {"obs": ["heightmap"]}, {"obs": []}):
        with pytest.raises(ValueError, match="block_pulling"):
            EnvConfig(task="block_pulling", **kwargs)
    with pytest.raises(ValueError, match="gripper_heightmap"):
        EnvConfig(task="stack_d1", obs=["gripper_heightmap"])
    with pytest.raises(ValueError, match="closed_loop"):
        EnvConfig(task="stack_d1", control="closed_loop")


@pytest.mark.parametrize("task", TASKS)
def test_check_env(task, make_env):
    assert_check_env(make_env(task))


@pytest.mark.parametrize("task", TASKS)
def test_seeding_and_observation(task, make_env):
    env = make_env(task)
    first, _ = env.reset(seed=7)
    other, _ = env.reset(seed=8)
    again, _ = env.reset(seed=7)
    assert env.observation_space.contains(first)
    np.testing.assert_array_equal(first["gripper_heightmap"], again["gripper_heightmap"])
    assert not np.array_equal(first["gripper_heightmap"], other["gripper_heightmap"])
    assert first["gripper_heightmap"].shape == (64, 64) and first["holding"].tolist() == [0.0]
    np.testing.assert_allclose(first["robot0_eef_pos"], [0, 0, 0.2], atol=1e-9)  # fixed start, open
    np.testing.assert_allclose(first["robot0_gripper_qpos"], [0.04, -0.04])


def test_heightmap_is_metric_and_world_aligned(make_env):
    env = make_env("block_picking", heightmap_size=128)
    env.reset(seed=0)
    task_env = env.unwrapped
    eef = task_env.eef_pose()[0]
    block = np.array([eef[0] + 0.1, eef[1] + 0.05, 0.025])  # right of and above the gripper in the image
    task_env.scene.set_free_pose("block", block, 0.0)
    task_env.set_state(task_env.get_state())
    hm = task_env.observe()["gripper_heightmap"]
    pixel = HEIGHTMAP_SPAN / 128
    col = int((block[0] - eef[0] + HEIGHTMAP_SPAN / 2) / pixel)
    row = int((HEIGHTMAP_SPAN / 2 - (block[1] - eef[1])) / pixel)
    np.testing.assert_allclose(hm[row, col], 0.05, atol=1e-4)
    assert hm[row - 8, col] == pytest.approx(0.0, abs=1e-4)  # 2.5 cm beyond the block's +y face: table
    # The fingers (open, 8 cm apart along y at yaw 0) stand up to 3.5 cm above the 0.2 m high site.
    assert hm[:, 64].max() == pytest.approx(0.235, abs=1e-4) and hm[64, 64] == pytest.approx(0.0, abs=1e-4)


@pytest.mark.parametrize("task", TASKS)
def test_expert_succeeds_and_success_terminates(task, make_env):
    env = make_env(task)
    for seed in range(3):
        success, steps = expert_rollout(env, seed)
        assert success and steps < 60, (seed, steps)
    # The last step of an expert episode is the first success: reward 1, terminated.
    expert = ScriptedExpert(env)
    obs, _ = env.reset(seed=0)
    expert.reset()
    rewards = []
    while True:
        obs, reward, terminated, truncated, info = env.step(expert.act(obs))
        rewards.append(reward)
        if terminated or truncated:
            break
    assert terminated and info["is_success"] and rewards[-1] == 1.0 and set(rewards[:-1]) <= {0.0}


def test_episode_truncates_at_100_steps(make_env):
    env = make_env("block_picking")
    env.reset(seed=0)
    for t in range(100):
        _, reward, terminated, truncated, _ = env.step(np.zeros(5, np.float32))
        assert reward == 0.0 and not terminated and truncated == (t == 99)


def test_actions_move_by_the_declared_scale(make_env):
    env = make_env("block_picking")
    env.reset(seed=0)
    task_env = env.unwrapped
    start = task_env.eef_pose()[0]
    env.step(np.array([-1, 1, -0.5, -1, 0], np.float32))
    np.testing.assert_allclose(task_env.eef_pose()[0] - start, [0.05, -0.025, -0.05], atol=1.5e-3)
    for _ in range(10):  # clipped to the workspace
        env.step(np.array([-1, 1, 1, 1, 1], np.float32))
    pos = task_env.eef_pose()[0]
    np.testing.assert_allclose(pos, WORKSPACE.high, atol=1.5e-3)


def _mid_episode(env, steps: int):
    expert = ScriptedExpert(env)
    obs, _ = env.reset(seed=4)
    expert.reset()
    for _ in range(steps):
        obs, *_ = env.step(expert.act(obs))
    return obs


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("k", [1, 2, 3])
def test_quarter_turns_rotate_heightmap_and_dynamics(task, k, make_env):
    env = make_env(task)
    task_env: ClosedLoopEnv = env.unwrapped
    obs = _mid_episode(env, 5)
    state = task_env.get_state()
    action = np.array([0.3, 0.8, -0.4, -0.3, 0.5], np.float32)
    next_obs, *_ = env.step(action)
    next_poses = {b: task_env.body_pose(b)[0] for b in task_env.task.objects}

    task_env.set_state(state)
    rotate_scene(env, k)
    turned = task_env.observe()
    np.testing.assert_allclose(turned["gripper_heightmap"], np.rot90(obs["gripper_heightmap"], k), atol=1e-3)
    np.testing.assert_array_equal(turned["holding"], obs["holding"])
    np.testing.assert_allclose(turned["robot0_gripper_qpos"], obs["robot0_gripper_qpos"], atol=1e-7)
    np.testing.assert_allclose(
        turned["robot0_eef_pos"][:2], quarter_turn_xy(obs["robot0_eef_pos"][:2], k), atol=1e-6
    )

    turned_next, *_ = env.step(rotate_action(action, k))
    heightmap_error = np.abs(turned_next["gripper_heightmap"] - np.rot90(next_obs["gripper_heightmap"], k))
    assert heightmap_error.max() < 1e-3
    np.testing.assert_allclose(
        turned_next["robot0_eef_pos"][:2], quarter_turn_xy(next_obs["robot0_eef_pos"][:2], k), atol=1e-4
    )
    for body, pos in next_poses.items():
        np.testing.assert_allclose(task_env.body_pose(body)[0][:2], quarter_turn_xy(pos[:2], k), atol=1e-4)


def test_holding_while_grasped(make_env):
    env = make_env("block_picking")
    obs = _mid_episode(env, 12)
    # The expert's episode ends with the block lifted in the closed fingers.
    assert obs["holding"].tolist() == [1.0] or env.unwrapped.is_success()


def test_equirobot_tasks_lists_them(capsys):
    from equirobot.commands.tasks import run
    from equirobot.config import TasksConfig

    run(TasksConfig())
    out = capsys.readouterr().out
    for spec in equirobot_envs.closed_loop_specs().values():
        assert spec.config_name in out and spec.env_id in out


def test_recorded_expert_episode_replays(make_env):
    """What ``equirobot collect`` stores (SACfD's demonstrations) replays from the states."""
    from equirobot.evaluation.episode import run_episode

    env = make_env("block_picking")
    episode = run_episode(env, ScriptedExpert(env), seed=2, record=True)
    traj = episode.trajectory
    assert episode.success and traj is not None and "<mujoco" in episode.model_xml
    steps = episode.steps
    assert traj["actions"].shape == (steps, 5) and traj["actions_abs"].shape == (steps, 10)
    assert traj["obs/gripper_heightmap"].shape == (steps, 64, 64) and traj["rewards"][-1] == 1.0
    task_env = env.unwrapped
    task_env.set_state(traj["states"][5])
    np.testing.assert_array_equal(task_env.observe()["gripper_heightmap"], traj["obs/gripper_heightmap"][5])
