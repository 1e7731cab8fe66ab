"""PickPlace (MimicGen D0): move milk, cereal, bread and can from bin1 into their compartments of bin2.

robosuite's PickPlace with all four objects; success is robosuite's: every object inside its compartment,
0.8 < z < 0.9, the gripper site more than 0.0424 m from each. D0 samples the objects anywhere in bin1
(robosuite's range) with yaw in [0, pi/2]. The objects often touch, and the hand is longer than the gap
between a small object and a bin wall, so the expert checks its grasps against a box model of the scene.
"""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from robosuite.environments.manipulation.pick_place import PickPlace

from equirobot_envs.experts import CLOSED, OPEN, Waypoint, grasp_yaw, top_down
from equirobot_envs.geometry import Workspace, rot_z, yaw_of
from equirobot_envs.registry import Subtask, TaskSpec
from equirobot_envs.scene import SceneMixin, xml_floats

BIN_FLOOR = 0.82  # top of both bin floors
Box = tuple[np.ndarray, np.ndarray]  # world corners (8, 3) and the horizontal directions of the edges (3, 2)
# The bins arena has no side camera; this one looks at both bins from the +y side, like TableArena's.
SIDEVIEW_POS, SIDEVIEW_TARGET = np.array([0.1, 1.0, 1.75]), np.array([0.1, -0.1, 0.82])


class PickPlaceScene(SceneMixin, PickPlace):
    """robosuite's PickPlace plus a ``sideview`` camera (equirobot's default point-cloud views need one)."""

    def _load_model(self) -> None:
        super()._load_model()
        forward = SIDEVIEW_TARGET - SIDEVIEW_POS
        right = np.cross(forward, [0.0, 0.0, 1.0])
        up = np.cross(right, forward)
        axes = np.concatenate([right / np.linalg.norm(right), up / np.linalg.norm(up)])
        camera = {"name": "sideview", "pos": xml_floats(SIDEVIEW_POS), "xyaxes": xml_floats(axes)}
        ET.SubElement(self.model.worldbody, "camera", camera)


@dataclass(frozen=True)
class Item:
    """How the expert handles one object (lengths in its body frame, from its collision mesh)."""

    index: int  # robosuite's object id, which is also its compartment
    half: tuple[float, float]  # horizontal half extents along body x, y
    bottom: float
    top: float
    yaws: tuple[float, ...]  # grasp yaws relative to the object's, the preferred first
    spread: float = np.pi / 4  # how far a grasp yaw may turn from those to avoid obstacles
    grip: float = -0.02  # grip site below the top: the palm (3 cm above the site) stays clear of it
    place: tuple[float, float] = (0.0, 0.0)  # drop point relative to the compartment's centre

    def box(self, pos: np.ndarray, rot: np.ndarray) -> Box:
        """The object's bounding box at a pose."""
        hx, hy = self.half
        return _box(pos, rot, np.array([-hx, -hy, self.bottom]), np.array([hx, hy, self.top]))


# In MimicGen's subtask order. Fingers close across body y: the cereal box's and bread's narrow side,
# the flat gable ends of the milk carton. Square milk and small bread may also be grasped across x.
ITEMS = {
    "milk": Item(0, half=(0.02, 0.02), bottom=-0.061, top=0.083, yaws=(0.0, np.pi / 2)),
    "cereal": Item(2, half=(0.05, 0.015), bottom=-0.075, top=0.075, yaws=(0.0,), spread=np.pi / 9),
    "bread": Item(1, half=(0.024, 0.02), bottom=-0.023, top=0.025, yaws=(0.0, np.pi / 2)),
    # The far corner compartment is at the edge of the arm's reach: drop the can nearer.
    "can": Item(3, half=(0.025, 0.025), bottom=-0.04, top=0.04, yaws=(0.0, np.pi / 2), place=(-0.04, -0.04)),
}
CLEAR_Z = 1.0  # above every bin wall and upright object top (0.97)
WALL_TOP = 0.9  # of both bins' walls and bin2's dividers
PALM = 0.031  # the palm's underside above the grip site
TRIES = 3
# Hand yaws stay within pi/2 of this: the wrist's last joint then keeps clear of its limits over both bins.
WRIST_YAW = 0.4
# The open gripper as boxes in the grip site's frame (x: the fingers' opening, z: the approach, down):
# the hand in three segments, then the two fingers.
GRIPPER_BOXES = tuple(
    (np.array([x - 0.04, -0.035, -0.06]), np.array([x + 0.04, 0.035, -PALM])) for x in (-0.07, 0.0, 0.07)
) + tuple((np.array([x - 0.017, -0.017, -PALM]), np.array([x + 0.017, 0.017, 0.01])) for x in (-0.055, 0.055))


def _box(pos: np.ndarray, rot: np.ndarray, low: np.ndarray, high: np.ndarray) -> Box:
    """A box given by its corners in a body frame at a pose."""
    signs = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)])
    return pos + (low + signs * (high - low)) @ rot.T, rot[:2].T


def _overlap(a: np.ndarray, b: np.ndarray, dirs: np.ndarray) -> bool:
    """Whether the convex hulls of two 2-D point sets overlap, testing the normals of edge ``dirs``."""
    for d in dirs:
        if np.linalg.norm(d) < 1e-6:
            continue
        n = np.array([-d[1], d[0]])
        pa, pb = a @ n, b @ n
        if pa.max() < pb.min() or pb.max() < pa.min():
            return False
    return True


def _obstacles(env, name: str) -> list[Box]:
    """Boxes the open gripper must not come down on: the bins' floors, walls, dividers, other objects."""
    model, data = env.scene.sim.model, env.scene.sim.data
    boxes = []
    for bin_name in ("bin1", "bin2"):
        in_bin = (model.geom_bodyid == model.body_name2id(bin_name)) & (model.geom_contype > 0)
        for g in np.flatnonzero(in_bin):
            size = model.geom_size[g]
            boxes.append(_box(data.geom_xpos[g], data.geom_xmat[g].reshape(3, 3), -size, size))
    boxes += [item.box(*env.body_pose(other)) for other, item in ITEMS.items() if other != name]
    return boxes


def _collision(target: np.ndarray, rot: np.ndarray, obstacles: list[Box]) -> float:
    """How deep (metres) the open gripper at a grasp pose would sink into the obstacles; 0 if clear."""
    depth = 0.0
    for low, high in GRIPPER_BOXES:
        part, part_dirs = _box(target, rot, low, high)
        for box, dirs in obstacles:
            if _overlap(part[:, :2], box[:, :2], np.vstack([part_dirs, dirs])):
                depth = max(depth, box[:, 2].max() - part[:, 2].min())
    return depth


def _gripper_rot(yaw: float, tilt: float) -> np.ndarray:
    """Pointing down, then tilted about the axis across the fingers (raising one end of the hand)."""
    c, s = np.cos(tilt), np.sin(tilt)
    return top_down(yaw) @ np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _hand_yaw(rot: np.ndarray, offset: float = 0.0) -> float:
    """:func:`grasp_yaw` for the 2-fold symmetric hand, kept within pi/2 of ``WRIST_YAW``."""
    return grasp_yaw(rot, 2, offset - WRIST_YAW) + WRIST_YAW


def _least_colliding(candidates: Iterable[tuple], obstacles: list[Box]) -> tuple[tuple, float]:
    """The first ``(target, rot, ...)`` whose open gripper misses the obstacles, else the least colliding.

    Returns it and how deep it collides.
    """
    best, best_depth = None, np.inf
    for candidate in candidates:
        depth = _collision(candidate[0], candidate[1], obstacles)
        if depth < best_depth:
            best, best_depth = candidate, depth
        if depth == 0.0:
            break
    if best is None:
        raise ValueError("no candidate poses to choose from")
    return best, best_depth


def _grasp_pose(env, name: str) -> tuple[np.ndarray, np.ndarray, float]:
    """Grip site target, orientation and tilt of a grasp that keeps the gripper off walls and objects.

    Of the grasps turned from the preferred yaws, shifted off centre or tilted (raising one end of the
    hand), the least changed one; tilting counts most, as a tilted grasp is weak.
    """
    item = ITEMS[name]
    pos, rot = env.body_pose(name)
    params = []
    for (i, offset), turn, tilt, shift_x, shift_y in itertools.product(
        enumerate(item.yaws),
        np.radians([0, 15, -15, 30, -30, 45]),
        np.radians([0, 12, -12, 24, -24]),
        (0.0, 0.012, -0.012),
        (0.0, 0.01, -0.01),
    ):
        if abs(turn) <= item.spread + 1e-6:
            effort = i / 2 + abs(turn) / np.radians(15) + 3 * abs(tilt) / np.radians(12)
            effort += (shift_x != 0) + (shift_y != 0)
            params.append((effort, _hand_yaw(rot, offset + turn), tilt, shift_x, shift_y))

    def candidates() -> Iterator[tuple[np.ndarray, np.ndarray, float]]:
        for _, yaw, tilt, shift_x, shift_y in sorted(params, key=lambda p: p[0]):
            grip = _gripper_rot(yaw, tilt)
            target = pos + [0, 0, item.top + item.grip] + grip[:, :2] @ [shift_x, shift_y]
            fingertips = min(_box(target, grip, *box)[0][:, 2].min() for box in GRIPPER_BOXES[-2:])
            target[2] += max(BIN_FLOOR + 0.004 - fingertips, 0.0)  # a tilted finger reaches lower
            yield target, grip, tilt

    return _least_colliding(candidates(), _obstacles(env, name))[0]


def _pick(env, name: str) -> Generator[Waypoint, None, bool]:
    """Grasp from above and lift until the held object clears everything; retry a missed grasp.

    Returns whether the object is held.
    """
    item = ITEMS[name]
    for _ in range(TRIES):
        pos = env.body_pose(name)[0]
        target, grip, tilt = _grasp_pose(env, name)
        above = np.array([*target[:2], max(env.eef_pose()[0][2], target[2] + 0.06)])
        yield Waypoint(above, grip, OPEN, tolerance=0.02)
        yield Waypoint(target, grip, OPEN, tolerance=0.008, speed=0.008)
        yield Waypoint(target, grip, CLOSED, tolerance=0.02, hold=8)
        if tilt != 0.0:  # a tilted grasp is weak: only drag the object away from the wall, then grasp again
            bins = (env.scene.bin1_pos, env.scene.bin2_pos)
            away = min(bins, key=lambda c: np.linalg.norm(c[:2] - pos[:2]))[:2] - pos[:2]
            dragged = target + [*(0.06 * away / np.linalg.norm(away)), 0.02]
            yield Waypoint(target + [0, 0, 0.02], grip, CLOSED, tolerance=0.01, speed=0.006)
            yield Waypoint(dragged, grip, CLOSED, tolerance=0.01, speed=0.006)
            yield Waypoint(dragged, grip, OPEN, tolerance=0.02, hold=6)
            yield Waypoint(dragged + [0, 0, 0.08], grip, OPEN, tolerance=0.02)
            continue
        yield Waypoint(target + [0, 0, 0.08], grip, CLOSED, tolerance=0.02)
        lifted = env.body_pose(name)[0]
        if lifted[2] > pos[2] + 0.04:
            hang = env.eef_pose()[0][2] - (lifted[2] + item.bottom)  # grip site above the object's bottom
            yield Waypoint(np.array([*target[:2], CLEAR_Z + hang]), grip, CLOSED, tolerance=0.02)
            return True
        yield Waypoint(target + [0, 0, 0.08], grip, OPEN, tolerance=0.02, hold=4)
    return False


def _place(env, name: str) -> Iterator[Waypoint]:
    """Carry over the compartment, lower until the object almost touches the floor, release.

    The hand turns on the way so that it keeps off the dividers and the objects already placed.
    """
    item = ITEMS[name]
    eef_pos, grip = env.eef_pose()
    goal = env.scene.target_bin_placements[item.index] + [*item.place, 0.0]
    goal[2] = BIN_FLOOR - item.bottom + 0.01
    offset = eef_pos - env.body_pose(name)[0]

    def candidates() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for turn in np.radians([0, 15, -15, 30, -30, 45, -45, 60, -60, 75, -75, 90]):
            yaw = _hand_yaw(grip, turn - np.pi / 2)
            target = goal + rot_z(yaw - yaw_of(grip) + np.pi / 2) @ offset
            target[2] = max(target[2], WALL_TOP + 0.005 - PALM)  # a lower hand would catch on the dividers
            yield target, top_down(yaw)

    (place, grip), depth = _least_colliding(candidates(), _obstacles(env, name))
    yield Waypoint(np.array([*place[:2], eef_pos[2]]), grip, CLOSED, tolerance=0.02, speed=0.015)
    pos = env.body_pose(name)[0]
    if pos[2] < BIN_FLOOR + 0.1:  # dropped on the way
        return
    place = goal + env.eef_pose()[0] - pos  # the grasp, measured again after the swing
    place[2] = max(place[2], WALL_TOP + 0.005 - PALM) + depth  # no way down clear of all: drop from higher
    yield Waypoint(place, grip, CLOSED, tolerance=0.025)
    release = env.eef_pose()[0]  # where the arm got: near the edge of its reach it falls short
    yield Waypoint(release, grip, OPEN, tolerance=0.02, hold=6)
    yield Waypoint(np.array([*release[:2], CLEAR_Z + 0.02]), grip, OPEN, tolerance=0.02)


def expert(env) -> Iterator[Waypoint]:
    """Pick each object and drop it into its compartment; re-pick one that lands elsewhere in the bins."""
    for name in ITEMS:
        for _ in range(TRIES):
            pos = env.body_pose(name)[0]
            if not env.scene.not_in_bin(pos, ITEMS[name].index) or pos[2] < BIN_FLOOR - 0.05:  # done, or lost
                break
            if (yield from _pick(env, name)):
                yield from _place(env, name)


def _holds(name: str):
    def signal(env) -> bool:
        scene = env.scene
        return bool(
            scene._check_grasp(gripper=scene.robots[0].gripper, object_geoms=scene.objects[ITEMS[name].index])
        )

    return signal


def _in_place(name: str):
    def signal(env) -> bool:
        return not env.scene.not_in_bin(env.body_pose(name)[0], ITEMS[name].index)

    return signal


# How often each object repeats its shape per turn about its vertical axis (the can: any turn; 8 suffices).
SYMMETRY = {"milk": 4, "cereal": 2, "bread": 2, "can": 8}
# MimicGen's: grasp relative to the object (source demo nearest in object pose), place in the world
# frame (the compartments do not move; any source demo).
SUBTASKS = tuple(
    subtask
    for i, name in enumerate(ITEMS)
    for subtask in (
        Subtask(name, _holds(name), symmetry=SYMMETRY[name], selection="nearest"),
        Subtask(None, _in_place(name) if i < len(ITEMS) - 1 else None, offset=(0, 0)),
    )
)

VARIANTS = (
    TaskSpec(
        name="PickPlace",
        variant="D0",
        scene_class=PickPlaceScene,
        scene_kwargs={"single_object_mode": 0, "z_rotation": (0.0, np.pi / 2)},
        horizon=1000,
        objects={"milk": "Milk_main", "bread": "Bread_main", "cereal": "Cereal_main", "can": "Can_main"},
        expert=expert,
        # Both bins; the centre sits on the bin floors so that they are cropped away.
        workspace=Workspace(center=(0.1, 0.0, BIN_FLOOR), half_size=0.45),
        subtasks=SUBTASKS,
        description="put milk, bread, cereal and can from bin1 into their own compartments of bin2; "
        "objects anywhere in bin1, yaw in [0, pi/2]",
    ),
)
