import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import equirobot_envs
from equirobot_envs.base import TaskEnv
from equirobot_envs.experts import DOWN, ScriptedExpert
from equirobot_envs.features import family_modes
from equirobot_envs.geometry import mat_to_rot6d, rot_z

TASKS = list(equirobot_envs.task_specs())
# The tasks whose experts are tested here on seeds 0 and 1; the planned experts of the other tasks are
# tested on a fixed seed in their own tests/test_tasks_<name>.py.
EXPERT_TASKS = ["stack_d0", "stack_d1", "square_d0", "square_d2", "nut_assembly_d0", "pick_place_d0"]


def test_every_task_is_registered_with_its_horizon():
    for name, spec in equirobot_envs.task_specs().items():
        assert gym.spec(spec.env_id).max_episode_steps == spec.horizon
        assert equirobot_envs.get_task(spec.env_id) is not None
        assert name == spec.config_name


@pytest.mark.parametrize("task", TASKS)
def test_check_env(task, make_env):
    env = make_env(task, obs=("state",))
    check_env(env.unwrapped, skip_render_check=True)


@pytest.mark.parametrize("task", TASKS)
def test_same_seed_same_scene(task, make_env):
    env = make_env(task)
    first, _ = env.reset(seed=7)
    other, _ = env.reset(seed=8)
    again, _ = env.reset(seed=7)
    np.testing.assert_array_equal(first["object"], again["object"])
    np.testing.assert_array_equal(first["robot0_eef_pos"], again["robot0_eef_pos"])
    assert not np.allclose(first["object"], other["object"])


def test_seeded_rollouts_are_identical(make_env):
    env = make_env("stack_d1", control="delta")
    trajectories = []
    for _ in range(2):
        obs, _ = env.reset(seed=3)
        states = [obs["object"]]
        for t in range(20):
            obs, *_ = env.step(np.array([0.3, -0.2, -0.5, 0, 0, 0.1, 1.0 if t > 10 else -1.0]))
            states.append(obs["object"])
        trajectories.append(np.stack(states))
    np.testing.assert_array_equal(*trajectories)


def test_truncates_at_the_horizon(make_env):
    env = make_env("stack_d1", control="delta")
    env.reset(seed=0)
    hold = np.zeros(7, dtype=np.float32)
    for _ in range(env.spec.max_episode_steps - 1):
        _, _, terminated, truncated, info = env.step(hold)
        assert not (terminated or truncated)
    _, _, terminated, truncated, info = env.step(hold)
    assert truncated and not terminated and info["is_success"] is False


def test_observation_modes_shapes_dtypes_ranges(make_env):
    env = make_env(
        "stack_d1",
        obs=family_modes("mimicgen")[0],
        image_size=64,
        n_points=512,
        voxel_size=32,
        heightmap_size=48,
    )
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    expected = {
        "robot0_eef_pos": ((3,), np.float32),
        "robot0_eef_quat": ((4,), np.float32),
        "robot0_gripper_qpos": ((2,), np.float32),
        "object": ((14,), np.float32),
        "agentview_image": ((64, 64, 3), np.uint8),
        "robot0_eye_in_hand_image": ((64, 64, 3), np.uint8),
        "agentview_depth": ((64, 64, 1), np.float32),
        "robot0_eye_in_hand_depth": ((64, 64, 1), np.float32),
        "point_cloud": ((512, 6), np.float32),
        "voxels": ((4, 32, 32, 32), np.uint8),
        "heightmap": ((48, 48), np.float32),
    }
    assert {k: (v.shape, v.dtype) for k, v in obs.items()} == expected
    np.testing.assert_allclose(np.linalg.norm(obs["robot0_eef_quat"]), 1.0, atol=1e-5)
    # Images show a lit scene, not a blank frame; depth is finite and within a few metres.
    assert obs["agentview_image"].std() > 10
    assert np.all(np.isfinite(obs["agentview_depth"])) and 0.1 < obs["agentview_depth"].min() < 3.0


def _cube_poses(obs):
    return obs["object"][0:3], obs["object"][7:10]  # cubeA (4 cm), cubeB (5 cm)


def test_point_cloud_sees_the_cubes_in_colour(make_env):
    env = make_env("stack_d1", obs=("state", "point_cloud"))
    obs, _ = env.reset(seed=0)
    cloud = obs["point_cloud"]
    ws = env.unwrapped.workspace
    assert np.all(cloud[:, :3] >= ws.low) and np.all(cloud[:, :3] < ws.high)
    assert len(np.unique(cloud[:, :3], axis=0)) == len(cloud)  # enough points: no padding needed
    for cube, half, channel in zip(_cube_poses(obs), (0.02, 0.025), (0, 1), strict=True):
        near = np.all(np.abs(cloud[:, :3] - cube) < half + 0.004, axis=1)
        assert near.sum() >= 5, "the cube is visible in the cloud"
        colours = cloud[near, 3:].mean(axis=0)
        assert colours[channel] == colours.max(), f"cubeA looks red, cubeB green; got {colours}"


def test_voxels_and_heightmap_match_the_scene(make_env):
    env = make_env("stack_d1", obs=("state", "voxels", "heightmap"), voxel_size=64, heightmap_size=120)
    obs, _ = env.reset(seed=0)
    ws = env.unwrapped.workspace
    side = 2 * ws.half_size
    for cube, half in zip(_cube_poses(obs), (0.02, 0.025), strict=True):
        index = ((cube - ws.low) / side * 64).astype(int)
        assert obs["voxels"][0][tuple(index)] == 0  # the inside of a cube is not seen...
        top = ((cube + [0, 0, half - 0.002] - ws.low) / side * 64).astype(int)
        assert (
            obs["voxels"][0][top[0] - 1 : top[0] + 2, top[1] - 1 : top[1] + 2, top[2]].max() == 255
        )  # its top is
        # Heightmap: image right = +x, image up = +y. (At reset the cubes still hover 1 cm up.)
        col = int((cube[0] - ws.low[0]) / side * 120)
        row = int((ws.high[1] - cube[1]) / side * 120)
        assert obs["heightmap"][row, col] == pytest.approx(cube[2] + half - ws.center[2], abs=0.003)
    assert np.median(obs["heightmap"]) < 0.002  # mostly bare table


def test_images_are_upright(make_env):
    """In agentview the table fills the bottom of the frame, the room's backdrop the top."""
    env = make_env("stack_d1", obs=("depth",))
    obs, _ = env.reset(seed=0)
    depth = obs["agentview_depth"][..., 0]
    assert depth[-10:].mean() < depth[:10].mean()


@pytest.mark.parametrize("control", ["abs", "delta"])
def test_control_reaches_a_target_pose(control, make_env):
    env = make_env("stack_d0", control=control)
    env.reset(seed=0)
    task_env: TaskEnv = env.unwrapped
    start, _ = task_env.eef_pose()
    target_pos = start + np.array([0.08, -0.06, -0.05])
    target_rot = rot_z(0.4) @ DOWN
    for _ in range(80):
        env.step(task_env.pose_to_action(target_pos, target_rot, -1.0))
    pos, rot = task_env.eef_pose()
    assert np.linalg.norm(pos - target_pos) < 0.005
    angle = np.arccos(np.clip((np.trace(rot.T @ target_rot) - 1) / 2, -1, 1))
    assert angle < np.deg2rad(2)


def test_abs_action_is_world_frame_rot6d(make_env):
    env = make_env("stack_d0", control="abs")
    env.reset(seed=0)
    pos, rot = env.unwrapped.eef_pose()
    action = env.unwrapped.pose_to_action(pos, rot, 1.0)
    assert action.shape == (10,)
    np.testing.assert_allclose(action[3:9], mat_to_rot6d(rot), atol=1e-6)


@pytest.mark.parametrize("control", ["abs", "delta"])
@pytest.mark.parametrize("task", EXPERT_TASKS)
def test_expert_succeeds(task, control, make_env):
    env = make_env(task, control=control)
    expert = ScriptedExpert(env)
    for seed in (0, 1):
        obs, _ = env.reset(seed=seed)
        expert.reset()
        while True:
            obs, _, terminated, truncated, info = env.step(expert.act(obs))
            if terminated or truncated:
                break
        assert info["is_success"], f"{task} {control} seed {seed}"


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="valid tasks: .*stack_d1"):
        TaskEnv("stack_d9")
    with pytest.raises(ValueError, match="valid modes: .*point_cloud"):
        TaskEnv("stack_d1", obs=("pointcloud",))
    with pytest.raises(ValueError, match=r"valid modes: \['abs', 'delta'\]"):
        TaskEnv("stack_d1", control="velocity")
    with pytest.raises(ValueError, match="n_points must be positive"):
        TaskEnv("stack_d1", obs=("point_cloud",), n_points=0)
    with pytest.raises(ValueError, match="unknown camera"):
        TaskEnv("stack_d1", point_cloud_cameras=("nocam",))


def test_wrong_action_shape_is_refused(make_env):
    env = make_env("stack_d1", control="abs")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"expected \(10,\)"):
        env.step(np.zeros(7))


def test_async_vector_env_with_spawn():
    envs = gym.make_vec(
        "equirobot/Stack-D1-v0",
        num_envs=2,
        vectorization_mode="async",
        vector_kwargs={"context": "spawn"},
        obs=("state", "point_cloud"),
        n_points=256,
    )
    try:
        obs, _ = envs.reset(seed=[0, 1])
        assert obs["point_cloud"].shape == (2, 256, 6)
        assert not np.allclose(obs["object"][0], obs["object"][1])
        obs, reward, terminated, truncated, info = envs.step(envs.action_space.sample())
        assert obs["object"].shape == (2, 14) and reward.shape == (2,)
    finally:
        envs.close()


@pytest.mark.parametrize("control", ["abs", "delta"])
def test_non_finite_actions_never_reach_the_controller(control, make_env):
    """By default a NaN action is refused with an error; with nonfinite_action="hold" the last valid
    target is held and info says so. Either way robosuite's controls stay finite."""
    env = make_env("stack_d1", control=control)
    obs, _ = env.reset(seed=0)
    bad = env.action_space.sample()
    bad[1] = np.nan
    with pytest.raises(ValueError, match="non-finite action"):
        env.step(bad)
    assert np.isfinite(env.unwrapped.scene.sim.data.ctrl).all()

    env = make_env("stack_d1", control=control, nonfinite_action="hold")
    obs, _ = env.reset(seed=0)
    start = env.unwrapped.eef_pose()[0]
    still = env.unwrapped.pose_to_action(*env.unwrapped.eef_pose(), -1.0)
    for t in range(40):
        _, _, _, _, info = env.step(bad if t == 5 else still)
        assert info["nonfinite_action"] == (t == 5)
        assert np.isfinite(env.unwrapped.scene.sim.data.ctrl).all()
    assert abs(env.unwrapped.eef_pose()[0][2] - start[2]) < 0.01  # the arm did not sag
