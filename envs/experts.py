"""Scripted experts: waypoint policies on privileged object poses.

A task's expert is a generator that yields :class:`Waypoint` s. The generator runs lazily: the code
between two ``yield`` s runs only once the previous waypoint is reached, so it reads the object poses of
that moment (where the cube really is after the grasp, not where it was at reset). The
:class:`ScriptedExpert` turns waypoints into actions in either control mode by moving a commanded pose
toward the waypoint at a bounded speed, which gives smooth demonstrations.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from equirobot_envs.features import control_mode
from equirobot_envs.geometry import rot_z, wrap_angle, yaw_of

OPEN, CLOSED = -1.0, 1.0
# Gripper-site orientation pointing down with the fingers opening along world y (the Panda's home).
DOWN = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])


@dataclass
class Waypoint:
    """A target pose of the gripper site, the gripper command, and when it counts as reached."""

    pos: np.ndarray
    rot: np.ndarray
    gripper: float
    tolerance: float = 0.01
    """Reached when the gripper site is within this distance (metres) of ``pos``..."""
    hold: int = 0
    """...and then this many more steps have passed (to let the gripper close, a nut settle)."""
    speed: float = 0.012
    """Top speed of the commanded pose, metres per step at 20 steps per second (envs stepping at another
    rate scale it by their ``expert_speed_scale``)."""


def top_down(yaw: float) -> np.ndarray:
    """Gripper pointing down, fingers opening along the horizontal direction at angle ``yaw + pi/2``."""
    return rot_z(yaw) @ DOWN


def grasp_yaw(object_rot: np.ndarray, symmetry: int, offset: float = 0.0) -> float:
    """Gripper yaw to grasp an object whose shape repeats every ``2 pi / symmetry`` of yaw.

    Of the equivalent yaws ``object_yaw + offset + k 2pi/symmetry`` it picks the one closest to the
    Panda's home yaw, so the wrist turns as little as possible.
    """
    yaw = yaw_of(object_rot) + offset
    return float(wrap_angle(yaw * symmetry) / symmetry)


class ScriptedExpert:
    """Follows a task's waypoints; ``act`` returns an action in the env's control mode.

    ``act`` reads privileged state from the env (``env.unwrapped``), not the observation argument. In a
    control mode of whole motions (``ControlMode.primitive``: pick_place) each waypoint is one action
    (``env.pose_to_action`` of it), and the plan advances by one waypoint per step; the env's own
    primitive does the moving.
    """

    def __init__(self, env, max_turn: float | None = None):
        self.env = env.unwrapped
        # Radians per step and the factor on waypoint speeds, as the env's control rate wants them.
        self.max_turn = self.env.expert_max_turn if max_turn is None else max_turn
        self.speed_scale = self.env.expert_speed_scale
        self.primitive = control_mode(self.env.control).primitive
        self.done = False

    def reset(self) -> None:
        self._plan: Iterator[Waypoint] = self.env.task.expert(self.env)
        self._cmd_pos, self._cmd_rot = self.env.eef_pose()
        self._gripper = OPEN
        self._waypoint: Waypoint | None = next(self._plan)
        self._held = 0
        self._acted = False
        self.done = False

    def act(self, obs=None) -> np.ndarray:
        if self.primitive:
            return self._act_primitive()
        wp = self._waypoint
        if wp is not None and self._reached(wp):
            self._held += 1
            if self._held > wp.hold:
                self._held = 0
                wp = self._waypoint = next(self._plan, None)
        if wp is None:  # plan finished: hold still
            self.done = True
        else:
            self._advance(wp)
        return self.env.pose_to_action(self._cmd_pos, self._cmd_rot, self._gripper)

    def _act_primitive(self) -> np.ndarray:
        """The next waypoint as one action (the previous one was executed by the last step).

        Once the plan has ended, its last waypoint again.
        """
        if self._acted:
            following = next(self._plan, None)
            if following is None:
                self.done = True
            else:
                self._waypoint = following
        self._acted = True
        wp = self._waypoint
        assert wp is not None  # a plan yields at least one waypoint
        return self.env.pose_to_action(wp.pos, wp.rot, wp.gripper)

    def _reached(self, wp: Waypoint) -> bool:
        at_cmd = np.allclose(self._cmd_pos, wp.pos) and np.allclose(self._cmd_rot, wp.rot, atol=1e-6)
        return at_cmd and bool(np.linalg.norm(self.env.eef_pose()[0] - wp.pos) < wp.tolerance)

    def _advance(self, wp: Waypoint) -> None:
        self._gripper = wp.gripper
        step, speed = wp.pos - self._cmd_pos, wp.speed * self.speed_scale
        dist = np.linalg.norm(step)
        self._cmd_pos = wp.pos.copy() if dist <= speed else self._cmd_pos + step * (speed / dist)
        relative = Rotation.from_matrix(wp.rot @ self._cmd_rot.T)
        angle = relative.magnitude()
        if angle <= self.max_turn:
            self._cmd_rot = wp.rot.copy()
        else:
            ends = Rotation.from_matrix(np.stack([self._cmd_rot, wp.rot]))
            self._cmd_rot = Slerp([0.0, 1.0], ends)([self.max_turn / angle]).as_matrix()[0]
