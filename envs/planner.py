"""One planner for the Panda: a task's expert as data, a plan of object-centric steps.

A plan is a sequence of steps, each relative to one object of the task (MimicGen's subtask segments):

* :class:`Pick`: grasp an object; the grasps are gripper-site poses in the object's frame.
* :class:`Place`: put the held object at a pose in another object's frame (on a cube, into a holder).
* :class:`Reach`: move the gripper site through poses in an object's frame with a fixed gripper command
  (press a button, pull a drawer, push a lid shut).

:func:`plan_expert` turns a plan into a task's ``expert``: a generator of
:class:`~equirobot_envs.experts.Waypoint` s that :class:`~equirobot_envs.experts.ScriptedExpert` follows
unchanged. Each step reads the object poses at the moment it starts (where the cube really is after the
last step), so the plan itself holds no world coordinates.

The :class:`Planner` owns the hand: which geoms are the hand and its fingers (read from the loaded model,
never a box model), :func:`grasped` (both finger pads touch the object), inverse kinematics of the arm
(damped least squares on MuJoCo's site Jacobian), and collision checks with MuJoCo's own distance query
(``mj_geomDistance``) on a private ``MjData`` with the arm placed at the candidate pose. For every step
it orders the candidate poses (each grasp, turned by the object's symmetry and by the hand's half turn)
by how far the wrist must turn, and takes the first one that the arm reaches and whose approach is clear
of the scene; a grasp that did not take is retried with the next candidate.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import mujoco
import numpy as np
from scipy.spatial.transform import Rotation

from equirobot_envs.experts import CLOSED, OPEN, Waypoint
from equirobot_envs.geometry import rot_z

log = logging.getLogger(__name__)

HAND_BODY_PREFIXES = ("gripper0_", "robot0_link7", "robot0_right_hand")
ROBOT_BODY_PREFIXES = ("robot0_", "gripper0_", "fixed_mount0_")
ARM_JOINTS = 7
FINGER_OPEN = 0.04  # finger joint travel of the open Panda hand
JOINT_MARGIN = 0.1  # radians kept from every joint limit
ELBOW_BENT = -0.35  # radians: the least bend of the elbow a planned pose may have
WRIST_TWIST, WRIST_BEND_MIN = 1.7, 0.4  # radians: joint 5 within +-WRIST_TWIST, joint 6 above the minimum
IK_POS_TOL, IK_ROT_TOL = 0.004, 0.03  # metres, radians: what counts as reached
CLEARANCE = 0.004  # metres the open hand keeps from every obstacle on its approach
NEAR = 0.02  # metres: clearances beyond this are reported as NEAR
TOUCH = 0.001  # metres a hand or held object may sink into the scene where it comes to rest
TRANSIT_LIFTS = (0.0, 0.04, 0.08, 0.14)  # metres above the higher end that a transit may rise
ALIGNED = 0.0015  # metres: a held object this near its approach pose needs no correction
TRANSIT_CLEARANCE = 0.015  # metres kept from the scene on the way (the arm lags, a held object swings)
LIFT_AWAY = (0.0, 0.04, 0.08, 0.12)  # metres a lift may also move away from the robot's base
DETOUR_PUSHES = (0.08, 0.15)  # metres a detour's middle moves away from the robot's base
SHORT_APPROACH_COST = 5.0  # radians of wrist turn that a pick's half approach counts as (it comes last)
FOLD_MARGIN = 0.15  # radians a lifted pose keeps the elbow from its fold bound, where it can


class PlanningError(ValueError):
    """No candidate pose of a step is reachable (or none is clear of the scene, when that is required)."""


def pose(pos: Sequence[float] | np.ndarray = (0.0, 0.0, 0.0), rot: np.ndarray | None = None) -> np.ndarray:
    """A (4, 4) homogeneous transform."""
    out = np.eye(4)
    out[:3, 3] = pos
    if rot is not None:
        out[:3, :3] = rot
    return out


def turn_z(angle: float) -> np.ndarray:
    """(4, 4): a turn about the z axis."""
    return pose(rot=rot_z(angle))


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    """Angle (radians) of the rotation between two (3, 3) orientations."""
    return float(np.arccos(np.clip((np.trace(a.T @ b) - 1) / 2, -1.0, 1.0)))


def _rot_error(target: np.ndarray, current: np.ndarray) -> np.ndarray:
    """World-frame rotation vector taking ``current`` to ``target`` (both (3, 3))."""
    r = target @ current.T
    angle = np.arccos(np.clip((np.trace(r) - 1) / 2, -1.0, 1.0))
    axis = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    if angle < 1e-6:
        return 0.5 * axis
    if np.pi - angle < 1e-4:  # half turn: the axis is the eigenvector of eigenvalue 1
        w, v = np.linalg.eigh((r + r.T) / 2)
        return angle * v[:, np.argmax(w)]
    return angle * axis / (2 * np.sin(angle))


def _subtree_bodies(model: mujoco.MjModel, root: int) -> set[int]:
    bodies = {root}
    for b in range(root + 1, model.nbody):
        if model.body_parentid[b] in bodies:
            bodies.add(b)
    return bodies


def _collision_geoms(model: mujoco.MjModel, bodies: set[int]) -> list[int]:
    return [
        g
        for g in range(model.ngeom)
        if model.geom_bodyid[g] in bodies and (model.geom_contype[g] or model.geom_conaffinity[g])
    ]


def _body_named(model: mujoco.MjModel, prefixes: tuple[str, ...]) -> set[int]:
    return {b for b in range(model.nbody) if model.body(b).name.startswith(prefixes)}


def _scene(env):
    """The robosuite scene of a TaskEnv, or the scene itself."""
    return getattr(env, "scene", env)


def body_name(env, name: str) -> str:
    """The MuJoCo body of an object key (of the task, or of a :class:`TableScene`), else ``name`` itself."""
    objects = getattr(getattr(env, "task", None), "objects", {})
    if name in objects:
        return objects[name]
    scene = _scene(env)
    for group in ("objects", "fixtures"):
        named = getattr(scene, group, None)
        if isinstance(named, dict) and name in named:
            return named[name].root_body
    return name


def body_position(env, name: str) -> np.ndarray:
    """World position (3,) of an object (key or MuJoCo body name)."""
    scene = _scene(env)
    return scene.sim.data.body_xpos[scene.sim.model.body_name2id(body_name(env, name))].copy()


def body_geoms(env, body: str) -> list[int]:
    """Collision geoms of a body and everything attached below it (object keys map to their body)."""
    scene = _scene(env)
    model = scene.sim.model._model
    return _collision_geoms(model, _subtree_bodies(model, scene.sim.model.body_name2id(body_name(env, body))))


def _touching(model: mujoco.MjModel, data: mujoco.MjData, a: set[int], b: set[int]) -> bool:
    for i in range(data.ncon):
        g1, g2 = data.contact[i].geom1, data.contact[i].geom2
        if (g1 in a and g2 in b) or (g1 in b and g2 in a):
            return True
    return False


def grasped(env, body: str | Sequence[int], tolerant: bool = False) -> bool:
    """Whether the hand grasps an object: a left-finger pad and a right-finger pad both touch it.

    ``body``: an object key of the task, a MuJoCo body name (its subtree counts), or geom ids.
    ``tolerant`` (MimicGen's mug grasp): one finger's pad and the other finger's body also count.
    """
    scene = _scene(env)
    model, data = scene.sim.model._model, scene.sim.data._data
    geoms = set(body_geoms(env, body) if isinstance(body, str) else body)
    hand = scene.robots[0].gripper["right"].important_geoms
    ids = {k: {model.geom(n).id for n in names} for k, names in hand.items()}
    left, right = (
        _touching(model, data, ids["left_fingerpad"], geoms),
        _touching(model, data, ids["right_fingerpad"], geoms),
    )
    if left and right:
        return True
    if not tolerant:
        return False
    return (left and _touching(model, data, ids["right_finger"], geoms)) or (
        right and _touching(model, data, ids["left_finger"], geoms)
    )


def in_contact(env, a: str, b: str) -> bool:
    """Whether any collision geom of body (or object key) ``a`` touches one of ``b``."""
    scene = _scene(env)
    model, data = scene.sim.model._model, scene.sim.data._data
    return _touching(model, data, set(body_geoms(env, a)), set(body_geoms(env, b)))


class Planner:
    """Inverse kinematics and collision queries for the Panda of one env, on a private ``MjData``.

    The model is the env's own (so fixtures a reset moved are where they are); the data is a copy that
    the queries overwrite, so planning never disturbs the simulation.
    """

    def __init__(self, env):
        self.env = env
        self.model: mujoco.MjModel = env.scene.sim.model._model
        self.live: mujoco.MjData = env.scene.sim.data._data
        self.data = mujoco.MjData(self.model)
        self.next_step = None  # the plan's step after the one being planned (a Pick looks ahead)
        robot = env.scene.robots[0]
        self.qpos_ids = np.asarray(robot._ref_joint_pos_indexes)[:ARM_JOINTS]
        self.dof_ids = np.asarray(robot._ref_joint_vel_indexes)[:ARM_JOINTS]
        self.finger_ids = np.asarray(robot._ref_gripper_joint_pos_indexes["right"])
        self.site = robot.eef_site_id["right"]
        joints = self.model.dof_jntid[self.dof_ids]
        self.low = self.model.jnt_range[joints, 0] + JOINT_MARGIN
        self.high = self.model.jnt_range[joints, 1] - JOINT_MARGIN
        limits = self.low.copy(), self.high.copy()  # the joints' own limits (less the margin)
        # The elbow (joint 4) must stay bent: nearly straight, the arm is near its reach singularity, where
        # the OSC controller may straighten it fully and then cannot bend it back.
        self.high[3] = min(self.high[3], ELBOW_BENT)
        # The wrist stays in the branch the OSC controller moves it through from the home pose (joint 5
        # near 0, joint 6 bent forward): solutions with the wrist folded over are reachable for IK but not
        # along the controller's path.
        self.low[4], self.high[4] = max(self.low[4], -WRIST_TWIST), min(self.high[4], WRIST_TWIST)
        self.low[5] = max(self.low[5], WRIST_BEND_MIN)
        # Where a bound is the joint's own limit (not one of the branch bounds above), which the controller
        # stalls at.
        self.low_is_limit, self.high_is_limit = self.low == limits[0], self.high == limits[1]
        robot_bodies = _body_named(self.model, ROBOT_BODY_PREFIXES)
        self.hand_geoms = _collision_geoms(self.model, _body_named(self.model, HAND_BODY_PREFIXES))
        self.robot_geoms = set(_collision_geoms(self.model, robot_bodies))
        self.scene_geoms = [
            g for g in _collision_geoms(self.model, set(range(self.model.nbody))) if g not in self.robot_geoms
        ]
        self._hand_set, self._scene_set = set(self.hand_geoms), set(self.scene_geoms)
        # The model the collision queries run on: the env's, its hand geoms with a NEAR margin.
        self.query = copy.copy(self.model)
        self.query.geom_margin[self.hand_geoms] = NEAR
        self.margins = self.query.geom_margin.copy()

    # -- kinematics -------------------------------------------------------------------------------
    def _sync(self) -> None:
        """Copy the live state into the private data."""
        self.data.qpos[:] = self.live.qpos
        self.data.qvel[:] = 0
        if self.model.nmocap:
            self.data.mocap_pos[:], self.data.mocap_quat[:] = self.live.mocap_pos, self.live.mocap_quat

    def ik(self, target: np.ndarray, q0: np.ndarray | None = None, iterations: int = 150) -> tuple:
        """Arm joint angles placing the gripper site at ``target`` (4, 4), by damped least squares.

        Starts from ``q0`` (default: the arm's configuration now) and keeps every joint
        ``JOINT_MARGIN`` inside its limits. Returns ``(q, position error, rotation error)``.
        """
        self._sync()
        q = self.live.qpos[self.qpos_ids].copy() if q0 is None else q0.copy()
        jac_p, jac_r = np.zeros((3, self.model.nv)), np.zeros((3, self.model.nv))
        for _ in range(iterations):
            self.data.qpos[self.qpos_ids] = q
            mujoco.mj_kinematics(self.model, self.data)
            mujoco.mj_comPos(self.model, self.data)
            pos = self.data.site_xpos[self.site]
            rot = self.data.site_xmat[self.site].reshape(3, 3)
            err = np.concatenate([target[:3, 3] - pos, _rot_error(target[:3, :3], rot)])
            if np.linalg.norm(err[:3]) < 1e-4 and np.linalg.norm(err[3:]) < 1e-3:
                break
            mujoco.mj_jacSite(self.model, self.data, jac_p, jac_r, self.site)
            jac = np.vstack([jac_p[:, self.dof_ids], jac_r[:, self.dof_ids]])
            # Weight rotation by 0.2 m: one radian counts like 20 cm of the fingertips' travel.
            weight = np.array([1, 1, 1, 0.2, 0.2, 0.2])
            jw = jac * weight[:, None]
            dq = jw.T @ np.linalg.solve(jw @ jw.T + 1e-4 * np.eye(6), err * weight)
            scale = min(1.0, 0.3 / (np.abs(dq).max() + 1e-12))
            q = np.clip(q + scale * dq, self.low, self.high)
        self.data.qpos[self.qpos_ids] = q
        mujoco.mj_kinematics(self.model, self.data)
        pos, rot = self.data.site_xpos[self.site], self.data.site_xmat[self.site].reshape(3, 3)
        return q, float(np.linalg.norm(target[:3, 3] - pos)), _angle(target[:3, :3], rot)

    def reach(self, target: np.ndarray, q0: np.ndarray | None = None) -> np.ndarray | None:
        """Joint angles that reach ``target`` within the IK tolerances, else None.

        The last joint must get there the way the controller turns the hand, the short way round: a
        solution that only the other way round reaches (past the joint's limit) does not count.
        """
        start = self.live.qpos[self.qpos_ids] if q0 is None else q0
        q, pos_err, rot_err = self.ik(target, q0)
        if pos_err > IK_POS_TOL or rot_err > IK_ROT_TOL:  # a local minimum: try again from the home pose
            q, pos_err, rot_err = self.ik(target, self.env.scene.robots[0].init_qpos[:ARM_JOINTS])
        if pos_err > IK_POS_TOL or rot_err > IK_ROT_TOL:
            return None
        # A solution that pins a joint at its limit got there by contorting the others (the last joint
        # held while the others turn the hand, the elbow folded as far as it goes): the controller does
        # not, it stalls at the limit. (A joint already at its limit, as the arm is now, may stay there.)
        low = self.low_is_limit & (q <= self.low + 1e-3) & (start > self.low + 1e-3)
        high = self.high_is_limit & (q >= self.high - 1e-3) & (start < self.high - 1e-3)
        if np.any(low) or np.any(high):
            return None
        # The turn left for the last joint once the others are where they go: the hand's axis is the last
        # joint's, so the controller turns it by that angle (the short way); a solution that turned it
        # further went round the other way.
        self.data.qpos[self.qpos_ids] = [*q[:6], start[6]]
        mujoco.mj_kinematics(self.model, self.data)
        turn = _angle(target[:3, :3], self.data.site_xmat[self.site].reshape(3, 3))
        return q if abs(q[6] - start[6]) <= turn + 0.3 else None

    # -- collisions -------------------------------------------------------------------------------
    def clearance(
        self,
        q: np.ndarray,
        fingers: float = FINGER_OPEN,
        ignore: Sequence[int] = (),
        held: Held | None = None,
        touch: Sequence[int] = (),
    ) -> float:
        """Least distance (m) from the hand (and a held object) at arm angles ``q`` to the scene.

        Negative: penetration. ``fingers``: finger joint opening; ``ignore``: scene geoms that do not
        count (the object being grasped, the support a held object is put on); ``held``: an object that
        moves with the hand; ``touch``: scene geoms that the held object (or, holding nothing, the hand)
        may touch, where it comes to rest. Distances beyond ``NEAR`` are reported as ``NEAR``.
        MuJoCo's own contact detection (``mj_collision``) on a model copy whose hand geoms carry a
        ``NEAR`` margin finds every pair closer than that, with its signed distance.
        """
        self._sync()
        self.data.qpos[self.qpos_ids] = q
        self.data.qpos[self.finger_ids] = [fingers, -fingers]
        self.query.body_pos[:], self.query.body_quat[:] = self.model.body_pos, self.model.body_quat
        self.query.geom_margin[:] = self.margins
        mujoco.mj_kinematics(self.query, self.data)
        moving = set(self.hand_geoms)
        if held is not None:
            site = pose(self.data.site_xpos[self.site], self.data.site_xmat[self.site].reshape(3, 3))
            obj = site @ held.site_in_object_inv
            quat = np.zeros(4)
            mujoco.mju_mat2Quat(quat, obj[:3, :3].flatten())
            self.data.qpos[held.qpos : held.qpos + 7] = [*obj[:3, 3], *quat]
            self.query.geom_margin[held.geoms] = NEAR
            mujoco.mj_kinematics(self.query, self.data)
            moving |= set(held.geoms)
        mujoco.mj_collision(self.query, self.data)
        ignored, scene = set(ignore) | moving, self._scene_set
        toucher, touched = (set(held.geoms) if held is not None else set(self.hand_geoms)), set(touch)
        best = NEAR
        for i in range(self.data.ncon):
            contact = self.data.contact[i]
            g1, g2 = contact.geom1, contact.geom2
            if g2 in moving:
                g1, g2 = g2, g1
            if g1 not in moving or g2 not in scene or g2 in ignored or (g1 in toucher and g2 in touched):
                continue
            best = min(best, float(contact.dist))
        return best

    def clear_path(
        self,
        poses: Sequence[np.ndarray],
        ignore: Sequence[int] = (),
        fingers=FINGER_OPEN,
        held: Held | None = None,
        last_ignore: Sequence[int] = (),
        q: np.ndarray | None = None,
    ) -> tuple:
        """Reach each pose in turn (warm-started); returns (reachable, least clearance along the way).

        ``last_ignore``: geoms that the held object (holding nothing: the hand) may touch at the last pose;
        ``q``: the arm's joint angles to start from (default: now).
        """
        least = NEAR
        for i, target in enumerate(poses):
            q = self.reach(target, q)
            if q is None:
                return False, -np.inf
            if i < len(poses) - 1:
                least = min(least, self.clearance(q, fingers, ignore, held))
            else:  # where it is going, the hand (or what it holds) may touch, not sink in
                least = min(least, self.clearance(q, fingers, ignore, held, last_ignore) + CLEARANCE + TOUCH)
        return True, least

    def follow(
        self, start: np.ndarray, end: np.ndarray, steps: int = 6, q: np.ndarray | None = None
    ) -> np.ndarray | None:
        """Joint angles at ``end``, reached the way the controller goes there from ``start``.

        Through poses interpolated from ``start`` (position linearly, orientation by slerp), each
        warm-started from the last; None where a joint's limit stops the way (a wrist that would have to
        turn the long way round). ``q``: the arm's joint angles at ``start`` (default: the arm now).
        """
        turn = Rotation.from_matrix(end[:3, :3] @ start[:3, :3].T).as_rotvec()
        for s in np.linspace(0, 1, steps + 1)[1:]:
            p = pose(start[:3, 3] + s * (end[:3, 3] - start[:3, 3]))
            p[:3, :3] = Rotation.from_rotvec(s * turn).as_matrix() @ start[:3, :3]
            q = self.reach(p, q)
            if q is None:
                return None
        return q

    def detour(
        self, start: np.ndarray, end: np.ndarray, fingers=FINGER_OPEN, held: Held | None = None
    ) -> tuple[list[np.ndarray], np.ndarray | None]:
        """A way from ``start`` to ``end`` through a pose half way, pushed away from the robot's base.

        Near the base the straight way may need the elbow folded past its limit where both ends do not.
        Returns ``([the pose half way], joint angles at end)``, or ``([], None)`` if no push makes a way.
        """
        base = self.env.body_pose("robot0_base")[0]
        turn = Rotation.from_matrix(end[:3, :3] @ start[:3, :3].T).as_rotvec()
        half = Rotation.from_rotvec(turn / 2).as_matrix() @ start[:3, :3]
        mid = pose((start[:3, 3] + end[:3, 3]) / 2, half)
        away = mid[:2, 3] - base[:2]
        away /= max(float(np.linalg.norm(away)), 1e-9)
        for push in DETOUR_PUSHES:
            via = mid.copy()
            via[:2, 3] += push * away
            q_via = self.follow(start, via)
            q = self.follow(via, end, q=q_via) if q_via is not None else None
            if q is not None and self.clear_path([via], (), fingers, held)[1] >= TRANSIT_CLEARANCE:
                return [via], q
        return [], None

    def transit(
        self, start: np.ndarray, end: np.ndarray, ignore=(), fingers=FINGER_OPEN, held: Held | None = None
    ) -> list[np.ndarray]:
        """Poses that carry the hand from ``start`` to ``end`` (4, 4) clear of the scene.

        Straight there if that is clear; else up to the lowest of a few heights at which the horizontal
        move is clear, across, and down. Returns the poses to pass through before ``end``.
        """
        options: list[list[np.ndarray]] = [[]]  # straight there, then up to a height, across and down
        for lift in TRANSIT_LIFTS:
            up, over = start.copy(), end.copy()
            up[2, 3] = over[2, 3] = max(start[2, 3], end[2, 3]) + lift
            options.append([up, over])
        best, best_clear = None, -np.inf
        for path in options:
            corners = [start, *path, end]
            points = []
            for a, b in zip(corners[:-1], corners[1:], strict=True):
                n = max(int(np.linalg.norm(b[:3, 3] - a[:3, 3]) / 0.03), 1)
                for s in np.linspace(0, 1, n + 1)[1:]:
                    p = b.copy()
                    p[:3, 3] = (1 - s) * a[:3, 3] + s * b[:3, 3]
                    points.append(p)
            ok, clear = self.clear_path(points, ignore, fingers, held)
            if ok and clear >= TRANSIT_CLEARANCE:
                return path
            if ok and clear > best_clear:
                best, best_clear = path, clear
        return best if best is not None else []


@dataclass(frozen=True)
class Held:
    """An object in the hand, for collision queries: its geoms, its free joint, how the hand holds it."""

    geoms: list[int]
    qpos: int
    site_in_object_inv: np.ndarray  # (4, 4) the object's pose in the gripper site's frame

    @classmethod
    def measure(cls, env, name: str) -> Held:
        """The object ``name`` as the hand holds it now."""
        scene = _scene(env)
        model = scene.sim.model._model
        body = scene.sim.model.body_name2id(body_name(env, name))
        joint = model.body_jntadr[body]
        obj = pose(*env.body_pose(name))
        return cls(body_geoms(env, name), int(model.jnt_qposadr[joint]), np.linalg.inv(_eef(env)) @ obj)


# -- plan steps ---------------------------------------------------------------------------------------


def _world(env, frame: str | None) -> np.ndarray:
    if frame is None:
        return np.eye(4)
    return pose(*env.body_pose(frame))


def _eef(env) -> np.ndarray:
    return pose(*env.eef_pose())


def _rot_x(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _turns(symmetry: int) -> list[np.ndarray]:
    return [turn_z(2 * np.pi * k / symmetry) for k in range(max(symmetry, 1))]


Candidates = list[tuple[float, list[np.ndarray]]]  # (cost, a path of world poses (4, 4))


def _choose(
    planner: Planner,
    candidates: Candidates,
    ignore=(),
    fingers=FINGER_OPEN,
    what="",
    held: Held | None = None,
    last_ignore=(),
    accept: Callable[[list[np.ndarray]], bool] | None = None,
) -> tuple[list[np.ndarray], float, list[np.ndarray]]:
    """The first candidate path (by cost) that the arm reaches clear of the scene; else the clearest one.

    ``accept``: a further test of a path (a grasp that lets the next step put the object down).
    Returns the path, its clearance, and the poses of a detour to take to its start (none: the way there
    is straight, or the transit's). Raises :class:`PlanningError` when no candidate is reachable at all.
    """
    best, best_clear, best_detour, errors = None, -np.inf, [], []
    for _, path in sorted(candidates, key=lambda c: c[0]):
        now = _eef(planner.env)
        q, detour = planner.follow(now, path[0]), list[np.ndarray]()
        if q is None:  # not straight there: round, away from the robot's base
            detour, q = planner.detour(now, path[0], fingers, held)
        ok, clear = (
            planner.clear_path(path, ignore, fingers, held, last_ignore, q) if q is not None else (False, 0)
        )
        if ok and accept is not None and not accept(path):
            ok = False
        if not ok:
            _, err, rot_err = planner.ik(path[-1])
            errors.append(err)
            continue
        if clear >= CLEARANCE:
            return path, clear, detour
        if clear > best_clear + 0.002:  # the cheapest of the (nearly) clearest
            best, best_clear, best_detour = path, clear, detour
    if best is None:
        raise PlanningError(
            f"{what}: none of {len(candidates)} candidate poses is reachable by the arm "
            f"(nearest misses the target by {min(errors, default=np.inf):.3f} m)"
        )
    log.info("%s: no candidate clear of the scene; taking the clearest (%.3f m)", what, best_clear)
    return best, best_clear, best_detour


def _moves(poses: Sequence[np.ndarray], gripper: float, speed: float) -> Iterator[Waypoint]:
    for p in poses:
        yield Waypoint(p[:3, 3], p[:3, :3], gripper, tolerance=0.02, speed=speed)


@dataclass(frozen=True, eq=False)
class Pick:
    """Grasp ``object`` with one of ``grasps`` (gripper-site poses (4, 4) in its frame), then lift.

    ``grasps`` may be a function of the env (for grasps that depend on how the object lies). Each grasp
    is also tried turned by ``2 pi k / symmetry`` about the object's z axis and with the hand
    turned half way about its own axis (the fingers are alike). The hand comes in along its own z axis
    from ``approach`` metres back and lifts ``lift`` metres straight up once closed; a grasp that did not
    take (``grasped``) is retried with the next candidate, ``tries`` times in all.
    """

    object: str
    grasps: tuple[np.ndarray, ...] | Callable[..., tuple[np.ndarray, ...]]
    symmetry: int = 1
    approach: float = 0.08
    lift: float = 0.10
    tries: int = 3
    tolerant: bool = False
    speed: float = 0.012
    descend_speed: float = 0.008
    close_steps: int = 8
    tilts: tuple[float, ...] = (0.0, 0.35, -0.35)
    """Tilts (radians) of the hand about its fingers' closing axis, tried after the upright grasp: near
    the robot's base, where the folded arm cannot point the hand straight down, it leans away."""
    flip: bool = True
    """Also try each grasp with the hand turned half way about its axis; False: the grasps as given (a
    later step needs the wrist turned one way, e.g. a placement that the arm reaches only so)."""

    def candidates(self, env) -> list[tuple[float, list[np.ndarray]]]:
        """(cost, [pre-grasp, grasp]) world poses, cheapest (least wrist turn, least tilt) first.

        After all of them, the same with half the approach: near the robot's base the arm may reach the
        grasp but not the pre-grasp pose the full approach puts higher.
        """
        frame, now = _world(env, self.object), _eef(env)
        out = []
        for grasp in self.grasps(env) if callable(self.grasps) else self.grasps:
            for turn in _turns(self.symmetry):
                for flip in _turns(2) if self.flip else [np.eye(4)]:
                    for tilt in self.tilts:
                        target = frame @ turn @ grasp @ flip @ pose(rot=_rot_x(tilt))
                        cost = _angle(target[:3, :3], now[:3, :3]) + 2 * abs(tilt)
                        for extra, approach in (
                            (0.0, self.approach),
                            (SHORT_APPROACH_COST, self.approach / 2),
                        ):
                            back = target.copy()
                            back[:3, 3] -= approach * target[:3, 2]
                            out.append((cost + extra, [back, target]))
        return out

    def lifted(self, env, planner: Planner, target: np.ndarray) -> np.ndarray | None:
        """Where the hand lifts the object to from the grasp ``target`` (None: the arm reaches no lift).

        ``lift`` straight up, else also away from the robot's base (near it, lifting straight up folds the
        elbow, and the controller folds it further than the planned pose does, onto its limit): the first
        lift that keeps the elbow ``FOLD_MARGIN`` from its bound, else the one that keeps most.
        """
        away = target[:2, 3] - env.body_pose("robot0_base")[0][:2]
        away /= max(float(np.linalg.norm(away)), 1e-9)
        q = planner.reach(target)
        if q is None:
            return None
        best, best_margin = None, -np.inf
        for out in LIFT_AWAY:
            lifted = target.copy()
            lifted[:3, 3] += [*(out * away), self.lift]
            end = planner.follow(target, lifted, steps=3, q=q)
            if end is None:
                continue
            margin = float(end[3] - planner.low[3])
            if margin >= FOLD_MARGIN:
                return lifted
            if margin > best_margin:
                best, best_margin = lifted, margin
        return best

    def waypoints(self, env, planner: Planner) -> Iterator[Waypoint]:
        ignore = body_geoms(env, self.object)
        for attempt in range(self.tries):
            what = f"pick {self.object!r}"
            then = planner.next_step if isinstance(planner.next_step, Place) else None
            lifts: dict[int, np.ndarray] = {}

            def accept(
                path: list[np.ndarray], then: Place | None = then, lifts: dict[int, np.ndarray] = lifts
            ) -> bool:
                lifted = self.lifted(env, planner, path[-1])
                if lifted is None:
                    return False
                if then is not None and then.object == self.object:  # only grasps the placing can use
                    in_hand = np.linalg.inv(pose(*env.body_pose(self.object))) @ path[-1]
                    if not then.feasible(env, planner, in_hand, lifted):
                        return False
                lifts[id(path[-1])] = lifted
                return True

            (back, target), _, detour = _choose(
                planner, self.candidates(env), (), what=what, last_ignore=ignore, accept=accept
            )
            yield from _moves(detour or planner.transit(_eef(env), back), OPEN, self.speed)
            yield Waypoint(back[:3, 3], back[:3, :3], OPEN, tolerance=0.015, speed=self.speed)
            yield Waypoint(target[:3, 3], target[:3, :3], OPEN, tolerance=0.008, speed=self.descend_speed)
            yield Waypoint(target[:3, 3], target[:3, :3], CLOSED, tolerance=0.02, hold=self.close_steps)
            lifted = lifts[id(target)][:3, 3]
            yield Waypoint(lifted, target[:3, :3], CLOSED, tolerance=0.02, speed=self.speed)
            if grasped(env, self.object, self.tolerant):
                return
            log.info("pick %s: grasp %d did not take; retrying", self.object, attempt)
            yield Waypoint(lifted, target[:3, :3], OPEN, tolerance=0.03, hold=4)


@dataclass(frozen=True, eq=False)
class Place:
    """Put the held ``object`` at one of ``poses`` (its pose (4, 4) in ``target``'s frame) and let go.

    The grasp is measured when the step starts (where the object sits in the fingers), so the gripper
    goes where that brings the object to the pose. Poses are also tried turned by the target's
    ``symmetry`` and the object's own ``held_symmetry`` about their z axes. The object comes in from
    ``approach`` (a (3,) offset in the target's frame; default: 8 cm above), where up to ``align``
    corrections servo the object itself (not the hand) onto its approach pose, goes to the pose at
    ``final_speed``, the gripper opens (if ``release``) and retreats ``retreat`` metres up (or, with
    ``retreat_back``, back along the hand's own axis: the open fingers slide off the object, and a hand
    leaning under an overhang keeps its distance from it).
    """

    object: str
    target: str | None
    poses: tuple[np.ndarray, ...] | Callable[..., tuple[np.ndarray, ...]]
    """The object's poses in the target's frame; or a function ``poses(env, held)`` of the grasp (``held``:
    the gripper site's pose (4, 4) in the object's frame), for placements that depend on how it is held."""
    symmetry: int = 1
    held_symmetry: int = 1
    approach: tuple[float, float, float] = (0.0, 0.0, 0.08)
    release: bool = True
    retreat: float = 0.08
    retreat_back: bool = False
    speed: float = 0.012
    final_speed: float = 0.006
    tolerance: float = 0.006
    open_steps: int = 6
    align: int = 3
    keep_tilt: bool = False
    """Keep the object's orientation but for a turn about the vertical (``symmetry`` turns tried); the
    poses' rotations are then ignored (a hammer lying on its side, a mug)."""
    nearest_first: bool = False
    """Order the candidates by how far the hand reaches out from the robot's base, then by wrist turn: for a
    placement at the edge of the arm's reach (the object turned so that the hand holds it on its near
    side), from where a stretched-out arm does not come back."""

    def feasible(self, env, planner: Planner, in_hand: np.ndarray, start: np.ndarray) -> bool:
        """Whether some candidate's approach is reachable the controller's way, for a grasp.

        ``in_hand``: the gripper site's pose in the object's frame; ``start``: the hand's pose then.
        """
        obj = start @ np.linalg.inv(in_hand)
        q = planner.reach(start)
        return q is not None and any(
            planner.follow(start, path[0], steps=4, q=q) is not None
            for _, path in sorted(self.candidates(env, in_hand, start, obj), key=lambda c: c[0])
        )

    def candidates(self, env, held=None, now=None, now_obj=None) -> list[tuple[float, list[np.ndarray]]]:
        """(cost, [approach, goal]) hand poses; by default for the object as the hand holds it now."""
        frame = _world(env, self.target)
        now = _eef(env) if now is None else now
        if held is None:
            held = (
                np.linalg.inv(pose(*env.body_pose(self.object))) @ now
            )  # gripper site in the object's frame
        out = []
        poses = self.poses(env, held) if callable(self.poses) else self.poses
        if self.keep_tilt:
            now_obj = pose(*env.body_pose(self.object)) if now_obj is None else now_obj
            for place in poses:
                for turn in _turns(self.symmetry):
                    goal_obj = turn @ pose(rot=now_obj[:3, :3])
                    goal_obj[:3, 3] = (frame @ place)[:3, 3]
                    goal = goal_obj @ held
                    above = goal.copy()
                    above[:3, 3] += frame[:3, :3] @ np.asarray(self.approach)
                    out.append((self._cost(env, goal, now), [above, goal]))
            return out
        for place in poses:
            for turn in _turns(self.symmetry):
                for own in _turns(self.held_symmetry):
                    goal = frame @ turn @ place @ own @ held
                    above = goal.copy()
                    above[:3, 3] += (frame @ turn)[:3, :3] @ np.asarray(self.approach)
                    out.append((self._cost(env, goal, now), [above, goal]))
        return out

    def _cost(self, env, goal: np.ndarray, now: np.ndarray) -> float:
        turn = _angle(goal[:3, :3], now[:3, :3])
        if not self.nearest_first:
            return turn
        return 100 * float(np.linalg.norm(goal[:2, 3] - env.body_pose("robot0_base")[0][:2])) + turn

    def waypoints(self, env, planner: Planner) -> Iterator[Waypoint]:
        support = body_geoms(env, self.target) if self.target else []
        fingers = float(np.abs(env.scene.sim.data.qpos[planner.finger_ids]).mean())
        held = Held.measure(env, self.object)
        what = f"place {self.object!r}"
        (above, goal), _, detour = _choose(planner, self.candidates(env), (), fingers, what, held, support)
        route = detour or planner.transit(_eef(env), above, (), fingers, held)
        yield from _moves(route, CLOSED, self.speed)
        # Where the object itself should be, before and at the goal (the grasp may slip, the arm sag).
        in_hand = np.linalg.inv(held.site_in_object_inv)  # the gripper site in the object's frame
        object_above, object_goal = above @ np.linalg.inv(in_hand), goal @ np.linalg.inv(in_hand)
        hold = 10 if self.align else 0  # steps to settle before the object is measured
        yield Waypoint(above[:3, 3], above[:3, :3], CLOSED, tolerance=0.015, hold=hold, speed=self.speed)
        shift = np.zeros(3)
        for _ in range(self.align):  # servo the object (not the hand) onto its approach pose
            now = pose(*env.body_pose(self.object))
            in_hand = np.linalg.inv(now) @ _eef(env)
            error = object_above[:3, 3] - now[:3, 3]
            turn = _angle(object_above[:3, :3], now[:3, :3])
            if np.linalg.norm(error) < ALIGNED and turn < 0.01:
                break
            shift += 0.8 * error  # a little under-corrected: the arm is still settling
            above = object_above @ in_hand
            above[:3, 3] += shift
            yield Waypoint(above[:3, 3], above[:3, :3], CLOSED, tolerance=0.01, hold=hold, speed=0.006)
        goal = object_goal @ in_hand
        goal[:3, 3] += shift
        yield Waypoint(goal[:3, 3], goal[:3, :3], CLOSED, tolerance=self.tolerance, speed=self.final_speed)
        if self.release:
            yield Waypoint(goal[:3, 3], goal[:3, :3], OPEN, tolerance=0.02, hold=self.open_steps)
            way = -goal[:3, 2] if self.retreat_back else np.array([0.0, 0.0, 1.0])
            up = goal[:3, 3] + self.retreat * way
            yield Waypoint(up, goal[:3, :3], OPEN, tolerance=0.02, speed=self.speed)


@dataclass(frozen=True, eq=False)
class Via:
    """One pose of a :class:`Reach`: the gripper site's pose (4, 4) in the frame, and how to move there."""

    pose: np.ndarray
    gripper: float = OPEN
    speed: float = 0.012
    tolerance: float = 0.01
    hold: int = 0


@dataclass(frozen=True, eq=False)
class Reach:
    """Move the gripper site through ``vias`` in ``frame``'s frame (an object key; None: the world).

    The frame is read when the step starts. Each via may be turned by ``2 pi k / symmetry`` about the
    frame's z axis (all by the same turn), the hand by a half turn (or ``spin`` turns), and the hand
    tilted by one of ``tilts`` (radians, all vias alike) about its fingers' closing axis through a point
    ``pivot`` metres up its own axis from the gripper site (near the robot's base, where the folded arm
    cannot point the hand straight down, it leans); the least turned and tilted path that the arm
    reaches (from where it is, the controller's way) is used.
    """

    frame: str | None
    vias: tuple[Via, ...]
    symmetry: int = 1
    flip: bool = True
    tilts: tuple[float, ...] = (0.0,)
    pivot: float = 0.0
    spin: int = 2
    """With ``flip``: the hand is turned about its own axis by ``2 pi k / spin`` (2: the half turn; more where
    the hand's yaw does not matter, a fist pressing a round button)."""

    def _tilt(self, angle: float) -> np.ndarray:
        up = pose((0.0, 0.0, -self.pivot))
        return up @ pose(rot=_rot_x(angle)) @ np.linalg.inv(up)

    def waypoints(self, env, planner: Planner) -> Iterator[Waypoint]:
        frame, now = _world(env, self.frame), _eef(env)
        candidates = []
        for turn in _turns(self.symmetry):
            for flip in _turns(self.spin) if self.flip else [np.eye(4)]:
                for tilt in self.tilts:
                    path = [frame @ turn @ via.pose @ self._tilt(tilt) @ flip for via in self.vias]
                    cost = _angle(path[0][:3, :3], now[:3, :3]) + 2 * abs(tilt)
                    candidates.append((cost, path))
        for _, path in sorted(candidates, key=lambda c: c[0]):
            q, detour = planner.follow(now, path[0]), list[np.ndarray]()
            if q is None:  # not straight there: round, away from the robot's base
                detour, q = planner.detour(now, path[0])
            if q is not None and planner.clear_path(path, q=q)[0]:
                break
        else:
            raise PlanningError(f"reach in {self.frame!r}: no turn of the path is reachable by the arm")
        first = self.vias[0]
        for p in detour:
            yield Waypoint(p[:3, 3], p[:3, :3], first.gripper, tolerance=0.02, speed=first.speed)
        for via, target in zip(self.vias, path, strict=True):
            yield Waypoint(target[:3, 3], target[:3, :3], via.gripper, via.tolerance, via.hold, via.speed)


@dataclass(frozen=True, eq=False)
class Lift:
    """Move the gripper straight up (world z) to ``height`` metres above the table, keeping its grip."""

    height: float
    gripper: float | None = None
    speed: float = 0.012

    def waypoints(self, env, planner: Planner) -> Iterator[Waypoint]:
        pos, rot = env.eef_pose()
        grip = self.gripper
        if grip is None:
            grip = CLOSED if np.abs(env.scene.sim.data.qpos[planner.finger_ids]).mean() < 0.035 else OPEN
        table = env.workspace.center[2]
        yield Waypoint(np.array([pos[0], pos[1], table + self.height]), rot, grip, 0.02, speed=self.speed)


@dataclass(frozen=True, eq=False)
class Either:
    """The first of ``steps`` that can be planned (e.g. pull a drawer 0.2 m open, else 0.15 m)."""

    steps: tuple

    def waypoints(self, env, planner: Planner) -> Iterator[Waypoint]:
        errors = []
        for step in self.steps:
            waypoints = step.waypoints(env, planner)
            try:
                first = next(waypoints)
            except PlanningError as error:
                errors.append(str(error))
                continue
            except StopIteration:
                return
            yield first
            yield from waypoints
            return
        raise PlanningError("; ".join(errors))


Step = Pick | Place | Reach | Lift | Either


@dataclass(frozen=True, eq=False)
class Plan:
    """A task's expert as data: its steps in order, optionally only until ``done(env)`` holds."""

    steps: tuple[Step, ...]
    done: Callable | None = field(default=None)

    def __call__(self, env) -> Iterator[Waypoint]:
        """The expert: waypoints of every step, planned when the step starts."""
        planner = Planner(env)
        for i, step in enumerate(self.steps):
            planner.next_step = self.steps[i + 1] if i + 1 < len(self.steps) else None
            try:
                yield from step.waypoints(env, planner)
            except PlanningError as error:
                log.warning("expert of %s gives up: %s", env.task.config_name, error)
                pos, rot = env.eef_pose()  # hold still (a plan yields at least one waypoint)
                yield Waypoint(pos, rot, OPEN, tolerance=1.0)
                return


def plan_expert(*steps: Step) -> Plan:
    """A task's ``expert`` from its plan."""
    return Plan(tuple(steps))
