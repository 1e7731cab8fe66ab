"""BlockPulling (SO(2)-equivariant RL, BulletArm): pull one 5 cm block until it touches the other.

Both blocks start anywhere in a 0.26 m square at any yaw, their centres at least 9 cm apart (they never
start touching); the square leaves room to come down behind either block inside the workspace.
Success: the two blocks are in contact.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from equirobot_envs.closed_loop import WORKSPACE, Scene, block_xml, sample_layout
from equirobot_envs.experts import CLOSED, Waypoint, top_down
from equirobot_envs.registry import TaskSpec

HALF = 0.025
PLACEMENT = 0.13
BEHIND = 0.065
"""Where the closed fingers come down behind the pulled block: this far from its centre, metres."""


class BlockPullingScene(Scene):
    """A red and a green block."""

    object_bodies = ("block_a", "block_b")

    def objects_xml(self) -> str:
        return block_xml("block_a", "0.8 0.2 0.2 1", HALF) + block_xml("block_b", "0.2 0.7 0.2 1", HALF)

    def place(self, rng: np.random.Generator) -> None:
        layout = sample_layout(rng, (0.045, 0.045), PLACEMENT)
        for body, xy in zip(self.object_bodies, layout, strict=True):
            self.set_free_pose(body, np.array([*xy, HALF]), rng.uniform(0, 2 * np.pi))

    def is_success(self) -> bool:
        return self.touching("block_a", "block_b")


def expert(env) -> Iterator[Waypoint]:
    """Come down with closed fingers behind one block and drag it straight into the other.

    Of the two blocks it drags the one whose start behind it lies farther inside the workspace.
    """
    a, _ = env.body_pose("block_a")
    b, _ = env.body_pose("block_b")
    low, high = env.workspace.low[:2], env.workspace.high[:2]

    def start(moved, target):
        direction = (target - moved)[:2] / np.linalg.norm((target - moved)[:2])
        return moved[:2] - BEHIND * direction, direction

    options = [(a, b), (b, a)]
    margins = [np.min(np.minimum(start(m, t)[0] - low, high - start(m, t)[0])) for m, t in options]
    moved, target = options[int(np.argmax(margins))]
    behind, direction = start(moved, target)
    behind = np.clip(behind, low, high)
    # Fingers side by side across the pull: the closed pair's longer side faces the block.
    grip = top_down(float(np.arctan2(direction[1], direction[0])))
    z = HALF
    yield Waypoint(np.array([*behind, z + 0.08]), grip, CLOSED, tolerance=0.01)
    yield Waypoint(np.array([*behind, z]), grip, CLOSED, tolerance=0.008, speed=0.01)
    end = target[:2] - (2 * HALF - 0.02) * direction
    yield Waypoint(np.array([*end, z]), grip, CLOSED, tolerance=0.01, speed=0.008)


VARIANTS = (
    TaskSpec(
        name="BlockPulling",
        variant="",
        scene_class=BlockPullingScene,
        horizon=100,
        objects={"block_a": "block_a", "block_b": "block_b"},
        expert=expert,
        workspace=WORKSPACE,
        description="pull one 5 cm block against the other; both anywhere in a 0.26 m square, any yaw",
    ),
)
