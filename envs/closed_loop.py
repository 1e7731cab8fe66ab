"""Closed-loop RL tasks on plain MuJoCo: a Panda-sized parallel-jaw gripper on an xyz-yaw gantry.

The tasks of SO(2)-equivariant reinforcement learning (Wang, Walters, Platt, ICLR 2022; BulletArm's
block picking, block pulling, drawer opening, block stacking) are about the closed loop: one small step
per decision, observed through a top-down heightmap that follows the gripper. They need no arm, so
the gripper hangs from a gantry (slide joints x, y, z and a yaw hinge) and a step costs a few
milliseconds instead of robosuite's tens.

A task is a :class:`Scene` subclass (its objects, their starting poses, its success test) in
``equirobot_envs.tasks.<name>``; :class:`ClosedLoopEnv` runs any of them.

Geometry that makes the symmetry exact: the table is flat and much larger than the view, the
heightmap camera hangs from the gantry's xy carriage (it translates with the gripper but never
turns), its square image has an even number of pixels centred on the gripper, and the gripper is
symmetric under a half turn. A quarter turn of the scene about the workspace centre therefore maps
pixel centres onto pixel centres, and the new heightmap is ``np.rot90`` of the old
(:func:`rotate_scene`).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from equirobot_envs.config import EnvConfig
from equirobot_envs.experts import DOWN
from equirobot_envs.features import control_mode, mode_features
from equirobot_envs.flip_control import asymmetric_gain
from equirobot_envs.geometry import Workspace, mat_to_rot6d, rot_z, wrap_angle, yaw_of
from equirobot_envs.observations import SceneObserver
from equirobot_envs.registry import TaskSpec, get_task

WORKSPACE = Workspace(center=(0.0, 0.0, 0.0), half_size=0.2, floor_clearance=0.015, height=0.24)
"""Where the gripper site may go: 0.4 x 0.4 m around the table centre; its z from 0.015 (fingertips on the
table) to 0.255 (fingertips 0.24 m above it). The table top is z = 0."""
POS_SCALE = 0.05
"""Metres per unit of dx, dy, dz."""
YAW_SCALE = np.pi / 8
"""Radians per unit of dtheta."""
STEP_SECONDS = 0.2
"""Simulated time per env step: the gripper settles within 1 mm of a 5 cm move."""
TIMESTEP = 0.004
HEIGHTMAP_SPAN = 0.6
"""Side of the square the gripper heightmap covers, metres."""
CAMERA_HEIGHT = 1.0
"""Height of the heightmap camera above the table, metres (the largest height it reports)."""
START = np.array([0.0, 0.0, 0.2, 0.0])
"""Gripper start: x, y (workspace centre), site height, yaw; fingers open."""

# The gripper, Panda-sized: fingers slide 0 .. 4 cm each along the gripper's y axis (8 cm opening);
# the site (robosuite's grip site) is at the centre of the finger pads, 1.5 cm above the fingertips.
FINGER_TRAVEL = 0.04
FINGER_HALF = (0.01, 0.006, 0.025)  # x (pad width), y (thickness), z (length / 2)
FINGER_CENTRE_Z = 0.01  # tips at -0.015, tops at 0.035 (the palm's bottom)
PALM_HALF = (0.03, 0.1, 0.03)
TIP_BELOW_SITE = FINGER_HALF[2] - FINGER_CENTRE_Z
HIDDEN_GROUP = 3
"""Group of the palm (it collides but is not drawn: the heightmap shows the fingers under it) and site."""
FINGER_GROUP = 2
"""Group of the fingers: drawn in the gripper heightmap, hidden from the workspace heightmap."""
WORKSPACE_CAMERA = "workspace_heightmap"
"""A fixed orthographic camera over the workspace centre, seeing the whole workspace square."""
ROBOT_MASS = {"x": 0.5, "y": 0.5, "z": 0.5, "palm": 0.5, "finger": 0.05}
ARM_JOINTS = ("x", "y", "z", "yaw")
FINGER_JOINTS = ("finger_left", "finger_right")
CAMERA = "gripper_heightmap"
SITE = "grip_site"
DOWN_QUAT_WXYZ = "0 0.70710678 0.70710678 0"  # experts.DOWN: a half turn about (1, 1, 0) / sqrt 2


ARM_KP, YAW_KP, FINGER_KP = 3000.0, 5.0, 300.0
ARM_FORCE, YAW_TORQUE, FINGER_FORCE = 80.0, 5.0, 10.0
"""Position gains and force limits: the arm tracks, the fingers squeeze with at most 10 N each."""


def fmt(values) -> str:
    """Numbers as an MJCF attribute string."""
    return " ".join(f"{v:.9g}" for v in values)


def block_xml(name: str, rgba: str, half: float = 0.025, mass: float = 0.1) -> str:
    """A cube with a free joint (placed by :meth:`Scene.reset`)."""
    return f"""
    <body name="{name}" pos="0 0 {half}">
      <freejoint name="{name}"/>
      <geom name="{name}" type="box" size="{fmt([half] * 3)}" mass="{mass}" rgba="{rgba}" group="1"
            friction="1 0.005 0.0001"/>
    </body>"""


def _gripper_xml() -> str:
    # Critical damping for each joint from its position gain and the mass it moves (gravity is
    # compensated on every robot body, so the gains only track). The y slide gets the x carriage's mass
    # as armature, so x and y respond alike and a quarter turn of the scene commutes with the dynamics.
    m = ROBOT_MASS
    moved = {
        "x": m["x"] + m["y"] + m["z"] + m["palm"] + 2 * m["finger"],
        "y": m["x"] + m["y"] + m["z"] + m["palm"] + 2 * m["finger"],
        "z": m["z"] + m["palm"] + 2 * m["finger"],
    }
    damping = {k: 2 * np.sqrt(ARM_KP * v) for k, v in moved.items()}
    yaw_inertia = m["palm"] * (4 * PALM_HALF[0] ** 2 + 4 * PALM_HALF[1] ** 2) / 12 + 2 * m["finger"] * 0.04**2
    yaw_damping = 2 * np.sqrt(YAW_KP * yaw_inertia)
    finger_damping = 2 * np.sqrt(FINGER_KP * m["finger"])
    inertia = 'diaginertia="1e-3 1e-3 1e-3"'
    fx, fy, fz = FINGER_HALF
    fingers = "".join(
        f"""
          <body name="{name}" pos="0 0 {FINGER_CENTRE_Z}" gravcomp="1">
            <joint name="{name}" type="slide" axis="0 1 0" range="{fmt(rng)}" damping="{finger_damping:.6g}"/>
            <geom name="{name}" type="box" pos="0 {sign * fy} 0" size="{fmt(FINGER_HALF)}"
                  mass="{m["finger"]}" rgba="0.85 0.85 0.85 1" group="{FINGER_GROUP}"
                  friction="1.5 0.005 0.0001" condim="4"/>
          </body>"""
        for name, rng, sign in (
            ("finger_left", (0, FINGER_TRAVEL), 1),
            ("finger_right", (-FINGER_TRAVEL, 0), -1),
        )
    )
    px, py, pz = PALM_HALF
    return f"""
    <body name="gantry_x" gravcomp="1">
      <joint name="x" type="slide" axis="1 0 0" damping="{damping["x"]:.6g}"/>
      <inertial pos="0 0 0" mass="{m["x"]}" {inertia}/>
      <body name="gantry_y" gravcomp="1">
        <joint name="y" type="slide" axis="0 1 0" damping="{damping["y"]:.6g}" armature="{m["x"]}"/>
        <inertial pos="0 0 0" mass="{m["y"]}" {inertia}/>
        <camera name="{CAMERA}" pos="0 0 {CAMERA_HEIGHT}" quat="1 0 0 0" projection="orthographic"
                fovy="{HEIGHTMAP_SPAN}"/>
        <body name="gantry_z" gravcomp="1">
          <joint name="z" type="slide" axis="0 0 1" damping="{damping["z"]:.6g}"/>
          <inertial pos="0 0 0" mass="{m["z"]}" {inertia}/>
          <body name="gripper" gravcomp="1">
            <joint name="yaw" type="hinge" axis="0 0 1" damping="{yaw_damping:.6g}"/>
            <geom name="palm" type="box" pos="0 0 {FINGER_CENTRE_Z + fz + pz}" size="{fmt([px, py, pz])}"
                  mass="{m["palm"]}" rgba="0.9 0.9 0.9 1" group="{HIDDEN_GROUP}"/>
            <site name="{SITE}" quat="{DOWN_QUAT_WXYZ}" size="0.005" group="{HIDDEN_GROUP}"/>{fingers}
          </body>
        </body>
      </body>
    </body>"""


def _actuators_xml() -> str:
    arm = "".join(
        f'\n    <position name="{j}" joint="{j}" kp="{ARM_KP}" forcelimited="true" '
        f'forcerange="{-ARM_FORCE} {ARM_FORCE}"/>'
        for j in ("x", "y", "z")
    )
    yaw = (
        f'\n    <position name="yaw" joint="yaw" kp="{YAW_KP}" forcelimited="true" '
        f'forcerange="{-YAW_TORQUE} {YAW_TORQUE}"/>'
    )
    fingers = "".join(
        f'\n    <position name="{j}" joint="{j}" kp="{FINGER_KP}" forcelimited="true" '
        f'forcerange="{-FINGER_FORCE} {FINGER_FORCE}"/>'
        for j in FINGER_JOINTS
    )
    return arm + yaw + fingers


class Scene:
    """The MuJoCo model and data of one closed-loop task: table, gantry gripper and the task's objects.

    Subclasses give :meth:`objects_xml` (bodies added to the world), :meth:`place` (the starting poses,
    drawn from a generator) and :meth:`is_success`; ``object_bodies`` names the bodies whose poses the
    task's expert reads.
    """

    object_bodies: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.model = mujoco.MjModel.from_xml_string(self.xml())
        self.data = mujoco.MjData(self.model)
        model = self.model
        self.arm_qpos = np.array([model.jnt_qposadr[model.joint(j).id] for j in ARM_JOINTS])
        self.arm_dof = np.array([model.jnt_dofadr[model.joint(j).id] for j in ARM_JOINTS])
        self.finger_qpos = np.array([model.jnt_qposadr[model.joint(j).id] for j in FINGER_JOINTS])
        self.arm_ctrl = np.array([model.actuator(j).id for j in ARM_JOINTS])
        self.finger_ctrl = np.array([model.actuator(j).id for j in FINGER_JOINTS])
        self.site = model.site(SITE).id
        self.finger_geoms = tuple(model.geom(j).id for j in FINGER_JOINTS)
        self.robot_bodies = {model.body(b).id for b in ("gantry_x", "gantry_y", "gantry_z", "gripper")}
        self.robot_bodies |= {model.body(j).id for j in FINGER_JOINTS}
        self.n_substeps = round(STEP_SECONDS / TIMESTEP)

    def xml(self) -> str:
        return f"""
<mujoco model="equirobot_closed_loop">
  <compiler angle="radian"/>
  <option timestep="{TIMESTEP}" integrator="implicitfast" cone="elliptic" impratio="10"/>
  <visual><map znear="0.05" zfar="3"/><global offwidth="640" offheight="640"/></visual>
  <statistic extent="1" center="0 0 0.1"/>
  <asset>
    <texture name="grid" type="2d" builtin="checker" rgb1="0.55 0.45 0.35" rgb2="0.5 0.4 0.3" width="64"
             height="64"/>
    <material name="table" texture="grid" texrepeat="8 8"/>
  </asset>
  <worldbody>
    <light pos="0 0 1.5" dir="0 0 -1" directional="true"/>
    <geom name="table" type="box" pos="0 0 -0.05" size="0.8 0.8 0.05" material="table" group="1"/>
    <camera name="overview" pos="0.55 -0.55 0.65" xyaxes="0.7071 0.7071 0 -0.4 0.4 0.8246"/>
    <camera name="{WORKSPACE_CAMERA}" pos="{fmt([*WORKSPACE.center[:2], CAMERA_HEIGHT])}" quat="1 0 0 0"
            projection="orthographic" fovy="{2 * WORKSPACE.half_size}"/>
    {_gripper_xml()}
    {self.objects_xml()}
  </worldbody>
  {self.extra_xml()}
  <actuator>{_actuators_xml()}
  </actuator>
</mujoco>"""

    def objects_xml(self) -> str:
        """MJCF bodies of the task's objects (children of the world body)."""
        raise NotImplementedError

    def extra_xml(self) -> str:
        """Further top-level MJCF elements (``<contact>`` exclusions, ...)."""
        return ""

    def place(self, rng: np.random.Generator) -> None:
        """Set the objects' starting poses in ``self.data`` (called after the gripper is placed)."""
        raise NotImplementedError

    def is_success(self) -> bool:
        raise NotImplementedError

    # -- helpers for subclasses -------------------------------------------------------------------
    def set_free_pose(self, body: str, pos: np.ndarray, yaw: float) -> None:
        """Put a free body at a position with a yaw, at rest."""
        joint = self.model.body(body).jntadr[0]
        adr, dof = self.model.jnt_qposadr[joint], self.model.jnt_dofadr[joint]
        self.data.qpos[adr : adr + 7] = [*pos, np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
        self.data.qvel[dof : dof + 6] = 0.0

    def body_pose(self, body: str) -> tuple[np.ndarray, np.ndarray]:
        b = self.model.body(body).id
        return self.data.xpos[b].copy(), self.data.xmat[b].reshape(3, 3).copy()

    def touching(self, body_a: str, body_b: str) -> bool:
        """Whether any geom of one body is in contact with any geom of the other."""
        a, b = self.model.body(body_a).id, self.model.body(body_b).id
        bodies = self.model.geom_bodyid[self.data.contact.geom]  # (ncon, 2)
        return bool(
            np.any(((bodies[:, 0] == a) & (bodies[:, 1] == b)) | ((bodies[:, 0] == b) & (bodies[:, 1] == a)))
        )

    def held_body(self) -> int | None:
        """The body both fingers touch while commanded closed and not shut on nothing; else ``None``."""
        if self.data.ctrl[self.finger_ctrl[0]] > 0.5 * FINGER_TRAVEL:  # commanded open
            return None
        if self.data.qpos[self.finger_qpos[0]] - self.data.qpos[self.finger_qpos[1]] < 0.004:
            return None
        geoms = self.data.contact.geom  # (ncon, 2)
        bodies = self.model.geom_bodyid[geoms]
        touched = []
        for finger in self.finger_geoms:
            rows, cols = np.nonzero(geoms == finger)
            others = bodies[rows, 1 - cols]
            touched.append({int(b) for b in others if b not in self.robot_bodies})
        both = touched[0] & touched[1]
        return min(both) if both else None

    def holds(self, body: str) -> bool:
        return self.held_body() == self.model.body(body).id


def sample_layout(
    rng: np.random.Generator, radii: tuple[float, ...], half_range: float, tries: int = 1000
) -> np.ndarray:
    """(n, 2) xy positions in ``[-half_range, half_range]^2`` whose discs of ``radii`` do not overlap."""
    for _ in range(tries):
        xy = rng.uniform(-half_range, half_range, (len(radii), 2))
        ok = all(
            np.linalg.norm(xy[i] - xy[j]) > radii[i] + radii[j] for i in range(len(radii)) for j in range(i)
        )
        if ok:
            return xy
    raise RuntimeError(f"no non-overlapping layout of radii {radii} in +-{half_range} m")


class ClosedLoopEnv(gym.Env):
    """A closed-loop RL task (SO(2)-equivariant RL, BulletArm) on a gantry gripper in plain MuJoCo.

    ## Description
    One task of the ``CLOSED_LOOP`` registry (``equirobot_envs.registry``): block picking, block
    pulling, drawer opening or block stacking on a 0.4 m square of table. The robot is a Panda-sized
    parallel-jaw gripper (palm + two fingers) hanging from a gantry with slide joints x, y, z and a yaw
    hinge, each driven by a stiff MuJoCo position actuator; the fingers are force-limited (10 N each),
    so a grasp holds a block by friction. One step simulates 0.2 s.

    ## Action Space
    ``Box(-1, 1, (5,), float32)``: ``[gripper, dx, dy, dz, dtheta]`` in the world frame. ``gripper``:
    -1 open .. 1 closed (``experts.OPEN``/``CLOSED``; in between: the finger target in proportion);
    ``dx, dy, dz``: a move of the gripper site by 0.05 m per unit, ``dtheta``: a turn about the vertical
    by pi/8 per unit, both relative to where the gripper is now; the new target is clipped to the
    workspace (xy within 0.2 m of the centre, site height 0.015 .. 0.255 m).

    ## Observation Space
    A ``Dict``: ``robot0_eef_pos`` (3,) world position of the grip site (between the finger pads);
    ``robot0_eef_quat`` (4,) its xyzw orientation, pointing down like the Panda's
    (``rot_z(yaw) @ experts.DOWN``); ``robot0_gripper_qpos`` (2,) the finger joints (0 .. 0.04 and
    -0.04 .. 0, the Panda's signs); ``gripper_heightmap`` (H, H) float32, metres above the table, an
    orthographic top-down depth render over a 0.6 m square centred on the gripper's xy, axis-aligned
    with the world (image right = +x, up = +y, row 0 the far +y edge), showing the fingers (the palm
    above them is not drawn); ``holding`` (1,) 1.0 while the fingers, commanded closed, are held apart
    by an object they both touch, else 0.0.

    ## Rewards
    Sparse: 1.0 on the step the task succeeds, else 0.0.

    ## Starting State
    The gripper at the workspace centre, site 0.2 m above the table, yaw 0, open. The objects at
    random non-overlapping positions and yaws from the task's distribution; the same ``seed`` gives
    the same scene.

    ## Episode End
    Terminates on success (``terminate_on_success``); truncated after 100 steps by the registration's
    ``max_episode_steps``.

    ## Arguments
    ``task`` (config name or id) and the settings of :class:`~equirobot_envs.config.EnvConfig`
    (``heightmap_size``: H, 64 by default, 128 the paper's size; ``obs`` and ``control`` only take
    ``["gripper_heightmap"]`` and ``"closed_loop"``; ``asymmetry``: the x slide's flip asymmetry),
    ``render_mode="rgb_array"`` with ``render_size``
    and ``render_camera`` (``overview``), ``terminate_on_success``.

    ## Symmetry
    Rotating the scene about the vertical through ``workspace_center`` by a quarter turn k
    (:func:`rotate_scene`) turns ``gripper_heightmap`` into ``np.rot90(heightmap, k)``, turns the xy of
    ``robot0_eef_pos`` and the orientation, and leaves ``holding`` and the finger joints alone; the
    action's ``dx, dy`` turn by the same rotation (rho1), ``gripper``, ``dz`` and ``dtheta`` stay.

    ## Version History
    v0: initial release.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 5}
    family = "closed_loop"
    """The task family (``equirobot_envs.features.FAMILIES``) this env runs."""
    expert_speed_scale = 4.0
    """Waypoint speeds (metres per step at 20 Hz) times this: a step here is 0.2 s and moves up to 5 cm."""
    expert_max_turn = 0.95 * YAW_SCALE
    action_space: spaces.Box
    observation_space: spaces.Dict

    def __init__(
        self,
        task: str,
        render_mode: str | None = None,
        render_size: int = 256,
        render_camera: str = "overview",
        terminate_on_success: bool = True,
        **settings: Any,
    ):
        self.config = EnvConfig.from_kwargs(task, settings)
        self.task: TaskSpec = get_task(task)
        if self.task.family != self.family:
            raise ValueError(
                f"{task} is a {self.task.family} task, not a {self.family} one; make it with gymnasium.make"
            )
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"unknown render_mode {render_mode!r}; valid: {self.metadata['render_modes']}")
        if self.config.heightmap_size % 2:
            raise ValueError(
                f"heightmap_size must be even (centred on the gripper), got {self.config.heightmap_size}"
            )
        self.control = self.config.control
        self.render_mode, self.render_size, self.render_camera = render_mode, render_size, render_camera
        self.terminate_on_success = terminate_on_success
        self.scene: Scene = self.task.scene_class()
        self.workspace = self.task.workspace
        self.workspace_center = np.array(self.workspace.center)
        model = self.scene.model
        if render_camera not in {model.camera(i).name for i in range(model.ncam)}:
            raise ValueError(f"unknown render_camera {render_camera!r}")
        self.observer = SceneObserver(model, self.scene.data, self.config, self.workspace)
        self._camera = model.camera(CAMERA).id
        self._state_spec = mujoco.mjtState.mjSTATE_INTEGRATION
        self.action_space = spaces.Box(-1.0, 1.0, (control_mode(self.control).dim,), dtype=np.float32)
        self.observation_space = self._make_observation_space()

    def _make_observation_space(self) -> spaces.Dict:
        bounds = {
            "robot0_eef_pos": (-20.0, 20.0),
            "gripper_heightmap": (0.0, CAMERA_HEIGHT),
            "workspace_heightmap": (0.0, CAMERA_HEIGHT),
            "holding": (0.0, 1.0),
        }
        obs: dict[str, spaces.Space] = {}
        for feature in mode_features(self.config.obs):
            shape = feature.shape(self.config, len(self.task.objects))
            low, high = bounds.get(feature.key, (-1.0, 1.0))
            obs[feature.key] = spaces.Box(
                np.full(shape, low, np.float32), np.full(shape, high, np.float32), shape, dtype=np.float32
            )
        return spaces.Dict(obs)

    # -- gymnasium API --------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        scene = self.scene
        mujoco.mj_resetData(scene.model, scene.data)
        scene.data.qpos[scene.arm_qpos] = START
        scene.data.ctrl[scene.arm_ctrl] = START
        scene.data.qpos[scene.finger_qpos] = scene.data.ctrl[scene.finger_ctrl] = self._finger_targets(-1.0)
        scene.place(self.np_random)
        mujoco.mj_forward(scene.model, scene.data)
        return self._observe(), {"is_success": False}

    def step(self, action: np.ndarray):
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action of shape {action.shape}; expected {self.action_space.shape}")
        held = not np.isfinite(action).all()
        if held:
            if self.config.nonfinite_action == "raise":
                raise ValueError(
                    f"non-finite action {action.tolist()}; it was not executed. Make the env with "
                    "nonfinite_action='hold' to hold still instead"
                )
            gripper = self.scene.data.ctrl[self.scene.finger_ctrl[0]]
            action = np.array([1.0 - 2.0 * gripper / FINGER_TRAVEL, 0.0, 0.0, 0.0, 0.0])
        arm, fingers = self.joint_targets(np.clip(action, -1.0, 1.0))
        scene = self.scene
        scene.data.ctrl[scene.arm_ctrl] = arm
        scene.data.ctrl[scene.finger_ctrl] = fingers
        mujoco.mj_step(scene.model, scene.data, nstep=scene.n_substeps)
        # mj_step leaves poses and contacts one integration behind the state: recompute them, so that an
        # observation matches its state (a replay from get_state, a rotate_scene) exactly.
        mujoco.mj_forward(scene.model, scene.data)
        success = self.is_success()
        info = {"is_success": success, "action_abs": self._target_pose(arm, action), "nonfinite_action": held}
        return self._observe(), float(success), success and self.terminate_on_success, False, info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return self.observer.render_rgb(self.render_camera, self.render_size)

    def close(self) -> None:
        self.observer.close()

    # -- actuation --------------------------------------------------------------------------------
    def joint_targets(self, action: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The position-actuator targets of a (clipped) action: (x, y, z, yaw) and the two fingers.

        Moves are relative to the joints' positions now (not to the last targets), so a gripper held
        back by an obstacle does not wind up; the xyz target is clipped to the workspace. With
        ``asymmetry`` delta the x slide moves (1 + delta) times as far for dx > 0 and (1 - delta) for
        dx < 0 (``equirobot_envs.flip_control.asymmetric_gain``), so the scene's rotation symmetry holds
        only approximately.
        """
        now = self.scene.data.qpos[self.scene.arm_qpos]
        delta = np.concatenate([action[1:4] * POS_SCALE, [action[4] * YAW_SCALE]])
        delta[0] = asymmetric_gain(delta[0], self.config.asymmetry)  # the x slide: 0 = symmetric
        arm = now + delta
        arm[:3] = np.clip(arm[:3], self.workspace.low, self.workspace.high)
        return arm, self._finger_targets(float(action[0]))

    @staticmethod
    def _target_pose(arm: np.ndarray, action: np.ndarray) -> np.ndarray:
        """(10,) the step's targets in the ``abs`` layout [xyz, rot6d, gripper]: datasets' ``actions_abs``."""
        return np.concatenate([arm[:3], mat_to_rot6d(gripper_frame(arm[3])), action[:1]]).astype(np.float32)

    @staticmethod
    def _finger_targets(gripper: float) -> np.ndarray:
        """Finger joint targets of a gripper command: -1 open (4 cm each) .. 1 closed (0)."""
        opening = FINGER_TRAVEL * (1.0 - gripper) / 2.0
        return np.array([opening, -opening])

    # -- task access (privileged: for scripted experts, success checks and data generation) -----
    def is_success(self) -> bool:
        return bool(self.scene.is_success())

    def eef_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """World position (3,) and rotation (3, 3) of the grip site."""
        data = self.scene.data
        return data.site_xpos[self.scene.site].copy(), data.site_xmat[self.scene.site].reshape(3, 3).copy()

    def body_pose(self, body: str) -> tuple[np.ndarray, np.ndarray]:
        """World position (3,) and rotation (3, 3) of a MuJoCo body (object names map via the task)."""
        return self.scene.body_pose(self.task.objects.get(body, body))

    def get_state(self) -> np.ndarray:
        """The MuJoCo integration state (time, qpos, qvel, actuator targets, mocap poses, ...)."""
        state = np.empty(mujoco.mj_stateSize(self.scene.model, self._state_spec))
        mujoco.mj_getState(self.scene.model, self.scene.data, state, self._state_spec)
        return state

    def set_state(self, state: np.ndarray) -> None:
        """Restore a state of :meth:`get_state`."""
        mujoco.mj_setState(self.scene.model, self.scene.data, np.asarray(state, np.float64), self._state_spec)
        mujoco.mj_forward(self.scene.model, self.scene.data)

    def model_xml(self) -> str:
        """The MJCF of the scene (robomimic's ``model_file``)."""
        return self.scene.xml()

    def episode_meta(self) -> dict:
        """Nothing beyond :meth:`get_state` is needed to replay an episode."""
        return {}

    def set_episode_meta(self, meta: dict) -> None:
        """Nothing to restore (see :meth:`episode_meta`)."""

    def observe(self) -> dict[str, np.ndarray]:
        """The observation of the current state (after :meth:`set_state` or :func:`rotate_scene`)."""
        return self._observe()

    def pose_to_action(self, pos: np.ndarray, rot: np.ndarray, gripper: float) -> np.ndarray:
        """The bounded action that moves the grip site towards a world pose (yaw only: it points down)."""
        eef_pos, eef_rot = self.eef_pose()
        dpos = (np.asarray(pos) - eef_pos) / POS_SCALE
        dyaw = wrap_angle(gripper_yaw(rot) - gripper_yaw(eef_rot)) / YAW_SCALE
        return np.clip(np.concatenate([[gripper], dpos, [dyaw]]), -1.0, 1.0).astype(np.float32)

    # -- observation ----------------------------------------------------------------------------
    def _observe(self) -> dict[str, np.ndarray]:
        pos, rot = self.eef_pose()
        obs = {
            "robot0_eef_pos": pos.astype(np.float32),
            "robot0_eef_quat": site_quat_xyzw(rot),
            "robot0_gripper_qpos": self.scene.data.qpos[self.scene.finger_qpos].astype(np.float32),
        }
        if "gripper_heightmap" in self.config.obs:
            obs["gripper_heightmap"] = self.gripper_heightmap()
            obs["holding"] = np.array([float(self.scene.held_body() is not None)], dtype=np.float32)
        return obs

    def gripper_heightmap(self) -> np.ndarray:
        """(H, H) float32 metres above the table, centred on the gripper, right = +x, up = +y."""
        depth = self.observer.render_depth(CAMERA, self.config.heightmap_size)
        top = self.scene.data.cam_xpos[self._camera][2] - self.workspace_center[2]
        return np.clip(top - depth, 0.0, CAMERA_HEIGHT).astype(np.float32)


def site_quat_xyzw(rot: np.ndarray) -> np.ndarray:
    """(4,) float32 xyzw quaternion of a rotation matrix (MuJoCo's conversion: scipy's costs 0.2 ms)."""
    wxyz = np.empty(4)
    mujoco.mju_mat2Quat(wxyz, rot.reshape(9))
    return wxyz[[1, 2, 3, 0]].astype(np.float32)


def gripper_yaw(rot: np.ndarray) -> float:
    """The gantry yaw of a grip-site orientation ``rot_z(yaw) @ DOWN``."""
    return yaw_of(rot @ DOWN.T)


QUARTER_QUATS = {
    0: np.array([1.0, 0.0, 0.0, 0.0]),
    1: np.array([np.sqrt(0.5), 0.0, 0.0, np.sqrt(0.5)]),
    2: np.array([0.0, 0.0, 0.0, 1.0]),
    3: np.array([np.sqrt(0.5), 0.0, 0.0, -np.sqrt(0.5)]),
}


def quarter_turn_xy(xy: np.ndarray, k: int) -> np.ndarray:
    """(..., 2) vectors turned by ``k`` quarter turns counter-clockwise, exactly (no rounding)."""
    x, y = xy[..., 0], xy[..., 1]
    turned = {0: (x, y), 1: (-y, x), 2: (-x, -y), 3: (y, -x)}[k % 4]
    return np.stack(turned, axis=-1)


def rotate_action(action: np.ndarray, k: int) -> np.ndarray:
    """A closed-loop action under ``k`` quarter turns of the scene: dx, dy turn (rho1), the rest stays."""
    turned = np.array(action, dtype=np.float64, copy=True)
    turned[..., 1:3] = quarter_turn_xy(turned[..., 1:3], k)
    return turned.astype(np.asarray(action).dtype)


def rotate_scene(env: gym.Env, quarter_turns: int) -> None:
    """Turn a :class:`ClosedLoopEnv`'s state by ``quarter_turns`` x 90 degrees about the symmetry axis.

    The turn is counter-clockwise seen from above, about the vertical through ``workspace_center``.

    Free objects (position, orientation, velocity), mocap fixtures (position, orientation), the
    gripper's xy (position, velocity, target) and its yaw (position, target) turn; finger joints and
    other joints (a drawer's slide) stay. Afterwards ``gripper_heightmap`` is ``np.rot90`` of the old
    one by ``quarter_turns``, and ``holding`` is unchanged.
    """
    task_env = env.unwrapped
    assert isinstance(task_env, ClosedLoopEnv)
    k = quarter_turns % 4
    scene, centre = task_env.scene, task_env.workspace_center[:2]
    model, data = scene.model, scene.data
    q = QUARTER_QUATS[k]
    for j in range(model.njnt):
        if model.jnt_type[j] != mujoco.mjtJoint.mjJNT_FREE:
            continue
        adr, dof = model.jnt_qposadr[j], model.jnt_dofadr[j]
        data.qpos[adr : adr + 2] = centre + quarter_turn_xy(data.qpos[adr : adr + 2] - centre, k)
        mujoco.mju_mulQuat(data.qpos[adr + 3 : adr + 7], q, data.qpos[adr + 3 : adr + 7].copy())
        data.qvel[dof : dof + 2] = quarter_turn_xy(data.qvel[dof : dof + 2], k)  # angular: body frame
    for b in range(model.nbody):
        m = model.body_mocapid[b]
        if m >= 0:
            data.mocap_pos[m, :2] = centre + quarter_turn_xy(data.mocap_pos[m, :2] - centre, k)
            mujoco.mju_mulQuat(data.mocap_quat[m], q, data.mocap_quat[m].copy())
    xy, yaw = scene.arm_qpos[:2], scene.arm_qpos[3]
    # The gantry's slide joints are at the world origin: their positions are the site's xy.
    gantry_centre = centre - model.body("gantry_x").pos[:2]
    data.qpos[xy] = gantry_centre + quarter_turn_xy(data.qpos[xy] - gantry_centre, k)
    data.qvel[scene.arm_dof[:2]] = quarter_turn_xy(data.qvel[scene.arm_dof[:2]], k)
    data.qpos[yaw] += k * np.pi / 2
    ctrl_xy, ctrl_yaw = scene.arm_ctrl[:2], scene.arm_ctrl[3]
    data.ctrl[ctrl_xy] = gantry_centre + quarter_turn_xy(data.ctrl[ctrl_xy] - gantry_centre, k)
    data.ctrl[ctrl_yaw] += k * np.pi / 2
    mujoco.mj_forward(model, data)


def gripper_frame(yaw: float) -> np.ndarray:
    """The grip-site orientation at gantry yaw ``yaw`` (= ``experts.top_down(yaw)``)."""
    return rot_z(yaw) @ DOWN
