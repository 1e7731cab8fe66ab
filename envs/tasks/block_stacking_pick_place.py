"""BlockStackingPickPlace (Equivariant Q Learning in Spatial Action Spaces): BlockStacking by primitives.

The scene, the starting distribution and the success test are BlockStacking's
(:mod:`equirobot_envs.tasks.block_stacking`): two 5 cm blocks anywhere in a 0.3 m square at any yaw;
success when one rests on the other and the fingers no longer hold it. Here every action is one pick
or place of :class:`~equirobot_envs.open_loop.OpenLoopEnv`, ten per episode at most: the expert needs two.
"""

from __future__ import annotations

from collections.abc import Iterator

from equirobot_envs.closed_loop import WORKSPACE
from equirobot_envs.experts import CLOSED, OPEN, Waypoint, grasp_yaw, top_down
from equirobot_envs.registry import TaskSpec
from equirobot_envs.tasks.block_stacking import BLOCKS, HALF, BlockStackingScene


def expert(env) -> Iterator[Waypoint]:
    """Pick the red block across two faces, place it so that it lands centred on the green one.

    One waypoint per primitive (``ScriptedExpert`` in a primitive control mode): the pick's position and
    grasp yaw, then the place's, the gripper over the lower block offset as the held block sits in the
    fingers and turned to the lower block's edges. Whatever it then holds it places on the other block,
    and with nothing held it picks the red block again (a dropped block is tried again).
    """
    ids = {env.scene.model.body(b).id: b for b in BLOCKS}
    while True:
        held = env.scene.held_body()
        if held not in ids:
            pos, rot = env.body_pose("block_a")
            yield Waypoint(pos, top_down(grasp_yaw(rot, symmetry=4)), CLOSED)
            continue
        top = ids[held]
        bottom_pos, bottom_rot = env.body_pose(BLOCKS[1] if top == BLOCKS[0] else BLOCKS[0])
        offset = env.eef_pose()[0] - env.body_pose(top)[0]
        place = bottom_pos + [0.0, 0.0, 2 * HALF] + offset
        yield Waypoint(place, top_down(grasp_yaw(bottom_rot, symmetry=4)), OPEN)


VARIANTS = (
    TaskSpec(
        name="BlockStackingPickPlace",
        variant="",
        scene_class=BlockStackingScene,
        horizon=10,
        objects={"block_a": "block_a", "block_b": "block_b"},
        expert=expert,
        workspace=WORKSPACE,
        description="BlockStacking by pick and place primitives [x, y, theta]: put one block on the other",
    ),
)
