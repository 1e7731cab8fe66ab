"""Features: every observation mode and control mode declared once.

A :class:`Feature` is one array an environment produces and a dataset stores: its key (the same in the
observation dict, in hdf5 ``obs/<key>`` and in zarr ``data/<key>``), its dtype, its shape for given
settings, how a rotation of the scene about the symmetry axis acts on it (``group_action``) and how a
policy normalises it. An :class:`ObsMode` is the set of features one ``obs=`` mode adds; a
:class:`ControlMode` is an action layout. The environments (spaces, producers), the datasets, the
policies (inputs, encoders, normalisers), the augmentation and the symmetry transforms all read these
declarations, so adding an observation mode is one declaration here plus its producer in
``equirobot_envs.observations``.

Low-dimensional features are made of *quantities*, each with one group action and one normalisation:

==============  ========  ==============================================  ==================
quantity        channels  under a rotation g about the vertical axis       normalised as
==============  ========  ==============================================  ==================
``position``    3         xy about the axis by rho1, z unchanged            ``position``
``vector``      3         xy by rho1 (no offset), z unchanged                ``vector``
``axis_angle``  3         a pseudo-vector (mirrors negate it once more)      ``vector``
``rot6d``       6         three rho1 pairs (columns of the top two rows)     ``rotation``
``quaternion``  4         xyzw; policies read it as a ``rot6d``              ``rotation``
``scalar``      1         unchanged (gripper, heights of nothing)            ``scalar``
``planar``      2         a horizontal vector by rho1 (no offset)            ``identity``
``half_turn``   1         an angle in [0, pi) as -1 .. 1: shifted by the     ``identity``
                          turn, mod pi (a parallel-jaw grasp's yaw)
==============  ========  ==============================================  ==================

``half_turn`` is not a linear representation (it shifts an angle, modulo a half turn), so it has no
escnn field type: networks produce it as a choice among discrete rotations (``fcn``'s rotation
channels), never as a value.

This module imports numpy only: a policy on a robot's computer reads the declarations without the
simulator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

QUANTITY_CHANNELS = {
    "position": 3, "vector": 3, "axis_angle": 3, "rot6d": 6, "quaternion": 4, "scalar": 1, "planar": 2,
    "half_turn": 1,
}  # fmt: skip
GROUP_ACTIONS = ("lowdim", "point_cloud", "voxels", "top_down", "with_gripper", "reflected", "none")
"""How the scene group acts on a feature: ``lowdim`` by its quantities; ``point_cloud``: xyz about the
axis, the other channels unchanged; ``voxels``: the (C, X, Y, Z) grid turns about its z axis;
``top_down``: a (H, W[, C]) view from above turns in the image plane; ``with_gripper``: the view turns
with the gripper, so the scene group leaves it unchanged (wrist camera); ``reflected``: a control task's
state vector, on which the task's own mirrors act by sign vectors (``equirobot_envs.flip_control``), its
size the task's; ``none``: not a policy input."""
POSE_CHANNELS = 7
"""One object pose in the ``object`` feature: position (3) + xyzw quaternion (4)."""
IMAGE_CAMERAS = ("agentview", "robot0_eye_in_hand")
FAMILIES = ("mimicgen", "closed_loop", "open_loop", "control")
"""Task families (``equirobot_envs.registry``): the robosuite MimicGen tasks, the closed-loop RL tasks of
SO(2)-equivariant RL on a gantry gripper, the open-loop pick-and-place tasks of Equivariant Q Learning
in Spatial Action Spaces on the same gripper, and Gymnasium's MuJoCo control tasks with a mirror
symmetry and a flip asymmetry (``equirobot_envs.flip_control``). Each observation and control mode
belongs to one family."""
FIXED_MODE_FAMILIES = ("closed_loop", "open_loop", "control")
"""Families whose tasks observe all of the family's observation modes and take its one control mode
(given by default: ``EnvConfig`` fills them in)."""


@dataclass(frozen=True)
class Feature:
    """One array of an observation (see the module docstring)."""

    key: str
    dtype: str
    """numpy dtype name: float32 or uint8."""
    shape: Callable[[Any, int], tuple[int, ...]]
    """(env settings with the size fields of ``EnvConfig``, number of task objects) -> shape."""
    group_action: str
    quantities: tuple[str, ...] = ()
    """``lowdim`` features: the quantities, in channel order (``object`` repeats position, quaternion)."""
    scale: float = 1.0
    """Grid features: the policy multiplies values by this (uint8 colours: 1/255; metres: 10)."""
    doc: str = ""

    def __post_init__(self) -> None:
        if self.group_action not in GROUP_ACTIONS:
            raise ValueError(f"feature {self.key}: group_action {self.group_action!r}; valid {GROUP_ACTIONS}")
        unknown = [q for q in self.quantities if q not in QUANTITY_CHANNELS]
        if unknown:
            raise ValueError(
                f"feature {self.key}: unknown quantities {unknown}; valid {list(QUANTITY_CHANNELS)}"
            )
        if (self.group_action == "lowdim") != bool(self.quantities):
            raise ValueError(
                f"feature {self.key}: quantities are declared for (and only for) lowdim features"
            )

    @property
    def is_policy_input(self) -> bool:
        return self.group_action != "none"


def _const(*shape: int) -> Callable[[Any, int], tuple[int, ...]]:
    return lambda settings, n_objects: shape


PROPRIO = (
    Feature("robot0_eef_pos", "float32", _const(3), "lowdim", ("position",), doc="gripper-site position"),
    Feature(
        "robot0_eef_quat", "float32", _const(4), "lowdim", ("quaternion",), doc="gripper-site xyzw quaternion"
    ),
    Feature("robot0_gripper_qpos", "float32", _const(2), "lowdim", ("scalar", "scalar"), doc="finger joints"),
)
"""Features every observation has, whatever the modes."""
HOLDING = Feature(
    "holding",
    "float32",
    _const(1),
    "lowdim",
    ("scalar",),
    doc="1.0 while the closed fingers are blocked by an object, else 0.0",
)
"""Whether the gantry gripper holds something (the closed-loop and open-loop tasks)."""


@dataclass(frozen=True)
class ObsMode:
    """An ``obs=`` mode: the features it adds to the observation."""

    name: str
    features: tuple[Feature, ...]
    doc: str
    family: str = "mimicgen"
    """The task family (:data:`FAMILIES`) whose environments produce it."""


def _task_sized(settings: Any, n_objects: int) -> tuple[int, ...]:
    raise ValueError(
        "a reflected feature's size is its task's (the length of its Reflections' sign vectors), "
        "not a setting: read it from the task"
    )


def _image(settings: Any, n_objects: int) -> tuple[int, ...]:
    return (settings.image_size, settings.image_size, 3)


def _depth(settings: Any, n_objects: int) -> tuple[int, ...]:
    return (settings.image_size, settings.image_size, 1)


OBS_MODES: dict[str, ObsMode] = {
    mode.name: mode
    for mode in (
        ObsMode(
            "state",
            (
                Feature(
                    "object",
                    "float32",
                    lambda settings, n: (POSE_CHANNELS * n,),
                    "lowdim",
                    ("position", "quaternion"),
                    doc="position + xyzw quaternion of each task object, (7K,)",
                ),
            ),
            "object poses",
        ),
        ObsMode(
            "rgb",
            (
                Feature("agentview_image", "uint8", _image, "top_down", scale=1 / 255, doc="front camera"),
                Feature(
                    "robot0_eye_in_hand_image", "uint8", _image, "with_gripper", scale=1 / 255, doc="wrist"
                ),
            ),
            "front and wrist cameras, (S, S, 3) uint8 upright; the front view is treated as top-down",
        ),
        ObsMode(
            "depth",
            tuple(Feature(f"{c}_depth", "float32", _depth, "none") for c in IMAGE_CAMERAS),
            "depth of the two cameras, metres (not a policy input)",
        ),
        ObsMode(
            "point_cloud",
            (
                Feature(
                    "point_cloud",
                    "float32",
                    lambda settings, n: (settings.n_points, 6),
                    "point_cloud",
                    doc="world xyz + rgb in [0, 1], fused cameras, workspace crop, farthest-point sampled",
                ),
            ),
            "(N, 6) point cloud",
        ),
        ObsMode(
            "voxels",
            (
                Feature(
                    "voxels",
                    "uint8",
                    lambda settings, n: (4,) + (settings.voxel_size,) * 3,
                    "voxels",
                    scale=1 / 255,
                    doc="occupancy + rgb over the workspace cube, [c, x, y, z]",
                ),
            ),
            "(4, D, D, D) voxel grid",
        ),
        ObsMode(
            "heightmap",
            (
                Feature(
                    "heightmap",
                    "float32",
                    lambda settings, n: (settings.heightmap_size, settings.heightmap_size),
                    "top_down",
                    scale=10.0,
                    doc="metres above the table, right = +x, up = +y",
                ),
            ),
            "(H, H) top-down heightmap",
        ),
        ObsMode(
            "gripper_heightmap",
            (
                Feature(
                    "gripper_heightmap",
                    "float32",
                    lambda settings, n: (settings.heightmap_size, settings.heightmap_size),
                    "top_down",
                    scale=10.0,
                    doc="metres above the table, 0.6 m square centred on the gripper, right = +x, up = +y",
                ),
                HOLDING,
            ),
            "(H, H) top-down heightmap that follows the gripper, and whether it holds something",
            family="closed_loop",
        ),
        ObsMode(
            "workspace_heightmap",
            (
                Feature(
                    "workspace_heightmap",
                    "float32",
                    lambda settings, n: (settings.heightmap_size, settings.heightmap_size),
                    "top_down",
                    scale=10.0,
                    doc="metres above the table, the 0.4 m workspace from a fixed camera over its centre, "
                    "right = +x, up = +y, the gripper not drawn",
                ),
                HOLDING,
            ),
            "(H, H) top-down heightmap of the whole workspace, and whether the gripper holds something",
            family="open_loop",
        ),
        ObsMode(
            "joint_state",
            (
                Feature(
                    "joint_state",
                    "float32",
                    _task_sized,
                    "reflected",
                    doc="the Gymnasium control task's observation vector (joint positions, velocities, ...)",
                ),
            ),
            "a control task's state vector",
            family="control",
        ),
    )
}


@dataclass(frozen=True)
class ControlMode:
    """An action layout: quantities in channel order, and the dataset key that stores such actions."""

    name: str
    quantities: tuple[str, ...]
    dataset_key: str
    doc: str
    robosuite_input: str = field(default="absolute")
    """robosuite's OSC ``input_type`` that executes it (``"none"``: not a robosuite mode)."""
    family: str = "mimicgen"
    """The task family (:data:`FAMILIES`) whose environments take it."""
    primitive: bool = False
    """Each action is a whole motion (a pick or a place), not a step: a scripted expert's waypoint is one
    action (``equirobot_envs.experts.ScriptedExpert``)."""

    @property
    def dim(self) -> int:
        """Channels of an action (0 for ``torque``: a control task has its own number of actuators)."""
        return sum(QUANTITY_CHANNELS[q] for q in self.quantities)


DELTA_POS_SCALE, DELTA_ROT_SCALE = 0.05, 0.5
"""What a ``delta`` action of 1 means: metres of translation, radians of rotation (robosuite's OSC
scaling), read by the env and by the ROS node, which turns delta actions into absolute targets."""

CONTROL_MODES: dict[str, ControlMode] = {
    "abs": ControlMode(
        "abs",
        ("position", "rot6d", "scalar"),
        "actions_abs",
        "10-D world-frame target pose of the gripper site [xyz, rot6d, gripper]",
        "absolute",
    ),
    "delta": ControlMode(
        "delta",
        ("vector", "axis_angle", "scalar"),
        "actions",
        "7-D robosuite OSC delta [dpos, daxis-angle, gripper], 1 = 5 cm / 0.5 rad",
        "delta",
    ),
    "closed_loop": ControlMode(
        "closed_loop",
        ("scalar", "vector", "scalar"),
        "actions",
        "5-D gantry step [gripper, dx, dy, dz, dtheta] in [-1, 1], 1 = 5 cm / pi/8 rad, world frame",
        "none",
        family="closed_loop",
    ),
    "pick_place": ControlMode(
        "pick_place",
        ("planar", "half_turn"),
        "actions",
        "3-D pick or place primitive [x, y, theta] in [-1, 1]: x, y over the workspace, theta over the "
        "gripper's half turn [0, pi)",
        "none",
        family="open_loop",
        primitive=True,
    ),
    "torque": ControlMode(
        "torque",
        (),
        "actions",
        "a control task's motor commands in [-1, 1] (1 = the bound of the stock control range), one per "
        "actuator; its mirrors negate them by sign vectors",
        "none",
        family="control",
    ),
}
REFLECTED_FAMILIES = ("control",)
"""Families whose observations are a state vector acted on by the task's mirrors, with no gripper."""


def family_modes(family: str) -> tuple[list[str], list[str]]:
    """The observation modes and the control modes of a task family."""
    if family not in FAMILIES:
        raise ValueError(f"unknown task family {family!r}; valid: {list(FAMILIES)}")
    obs = [m.name for m in OBS_MODES.values() if m.family == family]
    return obs, [c.name for c in CONTROL_MODES.values() if c.family == family]


def mode_features(modes: tuple[str, ...] | list[str]) -> tuple[Feature, ...]:
    """The features of an observation with these modes: proprio first, then each mode's, in order.

    The control tasks' modes (:data:`REFLECTED_FAMILIES`) have no gripper, so no proprio.
    """
    check_modes(modes)
    reflected = any(OBS_MODES[m].family in REFLECTED_FAMILIES for m in modes)
    return (() if reflected else PROPRIO) + tuple(f for m in modes for f in OBS_MODES[m].features)


def check_modes(modes: tuple[str, ...] | list[str]) -> None:
    """Raise a ValueError naming any unknown observation mode."""
    unknown = [m for m in modes if m not in OBS_MODES]
    if unknown:
        raise ValueError(f"unknown observation mode(s) {unknown}; valid modes: {list(OBS_MODES)}")


def control_mode(name: str) -> ControlMode:
    """The :class:`ControlMode` called ``name``; a ValueError lists the valid ones."""
    if name not in CONTROL_MODES:
        raise ValueError(f"unknown control mode {name!r}; valid modes: {list(CONTROL_MODES)}")
    return CONTROL_MODES[name]


def feature(key: str) -> Feature:
    """The declaration of an observation key."""
    for f in PROPRIO + tuple(f for m in OBS_MODES.values() for f in m.features):
        if f.key == key:
            return f
    raise KeyError(f"no feature {key!r} is declared")
