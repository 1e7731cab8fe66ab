"""InvertedDoublePendulum with a flip asymmetry: balance two linked poles on a cart with a lopsided motor.

Gymnasium's ``InvertedDoublePendulum-v5`` (reward: alive bonus minus the tip's distance from upright and
the joint speeds, ended when the tip drops below 1 m; 1000 steps) with one change to the model: the
stock gravity has a 1e-5 m/s^2 component along +x (``gravity="1e-5 0 -9.81"``), removed so that the
mirror x -> -x is exact.

Symmetry (C2): the mirror through the rail's centre negates the cart position, the sines of both pole
angles, all three velocities, the rail's constraint force and the motor force, and keeps the cosines.
The cart motor is the asymmetric actuator.
"""

from __future__ import annotations

from pathlib import Path

from gymnasium.envs.mujoco import inverted_double_pendulum_v5

from equirobot_envs.flip_control import FlipControl, Reflections, control_variants

# observation: x, sin q1, sin q2, cos q1, cos q2, dx, dq1, dq2, constraint force on the slider
MIRROR = (-1.0, -1.0, -1.0, 1.0, 1.0, -1.0, -1.0, -1.0, -1.0)


class InvertedDoublePendulum(FlipControl, inverted_double_pendulum_v5.InvertedDoublePendulumEnv):
    """``InvertedDoublePendulum-v5`` without the sideways gravity, with an asymmetric cart motor."""

    reflections = Reflections("C2", state=(MIRROR,), action=((-1.0,),))
    stock_model = (
        Path(inverted_double_pendulum_v5.__file__).parent / "assets" / "inverted_double_pendulum.xml"
    )
    patches = {'gravity="1e-5 0 -9.81"': 'gravity="0 0 -9.81"'}


VARIANTS = control_variants(
    InvertedDoublePendulum,
    1000,
    "balance two linked poles on a cart for 1000 steps; the cart motor is flip-asymmetric",
)
