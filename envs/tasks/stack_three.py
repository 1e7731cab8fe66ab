"""StackThree (MimicGen D0, D1): the red cube (A, 4 cm) on the green one (B, 5 cm), the blue (C, 4 cm) on top.

Success is MimicGen's: A stacked (A not grasped, above 0.84 m, touching B) and C stacked (C not grasped,
above 0.88 m, touching A). D0 places the three cubes in a 0.2 m square, D1 in a 0.4 m square; yaw free.
The expert is a plan of four steps on the shared planner: pick A, place it on B, pick C, place it on A.
"""

from __future__ import annotations

from robosuite.models.objects import BoxObject

from equirobot_envs.experts import DOWN
from equirobot_envs.geometry import Workspace
from equirobot_envs.planner import Pick, Place, body_position, grasped, in_contact, plan_expert, pose
from equirobot_envs.registry import Subtask, TaskSpec
from equirobot_envs.table_scene import Placement, TableScene, wood

HALF = {"cubeA": 0.02, "cubeB": 0.025, "cubeC": 0.02}
COLOURS = {
    "cubeA": ("WoodRed", (1, 0, 0, 1)),
    "cubeB": ("WoodGreen", (0, 1, 0, 1)),
    "cubeC": ("WoodBlue", (0, 0, 1, 1)),
}
TABLE_TOP = 0.8


class StackThreeScene(TableScene):
    """Three cubes on the table."""

    def _make_objects(self) -> dict:
        return {
            name: BoxObject(
                name=name,
                size=[half] * 3,
                rgba=COLOURS[name][1],
                material=wood(COLOURS[name][0], name.lower()),
            )
            for name, half in HALF.items()
        }

    def _check_success(self) -> bool:
        return a_stacked(self) and c_stacked(self)


def _stacked(env, top: str, bottom: str, height: float) -> bool:
    return (
        not grasped(env, top)
        and float(body_position(env, top)[2]) > TABLE_TOP + height
        and in_contact(env, top, bottom)
    )


def a_stacked(env) -> bool:
    """MimicGen's ``stack_1``: cubeA not grasped, above 0.84 m, touching cubeB."""
    return _stacked(env, "cubeA", "cubeB", 0.04)


def c_stacked(env) -> bool:
    """Whether cubeC is not grasped, above 0.88 m, touching cubeA."""
    return _stacked(env, "cubeC", "cubeA", 0.08)


GRASP = (pose((0, 0, 0), DOWN),)  # gripper site at the cube's centre, pointing down
EXPERT = plan_expert(
    Pick("cubeA", GRASP, symmetry=4),
    Place(
        "cubeA", "cubeB", (pose((0, 0, HALF["cubeB"] + HALF["cubeA"] + 0.006)),), symmetry=4, held_symmetry=4
    ),
    Pick("cubeC", GRASP, symmetry=4),
    Place("cubeC", "cubeA", (pose((0, 0, 2 * HALF["cubeA"] + 0.006)),), 4, held_symmetry=4),
)
SUBTASKS = (
    Subtask("cubeA", lambda env: grasped(env, "cubeA"), symmetry=4, selection="nearest"),
    Subtask("cubeB", a_stacked, symmetry=4, selection="nearest"),
    Subtask("cubeC", lambda env: grasped(env, "cubeC"), symmetry=4, selection="nearest"),
    Subtask("cubeA", symmetry=4, selection="nearest"),
)


def _variant(variant: str, xy: float, swap: bool) -> TaskSpec:
    cube = Placement(x=(-xy, xy), y=(-xy, xy), z_offset=0.01)
    return TaskSpec(
        name="StackThree",
        variant=variant,
        scene_class=StackThreeScene,
        scene_kwargs={
            "placements": {"cubeA": cube, "cubeB": cube, "cubeC": cube},
            "agentview_full": True,
            "swap_agentview": swap,
        },
        horizon=400,
        objects={name: f"{name}_main" for name in HALF},
        expert=EXPERT,
        workspace=Workspace(center=(0.0, 0.0, TABLE_TOP), half_size=0.3),
        description=f"stack red on green, then blue on red; cubes in a {2 * xy:.2f} m square, any yaw",
        subtasks=SUBTASKS,
    )


VARIANTS = (_variant("D0", 0.10, swap=False), _variant("D1", 0.20, swap=True))
