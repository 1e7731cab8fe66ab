"""CoffeePreparation (MimicGen D0, D1): mug onto the machine, lid open, pod from the drawer in, lid shut.

Coffee's machine (:mod:`equirobot_envs.coffee_machine`, without its fixed mug) starts with its lid shut;
a mug like MimicGen's at scale 1 (8 cm tall) stands on the table; the pod lies in the drawer of a long
cabinet (:data:`~equirobot_envs.drawer.LONG`) whose drawer opens toward the robot's left (+y). Success
is MimicGen's: Coffee's (the lid within 15 degrees of shut, the pod in the holder) and the mug upright,
touching the machine's base plate. D0 fixes the cabinet and the machine and draws the mug in a patch,
yaw 0; D1 also draws the machine (turned by up to pi/6) and the mug over a wider patch, any yaw. The pod
is drawn in the drawer's frame, on its bottom, once the cabinet is placed.
"""

from __future__ import annotations

import numpy as np

from equirobot_envs.coffee_machine import HINGE, POD_HALF_HEIGHT
from equirobot_envs.drawer import LONG, drawer_qpos, make_drawer, make_mug, open_drawer
from equirobot_envs.experts import CLOSED, top_down
from equirobot_envs.geometry import Workspace, rot_z
from equirobot_envs.planner import Pick, Place, Planner, Reach, Via, grasped, plan_expert, pose
from equirobot_envs.registry import Subtask, TaskSpec
from equirobot_envs.table_scene import Placement, fixed
from equirobot_envs.tasks.coffee import (
    MACHINE,
    POD_GRASP,
    POD_RELEASE,
    CoffeeScene,
    close_lid,
    lid_angle,
    lid_closed,
    pod_in_holder,
)
from equirobot_envs.tasks.mug_cleanup import touches_geom, upright

MUG_HALF_HEIGHT = 0.04  # the mug at scale 1
BASE_TOP = -0.1005  # the base plate's top in the machine's frame
POD_X, POD_Y = (-0.03, 0.03), (-0.05, 0.03)  # the pod's offset from the drawer bottom's centre, drawer frame
LID_OPENED = 2.08  # radians: MimicGen's "lid opened" (its limit is 2 pi / 3 = 2.094)
DRAWER_OPENED = -0.19  # metres of the drawer's slide: MimicGen's "drawer open"


class CoffeePreparationScene(CoffeeScene):
    """The machine (lid shut, no fixed mug), a mug, the long cabinet with the pod in its drawer."""

    with_mug = False
    lid_start = 0.0

    def _make_objects(self) -> dict:
        return {**super()._make_objects(), "mug": make_mug("mug", scale=1.0)}

    def _make_fixtures(self) -> dict:
        return {"drawer": make_drawer("cabinet", LONG)}

    def _reset_internal(self) -> None:
        super()._reset_internal()  # the placements (cabinet, machine, mug), the lid and drawer shut
        if self.deterministic_reset:
            return
        self._place_pod()
        self.sim.forward()

    def _place_pod(self) -> None:
        """MimicGen's pod sampler: an offset from the drawer bottom's centre, in the drawer's frame."""
        model, data = self.sim.model, self.sim.data
        bottom = model.geom_name2id("cabinet_drawer_bottom")
        centre, rot = data.geom_xpos[bottom], data.geom_xmat[bottom].reshape(3, 3)
        offset = np.array([self.rng.uniform(*POD_X), self.rng.uniform(*POD_Y), 0.0])
        pos = centre + rot @ offset
        pos[2] = centre[2] + LONG.bottom_half[2] + POD_HALF_HEIGHT + 0.001
        yaw = float(np.arctan2(rot[1, 0], rot[0, 0]))  # the pod's yaw is the drawer's
        quat = [np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
        data.set_joint_qpos(self.free_joints["coffee_pod"], np.concatenate([pos, quat]))

    def _check_success(self) -> bool:
        return lid_closed(self) and pod_in_holder(self) and mug_placed(self)


def mug_placed(env) -> bool:
    """MimicGen's mug test: upright and touching the machine's base plate."""
    return upright(env, "mug_root") and touches_geom(env, "mug_root", f"{MACHINE}_base_g0")


def mug_placed_lid_open(env) -> bool:
    """MimicGen's ``mug_place`` signal: the mug placed, and the lid opened (nearly to its limit)."""
    return mug_placed(env) and lid_angle(env) > LID_OPENED


# The fist that lifts the lid points at the machine (its -y), level, the fingers closed across its x.
FRONT_FIST = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
TIP = 0.012  # the closed fingertips end this far beyond the gripper site


def _under_lid(angle: float, reach: float = 0.08) -> np.ndarray:
    """Gripper pose (machine frame) with the fingertips' end under the lid, ``reach`` from its hinge.

    While the lid is nearly shut the fingers' upper side bears on its underside (1 cm thick, 2 cm under
    the lid's mid-plane); as it rises their end pushes it (a few millimetres into it, to tip it over).
    """
    along = np.array([0.0, np.cos(angle), np.sin(angle)])
    below = np.array([0.0, np.sin(angle), -np.cos(angle)])  # the lid's underside normal
    drop = 0.0205 * np.cos(angle) ** 2 + 0.002 * np.sin(angle) ** 2
    tip = np.array(HINGE) + reach * along + drop * below
    return pose(tip + [0.0, TIP, 0.0], FRONT_FIST)


def open_lid() -> Reach:
    """Lift the lid open from the front.

    The closed fingertips slide under the shut lid's edge (in front of the holder) and lift it along its
    arc past upright; it falls open onto its limit (2 pi / 3).
    """
    poke = _under_lid(0.0)
    front = poke.copy()
    front[1, 3] += 0.06
    arc = [_under_lid(np.radians(a)) for a in (10, 20, 35, 50, 65, 80, 95, 105)]
    back = arc[-1].copy()
    back[1:3, 3] += [0.08, 0.02]
    return Reach(
        MACHINE,
        (
            Via(front, CLOSED, tolerance=0.015),
            Via(poke, CLOSED, speed=0.006, tolerance=0.006),
            *(Via(p, CLOSED, speed=0.008, tolerance=0.015) for p in arc),
            Via(back, CLOSED, tolerance=0.03),
        ),
    )


def _rot_x(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


MUG_LEAN = 0.7  # radians the hand leans off vertical when it holds the mug
WRIST_SPARE = 2.4  # radians: the last joint's angle a grasp should need at most (its limit is 2.9)
MUG_GRIP = 0.005  # the gripper site above the mug's centre (the palm then stays above the rim)


def mug_grasps(env) -> tuple[np.ndarray, ...]:
    """Grasps across the mug's body with the hand leaning ``MUG_LEAN`` (mug frame).

    On the base plate, under the pod holder, an upright hand would hit the holder; a hand leaning
    toward the machine's front clears it. So the mug is taken leaning already, toward the machine's
    front or any other way (in 20 degree steps) that keeps the fingers and the palm's low edge clear of
    the handle and does not point the hand back at the robot (the arm would stretch over the mug), and
    turned about its axis the way the arm reaches the placement with its last joint nearest the middle of
    its range; grasps that need that joint beyond ``WRIST_SPARE`` only if no other is left.
    """
    mug = pose(*env.body_pose("mug_root"))
    machine = pose(*env.body_pose(f"{MACHINE}_main"))
    front = float(np.arctan2(machine[1, 1], machine[0, 1]))  # the machine's +y, in the world
    place = (machine @ ON_BASE[0])[:3, 3] + [0.0, 0.0, MUG_GRIP]
    planner = Planner(env)

    def wrist(target: np.ndarray) -> float:  # the last joint's angle there (inf: out of reach)
        q = planner.reach(target)
        return np.inf if q is None else abs(float(q[6]))

    turn = min((0.0, np.pi), key=lambda t: wrist(pose(place, top_down(front) @ _rot_x(MUG_LEAN) @ rot_z(t))))
    handle = mug[:3, 0]
    robot = env.body_pose("robot0_base")[0][:2] - mug[:2, 3]
    robot /= np.linalg.norm(robot)
    easy: list[np.ndarray] = []
    hard: list[np.ndarray] = []
    for k in (0, 1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 6, -6, 7, -7, 8, -8, 9):
        lean = front + k * np.pi / 9
        fingers = np.array([-np.sin(lean), np.cos(lean), 0.0])  # top_down(lean) opens along this
        side = np.array([np.cos(lean), np.sin(lean), 0.0])  # the palm's low edge comes down on this side
        if abs(fingers @ handle) > np.cos(np.radians(30)) or side @ handle > np.cos(np.radians(60)):
            continue
        if side[:2] @ robot < -0.2:
            continue
        grasp = pose(mug[:3, 3] + [0.0, 0.0, MUG_GRIP], top_down(lean) @ _rot_x(MUG_LEAN) @ rot_z(turn))
        (easy if wrist(grasp) < WRIST_SPARE else hard).append(np.linalg.inv(mug) @ grasp)
    out = easy or hard
    return tuple(out)


ON_BASE = (pose((0.0, 0.125, BASE_TOP + MUG_HALF_HEIGHT + 0.004)),)


def on_base(env, held: np.ndarray) -> tuple[np.ndarray, ...]:
    """The mug's poses on the base plate (machine frame), turned so that the hand leans to the front.

    ``held``: the gripper site in the mug's frame; the hand's top leans along its -z. Exactly toward the
    machine's +y first, then up to 30 degrees off.
    """
    lean = float(np.arctan2(-held[1, 2], -held[0, 2]))  # in the mug's frame
    yaw = np.pi / 2 - lean
    return tuple(ON_BASE[0] @ pose(rot=rot_z(yaw + np.radians(d))) for d in (0, 15, -15, 30, -30))


EXPERT = plan_expert(
    Pick("mug", mug_grasps, lift=0.10, tolerant=True, tilts=(0.0,), flip=False),
    Place(
        "mug",
        MACHINE,
        on_base,
        approach=(0.0, 0.08, 0.03),
        retreat=0.1,
        open_steps=15,
        retreat_back=True,
    ),
    open_lid(),
    open_drawer("drawer", pulls=(0.23, 0.21), shape=LONG),
    Pick("coffee_pod", (POD_GRASP,), symmetry=8),
    Place("coffee_pod", MACHINE, (POD_RELEASE,), held_symmetry=8, approach=(0, 0, 0.06), retreat=0.06),
    close_lid(),
)
SUBTASKS = (
    Subtask("mug", lambda env: grasped(env, "mug", tolerant=True), offset=(5, 10)),
    Subtask(MACHINE, mug_placed_lid_open, offset=(5, 10)),
    Subtask("drawer", lambda env: drawer_qpos(env) < DRAWER_OPENED, offset=(5, 10)),
    Subtask("coffee_pod", lambda env: grasped(env, "coffee_pod"), offset=(5, 10), symmetry=8),
    Subtask(MACHINE),
)
PI = np.pi
# (machine x, y, yaw; mug x, y, yaw), the fact sheet's; the cabinet stands at (0.15, -0.35), yaw pi.
RANGES = {
    "D0": (fixed(-0.15), fixed(-0.25), fixed(-PI / 6), (0.05, 0.20), (0.05, 0.25), fixed(0.0)),
    "D1": ((-0.25, -0.15), (-0.30, -0.25), (-PI / 6, PI / 6), (-0.15, 0.20), (0.05, 0.25), (0.0, 2 * PI)),
}


def _variant(variant: str) -> TaskSpec:
    mx, my, myaw, ux, uy, uyaw = RANGES[variant]
    return TaskSpec(
        name="CoffeePreparation",
        variant=variant,
        scene_class=CoffeePreparationScene,
        scene_kwargs={
            "placements": {
                "drawer": Placement(x=fixed(0.15), y=fixed(-0.35), yaw=fixed(PI), z=0.805),
                # The three patches are apart (the cabinet's and the machine's footprints do not meet), but
                # their horizontal radii would: they are not checked against each other.
                MACHINE: Placement(x=mx, y=my, yaw=myaw, overlap=False),
                "mug": Placement(x=ux, y=uy, yaw=uyaw, z_offset=0.02),
            },
            "agentview_full": True,
            "swap_agentview": True,
        },
        horizon=800,
        objects={
            MACHINE: f"{MACHINE}_main",
            "coffee_pod": "coffee_pod_root",
            "mug": "mug_root",
            "drawer": "cabinet_main",
        },
        expert=EXPERT,
        workspace=Workspace(center=(0.0, -0.1, 0.8), half_size=0.4),
        description="mug onto the machine, lid open, pod from the drawer into the holder, lid shut",
        subtasks=SUBTASKS,
    )


VARIANTS = (_variant("D0"), _variant("D1"))
