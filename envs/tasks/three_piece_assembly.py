"""ThreePieceAssembly (MimicGen D0, D1, D2): fit piece 1 into the base's square hole, then piece 2 over it.

The three objects are MimicGen's box patterns, built here as merged boxes of the same shape:

* base (heavy): a square frame of 0.19 m outside, 0.114 m hole, 0.038 m thick;
* piece 1: a 0.102 m square slab, 0.034 m thick, with a fin 0.034 wide and 0.068 tall along its y axis;
* piece 2: two walls 0.04 m apart (the fin fits between them), a 0.12 m square slab on them, a knob on top.

Success is MimicGen's: piece 1 within 2 cm (xy) of the base and not grasped; piece 2 within 2 cm (xy) of
piece 1, its centre within 2 cm of 8 cm above the base's, and not grasped. D0 fixes the base at the table's
centre; D1 places it anywhere in a 0.44 m square; both turn the pieces by a quarter turn. D2 also turns the
base by up to pi/4 and the pieces by any angle in [0, pi].
"""

from __future__ import annotations

import numpy as np
from robosuite.models.objects import CompositeObject

from equirobot_envs.experts import top_down
from equirobot_envs.geometry import Workspace
from equirobot_envs.planner import Pick, Place, body_position, grasped, plan_expert, pose
from equirobot_envs.registry import Subtask, TaskSpec
from equirobot_envs.table_scene import Placement, TableScene, fixed, wood

BASE_CELL, PIECE1_CELL, PIECE2_CELL = 0.019, 0.017, 0.02
BASE_HALF, PIECE1_HALF, PIECE2_HALF = (0.095, 0.095, 0.019), (0.051,) * 3, (0.06, 0.06, 0.08)


def _boxes(name: str, half: tuple, boxes: list[tuple], density: float) -> CompositeObject:
    """Red-wood boxes given as (centre, half size) in the object frame (origin: bounding-box centre)."""
    material = wood("WoodRed", f"{name}_wood")
    obj = CompositeObject(
        name=name,
        total_size=half,
        geom_types=["box"] * len(boxes),
        geom_locations=[c for c, _ in boxes],
        geom_sizes=[s for _, s in boxes],
        geom_materials=[material.mat_attrib["name"]] * len(boxes),
        density=density,
        locations_relative_to_center=True,
    )
    obj.append_material(material)
    return obj


def make_base() -> CompositeObject:
    """A 5 x 5 layer of cells with the middle 3 x 3 left out: a square frame."""
    c, h = BASE_CELL, BASE_HALF[0]
    bars: list[tuple[tuple[float, float, float], tuple[float, float, float]]]
    bars = [((0.0, s * (h - c), 0.0), (h, c, c)) for s in (-1, 1)]  # the two along x
    bars += [((s * (h - c), 0, 0), (c, h - 2 * c, c)) for s in (-1, 1)]  # the two along y, between them
    return _boxes("base", BASE_HALF, bars, 10000.0)


def make_piece_1() -> CompositeObject:
    """A 3 x 3 slab, and on its middle x-row two more layers: a fin along y."""
    c, h = PIECE1_CELL, PIECE1_HALF[0]
    slab = ((0, 0, -h + c), (h, h, c))
    fin = ((0, 0, c), (c, h, 2 * c))
    return _boxes("piece_1", PIECE1_HALF, [slab, fin], 100.0)


def make_piece_2() -> CompositeObject:
    """Two walls (the outer x-rows of two layers), a full slab on them, a knob on top."""
    c, (h, _, hz) = PIECE2_CELL, PIECE2_HALF
    walls = [((s * 2 * c, 0, -hz + 2 * c), (c, h, 2 * c)) for s in (-1, 1)]
    slab = ((0, 0, -hz + 5 * c), (h, h, c))
    knob = ((0, 0, -hz + 7 * c), (c, c, c))
    return _boxes("piece_2", PIECE2_HALF, [*walls, slab, knob], 100.0)


class ThreePieceAssemblyScene(TableScene):
    """The base frame and the two pieces on the table."""

    def _make_objects(self) -> dict:
        return {"base": make_base(), "piece_1": make_piece_1(), "piece_2": make_piece_2()}

    def _check_success(self) -> bool:
        return pieces_assembled(self)


def _xy_distance(env, a: str, b: str) -> float:
    return float(np.linalg.norm(body_position(env, a)[:2] - body_position(env, b)[:2]))


def first_piece_assembled(env) -> bool:
    """MimicGen's ``insert_1``: piece 1 within 2 cm (xy) of the base, not grasped."""
    return _xy_distance(env, "piece_1", "base") < 0.02 and not grasped(env, "piece_1")


def pieces_assembled(env) -> bool:
    """The task: piece 1 in the base, piece 2 on it (xy within 2 cm, 8 cm above the base), not grasped."""
    height = body_position(env, "piece_2")[2] - body_position(env, "base")[2]
    return (
        first_piece_assembled(env)
        and _xy_distance(env, "piece_1", "piece_2") < 0.02
        and abs(height - 0.08) < 0.02
        and not grasped(env, "piece_2")
    )


# Piece 1 is held by its fin, the fingers across it (they open along the gripper's x axis, which
# top_down(-pi/2) turns onto the piece's x); piece 2 by its knob, either way across.
FIN_GRASP = pose((0, 0, 0.02), top_down(-np.pi / 2))
KNOB_GRASP = pose((0, 0, 0.06), top_down(0.0))
# Rest heights of the body centres (bounding-box centres) above the base's: piece 1 on the table inside
# the frame, piece 2's walls on piece 1's slab; released a few millimetres higher.
PIECE1_IN_BASE = PIECE1_HALF[2] - BASE_HALF[2] + 0.005
PIECE2_ON_PIECE1 = 2 * PIECE1_CELL + PIECE2_HALF[2] - PIECE1_HALF[2] + 0.004
EXPERT = plan_expert(
    Pick("piece_1", (FIN_GRASP,), symmetry=2),
    Place("piece_1", "base", (pose((0, 0, PIECE1_IN_BASE)),), symmetry=4, approach=(0, 0, 0.06)),
    Pick("piece_2", (KNOB_GRASP,), symmetry=4),
    Place(
        "piece_2",
        "piece_1",
        (pose((0, 0, PIECE2_ON_PIECE1)),),
        symmetry=2,
        held_symmetry=2,
        approach=(0, 0, 0.09),
    ),
)
SUBTASKS = (
    Subtask("piece_1", lambda env: grasped(env, "piece_1"), offset=(5, 10)),
    Subtask("base", first_piece_assembled, offset=(5, 10)),
    Subtask("piece_2", lambda env: grasped(env, "piece_2"), offset=(5, 10)),
    Subtask("piece_1", offset=(5, 10)),
)


def _variant(variant: str) -> TaskSpec:
    quarter = fixed(np.pi / 2)
    base = {
        "D0": Placement(x=fixed(0.0), y=fixed(0.0), yaw=fixed(0.0), z_offset=0.001),
        "D1": Placement(x=(-0.22, 0.22), y=(-0.22, 0.22), yaw=fixed(0.0), z_offset=0.001),
        "D2": Placement(x=(-0.22, 0.22), y=(-0.22, 0.22), yaw=(-np.pi / 4, np.pi / 4), z_offset=0.001),
    }[variant]
    piece_yaw = (0.0, np.pi) if variant == "D2" else quarter
    piece = Placement(x=(-0.22, 0.22), y=(-0.22, 0.22), yaw=piece_yaw, z_offset=0.001)
    return TaskSpec(
        name="ThreePieceAssembly",
        variant=variant,
        scene_class=ThreePieceAssemblyScene,
        scene_kwargs={
            "placements": {"base": base, "piece_1": piece, "piece_2": piece},
            "agentview_full": True,
            "swap_agentview": True,
        },
        horizon=500,
        objects={"base": "base_root", "piece_1": "piece_1_root", "piece_2": "piece_2_root"},
        expert=EXPERT,
        workspace=Workspace(center=(0.0, 0.0, 0.8), half_size=0.32),
        description="fit piece 1 into the base's hole, then piece 2 over piece 1's fin",
        subtasks=SUBTASKS,
    )


VARIANTS = tuple(_variant(v) for v in ("D0", "D1", "D2"))
