"""Open-loop pick-and-place tasks on the gantry gripper: one action is one whole pick or place.

The tasks of Equivariant Q Learning in Spatial Action Spaces (Wang, Walters, Platt, CoRL 2021) act in
space, not in time: the agent looks at a top-down heightmap of the whole workspace and chooses where
(x, y) and at which gripper yaw (theta) to pick, or to place what it holds; the robot then runs the
motion. The gripper, the gantry and the scenes are those of the closed-loop tasks
(:mod:`equirobot_envs.closed_loop`), so a task here is a closed-loop :class:`Scene` run by
:class:`OpenLoopEnv`, whose primitives drive the same position actuators.

Geometry that makes the symmetry exact: the heightmap camera is fixed over the workspace centre (the
symmetry axis), orthographic, square, with an even number of pixels covering exactly the workspace, so a
quarter turn of the scene maps pixel centres onto pixel centres and the new heightmap is ``np.rot90`` of
the old; the gripper is symmetric under a half turn, so theta and theta + pi are the same grasp.
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np

from equirobot_envs.closed_loop import (
    CAMERA_HEIGHT,
    FINGER_GROUP,
    FINGER_TRAVEL,
    HIDDEN_GROUP,
    START,
    WORKSPACE_CAMERA,
    ClosedLoopEnv,
    gripper_frame,
    gripper_yaw,
    quarter_turn_xy,
    site_quat_xyzw,
)
from equirobot_envs.experts import CLOSED, OPEN
from equirobot_envs.geometry import mat_to_rot6d, wrap_angle

SAFE_HEIGHT = float(START[2])
"""Site height at which the gripper travels between primitives (fingertips 0.185 m above the table)."""
PICK_DEPTH = 0.025
"""A pick closes the fingers with the site this far below the highest point under them (the centre of a
5 cm block)."""
PROBE_RADIUS = 0.015
"""The highest point under the fingers: rays straight down at (x, y) and at 8 points this far around it."""
CONTROL_TICK = 5
"""Physics steps (of 4 ms) per update of the primitive's moving targets: 50 Hz."""
TRAVEL_SPEED = 0.5
"""Metres per second of the targets' moves at the safe height."""
DESCEND_SPEED = 0.25
"""Metres per second of a pick's descent and of every lift."""
PLACE_SPEED = 0.1
"""Metres per second of a place's descent, which stops at the first contact."""
TURN_SPEED = np.pi
"""Radians per second of the yaw target."""
SETTLE_SECONDS = 0.5
"""At most this long for the joints to reach a move's end (within 2 mm, 0.02 rad)."""
GRASP_SECONDS, RELEASE_SECONDS = 0.3, 0.2
"""How long the fingers close on a pick and open on a place."""
_RAY_GROUPS = np.array([1, 1, 0, 0, 0, 0], np.uint8)  # table and objects; not fingers or palm
_ANGLES = np.arange(8) * np.pi / 4
_PROBES = np.vstack([[0.0, 0.0], PROBE_RADIUS * np.stack([np.cos(_ANGLES), np.sin(_ANGLES)], axis=-1)])


class OpenLoopEnv(ClosedLoopEnv):
    """An open-loop pick-and-place task (Equivariant Q Learning in Spatial Action Spaces) on the gantry.

    ## Description
    One task of the ``OPEN_LOOP`` registry (``equirobot_envs.registry``): a closed-loop task's scene (the
    table, the Panda-sized gantry gripper, the task's objects and success test) where each action is a
    whole motion primitive. With nothing in the gripper it is a **pick**: move to (x, y) at the safe
    height (site 0.2 m) turning to yaw theta, descend until the site is 2.5 cm below the highest point
    under the fingers (rays down at (x, y) and 1.5 cm around it; at least 1.5 cm above the table), close
    the fingers, lift back to the safe height. Holding something it is a **place**: move to (x, y, theta)
    at the safe height, descend at 0.1 m/s until the held object or a finger touches anything else (or
    the site reaches 1.5 cm), open the fingers, lift. Every move drives the gantry's own position
    actuators along straight lines at bounded speeds (0.5 m/s at the safe height, 0.25 m/s up and down,
    pi rad/s of yaw), so a primitive is 2 to 3 s of simulated time.

    ## Action Space
    ``Box(-1, 1, (3,), float32)``: ``[x, y, theta]``. The primitive's point is
    ``(cx + 0.2 x, cy + 0.2 y)`` metres (``(cx, cy)`` = ``workspace_center``: x, y = +-1 are the edges of
    the 0.4 m workspace square); its gripper yaw is ``pi (theta + 1) / 2`` modulo pi (theta = -1 and
    theta = 1 both give yaw 0; yaw 0 closes the fingers along world y, as ``experts.top_down(0)``). The
    gantry turns to whichever of yaw and yaw + pi is closer to its yaw now (the same grasp: the gripper
    is symmetric under a half turn). Values outside [-1, 1] are clipped.

    ## Observation Space
    A ``Dict``: ``workspace_heightmap`` (H, H) float32, metres above the table, an orthographic top-down
    depth render of the 0.4 m workspace square from a fixed camera over its centre, axis-aligned (image
    right = +x, up = +y, row 0 the +y edge), the gripper not drawn (a held object is); ``holding`` (1,)
    as in the closed-loop tasks; and the proprio of the closed-loop tasks (``robot0_eef_pos``,
    ``robot0_eef_quat``, ``robot0_gripper_qpos``), which after every primitive says the gripper is at
    the safe height.

    ## Rewards
    Sparse: 1.0 on the step the task succeeds, else 0.0.

    ## Starting State
    As the closed-loop tasks: the gripper over the workspace centre at the safe height, yaw 0, open; the
    objects at random non-overlapping positions and yaws; the same ``seed`` gives the same scene.

    ## Episode End
    Terminates on success (``terminate_on_success``); truncated after 10 primitives by the
    registration's ``max_episode_steps``.

    ## Arguments
    As :class:`~equirobot_envs.closed_loop.ClosedLoopEnv`; ``obs`` and ``control`` only take
    ``["workspace_heightmap"]`` and ``"pick_place"`` (the defaults for these tasks); ``heightmap_size``
    (H, even, 64 by default) sets the heightmap's pixels.

    ## Symmetry
    Rotating the scene about the vertical through ``workspace_center`` by a quarter turn k
    (:func:`~equirobot_envs.closed_loop.rotate_scene`) turns ``workspace_heightmap`` into
    ``np.rot90(heightmap, k)`` exactly (pixel centres map onto pixel centres) and leaves ``holding``
    alone; the action's ``x, y`` turn by the same rotation (rho1) and its yaw by k pi / 2, modulo pi
    (:func:`rotate_action`), and the rotated action in the rotated scene gives the rotated outcome.

    ## Version History
    v0: initial release.
    """

    family = "open_loop"
    metadata = {"render_modes": ["rgb_array"], "render_fps": 2}

    def __init__(self, task: str, **kwargs: Any):
        super().__init__(task, **kwargs)
        self._workspace_camera = self.scene.model.camera(WORKSPACE_CAMERA).id
        self._heightmap_option = mujoco.MjvOption()
        for group in (0, FINGER_GROUP, HIDDEN_GROUP):
            self._heightmap_option.geomgroup[group] = 0
        self._ray_hit = np.zeros(1, np.int32)

    # -- gymnasium API --------------------------------------------------------------------------
    def step(self, action: np.ndarray):
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action of shape {action.shape}; expected {self.action_space.shape}")
        held_still = not np.isfinite(action).all()
        if held_still and self.config.nonfinite_action == "raise":
            raise ValueError(
                f"non-finite action {action.tolist()}; it was not executed. Make the env with "
                "nonfinite_action='hold' to skip such a primitive instead"
            )
        if held_still:
            pos, rot = self.eef_pose()
            closed = self.scene.data.ctrl[self.scene.finger_ctrl[0]] < 0.5 * FINGER_TRAVEL
            target = np.concatenate([pos, mat_to_rot6d(rot), [CLOSED if closed else OPEN]])
        else:
            xy, yaw = self.action_point(np.clip(action, -1.0, 1.0))
            if self.scene.held_body() is None:
                target = self._pick(xy, yaw)
            else:
                target = self._place(xy, yaw)
        mujoco.mj_forward(self.scene.model, self.scene.data)
        success = self.is_success()
        info = {
            "is_success": success,
            "action_abs": target.astype(np.float32),
            "nonfinite_action": held_still,
        }
        return self._observe(), float(success), success and self.terminate_on_success, False, info

    # -- the action -------------------------------------------------------------------------------
    def action_point(self, action: np.ndarray) -> tuple[np.ndarray, float]:
        """The world xy (2,) and the gripper yaw in [0, pi) of a (clipped) action."""
        xy = self.workspace_center[:2] + action[:2] * self.workspace.half_size
        return xy, float(np.remainder(np.pi * (action[2] + 1.0) / 2.0, np.pi))

    def pose_to_action(self, pos: np.ndarray, rot: np.ndarray, gripper: float) -> np.ndarray:
        """The action of a primitive at a world position with a (pointing-down) gripper orientation.

        ``gripper`` is not part of the action: the primitive is a place while something is held.
        """
        xy = (np.asarray(pos)[:2] - self.workspace_center[:2]) / self.workspace.half_size
        theta = np.remainder(gripper_yaw(rot), np.pi) * 2.0 / np.pi - 1.0
        return np.clip(np.concatenate([xy, [theta]]), -1.0, 1.0).astype(np.float32)

    # -- primitives -------------------------------------------------------------------------------
    def _pick(self, xy: np.ndarray, yaw: float) -> np.ndarray:
        yaw = self._nearest_yaw(yaw)
        self._move(np.array([*xy, SAFE_HEIGHT, yaw]), OPEN, TRAVEL_SPEED)
        z = max(self.top_height(xy) - PICK_DEPTH, self.workspace.low[2])
        self._move(np.array([*xy, z, yaw]), OPEN, DESCEND_SPEED)
        self._wait(CLOSED, GRASP_SECONDS)
        self._move(np.array([*xy, SAFE_HEIGHT, yaw]), CLOSED, DESCEND_SPEED)
        return np.concatenate([xy, [z], mat_to_rot6d(gripper_frame(yaw)), [CLOSED]])

    def _place(self, xy: np.ndarray, yaw: float) -> np.ndarray:
        yaw = self._nearest_yaw(yaw)
        held = self.scene.held_body()
        self._move(np.array([*xy, SAFE_HEIGHT, yaw]), CLOSED, TRAVEL_SPEED)
        floor = self.workspace.low[2]
        self._move(np.array([*xy, floor, yaw]), CLOSED, PLACE_SPEED, stop=lambda: self._set_down(held))
        z = float(self.scene.data.qpos[self.scene.arm_qpos[2]])
        self._wait(OPEN, RELEASE_SECONDS)
        self._move(np.array([*xy, SAFE_HEIGHT, yaw]), OPEN, DESCEND_SPEED)
        return np.concatenate([xy, [z], mat_to_rot6d(gripper_frame(yaw)), [OPEN]])

    def _nearest_yaw(self, yaw: float) -> float:
        """Of yaw + n pi (the same grasp), the one closest to the gantry's yaw now."""
        now = float(self.scene.data.qpos[self.scene.arm_qpos[3]])
        return now + float(wrap_angle(2.0 * (yaw - now)) / 2.0)

    def _move(self, goal: np.ndarray, gripper: float, speed: float, stop=None) -> None:
        """Drive the (x, y, z, yaw) targets to ``goal`` in straight lines, fingers at ``gripper``.

        Every tick the position targets advance by at most ``speed`` (m/s; the yaw by ``TURN_SPEED``);
        then the joints get up to ``SETTLE_SECONDS`` to arrive. ``stop()`` is asked after every tick: when
        true, the targets freeze where the joints are and the move ends.
        """
        scene, data = self.scene, self.scene.data
        dt = CONTROL_TICK * scene.model.opt.timestep
        target = data.ctrl[scene.arm_ctrl].copy()
        data.ctrl[scene.finger_ctrl] = self._finger_targets(gripper)
        settle = 0
        while settle * dt < SETTLE_SECONDS:
            offset = goal[:3] - target[:3]
            distance = float(np.linalg.norm(offset))
            if distance > speed * dt:
                target[:3] += offset * (speed * dt / distance)
            else:
                target[:3] = goal[:3]
            target[3] += float(np.clip(goal[3] - target[3], -TURN_SPEED * dt, TURN_SPEED * dt))
            data.ctrl[scene.arm_ctrl] = target
            mujoco.mj_step(scene.model, data, nstep=CONTROL_TICK)
            if stop is not None and stop():
                data.ctrl[scene.arm_ctrl] = data.qpos[scene.arm_qpos]
                return
            if np.array_equal(target, goal):
                settle += 1
                error = np.abs(data.qpos[scene.arm_qpos] - goal)
                if error[:3].max() < 0.002 and error[3] < 0.02:
                    return

    def _wait(self, gripper: float, seconds: float) -> None:
        """Hold the arm's targets, fingers at ``gripper``, for ``seconds``."""
        scene = self.scene
        scene.data.ctrl[scene.finger_ctrl] = self._finger_targets(gripper)
        mujoco.mj_step(scene.model, scene.data, nstep=round(seconds / scene.model.opt.timestep))

    def _set_down(self, held: int | None) -> bool:
        """Whether the held body or a finger touches anything but the robot and the held body."""
        scene = self.scene
        moving = scene.robot_bodies | ({held} if held is not None else set())
        carried = {held} | {scene.model.geom_bodyid[g] for g in scene.finger_geoms}
        bodies = scene.model.geom_bodyid[scene.data.contact.geom]  # (ncon, 2)
        for a, b in bodies:
            if (a in carried and b not in moving) or (b in carried and a not in moving):
                return True
        return False

    def top_height(self, xy: np.ndarray) -> float:
        """Height of the highest point of the table or an object under the fingers at ``xy`` (metres)."""
        top = 0.0
        down = np.array([0.0, 0.0, -1.0])
        for offset in _PROBES:
            start = np.array([*(xy + offset), CAMERA_HEIGHT])
            distance = mujoco.mj_ray(
                self.scene.model, self.scene.data, start, down, _RAY_GROUPS, 1, -1, self._ray_hit
            )
            if distance >= 0:
                top = max(top, CAMERA_HEIGHT - distance - self.workspace_center[2])
        return top

    # -- observation ----------------------------------------------------------------------------
    def _observe(self) -> dict[str, np.ndarray]:
        pos, rot = self.eef_pose()
        return {
            "robot0_eef_pos": pos.astype(np.float32),
            "robot0_eef_quat": site_quat_xyzw(rot),
            "robot0_gripper_qpos": self.scene.data.qpos[self.scene.finger_qpos].astype(np.float32),
            "workspace_heightmap": self.workspace_heightmap(),
            "holding": np.array([float(self.scene.held_body() is not None)], dtype=np.float32),
        }

    def workspace_heightmap(self) -> np.ndarray:
        """(H, H) float32 metres above the table over the workspace square, right = +x, up = +y."""
        size = self.config.heightmap_size
        depth = self.observer.render_depth(WORKSPACE_CAMERA, size, self._heightmap_option)
        top = self.scene.data.cam_xpos[self._workspace_camera][2] - self.workspace_center[2]
        return np.clip(top - depth, 0.0, CAMERA_HEIGHT).astype(np.float32)


def rotate_action(action: np.ndarray, k: int) -> np.ndarray:
    """A pick_place action under ``k`` quarter turns of the scene.

    x, y turn (rho1), the yaw by k pi / 2 modulo pi (in action units: theta + k, wrapped into [-1, 1)).
    """
    turned = np.array(action, dtype=np.float64, copy=True)
    turned[..., :2] = quarter_turn_xy(turned[..., :2], k)
    turned[..., 2] = np.remainder(turned[..., 2] + 1.0 + k, 2.0) - 1.0
    return turned.astype(np.asarray(action).dtype)
