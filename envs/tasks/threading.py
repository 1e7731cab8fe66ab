"""Threading (MimicGen D0, D1, D2): push the needle's shaft through the tripod's ring.

The objects are MimicGen's composites of primitives (fact sheet, section 4):

* needle: a shaft 0.12 m long (0.01 m square) ending in a 0.04 m cube handle; the tip points along -y;
* tripod: a square ring of 20 small boxes (a 0.016 m hole whose axis is the tripod's x) on a post, a
  plate and three legs leaning in; the ring's centre is 0.19 m above the table.

Success is MimicGen's: the shaft's centre within 0.012 m of the ring's centre (the mean of its cells).
D0 draws the needle in a small patch with its tip toward the robot and fixes the tripod; D1 and D2 draw
both over wider ranges (D2 with the sides swapped).
"""

from __future__ import annotations

import numpy as np
from robosuite.models.objects import CompositeObject

from equirobot_envs.experts import top_down
from equirobot_envs.geometry import Workspace, rot_z
from equirobot_envs.planner import Pick, Place, grasped, plan_expert, pose
from equirobot_envs.registry import Subtask, TaskSpec
from equirobot_envs.table_scene import Placement, TableScene, fixed

SHAFT_CENTRE = (0.0, -0.02, 0.0)  # in the needle's frame
RING_CENTRE = (0.0, 0.0, 0.088)  # in the tripod's frame
RING_CELL = (0.005, 0.002, 0.002)
THIN_FRICTION = (0.3, 5e-3, 1e-4)


def make_needle() -> CompositeObject:
    """The needle: a thin shaft along -y and a cube handle at +y."""
    return CompositeObject(
        name="needle",
        total_size=(0.02, 0.08, 0.02),
        geom_types=["box", "box"],
        geom_locations=[SHAFT_CENTRE, (0.0, 0.06, 0.0)],
        geom_sizes=[(0.005, 0.06, 0.005), (0.02, 0.02, 0.02)],
        geom_names=["shaft", "handle"],
        geom_rgbas=[(0.6, 0.6, 0.65, 1), (0.15, 0.3, 0.8, 1)],
        geom_frictions=[THIN_FRICTION, None],
        density=100.0,
        locations_relative_to_center=True,
    )


def _leg(x: float, y: float) -> tuple[tuple, tuple]:
    """Centre and wxyz quaternion of a leg at (x, y), its top leaning 30 degrees toward the axis."""
    d = -np.array([x, y]) / np.hypot(x, y)  # toward the axis
    axis = np.array([-d[1], d[0], 0.0])  # turning z about it leans the top along d
    half = np.radians(30) / 2
    return (x, y, -0.06), (np.cos(half), *(np.sin(half) * axis))


def make_tripod() -> CompositeObject:
    """The ring (20 cells of a 6 x 6 grid in the y-z plane, the inner 4 x 4 left out), post, plate, legs."""
    steps = np.arange(-5, 6, 2) * RING_CELL[1]  # cell centres -0.010 .. 0.010
    cells = [
        (0.0, y, RING_CENTRE[2] + z)
        for y in steps
        for z in steps
        if max(abs(y), abs(z)) > 0.0085  # the outer ring of the grid
    ]
    legs = [_leg(-0.04, -0.04), _leg(-0.04, 0.04), _leg(0.04, 0.0)]
    n = len(cells)
    return CompositeObject(
        name="tripod",
        total_size=(0.05, 0.05, 0.10),
        geom_types=["box"] * n + ["box", "box"] + ["capsule"] * 3,
        geom_locations=[*cells, (0, 0, -0.015), (0, 0, 0.033), *(c for c, _ in legs)],
        geom_sizes=[RING_CELL] * n + [(0.05, 0.05, 0.005), (0.005, 0.005, 0.043)] + [(0.01, 0.03)] * 3,
        geom_quats=[None] * (n + 2) + [q for _, q in legs],
        geom_names=[f"ring_{i}" for i in range(n)] + ["plate", "post", "leg_0", "leg_1", "leg_2"],
        geom_rgbas=[(0.8, 0.2, 0.2, 1)] * n + [(0.3, 0.3, 0.3, 1)] * 5,
        geom_frictions=[THIN_FRICTION] * n + [None] * 5,
        density=100.0,
        solref=(0.02, 1.0),
        solimp=(0.9, 0.95, 0.001),
        locations_relative_to_center=True,
    )


class ThreadingScene(TableScene):
    """The needle and the tripod on the table."""

    def _make_objects(self) -> dict:
        return {"needle": make_needle(), "tripod": make_tripod()}

    def _setup_references(self) -> None:
        super()._setup_references()
        model = self.sim.model
        self.shaft_geom = model.geom_name2id("needle_shaft")
        self.ring_geoms = [model.geom_name2id(f"tripod_ring_{i}") for i in range(20)]

    def _check_success(self) -> bool:
        return threaded(self)


def threaded(env) -> bool:
    """MimicGen's test: the shaft's centre within 0.012 m of the mean of the ring's cells."""
    scene = getattr(env, "scene", env)
    xpos = scene.sim.data.geom_xpos
    ring = xpos[scene.ring_geoms].mean(axis=0)
    return bool(np.linalg.norm(xpos[scene.shaft_geom] - ring) < 0.012)


# The handle, fingers across it either way; the needle threaded with its axis along the ring's (the
# tripod's x), the handle on the +x side, the shaft's centre at the ring's centre, pushed in from +x.
HANDLE = (0.0, 0.06, 0.0)
GRASPS = (pose(HANDLE, top_down(-np.pi / 2)), pose(HANDLE, top_down(0.0)))
THREADED = pose(np.array(RING_CENTRE) - rot_z(-np.pi / 2) @ SHAFT_CENTRE, rot_z(-np.pi / 2))
EXPERT = plan_expert(
    Pick("needle", GRASPS, lift=0.12),
    Place(
        "needle",
        "tripod",
        (THREADED,),
        symmetry=2,
        approach=(0.10, 0.0, 0.0),
        final_speed=0.004,
        tolerance=0.004,
        retreat=0.06,
    ),
)
SUBTASKS = (
    Subtask("needle", lambda env: grasped(env, "needle"), offset=(5, 10)),
    Subtask("tripod", offset=(5, 10)),
)
PI = np.pi
WIDE = (-7 * PI / 6, PI / 6)
# (needle x, y, yaw; tripod x, y, yaw), the fact sheet's table.
RANGES = {
    "D0": ((-0.2, -0.05), (0.15, 0.25), (-2 * PI / 3, -PI / 3), fixed(0.0), fixed(-0.15), fixed(PI / 2)),
    "D1": ((-0.2, 0.05), (0.15, 0.25), WIDE, (-0.1, 0.15), (-0.2, -0.1), (PI / 6, 5 * PI / 6)),
    "D2": ((-0.2, 0.05), (-0.25, -0.15), WIDE, (-0.1, 0.15), (0.1, 0.2), (-5 * PI / 6, -PI / 6)),
}


def _variant(variant: str) -> TaskSpec:
    nx, ny, nyaw, tx, ty, tyaw = RANGES[variant]
    return TaskSpec(
        name="Threading",
        variant=variant,
        scene_class=ThreadingScene,
        scene_kwargs={
            "placements": {
                "needle": Placement(x=nx, y=ny, yaw=nyaw),
                "tripod": Placement(x=tx, y=ty, yaw=tyaw, z_offset=0.001),
            },
            "agentview_full": True,
        },
        horizon=400,
        objects={"needle": "needle_root", "tripod": "tripod_root"},
        expert=EXPERT,
        # Wide enough for the far approach poses (abs actions are clipped to the workspace).
        workspace=Workspace(center=(0.0, 0.0, 0.8), half_size=0.42),
        description="pick the needle by its handle and push its shaft through the tripod's ring",
        subtasks=SUBTASKS,
    )


VARIANTS = tuple(_variant(v) for v in ("D0", "D1", "D2"))
