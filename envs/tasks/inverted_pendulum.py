"""InvertedPendulum with a flip asymmetry: balance a pole on a cart whose motor is stronger one way.

Gymnasium's ``InvertedPendulum-v5`` (a cart on a 2 m rail, a 0.6 m pole, reward 1 per step while the
pole is within 0.2 rad of upright, 1000 steps) with one change to the model: the stock pole leans 1 mm
towards +x (``fromto="0 0 0 0.001 0 0.6"``), which is removed so that the mirror x -> -x is exact.

Symmetry (C2): the mirror through the rail's centre negates every observation component (cart
position, pole angle, their velocities) and the motor force. The cart motor is the asymmetric actuator.
"""

from __future__ import annotations

from pathlib import Path

from gymnasium.envs.mujoco import inverted_pendulum_v5

from equirobot_envs.flip_control import FlipControl, Reflections, control_variants


class InvertedPendulum(FlipControl, inverted_pendulum_v5.InvertedPendulumEnv):
    """``InvertedPendulum-v5`` with a symmetric pole and an asymmetric cart motor; see the module."""

    reflections = Reflections("C2", state=((-1.0, -1.0, -1.0, -1.0),), action=((-1.0,),))
    stock_model = Path(inverted_pendulum_v5.__file__).parent / "assets" / "inverted_pendulum.xml"
    patches = {'fromto="0 0 0 0.001 0 0.6"': 'fromto="0 0 0 0 0 0.6"'}


VARIANTS = control_variants(
    InvertedPendulum,
    1000,
    "balance a pole on a cart for 1000 steps; the cart motor's gain is 1 + delta one way "
    "and 1 - delta the other",
)
