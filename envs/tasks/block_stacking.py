"""BlockStacking (SO(2)-equivariant RL, BulletArm): put one 5 cm block on the other.

Both blocks start anywhere in a 0.3 m square at any yaw, never touching. Success: one block rests on
the other (in contact, its centre 4 to 6 cm above and within 2.5 cm horizontally of the other's, moving
slower than 5 cm/s) and the fingers no longer hold it.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from equirobot_envs.closed_loop import WORKSPACE, Scene, block_xml, sample_layout
from equirobot_envs.experts import CLOSED, OPEN, Waypoint, grasp_yaw, top_down
from equirobot_envs.registry import TaskSpec

HALF = 0.025
PLACEMENT = 0.15
REST_SPEED = 0.05
BLOCKS = ("block_a", "block_b")


class BlockStackingScene(Scene):
    """A red and a green block."""

    object_bodies = BLOCKS

    def objects_xml(self) -> str:
        return block_xml("block_a", "0.8 0.2 0.2 1", HALF) + block_xml("block_b", "0.2 0.7 0.2 1", HALF)

    def place(self, rng: np.random.Generator) -> None:
        layout = sample_layout(rng, (0.05, 0.05), PLACEMENT)
        for body, xy in zip(self.object_bodies, layout, strict=True):
            self.set_free_pose(body, np.array([*xy, HALF]), rng.uniform(0, 2 * np.pi))

    def rests_on(self, top: str, bottom: str) -> bool:
        upper, lower = self.body_pose(top)[0], self.body_pose(bottom)[0]
        rise = upper[2] - lower[2]
        speed = np.linalg.norm(self.data.cvel[self.model.body(top).id][3:])
        return bool(
            1.6 * HALF <= rise <= 2.4 * HALF
            and np.linalg.norm(upper[:2] - lower[:2]) <= HALF
            and speed < REST_SPEED
            and self.touching(top, bottom)
        )

    def is_success(self) -> bool:
        pairs = (BLOCKS, BLOCKS[::-1])
        return any(self.rests_on(top, bottom) and not self.holds(top) for top, bottom in pairs)


def expert(env) -> Iterator[Waypoint]:
    """Pick the red block, carry it over the green one, lower it until it nearly rests, let go."""
    a_pos, a_rot = env.body_pose("block_a")
    grip = top_down(grasp_yaw(a_rot, symmetry=4))
    yield Waypoint(a_pos + [0, 0, 0.08], grip, OPEN, tolerance=0.01)
    yield Waypoint(a_pos, grip, OPEN, tolerance=0.006, speed=0.008)
    yield Waypoint(a_pos, grip, CLOSED, tolerance=0.01, hold=1)
    yield Waypoint(a_pos + [0, 0, 0.1], grip, CLOSED, tolerance=0.02)

    # Where the block sits in the fingers now, and where the other block is.
    eef_pos, _ = env.eef_pose()
    offset = eef_pos - env.body_pose("block_a")[0]
    b_pos, b_rot = env.body_pose("block_b")
    place_grip = top_down(grasp_yaw(b_rot, symmetry=4))  # edges aligned with the block below
    place = b_pos + [0, 0, 2 * HALF + 0.004] + offset
    yield Waypoint(place + [0, 0, 0.05], place_grip, CLOSED, tolerance=0.01)
    yield Waypoint(place, place_grip, CLOSED, tolerance=0.006, speed=0.006)
    yield Waypoint(place, place_grip, OPEN, tolerance=0.01, hold=1)
    yield Waypoint(place + [0, 0, 0.05], place_grip, OPEN, tolerance=0.01)


VARIANTS = (
    TaskSpec(
        name="BlockStacking",
        variant="",
        scene_class=BlockStackingScene,
        horizon=100,
        objects={"block_a": "block_a", "block_b": "block_b"},
        expert=expert,
        workspace=WORKSPACE,
        description="put one 5 cm block on the other; both anywhere in a 0.3 m square, any yaw",
    ),
)
