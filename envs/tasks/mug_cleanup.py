"""MugCleanup (MimicGen D0, D1): open the drawer, put the mug in it upright, close it.

The drawer cabinet of :mod:`equirobot_envs.drawer` stands on the standard table (its root at 0.805 m, the
drawer's bottom at about 0.841 m); the mug is a look-alike of MimicGen's ShapeNet mug at scale 0.8
(6.4 cm tall). Success is MimicGen's: the mug touches the drawer's bottom, stands upright (within about
2.6 degrees) and the drawer is shut. D0 fixes the drawer and draws the mug over a strip on the near
side, any yaw; D1 also draws the drawer over a patch, turned by up to pi/6, and the mug over a wider strip.
"""

from __future__ import annotations

import numpy as np

from equirobot_envs.drawer import (
    BOTTOM,
    BOTTOM_HALF,
    close_drawer,
    drawer_open,
    drawer_qpos,
    make_drawer,
    make_mug,
    open_drawer,
)
from equirobot_envs.experts import top_down
from equirobot_envs.geometry import Workspace
from equirobot_envs.planner import Pick, Place, grasped, plan_expert, pose
from equirobot_envs.registry import Subtask, TaskSpec
from equirobot_envs.table_scene import Placement, TableScene, fixed

MUG_HALF_HEIGHT = 0.032


class MugCleanupScene(TableScene):
    """The drawer cabinet and the mug on the standard table."""

    def _make_objects(self) -> dict:
        return {"mug": make_mug("mug", scale=0.8)}

    def _make_fixtures(self) -> dict:
        return {"drawer": make_drawer("cabinet")}

    def _check_success(self) -> bool:
        return mug_stowed(self)


def upright(env, body: str) -> bool:
    """MimicGen's upright test: the body's z axis within about 2.56 degrees of vertical."""
    scene = getattr(env, "scene", env)
    rot = scene.sim.data.body_xmat[scene.sim.model.body_name2id(body)].reshape(3, 3)
    return bool(1 - rot[2, 2] < 1e-3)


def touches_geom(env, body: str, geom: str) -> bool:
    """Whether any geom of ``body`` touches the named geom."""
    scene = getattr(env, "scene", env)
    model, data = scene.sim.model._model, scene.sim.data._data
    target, bid = scene.sim.model.geom_name2id(geom), scene.sim.model.body_name2id(body)
    for c in data.contact[: data.ncon]:
        if (c.geom1 == target and model.geom_bodyid[c.geom2] == bid) or (
            c.geom2 == target and model.geom_bodyid[c.geom1] == bid
        ):
            return True
    return False


def mug_stowed(env) -> bool:
    """MimicGen's success: the mug on the drawer's bottom, upright, the drawer shut."""
    return (
        touches_geom(env, "mug_root", "cabinet_drawer_bottom")
        and upright(env, "mug_root")
        and drawer_qpos(env) > -0.01
    )


# Across the mug's body at mid-height, the fingers closing along its y (clear of the handle at +x).
MUG_GRASPS = (pose((0, 0, 0.002), top_down(0.0)),)
IN_TRAY = tuple(
    pose(np.array(BOTTOM) + [0.0, y, BOTTOM_HALF[2] + MUG_HALF_HEIGHT + 0.006]) for y in (0.0, -0.03)
)
EXPERT = plan_expert(
    open_drawer("drawer"),
    Pick("mug", MUG_GRASPS, lift=0.12, tolerant=True),
    Place("mug", "cabinet_drawer_link", IN_TRAY, symmetry=8, keep_tilt=True, approach=(0, 0, 0.08)),
    close_drawer("cabinet_drawer_link"),
)
SUBTASKS = (
    Subtask("drawer", drawer_open),
    Subtask("mug", lambda env: grasped(env, "mug", tolerant=True)),
    Subtask("drawer"),
)


def _variant(variant: str) -> TaskSpec:
    if variant == "D0":
        drawer = Placement(x=fixed(0.0), y=fixed(0.30), yaw=fixed(0.0), z=0.805)
        mug = Placement(x=(-0.15, 0.15), y=(-0.25, -0.10))
    else:
        drawer = Placement(x=(-0.15, 0.05), y=(0.25, 0.35), yaw=(-np.pi / 6, np.pi / 6), z=0.805)
        mug = Placement(x=(-0.25, 0.15), y=(-0.30, -0.15))
    return TaskSpec(
        name="MugCleanup",
        variant=variant,
        scene_class=MugCleanupScene,
        scene_kwargs={
            "placements": {"drawer": drawer, "mug": mug},
            "agentview_full": True,
            "swap_agentview": True,
        },
        horizon=500,
        objects={"mug": "mug_root", "drawer": "cabinet_main"},
        expert=EXPERT,
        workspace=Workspace(center=(0.0, 0.0, 0.8), half_size=0.4),
        description="open the drawer, put the mug in it upright, close it",
        subtasks=SUBTASKS,
    )


VARIANTS = (_variant("D0"), _variant("D1"))
