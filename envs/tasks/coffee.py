"""Coffee (MimicGen D0, D1, D2): put the pod into the coffee machine's holder and close the lid.

The machine and pod are look-alikes built from primitives (:mod:`equirobot_envs.coffee_machine`); the lid
starts fully open (2 pi / 3). Success is MimicGen's: the lid within 15 degrees of closed, and the pod in
the holder (centred within 5.2 mm, its bottom no lower than the holder's, its top under the lid).
D0 fixes the machine and draws the pod in a 6 cm square; D1 and D2 draw both over wider ranges (D2 on
the other side of the table, the machine facing the robot).
"""

from __future__ import annotations

import numpy as np

from equirobot_envs.coffee_machine import (
    HINGE,
    HOLDER,
    HOLDER_HALF_HEIGHT,
    HOLDER_OUTER,
    LID_HALF,
    LID_OPEN,
    POD_HALF_HEIGHT,
    POD_RADIUS,
    make_coffee_machine,
    make_pod,
)
from equirobot_envs.experts import CLOSED, top_down
from equirobot_envs.geometry import Workspace
from equirobot_envs.planner import Pick, Place, Reach, Via, body_position, grasped, plan_expert, pose
from equirobot_envs.registry import Subtask, TaskSpec
from equirobot_envs.table_scene import Placement, TableScene, fixed

MACHINE = "coffee_machine"


class CoffeeScene(TableScene):
    """The coffee machine (with its mug unless ``with_mug`` is False) and a pod on the table."""

    with_mug = True
    lid_start = LID_OPEN
    """The lid's hinge angle at every reset (radians; 0 closed)."""

    def _make_objects(self) -> dict:
        return {MACHINE: make_coffee_machine(MACHINE, mug=self.with_mug), "coffee_pod": make_pod()}

    def _setup_references(self) -> None:
        super()._setup_references()
        self.hinge_qpos = self.sim.model.get_joint_qpos_addr(f"{MACHINE}_hinge")

    def _reset_joints(self) -> None:
        self.sim.data.qpos[self.hinge_qpos] = self.lid_start
        super()._reset_joints()

    def _check_success(self) -> bool:
        return lid_closed(self) and pod_in_holder(self)


def lid_angle(env) -> float:
    """The lid's hinge angle (radians; 0 closed)."""
    scene = getattr(env, "scene", env)
    return float(scene.sim.data.qpos[scene.hinge_qpos])


def lid_closed(env) -> bool:
    """MimicGen's lid test: within 15 degrees of closed."""
    return lid_angle(env) < np.radians(15)


def pod_in_holder(env) -> bool:
    """MimicGen's pod test: centred in the holder, bottom not below the holder's, top under the lid."""
    pod = body_position(env, "coffee_pod")
    holder = body_position(env, f"{MACHINE}_pod_holder")
    lid = body_position(env, f"{MACHINE}_lid")
    return bool(
        np.linalg.norm(pod[:2] - holder[:2]) <= HOLDER_OUTER - POD_RADIUS
        and pod[2] - POD_HALF_HEIGHT >= holder[2] - HOLDER_HALF_HEIGHT
        and pod[2] + POD_HALF_HEIGHT <= lid[2] - LID_HALF[2]
    )


def _lid_push(angle: float, reach: float = 0.085, gap: float = 0.02) -> np.ndarray:
    """Gripper pose (machine frame) against the lid's top face at ``angle``, ``reach`` from the hinge."""
    along = np.array([0.0, np.cos(angle), np.sin(angle)])
    normal = np.array([0.0, -np.sin(angle), np.cos(angle)])  # the lid's top face
    return pose(np.array(HINGE) + reach * along + gap * normal, top_down(-np.pi / 2))


def close_lid() -> Reach:
    """Come down behind the open lid's edge, push the edge over along its arc, and press the lid shut.

    The fingertips (closed) push at the lid's edge: the palm, wider than the fingers, then stays above it.
    """
    start = _lid_push(np.radians(128))
    above = start.copy()
    above[2, 3] += 0.05
    arc = [_lid_push(np.radians(a)) for a in (110, 90, 70, 50, 30, 10)]
    press = _lid_push(0.0, gap=0.016)
    lift = press.copy()
    lift[2, 3] += 0.06
    return Reach(
        MACHINE,
        (
            Via(above, CLOSED, tolerance=0.02),
            Via(start, CLOSED, speed=0.008, tolerance=0.01),
            *(Via(p, CLOSED, speed=0.008, tolerance=0.02) for p in arc),
            Via(press, CLOSED, speed=0.006, tolerance=0.02, hold=4),
            Via(lift, CLOSED, tolerance=0.02),
        ),
    )


# The pod by its upper half (the fingertips then stay above the holder's rim when it is let go);
# released with its bottom 2.4 cm down in the holder, whose walls guide it onto the floor.
POD_GRASP = pose((0, 0, 0.012), top_down(0.0))
POD_RELEASE = pose(np.array(HOLDER) + [0, 0, HOLDER_HALF_HEIGHT + 0.0035])
EXPERT = plan_expert(
    Pick("coffee_pod", (POD_GRASP,), symmetry=8),
    Place("coffee_pod", MACHINE, (POD_RELEASE,), held_symmetry=8, approach=(0, 0, 0.06), retreat=0.06),
    close_lid(),
)
SUBTASKS = (
    Subtask("coffee_pod", lambda env: grasped(env, "coffee_pod"), offset=(5, 10), symmetry=8),
    Subtask(MACHINE),
)
PI = np.pi
# (machine x, y, yaw; pod x, y), the fact sheet's table; the pod's yaw is 0.
RANGES = {
    "D0": (fixed(0.0), fixed(-0.1), fixed(-PI / 6), (-0.13, -0.07), (0.17, 0.23)),
    "D1": ((0.05, 0.15), (-0.2, -0.1), (-PI / 6, PI / 3), (-0.2, 0.05), (0.17, 0.30)),
    "D2": ((-0.05, 0.05), (0.1, 0.2), (2 * PI / 3, 7 * PI / 6), (-0.2, 0.05), (-0.30, -0.17)),
}


def _variant(variant: str) -> TaskSpec:
    mx, my, myaw, px, py = RANGES[variant]
    return TaskSpec(
        name="Coffee",
        variant=variant,
        scene_class=CoffeeScene,
        scene_kwargs={
            "placements": {
                MACHINE: Placement(x=mx, y=my, yaw=myaw),
                "coffee_pod": Placement(x=px, y=py, yaw=fixed(0.0)),
            },
            "agentview_full": True,
        },
        horizon=400,
        objects={MACHINE: f"{MACHINE}_main", "coffee_pod": "coffee_pod_root"},
        expert=EXPERT,
        workspace=Workspace(center=(0.0, 0.0, 0.8), half_size=0.35),
        description="put the pod into the coffee machine's holder and close the lid",
        subtasks=SUBTASKS,
    )


VARIANTS = tuple(_variant(v) for v in ("D0", "D1", "D2"))
