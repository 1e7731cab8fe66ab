"""BlockPicking (SO(2)-equivariant RL, BulletArm): pick up one 5 cm block.

The block starts anywhere in a 0.3 m square at any yaw. Success: the fingers hold it (``holding``) and
its bottom is at least 10 cm above the table (BulletArm: lifted while held).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from equirobot_envs.closed_loop import WORKSPACE, Scene, block_xml, sample_layout
from equirobot_envs.experts import CLOSED, OPEN, Waypoint, grasp_yaw, top_down
from equirobot_envs.registry import TaskSpec

HALF = 0.025
LIFT = 0.10
"""Height of the block's bottom above the table that counts as picked, metres."""
PLACEMENT = 0.15
"""Objects start with their centres in [-PLACEMENT, PLACEMENT]^2 about the workspace centre."""


class BlockPickingScene(Scene):
    """One red block."""

    object_bodies = ("block",)

    def objects_xml(self) -> str:
        return block_xml("block", "0.8 0.2 0.2 1", HALF)

    def place(self, rng: np.random.Generator) -> None:
        (xy,) = sample_layout(rng, (HALF * np.sqrt(2),), PLACEMENT)
        self.set_free_pose("block", np.array([*xy, HALF]), rng.uniform(0, 2 * np.pi))

    def is_success(self) -> bool:
        bottom = self.body_pose("block")[0][2] - HALF
        return bottom >= LIFT and self.holds("block")


def expert(env) -> Iterator[Waypoint]:
    """Above the block, down with the fingers across two faces, close, lift."""
    pos, rot = env.body_pose("block")
    grip = top_down(grasp_yaw(rot, symmetry=4))
    yield Waypoint(pos + [0, 0, 0.08], grip, OPEN, tolerance=0.01)
    yield Waypoint(pos, grip, OPEN, tolerance=0.006, speed=0.008)
    yield Waypoint(pos, grip, CLOSED, tolerance=0.01, hold=1)
    yield Waypoint(pos + [0, 0, LIFT + 0.06], grip, CLOSED, tolerance=0.02)


VARIANTS = (
    TaskSpec(
        name="BlockPicking",
        variant="",
        scene_class=BlockPickingScene,
        horizon=100,
        objects={"block": "block"},
        expert=expert,
        workspace=WORKSPACE,
        description=f"pick a 5 cm block and lift its bottom {LIFT:.2f} m; block anywhere in a 0.3 m square",
    ),
)
