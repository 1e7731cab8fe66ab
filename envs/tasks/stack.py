"""Stack (MimicGen D0, D1): put the red cube (cubeA, 4 cm) on the green one (cubeB, 5 cm).

Success is robosuite's: cubeA not grasped, lifted above 0.84 m, touching cubeB.
D0 samples both cubes in x, y in [-0.08, 0.08] (robosuite's own Stack), D1 in [-0.2, 0.2]; yaw is free.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from robosuite.environments.manipulation.stack import Stack

from equirobot_envs.experts import CLOSED, OPEN, Waypoint, grasp_yaw, top_down
from equirobot_envs.geometry import Workspace
from equirobot_envs.registry import Subtask, TaskSpec
from equirobot_envs.scene import SceneMixin

CUBE_A_HALF, CUBE_B_HALF = 0.02, 0.025


class StackScene(SceneMixin, Stack):
    """robosuite's Stack with the MimicGen variant's placement range."""

    def __init__(self, xy_range: float, **kwargs):
        self.xy_range = xy_range
        super().__init__(**kwargs)

    def _load_model(self) -> None:
        super()._load_model()
        self.placement_initializer.x_range = [-self.xy_range, self.xy_range]
        self.placement_initializer.y_range = [-self.xy_range, self.xy_range]


def _finger_clearance(grasp_pos: np.ndarray, yaw: float, obstacle: np.ndarray) -> float:
    """Horizontal distance from ``obstacle`` to the nearer finger of a top-down grasp at ``yaw``."""
    opening = np.array([-np.sin(yaw), np.cos(yaw)])  # fingers open along yaw + pi/2 (see top_down)
    fingers = grasp_pos[:2] + np.outer([-1, 1], 0.05 * opening)
    return float(np.min(np.linalg.norm(fingers - obstacle[:2], axis=1)))


def expert(env) -> Iterator[Waypoint]:
    """Grasp cubeA from above, lift, carry over cubeB, lower until it rests, release."""
    a_pos, a_rot = env.body_pose("cubeA")
    b_pos, _ = env.body_pose("cubeB")
    # Of the two finger axes that fit the cube, take the one whose fingers land farther from cubeB
    # (in D0 the cubes often touch).
    yaws = [grasp_yaw(a_rot, symmetry=2, offset=k * np.pi / 2) for k in (0, 1)]
    grip = top_down(max(yaws, key=lambda yaw: _finger_clearance(a_pos, yaw, b_pos)))
    yield Waypoint(a_pos + [0, 0, 0.10], grip, OPEN, tolerance=0.02)
    yield Waypoint(a_pos + [0, 0, 0.0], grip, OPEN, tolerance=0.008, speed=0.008)
    yield Waypoint(a_pos, grip, CLOSED, tolerance=0.02, hold=8)
    yield Waypoint(a_pos + [0, 0, 0.12], grip, CLOSED, tolerance=0.02)

    # Measure the grasp: where the cube sits relative to the gripper site once lifted.
    eef_pos, _ = env.eef_pose()
    a_pos, _ = env.body_pose("cubeA")
    b_pos, b_rot = env.body_pose("cubeB")
    offset = eef_pos - a_pos
    place = b_pos + [0, 0, CUBE_B_HALF + CUBE_A_HALF + 0.008] + offset
    yield Waypoint(place + [0, 0, 0.08], grip, CLOSED, tolerance=0.015)
    yield Waypoint(place, grip, CLOSED, tolerance=0.006, speed=0.006)
    yield Waypoint(place, grip, OPEN, tolerance=0.02, hold=6)
    yield Waypoint(place + [0, 0, 0.08], grip, OPEN, tolerance=0.02)


def holds_cube_a(env) -> bool:
    """MimicGen's ``grasp`` signal: both finger pads touch cubeA."""
    scene = env.scene
    return bool(scene._check_grasp(gripper=scene.robots[0].gripper, object_geoms=scene.cubeA))


def _variant(variant: str, xy_range: float, swap: bool) -> TaskSpec:
    return TaskSpec(
        name="Stack",
        variant=variant,
        scene_class=StackScene,
        scene_kwargs={"xy_range": xy_range, "agentview_full": True, "swap_agentview": swap},
        horizon=400,
        objects={"cubeA": "cubeA_main", "cubeB": "cubeB_main"},
        expert=expert,
        workspace=Workspace(center=(0.0, 0.0, 0.8), half_size=0.3),
        description=f"stack the red cube on the green one; cubes in a {2 * xy_range:.2f} m square, any yaw",
        subtasks=(
            Subtask("cubeA", holds_cube_a, symmetry=4, selection="nearest"),
            Subtask("cubeB", symmetry=4, selection="nearest"),
        ),
    )


VARIANTS = (_variant("D0", 0.08, swap=False), _variant("D1", 0.20, swap=True))
