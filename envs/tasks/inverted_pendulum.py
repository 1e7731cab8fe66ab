"""InvertedPendulum with a flip asymmetry: balance a pole on a cart whose motor is stronger one way.

Gymnasium's ``InvertedPendulum-v5`` (a cart on a 2 m rail, a 0.6 m pole, reward 1 per step while the
pole is within 0.2 rad of upright, 1000 steps) with one change to the model: the stock pole leans 1 mm
towards +x (``fromto="0 0 0 0.001 0 0.6"``), which is removed so that the mirror x -> -x is exact.

Symmetry (C2): the mirror through the rail's centre negates every observation component (cart
position, pole angle, their velocities) and the motor force. The cart motor is the asymmetric actuator.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gymnasium.envs.mujoco import inverted_pendulum_v5

from equirobot_envs.flip_control import FlipControl, Reflections, patched_model

STOCK = Path(inverted_pendulum_v5.__file__).parent / "assets" / "inverted_pendulum.xml"


class InvertedPendulum(FlipControl, inverted_pendulum_v5.InvertedPendulumEnv):
    """``InvertedPendulum-v5`` with a symmetric pole and an asymmetric cart motor; see the module."""

    reflections = Reflections("C2", state=((-1.0, -1.0, -1.0, -1.0),), action=((-1.0,),))

    def __init__(self, asymmetry: float = 0.0, **kwargs):
        path = patched_model(STOCK, {'fromto="0 0 0 0.001 0 0.6"': 'fromto="0 0 0 0 0 0.6"'})
        try:
            super().__init__(xml_file=path, **kwargs)
        finally:
            Path(path).unlink()
        self._init_flip(asymmetry)

    def step(self, action):
        return super().step(self.applied(action))

    def mirror_qpos(self, qpos: np.ndarray, generator: int) -> np.ndarray:
        return -qpos
