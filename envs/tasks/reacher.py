"""Reacher with a flip asymmetry: a two-link planar arm reaching a target, its shoulder stronger one way.

Gymnasium's ``Reacher-v5`` (reward: minus the fingertip's distance to the target and the squared
torques; 50 steps), unchanged: its arena, links and target range are symmetric about both axes. (Its
start is not: the arm starts near angle 0, pointing along +x, so the x -> -x mirror maps starts onto
states the reset never draws; the dynamics and the reward are symmetric all the same.)

Symmetry (D2), two mirrors about the shoulder and their product (the half turn):

* y -> -y: both joint angles change sign, so do the target's and the fingertip offset's y and both
  joint speeds; the cosines and the x coordinates stay;
* x -> -x: the shoulder angle q0 becomes pi - q0 (its cosine changes sign, its sine stays), the elbow
  angle changes sign, so do the x coordinates and both joint speeds.

Both torques change sign under either mirror. The shoulder motor is the asymmetric actuator.
"""

from __future__ import annotations

import numpy as np
from gymnasium.envs.mujoco import reacher_v5

from equirobot_envs.flip_control import FlipControl, Reflections, control_variants

# observation: cos q0, cos q1, sin q0, sin q1, target x, target y, dq0, dq1, (fingertip - target) x, y
MIRROR_Y = (1.0, 1.0, -1.0, -1.0, 1.0, -1.0, -1.0, -1.0, 1.0, -1.0)
SUCCESS_DISTANCE = 0.02
MIRROR_X = (-1.0, 1.0, 1.0, -1.0, -1.0, 1.0, -1.0, -1.0, -1.0, 1.0)


class Reacher(FlipControl, reacher_v5.ReacherEnv):
    """``Reacher-v5`` with an asymmetric shoulder motor; see the module docstring."""

    reflections = Reflections("D2", state=(MIRROR_Y, MIRROR_X), action=((-1.0, -1.0), (-1.0, -1.0)))

    def succeeded(self, obs: np.ndarray) -> bool:
        """The fingertip within 2 cm of the target (the last two observation entries are their offset)."""
        return bool(np.linalg.norm(obs[-2:]) < SUCCESS_DISTANCE)

    def mirror_qpos(self, qpos: np.ndarray, generator: int) -> np.ndarray:
        q0, q1, tx, ty = qpos
        if generator == 0:
            return np.array([-q0, -q1, tx, -ty])
        return np.array([np.pi - q0, -q1, -tx, ty])

    def mirror_qvel(self, qvel: np.ndarray, generator: int) -> np.ndarray:
        d0, d1, vx, vy = qvel
        if generator == 0:
            return np.array([-d0, -d1, vx, -vy])
        return np.array([-d0, -d1, -vx, vy])


VARIANTS = control_variants(
    Reacher,
    50,
    "bring a two-link arm's fingertip to a target (success: within 2 cm at the end); the "
    "shoulder motor is flip-asymmetric",
)
