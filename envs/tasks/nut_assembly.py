"""Square (MimicGen D0, D2) and NutAssembly (D0): put nuts on their pegs in robosuite's PegsArena.

Square is robosuite's NutAssemblySquare: the square nut goes onto the square peg (peg1). NutAssembly is
robosuite's NutAssembly: the square nut onto peg1, then the round nut onto the round peg (peg2).
Success is robosuite's: each nut centred within 3 cm of its peg, below 0.87 m, the gripper away from it.
D0 keeps robosuite's layout (nuts near x = -0.11, pegs fixed). Square D2 draws the nut and peg1 anywhere
in a 0.5 m square (peg yaw in [0, pi/2]) and moves the round peg out of the scene; unlike MimicGen, which
drew the peg once when loading the model, the peg is redrawn every episode so the seed fixes the scene.

The expert grasps a nut by its handle from above, turns it over the peg so that the handle points at the
robot (the arm then need not reach past the peg), lowers the ring around the peg's top and lets it drop.
Far out in D2 the arm cannot take every handle, nor where the peg is in the way: it first slides the nut
to where it can, holding it by a bar of its ring.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import numpy as np
from robosuite.environments.manipulation.nut_assembly import NutAssembly, NutAssemblySquare
from scipy.spatial.transform import Rotation

from equirobot_envs.experts import CLOSED, OPEN, Waypoint, top_down
from equirobot_envs.geometry import Workspace, rot_z, wrap_angle, yaw_of
from equirobot_envs.registry import Subtask, TaskSpec
from equirobot_envs.scene import SceneMixin

TABLE_TOP = 0.82
PEG_Z = 0.85  # peg body centre; the pegs are 0.2 m tall
PEG_TOP = PEG_Z + 0.1
PEG_HALF_DIAGONAL, NUT_RADIUS = 0.0226, 0.11
D2_RANGE = 0.25
TABLE_HALF = 0.4
# Along the nut's x axis: where the fingers take the handle (its outer half: the fingers, 2 cm thick,
# then miss the ring); the centres of the ring's bars are BAR_X along x and y.
HANDLE_X = {"square_nut": 0.062, "round_nut": 0.068}
BAR_X = {"square_nut": 0.03325, "round_nut": 0.04245}

# The expert's geometry.
ROBOT_BASE = "robot0_base"
CARRY_Z = PEG_TOP + 0.035  # nut centre while carried: its underside 2.5 cm above the pegs' tops
RELEASE_Z = PEG_TOP - 0.025  # nut centre at release: the ring already around the peg's top
SAFE_Z = PEG_TOP + 0.06  # gripper site height at which the fingers pass over the pegs
FAST, CARRY_SPEED = 0.02, 0.016  # metres per step: moving free, and carrying a nut
WRIST = 0.2  # gripper site to wrist (link 7), along the gripper's z axis
# Horizontal reach from the base axis, near the table: of a top-down gripper's site; of the wrist, and of
# the site, of a gripper leaning outward.
TOP_DOWN_REACH, WRIST_REACH, LEAN_REACH = 0.74, 0.72, 0.84
# Beyond STRETCH the elbow is nearly straight, and the arm controller cannot always bend it back; within
# NEAR (NEAR_GRASP, down at the table) the arm is folded up and swerves as it moves.
STRETCH, NEAR, NEAR_GRASP = 0.74, 0.36, 0.38
LEAN_ANGLES = np.radians([0, 10, 20, 30, 40])
YAW_RANGE = (-1.5, 3.3)  # gripper yaw (top_down's argument) less the azimuth, that the wrist allows
MAX_TURN = 2.8  # largest turn planned: well under pi, so that the short way is unambiguous
# The open gripper in its own frame (x: finger travel, z: toward the fingertips): the fingertips' corners,
# and boxes (low, high corners) around the fingers, the hand and link 7, which must miss the peg.
FINGERTIPS = np.array([[x, y, 0.009] for x in (-0.053, 0.053) for y in (-0.01, 0.01)])
GRIPPER_BOXES = (
    ((-0.054, -0.01, -0.044), (0.054, 0.01, 0.009)),
    ((-0.1, -0.032, -0.123), (0.104, 0.032, -0.031)),
    ((-0.088, -0.044, -0.152), (0.054, 0.044, -0.097)),
)
PEG_CLEARANCE = PEG_HALF_DIAGONAL + 0.012
MIN_UPRIGHT = np.cos(np.radians(8))  # a nut held more askew than this jams on the peg


class NutAssemblyScene(SceneMixin, NutAssembly):
    """robosuite's NutAssembly: both nuts, both pegs."""


class SquareScene(SceneMixin, NutAssemblySquare):
    """robosuite's NutAssemblySquare; ``wide`` gives MimicGen's D2 layout (module docstring)."""

    def __init__(self, wide: bool = False, **kwargs):
        self.wide = wide
        super().__init__(**kwargs)

    def _load_model(self) -> None:
        super()._load_model()
        if self.wide:
            square, round_ = self.placement_initializer.samplers.values()
            square.x_range = square.y_range = [-D2_RANGE, D2_RANGE]
            # The round nut is cleared from the scene after placement; sample it off the table so that it
            # never blocks the square nut's placement.
            round_.y_range = [-1.1, -1.0]

    def _reset_internal(self) -> None:
        super()._reset_internal()  # places the nut (and sets up the body ids)
        if not self.wide:
            return
        self._place_pegs()
        nut = self.nuts[0]
        peg_xy = self.sim.model.body_pos[self.peg1_body_id][:2]
        nut_xy = lambda: self.sim.data.get_joint_qpos(nut.joints[0])[:2]  # noqa: E731
        for _ in range(5000):  # as robosuite's samplers: redraw the nut until it clears the peg
            if np.linalg.norm(nut_xy() - peg_xy) > PEG_HALF_DIAGONAL + NUT_RADIUS:
                break
            pos, quat, _ = self.placement_initializer.sample()[nut.name]
            self.sim.data.set_joint_qpos(nut.joints[0], np.concatenate([pos, quat]))

    def fixture_poses(self) -> dict[str, list[float]]:
        if not self.wide:
            return {}
        model = self.sim.model
        return {
            body: [*map(float, model.body_pos[i]), *map(float, model.body_quat[i])]
            for body, i in (("peg1", self.peg1_body_id), ("peg2", self.peg2_body_id))
        }

    def _place_pegs(self) -> None:
        """Draw peg1's pose from the scene's rng; move peg2 out of the scene."""
        x, y = self.rng.uniform(-D2_RANGE, D2_RANGE, size=2)
        yaw = self.rng.uniform(0, np.pi / 2)
        model = self.sim.model
        model.body_pos[self.peg1_body_id] = (x, y, PEG_Z)
        model.body_quat[self.peg1_body_id] = (np.cos(yaw / 2), 0, 0, np.sin(yaw / 2))
        model.body_pos[self.peg2_body_id] = (-10, 0, PEG_Z)
        self.sim.forward()


def _base(env) -> np.ndarray:
    return env.body_pose(ROBOT_BASE)[0][:2]


def _radius(env, pos: np.ndarray) -> float:
    """Horizontal distance of a point from the robot base's vertical axis."""
    return float(np.linalg.norm(pos[:2] - _base(env)))


def _wrist(pos: np.ndarray, rot: np.ndarray) -> np.ndarray:
    return pos - WRIST * rot[:, 2]  # the gripper's z axis points from the wrist to the fingertips


def _lean(env, pos: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """Tilt a top-down gripper about its finger axis, as little as will bring the wrist within reach.

    The fingertips then point outward and the wrist leans toward the robot. The tilt keeps the pads
    parallel to a handle's sides, so a nut grasped this way is still held flat.
    """
    for angle in LEAN_ANGLES:
        tilts = [Rotation.from_rotvec(a * rot[:, 0]).as_matrix() @ rot for a in (angle, -angle)]
        leaning = min(tilts, key=lambda r: _radius(env, _wrist(pos, r)))
        if _radius(env, _wrist(pos, leaning)) < WRIST_REACH:
            break
    return leaning


def _grasp_pose(env, xy: np.ndarray, rot: np.ndarray, lean: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The grasp over ``xy`` (leaning if need be), as low as keeps the fingertips 4 mm above the table."""
    if lean:
        rot = _lean(env, np.array([*xy, TABLE_TOP]), rot)
    depth = -(rot @ FINGERTIPS.T)[2].min()
    return np.array([*xy, TABLE_TOP + 0.004 + depth]), rot


def _above(pos: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """The point up the gripper's axis from ``pos`` at SAFE_Z: where a (leaning) gripper comes down from."""
    return pos + (SAFE_Z - pos[2]) / rot[2, 2] * rot[:, 2]


def _reach_out(env, waypoint: Waypoint) -> Iterator[Waypoint]:
    """Go to a waypoint; one out beyond STRETCH slowly, for the last few centimetres.

    An arm that overshoots there straightens its elbow, and the controller cannot bend it back.
    """
    if _radius(env, waypoint.pos) > STRETCH:
        inward = np.array([*(_base(env) - waypoint.pos[:2]), 0.0]) / _radius(env, waypoint.pos)
        yield replace(waypoint, pos=waypoint.pos + 0.05 * inward, tolerance=0.02, hold=0)
        waypoint = replace(waypoint, speed=0.004)
    yield waypoint


def _reachable(env, pos: np.ndarray, rot: np.ndarray) -> bool:
    """Whether the arm takes the gripper to this pose accurately (far out, only leaning straight out)."""
    if rot[2, 2] < -0.999:
        return _radius(env, pos) < TOP_DOWN_REACH
    outward = (pos[:2] - _base(env)) / _radius(env, pos)
    lean = rot[:2, 2] / np.linalg.norm(rot[:2, 2])
    reach = LEAN_REACH if lean @ outward > 0.9 else TOP_DOWN_REACH + 0.02
    return _radius(env, pos) < reach and _radius(env, _wrist(pos, rot)) < WRIST_REACH


def _misses(pos: np.ndarray, rot: np.ndarray, peg_xy: np.ndarray, clearance: float = PEG_CLEARANCE) -> bool:
    """Whether the gripper at this pose stays ``clearance`` away from the peg's axis."""
    peg = np.array([[*peg_xy, z] for z in np.linspace(TABLE_TOP, PEG_TOP, 14)])
    local = (peg - pos) @ rot
    return not any(
        np.all((local > np.array(low) - clearance) & (local < np.array(high) + clearance), axis=1).any()
        for low, high in GRIPPER_BOXES
    )


def _handle_grasp(env, nut: str, nut_pos: np.ndarray, nut_rot: np.ndarray, yaw: float) -> tuple:
    """Gripper pose (position, rotation) to grasp the handle, fingers across it.

    ``yaw``: the nut's, up to a half turn. Top-down, except near the base, where the wrist leans away
    from it. It does not lean in to reach far handles: the nut is carried as grasped, and once turned to
    face the peg the wrist would lean the wrong way.
    """
    handle = nut_pos + nut_rot @ [HANDLE_X[nut], 0, 0]
    pos, rot = _grasp_pose(env, handle[:2], top_down(yaw), lean=False)
    if _radius(env, pos) < NEAR_GRASP:  # lean the wrist away from the base
        tilts = [Rotation.from_rotvec(a * rot[:, 0]).as_matrix() @ rot for a in np.radians([20, -20])]
        rot = max(tilts, key=lambda r: _radius(env, _wrist(pos, r)))
        pos[2] = TABLE_TOP + 0.004 - (rot @ FINGERTIPS.T)[2].min()
    return pos, rot


def _graspable(env, nut: str, nut_pos: np.ndarray, nut_rot: np.ndarray, peg_xy: np.ndarray, margin=0.0):
    """Whether the gripper can take the handle, with a ``margin`` (metres) to spare."""
    pos, rot = _handle_grasp(env, nut, nut_pos, nut_rot, yaw_of(nut_rot))
    within = _radius(env, pos) < TOP_DOWN_REACH - margin
    return within and _misses(pos, rot, peg_xy, PEG_CLEARANCE + margin)


def _azimuth(env, pos: np.ndarray) -> float:
    return float(np.arctan2(*(pos[:2] - _base(env))[::-1]))


def _wrist_allows(env, yaw: float, pos: np.ndarray) -> bool:
    """Whether the last wrist joint can hold gripper yaw ``yaw`` over ``pos``.

    That joint's angle is about its home angle minus the yaw plus the azimuth of ``pos`` from the base
    (the first joint turns the arm toward it); its limits leave this window, with a margin.
    """
    return YAW_RANGE[0] < yaw - _azimuth(env, pos) < YAW_RANGE[1]


def _gripper_yaw(env) -> float:
    """The gripper's yaw now (``top_down``'s argument), unwrapped as the wrist joint holds it."""
    pos, rot = env.eef_pose()
    yaw = wrap_angle(yaw_of(rot) - np.pi / 2 - _azimuth(env, pos) - sum(YAW_RANGE) / 2)
    return float(yaw + _azimuth(env, pos) + sum(YAW_RANGE) / 2)


def _plan(env, nut: str, peg: str, symmetry: int) -> tuple[float, float, float]:
    """The gripper yaw (``top_down``'s argument) for the grasp, the nut's yaw on the peg, and its turn.

    The fingers go across the handle either way round, and the nut turns with the gripper; the nut fits
    the peg at ``symmetry`` yaws per turn (0: any). Prefer the handle pointing toward the robot: the
    gripper then need not reach past the peg. Both gripper yaws must suit the last wrist joint, so a
    turn may go the long way round.
    """
    nut_pos, nut_rot = env.body_pose(nut)
    peg_pos, peg_rot = env.body_pose(peg)
    nut_yaw = yaw_of(nut_rot)
    now = _gripper_yaw(env)
    if symmetry:
        fits = yaw_of(peg_rot) + np.arange(symmetry) * 2 * np.pi / symmetry
    else:
        fits = np.linspace(-np.pi, np.pi, 36, endpoint=False)
    options = []
    handle_now = nut_pos + nut_rot @ [HANDLE_X[nut], 0, 0]
    for grasp in (nut_yaw, nut_yaw + np.pi):
        grasp = now + wrap_angle(grasp - now)
        grasps = [g for g in grasp + np.array([0, -2, 2]) * np.pi if _wrist_allows(env, g, handle_now)]
        if not grasps:
            continue
        grasp = grasps[0]
        for on_peg in fits:
            handle = peg_pos[:2] + HANDLE_X[nut] * np.array([np.cos(on_peg), np.sin(on_peg)])
            shortest = wrap_angle(on_peg - nut_yaw)
            for turn in (shortest, shortest - 2 * np.pi, shortest + 2 * np.pi):
                if abs(turn) < 2 * np.pi - 0.5 and _wrist_allows(env, grasp + turn, handle):
                    radius = _radius(env, handle)  # metres; and radians of turning
                    strain = max(radius - STRETCH, NEAR - radius, 0)
                    cost = radius + 5 * strain + 0.005 * (abs(turn) + abs(grasp - now))
                    options.append((cost, float(grasp), float(on_peg), float(turn)))
    _, grasp, on_peg, turn = min(options)
    return grasp, on_peg, turn


def slide_nut(env, nut: str, peg: str) -> Iterator[Waypoint]:
    """Slide a nut whose handle the gripper cannot take (out of reach, or the peg in the way) to where it can.

    The gripper holds the nut by a bar of its ring, one finger in the ring's hole, and slides it along the
    table by the shortest move that makes the handle graspable (the nut keeps its yaw).
    """
    nut_pos, nut_rot = env.body_pose(nut)
    peg_xy = env.body_pose(peg)[0][:2]
    inward = (_base(env) - nut_pos[:2]) / _radius(env, nut_pos)
    now = _gripper_yaw(env)

    def bar_grasp(axis: np.ndarray, side: int, lean: bool) -> tuple:
        """Gripper position and rotation, and the nut's shift on closing, to grasp the bar at ``side``.

        The fingers close along ``axis``, centred 8 mm outside the bar's middle so that the inner one has
        room in the hole; closing then draws the nut over by as much.
        """
        shift = 0.008 * side * axis
        yaw = np.arctan2(axis[1], axis[0]) - np.pi / 2  # top_down(yaw) opens along yaw + pi/2
        yaw = now + wrap_angle(2 * (yaw - now)) / 2  # the gripper is symmetric under a half turn
        return *_grasp_pose(env, nut_pos[:2] + BAR_X[nut] * side * axis + shift, top_down(yaw), lean), shift

    # Prefer the bars that run toward the robot (the gripper can lean along them), then the nearer one;
    # failing a grasp in reach that misses the peg, the nearest top-down one that misses it.
    axes = sorted((nut_rot[:2, 0], nut_rot[:2, 1]), key=lambda axis: -abs(axis @ inward[::-1]))
    grasps = [bar_grasp(axis, side, True) for axis in axes for side in (1, -1)]
    grasps = [grasps[i] for i in np.lexsort(([_radius(env, g[0]) for g in grasps], [0, 0, 1, 1]))]
    feasible = [g for g in grasps if _reachable(env, g[0], g[1]) and _misses(g[0], g[1], peg_xy)]
    upright = [bar_grasp(axis, side, False) for axis in axes for side in (1, -1)]
    upright = sorted((g for g in upright if _misses(g[0], g[1], peg_xy)), key=lambda g: _radius(env, g[0]))
    grasps = feasible or upright or grasps

    def moved(grasp: tuple, slide: np.ndarray) -> np.ndarray:
        return nut_pos + [*(grasp[2] + slide), 0]

    def safe(grasp: tuple, slide: np.ndarray) -> bool:
        """Whether the nut stays on the table and out of the base's way, it and the gripper off the peg."""
        end = moved(grasp, slide)
        path = np.linspace(0, 1, 11)[:, None] * slide
        gaps = np.linalg.norm(end[:2] - slide + path - peg_xy, axis=1)  # nut to peg along the way
        return bool(
            np.all(np.abs(end[:2]) < TABLE_HALF - 0.08)
            and min(_radius(env, end), _radius(env, grasp[0][:2] + slide) + 0.05) > NEAR_GRASP
            and min(gaps) >= min(gaps[0] - 0.005, NUT_RADIUS + PEG_CLEARANCE)
            and all(_misses(grasp[0] + [*p, 0], grasp[1], peg_xy) for p in path)
        )

    slides = [
        length * (rot_z(angle)[:2, :2] @ inward)
        for length in np.arange(0.04, 0.33, 0.02)
        for angle in np.radians([0, 20, -20, 40, -40, 60, -60, 80, -80, 100, -100, 120, -120, 150, -150, 180])
    ]
    plans = ((g, s) for g in grasps for s in slides if safe(g, s))
    plan = next((p for p in plans if _graspable(env, nut, moved(*p), nut_rot, peg_xy, margin=0.03)), None)
    if plan is None:  # bring the handle as near as it safely goes; the caller tries again from there
        fallback = [(g, s) for g in grasps[:1] for s in slides if safe(g, s)]
        if not fallback:
            return
        handle = lambda g, s: _handle_grasp(env, nut, moved(g, s), nut_rot, yaw_of(nut_rot))[0]  # noqa: E731
        plan = min(fallback, key=lambda p: _radius(env, handle(*p)))
    (grip, rot, _), slide = plan
    slide = np.array([*slide, 0.0])
    yield from _reach_out(env, Waypoint(_above(grip, rot), rot, OPEN, tolerance=0.02, speed=FAST))
    # Line up above the bar first: the inner finger fits the hole with about a centimetre to spare.
    yield Waypoint(grip - 0.06 * rot[:, 2], rot, OPEN, tolerance=0.008, hold=4)
    yield Waypoint(grip, rot, OPEN, tolerance=0.008, speed=0.006)
    yield Waypoint(grip, rot, CLOSED, tolerance=0.02, hold=8)
    yield Waypoint(grip + slide, rot, CLOSED, tolerance=0.015, speed=0.008)
    yield Waypoint(grip + slide, rot, OPEN, tolerance=0.02, hold=4)
    yield Waypoint(_above(grip + slide, rot), rot, OPEN, tolerance=0.02, speed=FAST)


def grasp_nut(env, nut: str, yaw: float) -> Iterator[Waypoint]:
    """Grasp a nut by its handle, fingers across it (gripper ``yaw``), and lift it clear of the pegs."""

    def handle_grasp() -> tuple[np.ndarray, np.ndarray]:
        nut_pos, nut_rot = env.body_pose(nut)
        return _handle_grasp(env, nut, nut_pos, nut_rot, yaw)

    # The nuts start 6 cm above the table and drop at reset: aim first, read the pose again once above.
    grip, rot = handle_grasp()
    now = _gripper_yaw(env)
    if abs(yaw - now) > MAX_TURN:  # turn half way first: the expert turns the short way
        yield Waypoint(_above(grip, rot), top_down((yaw + now) / 2), OPEN, tolerance=0.05, speed=FAST)
    yield from _reach_out(env, Waypoint(_above(grip, rot), rot, OPEN, tolerance=0.02, speed=FAST))
    grip, rot = handle_grasp()
    yield Waypoint(grip - 0.06 * rot[:, 2], rot, OPEN, tolerance=0.01, hold=4)  # settle, then go down
    yield Waypoint(grip, rot, OPEN, tolerance=0.008, speed=0.008)
    yield Waypoint(grip, rot, CLOSED, tolerance=0.02, hold=8)
    yield Waypoint(grip + [0, 0, CARRY_Z - TABLE_TOP], rot, CLOSED, tolerance=0.02, speed=CARRY_SPEED)


def put_on_peg(env, nut: str, peg: str, nut_yaw: float, turn: float, symmetry: int) -> Iterator[Waypoint]:
    """Carry the grasped nut over the peg, lower its ring around the peg's top, and drop it.

    On the way the nut turns by about ``turn``, to ``nut_yaw``.
    """
    # Measure the grasp: the gripper turns about the vertical, carrying the nut with it.
    eef_pos, eef_rot = env.eef_pose()
    nut_pos, nut_rot = env.body_pose(nut)
    peg_pos, peg_rot = env.body_pose(peg)
    turn += wrap_angle(nut_yaw - yaw_of(nut_rot) - turn)
    above = rot_z(turn) @ (eef_pos - nut_pos) + [peg_pos[0], peg_pos[1], CARRY_Z]
    carry = rot_z(turn) @ eef_rot
    if abs(turn) > MAX_TURN:  # turn half way first: the expert turns the short way
        halfway = (eef_pos + above) / 2
        yield Waypoint(halfway, rot_z(turn / 2) @ eef_rot, CLOSED, tolerance=0.05, speed=CARRY_SPEED)
    yield from _reach_out(env, Waypoint(above, carry, CLOSED, tolerance=0.01, hold=6, speed=CARRY_SPEED))
    # The ring clears the square peg by only 7 mm a side: correct the nut's slip in the fingers and
    # the arm's sag until the nut hangs right over the peg.
    for _ in range(3):
        nut_pos, nut_rot = env.body_pose(nut)
        shift = peg_pos[:2] - nut_pos[:2]
        twist = wrap_angle((yaw_of(peg_rot) - yaw_of(nut_rot)) * symmetry) / symmetry if symmetry else 0.0
        if np.linalg.norm(shift) < 0.002 and abs(twist) < 0.03:
            break
        above[:2] += shift
        above = nut_pos + rot_z(twist) @ (above - nut_pos)  # turn about the nut's centre
        carry = rot_z(twist) @ carry
        yield Waypoint(above, carry, CLOSED, tolerance=0.01, speed=0.006, hold=4)
    # Once around the peg the nut centres itself on it and the gripper may stop short: a loose tolerance.
    down = above - [0, 0, CARRY_Z - RELEASE_Z]
    yield Waypoint(down, carry, CLOSED, tolerance=0.015, speed=0.006)
    yield Waypoint(down, carry, OPEN, tolerance=0.02, hold=6)
    yield Waypoint(down + [0, 0, 0.08], carry, OPEN, tolerance=0.02, speed=FAST)


def place_nut(env, nut: str, peg: str, symmetry: int) -> Iterator[Waypoint]:
    """Put a nut on its peg; ``symmetry``: how many nut yaws per turn fit the peg (0: any).

    Slides the nut first where its handle is out of reach or the peg in the way, and tries again if
    the nut was not lifted.
    """
    peg_xy = env.body_pose(peg)[0][:2]
    for _ in range(4):
        nut_pos, nut_rot = env.body_pose(nut)
        if not _graspable(env, nut, nut_pos, nut_rot, peg_xy):
            slid = False
            for waypoint in slide_nut(env, nut, peg):
                slid = True
                yield waypoint
            if slid:
                continue
        grasp, on_peg, turn = _plan(env, nut, peg, symmetry)
        yield from grasp_nut(env, nut, grasp)
        nut_pos, nut_rot = env.body_pose(nut)
        if nut_pos[2] > TABLE_TOP + 0.05 and nut_rot[2, 2] > MIN_UPRIGHT:
            yield from put_on_peg(env, nut, peg, on_peg, turn, symmetry)
            return
        # Missed, or holding the nut askew (it would jam on the peg): put it down and try again.
        eef_pos, eef_rot = env.eef_pose()
        down = np.array([*eef_pos[:2], TABLE_TOP + 0.05])
        yield Waypoint(down, eef_rot, CLOSED, tolerance=0.03)
        yield Waypoint(down, eef_rot, OPEN, tolerance=0.05, hold=6)
        yield Waypoint(np.array([*eef_pos[:2], SAFE_Z]), eef_rot, OPEN, tolerance=0.02, speed=FAST)


def square_expert(env) -> Iterator[Waypoint]:
    """Square's expert: the square nut onto the square peg."""
    yield from place_nut(env, "square_nut", "square_peg", symmetry=4)


def nut_assembly_expert(env) -> Iterator[Waypoint]:
    """NutAssembly's expert: the square nut onto the square peg, then the round one onto the round peg."""
    yield from place_nut(env, "square_nut", "square_peg", symmetry=4)
    yield from place_nut(env, "round_nut", "round_peg", symmetry=0)


OBJECTS = {"square_nut": "SquareNut_main", "square_peg": "peg1"}


def _holds(index: int):
    """MimicGen's grasp signal for nut ``index`` (0: square, 1: round)."""

    def signal(env) -> bool:
        scene = env.scene
        return bool(scene._check_grasp(gripper=scene.robots[0].gripper, object_geoms=scene.nuts[index]))

    return signal


def _square_on_peg(env) -> bool:
    """MimicGen's ``insert_square_nut``: robosuite's on-peg test, gripper away from the nut."""
    scene = env.scene
    nut_pos = env.body_pose("square_nut")[0]
    far = np.linalg.norm(env.eef_pose()[0] - nut_pos) > 0.0424
    return bool(scene.on_peg(nut_pos, 0) and far)


# MimicGen's segmentation (the square peg looks the same every quarter turn, the round one always), with
# nearest-neighbour source selection; the whole episode follows one source demo (the nut goes onto the
# peg as the fingers hold it, which the grasp subtask's source decided).
SQUARE_SUBTASKS = (
    Subtask("square_nut", _holds(0), selection="nearest"),
    Subtask("square_peg", symmetry=4, selection="nearest"),
)
NUT_ASSEMBLY_SUBTASKS = (
    Subtask("square_nut", _holds(0), selection="nearest"),
    Subtask("square_peg", _square_on_peg, symmetry=4, selection="nearest"),
    Subtask("round_nut", _holds(1), selection="nearest"),
    Subtask("round_peg", symmetry=8, selection="nearest"),
)

VARIANTS = (
    TaskSpec(
        name="Square",
        variant="D0",
        scene_class=SquareScene,
        horizon=400,
        objects=OBJECTS,
        expert=square_expert,
        subtasks=SQUARE_SUBTASKS,
        select_source_per_subtask=False,
        workspace=Workspace(center=(0.0, 0.0, TABLE_TOP), half_size=0.32),
        description="put the square nut on the square peg; nut near x = -0.11, any yaw; peg fixed",
    ),
    TaskSpec(
        name="Square",
        variant="D2",
        scene_class=SquareScene,
        scene_kwargs={"wide": True, "agentview_full": True, "swap_agentview": True},
        horizon=400,
        objects=OBJECTS,
        expert=square_expert,
        subtasks=SQUARE_SUBTASKS,
        select_source_per_subtask=False,
        workspace=Workspace(center=(0.0, 0.0, TABLE_TOP), half_size=0.38),
        description="put the square nut on the square peg; nut and peg anywhere in a 0.5 m square, any yaw",
    ),
    TaskSpec(
        name="NutAssembly",
        variant="D0",
        scene_class=NutAssemblyScene,
        horizon=500,
        objects={**OBJECTS, "round_nut": "RoundNut_main", "round_peg": "peg2"},
        expert=nut_assembly_expert,
        subtasks=NUT_ASSEMBLY_SUBTASKS,
        select_source_per_subtask=False,
        workspace=Workspace(center=(0.0, 0.0, TABLE_TOP), half_size=0.32),
        description="put the square nut on the square peg and the round nut on the round peg",
    ),
)
