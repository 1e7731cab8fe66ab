"""The open-loop pick-and-place task (Equivariant Q Learning in Spatial Action Spaces) on the gantry."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import equirobot_envs
from equirobot.symmetry import transforms as T
from equirobot.symmetry.group import SceneSymmetry
from equirobot_envs.closed_loop import WORKSPACE, quarter_turn_xy, rotate_scene
from equirobot_envs.config import EnvConfig
from equirobot_envs.experts import ScriptedExpert, top_down
from equirobot_envs.features import CONTROL_MODES
from equirobot_envs.open_loop import SAFE_HEIGHT, OpenLoopEnv, rotate_action
from equirobot_envs.registry import OPEN_LOOP
from equirobot_envs.testing import assert_check_env, expert_rollout

TASK = "block_stacking_pick_place"
ID = "equirobot/BlockStackingPickPlace-v0"


def test_registered_with_ten_primitives_and_its_modes_by_default():
    assert [name for name, *_ in OPEN_LOOP] == [TASK] == list(equirobot_envs.open_loop_specs())
    spec = equirobot_envs.get_task(TASK)
    assert spec.env_id == ID and equirobot_envs.get_task(ID).config_name == TASK
    assert gym.spec(ID).max_episode_steps == 10
    assert gym.spec(ID).entry_point == "equirobot_envs.open_loop:OpenLoopEnv"
    cfg = EnvConfig(task=TASK)
    assert (cfg.obs, cfg.control) == (["workspace_heightmap"], "pick_place")
    with pytest.raises(ValueError, match="block_stacking_pick_place"):
        EnvConfig(task=TASK, obs=["gripper_heightmap"])
    with pytest.raises(ValueError, match="pick_place"):
        EnvConfig(task=TASK, control="closed_loop")
    with pytest.raises(ValueError, match="block_stacking"):
        EnvConfig(task="block_stacking", control="pick_place")


def test_check_env(make_env):
    assert_check_env(make_env(TASK))


def test_reset_seeding_and_observation(make_env):
    env = make_env(TASK)
    first, info = env.reset(seed=7)
    other, _ = env.reset(seed=8)
    again, _ = env.reset(seed=7)
    assert info == {"is_success": False} and env.observation_space.contains(first)
    hm = first["workspace_heightmap"]
    np.testing.assert_array_equal(hm, again["workspace_heightmap"])
    assert not np.array_equal(hm, other["workspace_heightmap"])
    assert hm.shape == (64, 64) and first["holding"].tolist() == [0.0]
    # two 5 cm blocks, nothing else: the gripper above them is not drawn
    assert hm.max() == pytest.approx(0.05, abs=1e-4)
    blocks = (hm > 0.04).sum() * (0.4 / 64) ** 2
    assert 0.8 * 2 * 0.05**2 < blocks < 1.3 * 2 * 0.05**2
    np.testing.assert_allclose(first["robot0_eef_pos"], [0, 0, SAFE_HEIGHT], atol=1e-9)


def test_heightmap_is_metric_and_world_aligned(make_env):
    env = make_env(TASK)
    env.reset(seed=0)
    task_env: OpenLoopEnv = env.unwrapped
    task_env.scene.set_free_pose("block_a", np.array([0.1, 0.05, 0.025]), 0.0)  # right of and above centre
    task_env.scene.set_free_pose("block_b", np.array([-0.1, -0.1, 0.025]), 0.0)
    task_env.set_state(task_env.get_state())
    hm = task_env.observe()["workspace_heightmap"]
    pixel = 2 * WORKSPACE.half_size / 64
    col, row = int((0.1 + 0.2) / pixel), int((0.2 - 0.05) / pixel)
    assert hm[row, col] == pytest.approx(0.05, abs=1e-4) and hm[row - 6, col] == pytest.approx(0.0, abs=1e-4)


def test_the_expert_stacks_in_two_primitives_and_success_is_rewarded_and_terminates(make_env):
    env = make_env(TASK)
    for seed in range(3):
        assert expert_rollout(env, seed) == (True, 2), seed
    expert = ScriptedExpert(env)
    obs, _ = env.reset(seed=5)
    expert.reset()
    obs, reward, terminated, truncated, info = env.step(expert.act(obs))
    assert (reward, terminated, obs["holding"].tolist()) == (0.0, False, [1.0])  # picked
    assert info["action_abs"].shape == (10,) and info["action_abs"][9] == 1.0
    obs, reward, terminated, truncated, info = env.step(expert.act(obs))
    assert (reward, terminated, truncated, info["is_success"]) == (1.0, True, False, True)
    assert obs["holding"].tolist() == [0.0]


def test_a_pick_beside_the_blocks_holds_nothing_and_the_episode_truncates_at_ten(make_env):
    env = make_env(TASK)
    obs, _ = env.reset(seed=0)
    corner = np.array([0.95, 0.95, 0.0], np.float32)  # no block starts beyond 0.15 m of the centre
    for t in range(10):
        obs, reward, terminated, truncated, _ = env.step(corner)
        assert obs["holding"].tolist() == [0.0] and reward == 0.0 and not terminated
        assert truncated == (t == 9)
    np.testing.assert_allclose(obs["robot0_eef_pos"][:2], [0.19, 0.19], atol=2e-3)


def test_actions_map_to_the_workspace_and_the_half_turn():
    env = gym.make(ID)
    task_env: OpenLoopEnv = env.unwrapped
    xy, yaw = task_env.action_point(np.array([1.0, -0.5, -1.0]))
    np.testing.assert_allclose(xy, [0.2, -0.1])
    assert yaw == 0.0
    assert task_env.action_point(np.array([0, 0, 0.0]))[1] == pytest.approx(np.pi / 2)
    assert task_env.action_point(np.array([0, 0, 1.0]))[1] == 0.0  # theta = 1 is yaw pi, the same grasp
    action = task_env.pose_to_action(np.array([0.05, 0.1, 0.3]), top_down(-np.pi / 4), 1.0)
    np.testing.assert_allclose(action, [0.25, 0.5, 0.5])  # yaw -pi/4 is 3 pi / 4
    env.close()


@pytest.mark.parametrize("k", [1, 2, 3])
def test_rotate_action_is_the_declared_group_action(k):
    rng = np.random.default_rng(k)
    action = rng.uniform(-1, 1, (20, 3))
    sym = SceneSymmetry.from_name("C4")
    g = next(e for e in sym.elements if abs(sym.angle(e) - k * np.pi / 2) % (2 * np.pi) < 1e-9)
    declared = T.act_on_quantities(
        sym, g, torch.from_numpy(action), CONTROL_MODES["pick_place"].quantities, (0.0, 0.0, 0.0)
    )
    turned = rotate_action(action, k)
    np.testing.assert_allclose(turned, declared.numpy(), atol=1e-12)
    assert (np.abs(turned[:, 2]) <= 1).all()
    np.testing.assert_allclose(rotate_action(rotate_action(action, k), 4 - k), action, atol=1e-12)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_a_turned_scene_gives_the_turned_heightmap_and_the_turned_action_the_turned_outcome(k, make_env):
    env = make_env(TASK)
    task_env: OpenLoopEnv = env.unwrapped
    expert = ScriptedExpert(env)
    obs, _ = env.reset(seed=4)
    expert.reset()
    for _ in range(2):  # the pick, then (holding) the place
        action = expert.act(obs)
        state = task_env.get_state()
        next_obs, reward, *_ = env.step(action)
        poses = {b: task_env.body_pose(b)[0] for b in task_env.task.objects}
        eef = task_env.eef_pose()[0]

        task_env.set_state(state)
        rotate_scene(env, k)
        turned = task_env.observe()
        np.testing.assert_allclose(
            turned["workspace_heightmap"], np.rot90(obs["workspace_heightmap"], k), atol=1e-5
        )
        np.testing.assert_array_equal(turned["holding"], obs["holding"])
        turned_next, turned_reward, *_ = env.step(rotate_action(action, k))
        np.testing.assert_allclose(
            turned_next["workspace_heightmap"], np.rot90(next_obs["workspace_heightmap"], k), atol=1e-4
        )
        assert turned_reward == reward and turned_next["holding"] == next_obs["holding"]
        np.testing.assert_allclose(task_env.eef_pose()[0][:2], quarter_turn_xy(eef[:2], k), atol=1e-5)
        for body, pos in poses.items():
            np.testing.assert_allclose(
                task_env.body_pose(body)[0][:2], quarter_turn_xy(pos[:2], k), atol=1e-4
            )
            assert task_env.body_pose(body)[0][2] == pytest.approx(pos[2], abs=1e-4)
        # not trivially so: the heightmap is not symmetric by itself
        assert np.abs(np.rot90(obs["workspace_heightmap"], k) - obs["workspace_heightmap"]).max() > 0.04
        task_env.set_state(state)
        obs, *_ = env.step(action)
    assert reward == 1.0


def test_non_finite_actions_are_refused_or_skipped(make_env):
    env = make_env(TASK)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="non-finite"):
        env.step(np.array([np.nan, 0, 0], np.float32))
    env = make_env(TASK, nonfinite_action="hold")
    obs, _ = env.reset(seed=0)
    state = env.unwrapped.get_state()
    skipped, _, _, _, info = env.step(np.array([0, np.inf, 0], np.float32))
    assert info["nonfinite_action"] and np.array_equal(
        skipped["workspace_heightmap"], obs["workspace_heightmap"]
    )
    np.testing.assert_array_equal(env.unwrapped.get_state()[1:], state[1:])  # nothing moved
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(5, np.float32))


def test_equirobot_tasks_lists_it(capsys):
    from equirobot.commands.tasks import run
    from equirobot.config import TasksConfig

    run(TasksConfig())
    out = capsys.readouterr().out
    assert TASK in out and ID in out
