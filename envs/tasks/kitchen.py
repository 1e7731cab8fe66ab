"""Kitchen (MimicGen D0, D1): stove on, pot on it, bread in the pot, the pot served, the stove off.

A task-zoo scene on a 1.0 x 0.8 m table whose top is at 0.90 m (its centre 0.2 m nearer the robot, the
robot's base at x = -0.66). Everything is built from primitives (fact sheet, section 9): the bread (a
box), the pot (a floor, four walls, two handles across its y walls), the stove (a base and a burner
plate ``Stove1_collision_burner``), the button (a rocker on a hinge along x: on when its angle is at
least 0) and a red serving region (visual only). Success is MimicGen's: the pot in the serving region,
the stove off, the bread touching the pot, and, at some step before, the stove on with the bread in the
pot and the pot on the burner (a latch, reset with the episode). D0 fixes the fixtures and draws bread
and pot in small patches; D1 draws every object over a patch.
"""

from __future__ import annotations

import numpy as np
from robosuite.models.objects import BoxObject, CompositeObject, MujocoXMLObject

from equirobot_envs.drawer import cached_xml
from equirobot_envs.experts import CLOSED, top_down
from equirobot_envs.geometry import Workspace
from equirobot_envs.planner import (
    Pick,
    Place,
    Reach,
    Via,
    body_position,
    grasped,
    in_contact,
    plan_expert,
    pose,
)
from equirobot_envs.registry import Subtask, TaskSpec
from equirobot_envs.table_scene import Placement, TableScene, fixed
from equirobot_envs.tasks.hammer_cleanup import AGENTVIEW, SIDEVIEW, set_camera

PAD_Z, PAD_HALF = 0.08, 0.004  # the button's pad centre above its body origin, and its half-thickness
HANDLE_Y, HANDLE_Z = 0.06, 0.077  # the pot's handles in its frame
BURNER_TOP = 0.022 + 0.0005  # the burner plate's top above the stove's origin
POT_RIM = 0.0325 + 0.035  # the walls' top above the pot's origin (which is 2.5 mm above its underside)


def make_pot() -> CompositeObject:
    """The pot: a floor ``PotObject_body_0``, four slippery walls and two handles over the y walls."""
    walls: list[tuple[tuple[float, float, float], tuple[float, float, float]]]
    walls = [((0.0, s * 0.06, 0.0325), (0.057, 0.007, 0.035)) for s in (-1, 1)]
    walls += [((s * 0.05, 0, 0.0325), (0.007, 0.053, 0.035)) for s in (-1, 1)]
    handles = [((0, s * HANDLE_Y, HANDLE_Z), (0.0275, 0.007, 0.01)) for s in (-1, 1)]
    boxes = [((0, 0, 0.0025), (0.043, 0.053, 0.005)), *walls, *handles]
    slippery = (0.005, 0.005, 0.0001)
    return CompositeObject(
        name="PotObject",
        total_size=(0.057, 0.067, 0.0435),
        geom_types=["box"] * len(boxes),
        geom_locations=[c for c, _ in boxes],
        geom_sizes=[s for _, s in boxes],
        geom_names=["body_0", "wall_0", "wall_1", "wall_2", "wall_3", "handle_0", "handle_1"],
        geom_rgbas=[(0.35, 0.35, 0.38, 1)] * 5 + [(0.1, 0.1, 0.1, 1)] * 2,
        geom_frictions=[None, slippery, slippery, slippery, slippery, None, None],
        density=200.0,
        locations_relative_to_center=True,
    )


def make_stove() -> CompositeObject:
    """The stove: a base box and the thin burner plate ``Stove1_collision_burner`` on it (a fixture)."""
    return CompositeObject(
        name="Stove1",
        total_size=(0.095, 0.095, 0.0225),
        geom_types=["box", "box", "cylinder"],
        geom_locations=[(0, 0, 0), (0, 0, 0.022), (0, 0, 0.0215)],
        geom_sizes=[(0.095, 0.095, 0.02), (0.095, 0.095, 0.0005), (0.0625, 0.001)],
        geom_names=["base", "collision_burner", "burner"],
        geom_rgbas=[(0.2, 0.2, 0.2, 1), (0.3, 0.3, 0.3, 0.0), (0.5, 0.1, 0.1, 1)],
        obj_types=["all", "all", "visual"],
        joints=None,
        locations_relative_to_center=True,
    )


def make_serving_region() -> CompositeObject:
    """The red serving region: a visual plate 0.022 m above its origin (a fixture)."""
    return CompositeObject(
        name="ServingRegionRed",
        total_size=(0.07, 0.10, 0.001),
        geom_types=["box"],
        geom_locations=[(0, 0, 0.022)],
        geom_sizes=[(0.07, 0.10, 0.001)],
        geom_names=["plate"],
        geom_rgbas=[(0.8, 0.1, 0.1, 1)],
        obj_types="visual",
        joints=None,
        locations_relative_to_center=True,
    )


def button_xml() -> str:
    """The button's MJCF: a base cylinder and a rocker (a box and a pad) on a hinge along x."""
    style = 'group="0" density="500" friction="1 0.005 0.0001"'
    return f"""<mujoco model="button">
  <worldbody>
    <body>
      <body name="object">
        <geom name="base" type="cylinder" size="0.04 0.02" rgba="0.25 0.25 0.28 1" {style}/>
        <body name="switch" pos="0 0 0.03">
          <joint name="hinge" type="hinge" axis="1 0 0" limited="true" range="-0.3 0.3" damping="0.1"
                 frictionloss="0.1"/>
          <geom name="lever" type="box" pos="0 0 0.02" size="0.025 0.007 0.025" rgba="0.8 0.8 0.8 1" {style}/>
          <geom name="pad" type="cylinder" pos="0 0 {PAD_Z - 0.03}" size="0.0325 {PAD_HALF}"
                rgba="0.85 0.15 0.15 1" {style}/>
        </body>
      </body>
      <site rgba="0 0 0 0" size="0.005" pos="0 0 -0.02" name="bottom_site"/>
      <site rgba="0 0 0 0" size="0.005" pos="0 0 0.085" name="top_site"/>
      <site rgba="0 0 0 0" size="0.005" pos="0.028 0.028 0" name="horizontal_radius_site"/>
    </body>
  </worldbody>
</mujoco>
"""


class KitchenScene(TableScene):
    """The task zoo's kitchen; ``button_start``: the button's initial angle (radians)."""

    table_full_size = (1.0, 0.8, 0.05)
    table_offset = (-0.2, 0.0, 0.90)
    table_friction = (0.6, 0.005, 0.0001)

    def __init__(self, button_start: float = -0.3, **kwargs):
        self.button_start = button_start
        self.cooked = False
        super().__init__(**kwargs)

    def _make_objects(self) -> dict:
        bread = BoxObject(name="Bread", size=(0.015, 0.025, 0.02), rgba=(0.8, 0.55, 0.25, 1), density=500)
        return {"bread": bread, "pot": make_pot()}

    def _make_fixtures(self) -> dict:
        button = MujocoXMLObject(
            cached_xml("button", button_xml()), name="Button1", joints=None, obj_type="all"
        )
        return {"stove": make_stove(), "button": button, "serving_region": make_serving_region()}

    def _load_model(self) -> None:
        super()._load_model()
        set_camera(self.model, "agentview", *AGENTVIEW)
        set_camera(self.model, "sideview", *SIDEVIEW)

    def _setup_references(self) -> None:
        super()._setup_references()
        self.button_qpos = self.sim.model.get_joint_qpos_addr("Button1_hinge")

    def _reset_joints(self) -> None:
        self.sim.data.qpos[self.button_qpos] = self.button_start
        self.cooked = False
        super()._reset_joints()

    def _check_success(self) -> bool:
        if stove_on(self) and in_contact(self, "bread", "pot") and pot_on_burner(self):
            self.cooked = True  # MimicGen's latch
        return bool(self.cooked and served(self) and not stove_on(self) and in_contact(self, "bread", "pot"))


def stove_on(env) -> bool:
    """The button's state: on when its hinge angle is at least 0."""
    scene = getattr(env, "scene", env)
    return bool(scene.sim.data.qpos[scene.button_qpos] >= 0)


def pot_on_burner(env) -> bool:
    """The pot's floor touches the burner plate."""
    scene = getattr(env, "scene", env)
    model, data = scene.sim.model, scene.sim.data._data
    floor, plate = model.geom_name2id("PotObject_body_0"), model.geom_name2id("Stove1_collision_burner")
    return any({c.geom1, c.geom2} == {floor, plate} for c in data.contact[: data.ncon])


def served(env) -> bool:
    """The pot within (0.05, 0.10, 0.05) m of the serving region's origin."""
    delta = np.abs(body_position(env, "pot") - body_position(env, "serving_region"))
    return bool(delta[0] < 0.05 and delta[1] < 0.10 and delta[2] < 0.05)


def press(side: float) -> Reach:
    """Press the button's pad down on one side (-1: turn on, +1: turn off) with a closed fist.

    The fist's wide side (its fingers' closing axis) lies across the hinge: the press point, 1.6 cm off the
    hinge, is 3 cm from the tilted pad's centre, and the fist still covers the pad there.
    """
    top = PAD_Z + PAD_HALF
    fist = top_down(0.0)
    at = np.array([0.0, side * 0.016, top + 0.009])  # the fingertips on the pad's top, half way out
    # The hinge's friction takes about 4 N at the pad's edge: aim 4 cm down, so that the arm's
    # controller pushes that hard, and count the press done once the fist has stopped.
    # From 5 cm above the pad (near the robot's base the arm cannot raise the hand much higher), the fist
    # upright or, where the folded arm cannot point it straight down, leaning.
    return Reach(
        "button",
        (
            Via(pose(at + [0, 0, 0.05], fist), CLOSED, tolerance=0.02),
            Via(pose(at + [0, 0, 0.012], fist), CLOSED, speed=0.006, tolerance=0.01),
            Via(pose(at - [0, 0, 0.03], fist), CLOSED, speed=0.004, tolerance=0.04, hold=12),
            Via(pose(at + [0, 0, 0.05], fist), CLOSED, tolerance=0.02),
        ),
        tilts=(0.0, 0.25, -0.25, 0.5, -0.5),
    )


POT_GRASPS = tuple(pose((0, s * HANDLE_Y, HANDLE_Z), top_down(0.0)) for s in (-1, 1))
SERVE = tuple(pose((x, 0, 0.0245 + 0.005)) for x in (-0.03, 0.0))
BREAD_GRASP = (pose((0, 0, 0.004), top_down(-np.pi / 2)),)
EXPERT = plan_expert(
    press(-1.0),
    Pick("pot", POT_GRASPS, lift=0.10),
    Place("pot", "stove", (pose((0, 0, BURNER_TOP + 0.0025 + 0.005)),), symmetry=4, keep_tilt=True),
    Pick("bread", BREAD_GRASP, lift=0.10),
    # The bread is let go with its underside just above the pot's rim (the hand stays clear of the walls).
    Place("bread", "pot", (pose((0, 0, POT_RIM + 0.02 + 0.006)),), symmetry=2, keep_tilt=True),
    Pick("pot", POT_GRASPS, lift=0.08),
    # The region is at the edge of the arm's reach, and a stretched-out arm does not come back to the button:
    # the pot goes in the region's half nearest the robot (it counts within 5 cm of the centre along x),
    # turned so that the hand holds it by its near side.
    Place("pot", "serving_region", SERVE, symmetry=4, keep_tilt=True, nearest_first=True),
    press(1.0),
)
SUBTASKS = (
    Subtask("button", stove_on),
    Subtask("pot", lambda env: grasped(env, "pot")),
    Subtask("stove", lambda env: pot_on_burner(env) and not grasped(env, "pot")),
    Subtask("bread", lambda env: grasped(env, "bread")),
    Subtask("pot", lambda env: in_contact(env, "bread", "pot") and grasped(env, "pot")),
    Subtask("serving_region", served),
    Subtask("button"),
)


def _variant(variant: str) -> TaskSpec:
    # Ranges relative to the table's centre (-0.2, 0, 0.9), as the task zoo gives them.
    if variant == "D0":
        placements = {
            "stove": Placement(x=fixed(0.23), y=fixed(0.095), yaw=fixed(0.0), z=0.895),
            "button": Placement(x=fixed(0.06), y=fixed(0.10), yaw=fixed(np.pi), z=0.895),
            "serving_region": Placement(
                x=fixed(0.345), y=fixed(-0.15), yaw=fixed(0.0), z=0.878, overlap=False
            ),
            "bread": Placement(x=(0.05, 0.08), y=(-0.18, -0.12), yaw=fixed(-np.pi / 2), z_offset=0.01),
            "pot": Placement(x=(0.175, 0.18), y=(-0.15, -0.13), yaw=(-0.1, 0.1), z_offset=0.02),
        }
    else:
        placements = {
            "bread": Placement(x=(-0.2, 0.0), y=(-0.25, -0.05), yaw=(-np.pi / 2, np.pi / 2), z_offset=0.01),
            "pot": Placement(x=(0.08, 0.18), y=(-0.2, -0.05), yaw=(-np.pi / 6, np.pi / 6), z_offset=0.01),
            "stove": Placement(x=(0.06, 0.23), y=(0.095, 0.25), yaw=fixed(0.0), z=0.895),
            "button": Placement(x=(-0.2, 0.06), y=(0.05, 0.2), yaw=fixed(np.pi), z=0.895),
            "serving_region": Placement(
                x=fixed(0.345), y=(-0.2, -0.05), yaw=fixed(0.0), z=0.878, overlap=False
            ),
        }
    return TaskSpec(
        name="Kitchen",
        variant=variant,
        scene_class=KitchenScene,
        scene_kwargs={"placements": placements, "button_start": -0.4 if variant == "D0" else -0.3},
        horizon=800,
        objects={
            "bread": "Bread_main",
            "pot": "PotObject_root",
            "stove": "Stove1_root",
            "button": "Button1_main",
            "serving_region": "ServingRegionRed_root",
        },
        expert=EXPERT,
        workspace=Workspace(center=(-0.05, 0.0, 0.9), half_size=0.4),
        description="turn the stove on, cook the bread in the pot on it, serve the pot, turn the stove off",
        subtasks=SUBTASKS,
    )


VARIANTS = (_variant("D0"), _variant("D1"))
