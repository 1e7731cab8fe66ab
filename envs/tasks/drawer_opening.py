"""DrawerOpening (SO(2)-equivariant RL, BulletArm): pull open the drawer of a small cabinet.

The cabinet (16 x 18 x 7 cm, fixed to the table: a mocap body) stands anywhere near the centre at any
yaw, placed so that its drawer can be pulled out within the workspace. The drawer (12 cm of travel) has a
fin-shaped handle on its front that the fingers clamp from the sides. Success: the drawer is out by at
least 6 cm.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from equirobot_envs.closed_loop import WORKSPACE, Scene, fmt
from equirobot_envs.experts import CLOSED, OPEN, Waypoint, top_down
from equirobot_envs.geometry import rot_z, wrap_angle, yaw_of
from equirobot_envs.registry import TaskSpec

CABINET_HALF = (0.08, 0.09, 0.035)
"""Half sizes of the cabinet: depth (local x, its front faces +x), width, height."""
DRAWER_HALF = (0.07, 0.08, 0.0225)
DRAWER_Z = 0.0325
TRAVEL = 0.12
HANDLE_HALF = (0.02, 0.006, 0.015)
"""The handle: a fin standing 4 cm out of the drawer front, 1.2 cm thick, 3 cm high."""
OPENED = 0.06
"""Drawer travel that counts as opened, metres."""
GRASP = np.array([CABINET_HALF[0] + 0.025, 0.0, 0.04])
"""Where the grip site clamps the handle, in the cabinet's frame with the drawer shut."""
PULL = 0.09
CENTRE_RANGE = 0.1
PULL_LIMIT = 0.18
"""The handle at full pull (``GRASP`` + ``PULL``) must stay this close to the centre in x and y."""


class DrawerOpeningScene(Scene):
    """A cabinet with one drawer."""

    object_bodies = ("cabinet", "drawer")

    def objects_xml(self) -> str:
        cx, cy, cz = CABINET_HALF
        dx, dy, dz = DRAWER_HALF
        hx, hy, hz = HANDLE_HALF
        return f"""
    <body name="cabinet" mocap="true" pos="0 0 0">
      <geom name="cabinet" type="box" pos="0 0 {cz}" size="{fmt(CABINET_HALF)}" rgba="0.55 0.6 0.7 1"
            group="1"/>
      <body name="drawer" pos="{cx - dx} 0 {DRAWER_Z}">
        <joint name="drawer" type="slide" axis="1 0 0" range="0 {TRAVEL}" damping="2"/>
        <geom name="drawer" type="box" size="{fmt([dx, dy, dz])}" mass="0.3" rgba="0.75 0.6 0.4 1" group="1"/>
        <geom name="handle" type="box" pos="{dx + hx} 0 0" size="{fmt([hx, hy, hz])}" mass="0.02"
              rgba="0.3 0.3 0.3 1" group="1" friction="1.5 0.005 0.0001"/>
      </body>
    </body>"""

    def extra_xml(self) -> str:
        return '<contact><exclude body1="cabinet" body2="drawer"/></contact>'

    def place(self, rng: np.random.Generator) -> None:
        for _ in range(1000):
            centre = rng.uniform(-CENTRE_RANGE, CENTRE_RANGE, 2)
            yaw = rng.uniform(0, 2 * np.pi)
            pulled = centre + (rot_z(yaw) @ (GRASP + [PULL, 0, 0]))[:2]
            if np.all(np.abs(pulled) <= PULL_LIMIT):
                break
        mocap = self.model.body("cabinet").mocapid[0]
        self.data.mocap_pos[mocap] = [*centre, 0.0]
        self.data.mocap_quat[mocap] = [np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]

    def drawer_travel(self) -> float:
        return float(self.data.qpos[self.model.jnt_qposadr[self.model.joint("drawer").id]])

    def is_success(self) -> bool:
        return self.drawer_travel() >= OPENED


def expert(env) -> Iterator[Waypoint]:
    """Come down on the handle with the fingers across it, clamp it, pull straight out."""
    centre, rot = env.body_pose("cabinet")
    yaw = yaw_of(rot)
    out = rot[:, 0]
    # Fingers open along the cabinet's width (yaw + pi/2); of the two equal yaws, the one nearer 0.
    grip = top_down(float(wrap_angle(2 * yaw) / 2))
    handle = centre + rot @ GRASP
    yield Waypoint(handle + [0, 0, 0.08], grip, OPEN, tolerance=0.01)
    yield Waypoint(handle, grip, OPEN, tolerance=0.006, speed=0.008)
    yield Waypoint(handle, grip, CLOSED, tolerance=0.01, hold=1)
    yield Waypoint(handle + PULL * out, grip, CLOSED, tolerance=0.01, speed=0.008)


VARIANTS = (
    TaskSpec(
        name="DrawerOpening",
        variant="",
        scene_class=DrawerOpeningScene,
        horizon=100,
        objects={"cabinet": "cabinet", "drawer": "drawer"},
        expert=expert,
        workspace=WORKSPACE,
        description=f"pull a cabinet's drawer out by {OPENED:.2f} m; cabinet near the centre, any yaw",
    ),
)
