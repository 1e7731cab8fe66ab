"""The Gymnasium environment that every equirobot task runs in."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from robosuite.controllers import load_composite_controller_config

from equirobot_envs.config import EnvConfig
from equirobot_envs.features import DELTA_POS_SCALE, DELTA_ROT_SCALE, control_mode, mode_features
from equirobot_envs.geometry import mat_to_axis_angle, mat_to_quat, mat_to_rot6d, rot6d_to_mat
from equirobot_envs.observations import SceneObserver
from equirobot_envs.registry import TaskSpec, get_task
from equirobot_envs.scene import HEIGHTMAP_CAMERA_HEIGHT


def make_scene(task: TaskSpec, control: str):
    """The robosuite environment of a task: Panda arm, OSC pose controller in the world frame."""
    controller = load_composite_controller_config(controller="BASIC", robot="Panda")
    arm = controller["body_parts"]["right"]
    arm["input_type"] = control_mode(control).robosuite_input
    arm["input_ref_frame"] = "world"
    return task.scene_class(
        workspace=task.workspace,
        robots="Panda",
        controller_configs=controller,
        has_renderer=False,
        has_offscreen_renderer=False,
        use_camera_obs=False,
        use_object_obs=True,
        reward_shaping=False,
        ignore_done=True,  # the gymnasium TimeLimit truncates at the task horizon
        hard_reset=False,  # reloading the model every episode costs ~1 s and changes nothing
        horizon=task.horizon,
        control_freq=20,
        **task.scene_kwargs,
    )


class TaskEnv(gym.Env):
    """A MimicGen-benchmark manipulation task on robosuite 1.5 with a Panda arm.

    ## Description
    One task variant of the registry (``equirobot_envs.registry``), e.g. Stack D1: stack the red cube
    on the green one, both placed anywhere in a 0.4 m square with any yaw.

    ## Action Space
    ``control="abs"``: ``Box(10)``, the world-frame target pose of the gripper site,
    ``[x, y, z, rot6d (6), gripper]``; rot6d is the first two rows of the rotation matrix (see
    ``equirobot_envs.geometry``), position bounded by the workspace, gripper -1 open .. 1 closed.
    ``control="delta"``: ``Box(-1, 1, (7,))``, robosuite's OSC delta ``[dpos (3), daxis-angle (3),
    gripper]`` in the world frame, scaled so 1 = 5 cm / 0.5 rad.

    ## Observation Space
    A ``Dict``. Always: ``robot0_eef_pos`` (3,), ``robot0_eef_quat`` (4,) xyzw of the gripper site (the
    frame the controller tracks), ``robot0_gripper_qpos`` (2,). Per mode in ``obs`` (declared in
    ``equirobot_envs.features``):
    ``state``: ``object`` (7K,) position and xyzw quaternion of each task object;
    ``rgb``: ``agentview_image``, ``robot0_eye_in_hand_image`` (S, S, 3) uint8 upright;
    ``depth``: ``agentview_depth``, ``robot0_eye_in_hand_depth`` (S, S, 1) float32 metres;
    ``point_cloud``: (N, 6) float32, world xyz + rgb in [0, 1], fused from several cameras, cropped to the
    workspace cube; ``voxels``: (4, D, D, D) uint8 occupancy + colour over the workspace cube, indexed
    [c, x, y, z]; ``heightmap``: (H, H) float32 metres above the table, top-down orthographic, image
    right = +x, image up = +y.

    ## Rewards
    Sparse: 1 on success, else 0.

    ## Starting State
    Objects sampled from the variant's initial distribution (MimicGen's); the same ``seed`` gives the
    same scene.

    ## Episode End
    Terminates on success (``terminate_on_success``), truncates at the benchmark horizon (through the
    ``max_episode_steps`` of the registration).

    ## Arguments
    ``task`` (config name or id) and the settings of :class:`~equirobot_envs.config.EnvConfig` (``obs``,
    ``control``, sizes), ``render_mode="rgb_array"`` with ``render_size`` and ``render_camera``,
    ``terminate_on_success``.

    ## Version History
    v0: initial release.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}
    expert_speed_scale = 1.0
    """Waypoint speeds are metres per step at this env's 20 Hz (``experts.ScriptedExpert``)."""
    expert_max_turn = 0.08
    """Radians per step the scripted expert turns the gripper at most."""
    action_space: spaces.Box
    observation_space: spaces.Dict

    def __init__(
        self,
        task: str,
        render_mode: str | None = None,
        render_size: int = 256,
        render_camera: str = "agentview",
        terminate_on_success: bool = True,
        **settings: Any,
    ):
        self.config = EnvConfig.from_kwargs(task, settings)
        self.task = get_task(task)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"unknown render_mode {render_mode!r}; valid: {self.metadata['render_modes']}")
        control = self.control = self.config.control
        self.render_mode, self.render_size, self.render_camera = render_mode, render_size, render_camera
        self.terminate_on_success = terminate_on_success

        self.scene = make_scene(self.task, control)
        self.workspace = self.task.workspace
        self.workspace_center = np.array(self.workspace.center)
        cameras = set(self.scene.sim.model.camera_names)
        missing = [c for c in (*self.config.point_cloud_cameras, render_camera) if c not in cameras]
        if missing:
            raise ValueError(
                f"unknown camera(s) {missing} for task {self.task.config_name}; cameras: {sorted(cameras)}"
            )
        self.observer = SceneObserver(
            self.scene.sim.model._model, self.scene.sim.data._data, self.config, self.workspace
        )
        self._eef_site = self.scene.robots[0].eef_site_id["right"]
        self._object_bodies = [self.scene.sim.model.body_name2id(b) for b in self.task.objects.values()]
        self.action_space = self._make_action_space()
        self.observation_space = self._make_observation_space()

    # -- spaces ---------------------------------------------------------------------------------
    def _make_action_space(self) -> spaces.Box:
        dim = control_mode(self.control).dim
        if self.control == "delta":
            return spaces.Box(-1.0, 1.0, (dim,), dtype=np.float32)
        low = np.concatenate([self.workspace.low - [0, 0, 0.05], -np.ones(dim - 3)])
        high = np.concatenate([self.workspace.high, np.ones(dim - 3)])
        return spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)

    def _make_observation_space(self) -> spaces.Dict:
        """One box per declared feature of the configured modes, bounded as below."""
        ws, n_objects = self.workspace, len(self.task.objects)
        # Positions are bounded loosely: robosuite parks objects a task does not use at (10, 10, 10).
        pose_bound = np.array([20, 20, 20, 1, 1, 1, 1], dtype=np.float32)
        bounds: dict[str, tuple[float | np.ndarray, float | np.ndarray]] = {
            "robot0_eef_pos": (-20.0, 20.0),
            "object": (-np.tile(pose_bound, n_objects), np.tile(pose_bound, n_objects)),
            "point_cloud": (
                np.concatenate([ws.low, np.zeros(3)]).astype(np.float32),
                np.concatenate([ws.high, np.ones(3)]).astype(np.float32),
            ),
            "heightmap": (0.0, HEIGHTMAP_CAMERA_HEIGHT),
        }
        obs: dict[str, spaces.Space] = {}
        for feature in mode_features(self.config.obs):
            shape = feature.shape(self.config, n_objects)
            low: float | np.ndarray
            high: float | np.ndarray
            if feature.dtype == "uint8":
                low, high = 0, 255
            elif feature.key.endswith("_depth"):
                low, high = 0.0, self.observer.far_clip
            else:
                low, high = bounds.get(feature.key, (-1.0, 1.0))
            low = np.broadcast_to(low, shape).astype(feature.dtype)
            high = np.broadcast_to(high, shape).astype(feature.dtype)
            obs[feature.key] = spaces.Box(low, high, shape, dtype=np.dtype(feature.dtype))
        return spaces.Dict(obs)

    # -- gymnasium API --------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        # robosuite draws the scene from `scene.rng`, a Generator its samplers and robots share by
        # reference: re-seed it in place from our own np_random so the same seed gives the same scene.
        fresh = np.random.default_rng(int(self.np_random.integers(2**63)))
        self.scene.rng.bit_generator.state = fresh.bit_generator.state
        self.scene.reset()
        self._held_action = np.asarray(self.pose_to_action(*self.eef_pose(), gripper=-1.0), dtype=np.float64)
        if self.control == "delta":
            self._held_action[:6] = 0.0
        return self._observe(), {"is_success": False}

    def step(self, action: np.ndarray):
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self.action_space.shape:
            raise ValueError(
                f"action of shape {action.shape} for control={self.control!r}; "
                f"expected {self.action_space.shape}"
            )
        held = not np.isfinite(action).all()
        if held:
            if self.config.nonfinite_action == "raise":
                bad = np.flatnonzero(~np.isfinite(action)).tolist()
                raise ValueError(
                    f"non-finite action {action.tolist()} (entries {bad}); it was not executed. Make the env "
                    "with nonfinite_action='hold' to hold the last valid target instead"
                )
            action = self._held_action
        action = np.clip(action, self.action_space.low, self.action_space.high)
        self._held_action = action if self.control == "abs" else np.concatenate([np.zeros(6), action[6:]])
        self.scene.step(self._to_robosuite(action))
        # robosuite's lite physics ends a step on an integration, leaving body poses one substep behind
        # the state; recompute them so observations match the state (and a replay of it) exactly.
        self.scene.sim.forward()
        success = self.is_success()
        terminated = success and self.terminate_on_success
        info = {
            "is_success": success,
            "action_abs": self._controller_target(action),
            "nonfinite_action": held,
        }
        return self._observe(), float(success), terminated, False, info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return self.observer.render_rgb(self.render_camera, self.render_size)

    def close(self) -> None:
        self.observer.close()
        self.scene.close()

    # -- task access (privileged: for scripted experts, success checks and data generation) -----
    def is_success(self) -> bool:
        return bool(self.scene._check_success())

    def eef_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """World position (3,) and rotation (3, 3) of the gripper site, the frame the controller tracks."""
        data = self.scene.sim.data
        return data.site_xpos[self._eef_site].copy(), data.site_xmat[self._eef_site].reshape(3, 3).copy()

    def body_pose(self, body: str) -> tuple[np.ndarray, np.ndarray]:
        """World position (3,) and rotation (3, 3) of a MuJoCo body (object names map via the task)."""
        return self.scene.body_pose(self.task.objects.get(body, body))

    def get_state(self) -> np.ndarray:
        """The flattened MuJoCo state [time, qpos, qvel] (robomimic's ``states``)."""
        return np.asarray(self.scene.sim.get_state().flatten())

    def set_state(self, state: np.ndarray) -> None:
        """Restore a state of :meth:`get_state` (same task, same model)."""
        self.scene.sim.set_state_from_flattened(np.asarray(state))
        self.scene.sim.forward()

    def model_xml(self) -> str:
        """The MJCF of the loaded scene (robomimic's ``model_file``)."""
        return self.scene.sim.model.get_xml()

    def episode_meta(self) -> dict:
        """What a replay needs beyond the MuJoCo states: poses of fixtures this episode moved."""
        return {"fixtures": self.scene.fixture_poses()}

    def set_episode_meta(self, meta: dict) -> None:
        """Restore :meth:`episode_meta` before replaying an episode's states."""
        self.scene.set_fixture_poses(meta.get("fixtures", {}))

    def observe(self) -> dict[str, np.ndarray]:
        """The observation of the current state (after :meth:`set_state`, for re-rendering datasets)."""
        return self._observe()

    def absolute_action(self, state: np.ndarray, delta_action: np.ndarray) -> np.ndarray:
        """The 10-D absolute action equivalent to a 7-D delta action taken in ``state`` (delta envs only).

        Replays the OSC controller's goal computation; robosuite's goals are relative to the achieved pose,
        so the state alone determines the result.
        """
        if self.control != "delta":
            raise ValueError("absolute_action converts delta actions: make the env with control='delta'")
        self.set_state(state)
        arm = self.scene.robots[0].part_controllers["right"]
        arm.update(force=True)
        arm.set_goal(np.clip(delta_action[:6], -1, 1))
        return np.concatenate([arm.goal_pos, mat_to_rot6d(arm.goal_ori), delta_action[6:]]).astype(np.float32)

    def _controller_target(self, action: np.ndarray) -> np.ndarray:
        """The absolute 10-D action equivalent to the last one: the OSC goal pose and the gripper."""
        if self.control == "abs":
            return action.astype(np.float32)
        arm = self.scene.robots[0].part_controllers["right"]
        return np.concatenate([arm.goal_pos, mat_to_rot6d(arm.goal_ori), action[6:]]).astype(np.float32)

    def object_state(self) -> np.ndarray:
        data = self.scene.sim.data
        poses = [
            np.concatenate([data.body_xpos[b], data.body_xquat[b][[1, 2, 3, 0]]]) for b in self._object_bodies
        ]
        return np.concatenate(poses).astype(np.float32)

    def pose_to_action(self, pos: np.ndarray, rot: np.ndarray, gripper: float) -> np.ndarray:
        """The action (in this env's control mode) that drives the gripper site to a world pose."""
        if self.control == "abs":
            return np.concatenate([pos, mat_to_rot6d(rot), [gripper]]).astype(np.float32)
        eef_pos, eef_rot = self.eef_pose()
        dpos = (pos - eef_pos) / DELTA_POS_SCALE
        drot = mat_to_axis_angle(rot @ eef_rot.T) / DELTA_ROT_SCALE
        return np.clip(np.concatenate([dpos, drot, [gripper]]), -1, 1).astype(np.float32)

    # -- internals --------------------------------------------------------------------------------
    def _to_robosuite(self, action: np.ndarray) -> np.ndarray:
        if self.control == "delta":
            return action
        rotvec = mat_to_axis_angle(rot6d_to_mat(action[3:9]))
        return np.concatenate([action[:3], rotvec, action[9:]])

    def _observe(self) -> dict[str, np.ndarray]:
        pos, rot = self.eef_pose()
        robot = self.scene.robots[0]
        gripper_qpos = self.scene.sim.data.qpos[robot._ref_gripper_joint_pos_indexes["right"]]
        obs = {
            "robot0_eef_pos": pos.astype(np.float32),
            "robot0_eef_quat": mat_to_quat(rot).astype(np.float32),
            "robot0_gripper_qpos": np.asarray(gripper_qpos, dtype=np.float32),
        }
        if "state" in self.config.obs:
            obs["object"] = self.object_state()
        obs.update(self.observer.observe())
        return obs
