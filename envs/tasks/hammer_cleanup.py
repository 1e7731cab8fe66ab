"""HammerCleanup (MimicGen D0, D1): open the drawer, put the hammer in it, close it.

A task-zoo scene: the table top at 0.90 m with its centre 0.2 m nearer the robot, robosuite's hammer
(lying on one side or the other) and the drawer cabinet of :mod:`equirobot_envs.drawer`. Success, D0 (the
task zoo's): the hammer between 0.94 and 1.0 m high, beyond y = 0.22, the drawer shut; D1 (MimicGen's): the
hammer touching the drawer's bottom, the drawer shut. D0 fixes the drawer and draws the hammer in a small
patch; D1 draws the hammer anywhere along the near side with any yaw, the drawer over a strip, turned by
up to pi/6.
"""

from __future__ import annotations

import numpy as np
from robosuite.models.objects import HammerObject

from equirobot_envs.drawer import (
    BOTTOM,
    BOTTOM_HALF,
    close_drawer,
    drawer_open,
    drawer_qpos,
    make_drawer,
    open_drawer,
)
from equirobot_envs.experts import top_down
from equirobot_envs.geometry import Workspace
from equirobot_envs.planner import Pick, Place, body_position, grasped, in_contact, plan_expert, pose
from equirobot_envs.registry import Subtask, TaskSpec
from equirobot_envs.scene import xml_floats
from equirobot_envs.table_scene import Placement, TableScene, fixed

# The task zoo's camera poses (wxyz).
AGENTVIEW = ((0.53861, 0.0, 1.49035), (0.63802, 0.30485, 0.30485, 0.63802))
SIDEVIEW = ((0.55861, 0.3, 1.29035), (0.41442, 0.31009, 0.49641, 0.69690))
# robosuite's two lying-down orientations of the hammer (its init_quat), wxyz.
LYING = (np.array([-0.5, 0.5, -0.5, 0.5]), np.array([-0.5, -0.5, -0.5, -0.5]))
HANDLE_HALF = 0.012


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of wxyz quaternions."""
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ]
    )


def set_camera(model, name: str, pos, quat) -> None:
    """Move a camera of the merged MJCF (before the model is compiled)."""
    for camera in model.worldbody.iter("camera"):
        if camera.get("name") == name:
            camera.set("pos", xml_floats(pos))
            camera.set("quat", xml_floats(quat))


class HammerCleanupScene(TableScene):
    """The task zoo's raised table, the hammer and the drawer; ``zoo_success``: D0's success test."""

    table_offset = (-0.2, 0.0, 0.90)
    table_friction = (0.6, 0.005, 0.0001)

    def __init__(self, zoo_success: bool = False, **kwargs):
        self.zoo_success = zoo_success
        super().__init__(**kwargs)

    def _make_objects(self) -> dict:
        # Sizes fixed at the middle of the task's ranges (robosuite draws them when the model is built).
        hammer = HammerObject(
            name="hammer",
            handle_length=(0.0475, 0.0475),
            handle_radius=(HANDLE_HALF, HANDLE_HALF),
            handle_density=(175, 175),
            handle_friction=(4.0, 4.0),
            head_density_ratio=1.0,
            rng=np.random.default_rng(0),
        )
        return {"hammer": hammer}

    def _make_fixtures(self) -> dict:
        return {"drawer": make_drawer("cabinet")}

    def _load_model(self) -> None:
        super()._load_model()
        set_camera(self.model, "agentview", *AGENTVIEW)
        set_camera(self.model, "sideview", *SIDEVIEW)

    def _initial_quat(self, name: str, yaw: float) -> np.ndarray:
        quat = super()._initial_quat(name, yaw)
        if name != "hammer":
            return quat
        return _quat_mul(quat, LYING[int(self.rng.random() >= 0.5)])

    def _check_success(self) -> bool:
        return hammer_stowed(self) if not self.zoo_success else hammer_stowed_zoo(self)


def hammer_stowed(env) -> bool:
    """MimicGen's (D1): the hammer touches the drawer's bottom, and the drawer is shut."""
    return (
        in_contact(env, "hammer", "cabinet_drawer_link") and _touches_bottom(env) and drawer_qpos(env) > -0.01
    )


def _touches_bottom(env) -> bool:
    scene = getattr(env, "scene", env)
    model, data = scene.sim.model._model, scene.sim.data._data
    bottom = scene.sim.model.geom_name2id("cabinet_drawer_bottom")
    hammer = {g for g in range(model.ngeom) if model.body(model.geom_bodyid[g]).name == "hammer_root"}
    return any(
        (c.geom1 == bottom and c.geom2 in hammer) or (c.geom2 == bottom and c.geom1 in hammer)
        for c in data.contact[: data.ncon]
    )


def hammer_stowed_zoo(env) -> bool:
    """The task zoo's (D0): the hammer 0.94-1.0 m high, beyond y = 0.22, the drawer shut."""
    pos = body_position(env, "hammer")
    return bool(0.94 < pos[2] < 1.0 and pos[1] > 0.22 and drawer_qpos(env) > -0.01)


def handle_grasps(env) -> tuple[np.ndarray, ...]:
    """Top-down grasps across the handle (its axis is the hammer's z), a centimetre from its middle."""
    obj = pose(*env.body_pose("hammer"))
    axis = obj[:3, 2]
    yaw = float(np.arctan2(axis[1], axis[0]))  # top_down(yaw) opens its fingers across this axis
    grip = obj[:3, :3] @ [0, 0, -0.01] + obj[:3, 3] + [0, 0, 0.004]
    return tuple(np.linalg.inv(obj) @ pose(grip, top_down(yaw + k * np.pi)) for k in (0, 1))


# Over the tray's middle, or nearer its front (a drawer opened less is partly under the cabinet's roof).
IN_TRAY = tuple(pose(np.array(BOTTOM) + [0.0, y, BOTTOM_HALF[2] + 0.014 + 0.012]) for y in (0.0, -0.03))
EXPERT = plan_expert(
    open_drawer("drawer"),
    Pick("hammer", handle_grasps, lift=0.12),
    Place("hammer", "cabinet_drawer_link", IN_TRAY, symmetry=8, keep_tilt=True, approach=(0, 0, 0.08)),
    close_drawer("cabinet_drawer_link"),
)
SUBTASKS = (
    Subtask("drawer", drawer_open),
    Subtask("hammer", lambda env: grasped(env, "hammer")),
    Subtask("drawer"),
)


def _variant(variant: str) -> TaskSpec:
    # Ranges relative to the table's centre (-0.2, 0, 0.9), as the task zoo gives them.
    if variant == "D0":
        placements = {
            "drawer": Placement(x=fixed(0.2), y=fixed(0.30), yaw=fixed(0.0), z=0.905),
            "hammer": Placement(x=(0.10, 0.18), y=(-0.20, -0.13), yaw=(-0.1, 0.1), z_offset=0.02),
        }
    else:
        placements = {
            "hammer": Placement(x=(-0.2, 0.2), y=(-0.25, -0.13), yaw=(0.0, 2 * np.pi), z_offset=0.02),
            "drawer": Placement(x=(0.0, 0.2), y=(0.2, 0.3), yaw=(-np.pi / 6, np.pi / 6), z=0.905),
        }
    return TaskSpec(
        name="HammerCleanup",
        variant=variant,
        scene_class=HammerCleanupScene,
        scene_kwargs={"placements": placements, "zoo_success": variant == "D0"},
        horizon=500,
        objects={"hammer": "hammer_root", "drawer": "cabinet_main"},
        expert=EXPERT,
        workspace=Workspace(center=(-0.1, 0.0, 0.9), half_size=0.4),
        description="open the drawer, put the hammer in it, close it",
        subtasks=SUBTASKS,
    )


VARIANTS = (_variant("D0"), _variant("D1"))
