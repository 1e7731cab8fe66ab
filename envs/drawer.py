"""A drawer cabinet and a mug like MimicGen's (fact sheet, sections 7 and 8), and the drawer's plan steps.

The cabinet (``DrawerObject``'s layout, root frame): side walls at x = +-0.11, a back wall, a floor box
and a roof, front posts at y = -0.1; the drawer ``<name>_drawer_link`` at (0, -0.01, 0.076) slides on
``<name>_goal_slidey`` along +y over [-1, 0] (it opens toward -y), with its bottom
``<name>_drawer_bottom`` (a 0.16 x 0.18 m plate), low tray walls, a front panel just outside the
cabinet and a handle: two standoffs and a bar across x at y = -0.16. The cabinet is a fixture: no joint
of its own, its pose written per episode. (Its object name must not be ``drawer``: robosuite would take
``drawer_bottom`` for an already prefixed name.)
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from robosuite.models.objects import CompositeObject, MujocoXMLObject

from equirobot_envs.experts import CLOSED, OPEN, top_down
from equirobot_envs.planner import Either, Reach, Via, pose

LINK = (0.0, -0.01, 0.076)  # the drawer's body in the cabinet's frame
WOOD = 'rgba="0.55 0.38 0.22 1" group="0" density="500" friction="1 0.005 0.0001"'
METAL = 'rgba="0.7 0.7 0.72 1" group="0" density="500" friction="1 0.005 0.0001"'


@dataclass(frozen=True)
class DrawerShape:
    """The cabinet's layout: ``extend`` metres longer toward -y, its drawer's tray walls ``wall`` m high.

    The extension lengthens the side walls, floor and roof (their backs stay), moves the front posts, and
    likewise lengthens the drawer's bottom and tray sides and moves its front panel and handle.
    ``wall``: the tray walls' top above the bottom plate's top.
    """

    extend: float = 0.0
    wall: float = 0.032

    def __post_init__(self) -> None:
        if self.extend < 0 or self.wall <= 0:
            raise ValueError(f"DrawerShape: extend must be >= 0 and wall > 0, not {self}")

    @property
    def bar(self) -> tuple[float, float, float]:
        """The handle bar's axis centre in the drawer's frame."""
        return (0.0, -0.16 - self.extend, 0.04)

    @property
    def bottom(self) -> tuple[float, float, float]:
        """The bottom plate's centre in the drawer's frame."""
        return (0.0, 0.0 - self.extend / 2, -0.04)

    @property
    def bottom_half(self) -> tuple[float, float, float]:
        """The bottom plate's half-size."""
        return (0.08, 0.09 + self.extend / 2, 0.008)


STANDARD = DrawerShape()
"""MimicGen's ``DrawerObject`` (HammerCleanup, MugCleanup)."""
LONG = DrawerShape(extend=0.063, wall=0.016)
"""MimicGen's ``LongDrawerObject`` (CoffeePreparation): side walls 0.287 m long, front posts at y = -0.163,
the drawer's bottom 0.243 m long, its handle bar at y = -0.223 and tray walls 1.6 cm high."""
BAR, BOTTOM, BOTTOM_HALF = STANDARD.bar, STANDARD.bottom, STANDARD.bottom_half


def _box(name: str, pos, size, style: str = WOOD) -> str:
    p, s = " ".join(f"{v:.5g}" for v in pos), " ".join(f"{v:.5g}" for v in size)
    return f'<geom name="{name}" type="box" pos="{p}" size="{s}" {style}/>'


def _capsule(name: str, start, end, radius: float = 0.009) -> str:
    fromto = " ".join(f"{v:.5g}" for v in (*start, *end))
    return f'<geom name="{name}" type="capsule" fromto="{fromto}" size="{radius}" {METAL}/>'


def drawer_xml(shape: DrawerShape = STANDARD) -> str:
    """The cabinet's MJCF (robosuite's object layout: a body named ``object`` and the three sites)."""
    e, mid = shape.extend, 0.0 - shape.extend / 2  # the extension, and the centre shift of what it lengthens
    cabinet = [
        *(
            _box(f"side{i}", (s * 0.11, mid, 0.065), (0.008, 0.112 + e / 2, 0.064))
            for i, s in enumerate((-1, 1))
        ),
        _box("back", (0, 0.092, 0.065), (0.102, 0.008, 0.064)),
        _box("floor", (0, -0.008 + mid, 0.004), (0.102, 0.102 + e / 2, 0.014)),
        _box("roof", (0, mid, 0.121), (0.118, 0.112 + e / 2, 0.008)),
        *(
            _box(f"post{i}", (s * 0.102, -0.1 - e, 0.065), (0.008, 0.008, 0.048))
            for i, s in enumerate((-1, 1))
        ),
    ]
    bx, by, bz = shape.bar
    bottom, (hx, hy, hz) = shape.bottom, shape.bottom_half
    low, top = bottom[2], bottom[2] + hz + shape.wall  # the tray walls stand from the plate's mid-plane
    wall_z, wall_half = (low + top) / 2, (top - low) / 2
    front = -0.11 - e
    drawer = [
        _box("drawer_bottom", bottom, (hx, hy, hz)),
        *(
            _box(f"tray_side{i}", (s * 0.08, mid, wall_z), (0.008, 0.09 + e / 2, wall_half))
            for i, s in enumerate((-1, 1))
        ),
        _box("tray_back", (0, 0.09, wall_z), (0.08, 0.008, wall_half)),
        _box("front", (0, front, -0.005), (0.095, 0.008, 0.05)),
        *(_capsule(f"standoff{i}", (x, front - 0.008, bz), (x, by, bz)) for i, x in enumerate((-0.04, 0.04))),
        _capsule("bar", (bx - 0.05, by, bz), (bx + 0.05, by, bz)),
    ]
    link = " ".join(f"{v:.5g}" for v in LINK)
    return f"""<mujoco model="drawer">
  <worldbody>
    <body>
      <body name="object">
        {" ".join(cabinet)}
        <body name="drawer_link" pos="{link}">
          <joint name="goal_slidey" type="slide" axis="0 1 0" limited="true" range="-1 0" damping="100"/>
          {" ".join(drawer)}
        </body>
      </body>
      <site rgba="0 0 0 0" size="0.005" pos="0 0 -0.065" name="bottom_site"/>
      <site rgba="0 0 0 0" size="0.005" pos="0 0 0.065" name="top_site"/>
      <site rgba="0 0 0 0" size="0.005" pos="0.106 0.106 0" name="horizontal_radius_site"/>
    </body>
  </worldbody>
</mujoco>
"""


def cached_xml(kind: str, xml: str) -> str:
    """Write generated MJCF to a per-user cache file (robosuite's XML objects load files) and name it."""
    folder = Path(tempfile.gettempdir()) / "equirobot_assets"
    folder.mkdir(exist_ok=True)
    path = folder / f"{kind}_{hashlib.sha1(xml.encode()).hexdigest()[:12]}.xml"
    if not path.exists():
        tmp = path.with_suffix(f".{np.random.default_rng().integers(1 << 30)}.tmp")
        tmp.write_text(xml)
        tmp.replace(path)
    return str(path)


def make_drawer(name: str = "cabinet", shape: DrawerShape = STANDARD) -> MujocoXMLObject:
    """The cabinet as a fixture (no free joint): bodies ``<name>_main``, ``<name>_drawer_link``."""
    return MujocoXMLObject(cached_xml("drawer", drawer_xml(shape)), name=name, joints=None, obj_type="all")


def make_mug(name: str = "mug", scale: float = 0.8) -> CompositeObject:
    """A mug: a floor disc, a wall of 16 boxes and a handle toward +x; ShapeNet 3143a4ac's size at ``scale``.

    At scale 1: 0.08 m tall, 0.0353 m in radius, the handle reaching 0.0441 m from the axis.
    """
    height, radius, reach, wall = 0.08 * scale, 0.0353 * scale, 0.0441 * scale, 0.003
    n, mid = 16, radius - wall / 2
    types: list[str] = ["cylinder"]
    locs: list[tuple[float, ...]] = [(0.0, 0.0, -height / 2 + 0.003)]
    sizes: list[tuple[float, ...]] = [(radius - wall, 0.003)]
    quats: list[tuple[float, ...] | None] = [None]
    for i in range(n):
        a = 2 * np.pi * i / n
        types.append("box")
        locs.append((mid * np.cos(a), mid * np.sin(a), 0.0))
        sizes.append((wall / 2, mid * np.tan(np.pi / n) * 1.1, height / 2))
        quats.append((np.cos(a / 2), 0, 0, np.sin(a / 2)))
    grip = (reach - radius) / 2
    for z in (-height / 4, height / 4):  # the handle's two arms and its upright
        types.append("box")
        locs.append((radius + grip, 0.0, z))
        sizes.append((grip, 0.004, 0.004))
        quats.append(None)
    types.append("box")
    locs.append((reach - 0.004, 0.0, 0.0))
    sizes.append((0.004, 0.004, height / 4 + 0.004))
    quats.append(None)
    return CompositeObject(
        name=name,
        total_size=(reach, radius, height / 2),
        geom_types=types,
        geom_locations=locs,
        geom_sizes=sizes,
        geom_quats=quats,
        geom_rgbas=[(0.85, 0.78, 0.62, 1)] * len(types),
        geom_frictions=[(1.0, 1.0, 1.0)] * len(types),
        density=100.0,
        solref=(0.001, 1.0),
        solimp=(0.998, 0.998, 0.001),
        locations_relative_to_center=True,
    )


# The fist's place between the handle bar and the front panel, from the bar's axis: in the middle of the gap
# between the bar (radius 0.009) and the panel (0.042 from the bar's axis), just below the bar's axis; the
# fist (0.022 m thick) keeps 5 mm from either.
HOOK = np.array([0.0, 0.0255, -0.008])
PULL_TILTS = (0.0, 0.25, -0.25, 0.5, -0.5)  # radians the pulling fist may lean (toward or from the robot)
FIST = top_down(-np.pi / 2)  # fingers closed across the drawer's x: the hand's thin side faces along y


def open_drawer(
    cabinet: str, pulls: tuple[float, ...] = (0.2, 0.17, 0.14), shape: DrawerShape = STANDARD
) -> Either:
    """Pull the drawer open by the first of ``pulls`` (metres) that the arm reaches."""
    return Either(tuple(_pull_drawer(cabinet, pull, shape) for pull in pulls))


def _pull_drawer(cabinet: str, pull: float, shape: DrawerShape) -> Reach:
    """Lower a closed fist between the front panel and the handle bar, pull the drawer ``pull`` m open."""
    bar = np.array(LINK) + shape.bar
    hook = bar + HOOK
    out = hook - [0, pull, 0]
    return Reach(
        cabinet,
        (
            Via(pose(hook + [0, 0, 0.08], FIST), CLOSED, tolerance=0.02),
            Via(pose(hook, FIST), CLOSED, speed=0.006, tolerance=0.008, hold=3),
            Via(pose(out, FIST), CLOSED, speed=0.008, tolerance=0.02),
            # Up out of the gap, then back over the drawer: away from the robot's base, where the arm
            # would fold up.
            Via(pose(out + [0, 0, 0.05], FIST), OPEN, tolerance=0.02),
            Via(pose(out + [0, 0.05, 0.12], FIST), OPEN, tolerance=0.03),
        ),
        tilts=PULL_TILTS,
        pivot=0.008,  # the fist leans about its middle in the gap (between the bar's and the panel's tops)
    )


def close_drawer(drawer_link: str, push: float = 0.22, shape: DrawerShape = STANDARD) -> Either:
    """Push the drawer shut with a closed fist (in the drawer's frame).

    On the handle bar from in front of it, else (an open drawer's front near the robot's base, where the
    arm cannot reach in front of the bar from above) on the front panel from the gap behind the bar,
    where the pull left the fist.
    """
    front = np.array(shape.bar) + [0, -0.009 - 0.016, 0.0]
    gap = np.array(shape.bar) + HOOK
    return Either(
        (
            _push_drawer(drawer_link, front, push, 0.08, (0.0,)),
            # the fist meets the panel after as far as it meets the bar from in front (5 mm)
            _push_drawer(drawer_link, gap, push, 0.05, PULL_TILTS),
        )
    )


def _push_drawer(drawer_link: str, at: np.ndarray, push: float, above: float, tilts) -> Reach:
    """Lower a closed fist ``above`` metres to ``at`` (drawer frame), push it ``push`` toward +y, lift it."""
    shut = at + [0, push, 0]
    return Reach(
        drawer_link,
        (
            Via(pose(at + [0, 0, above], FIST), CLOSED, tolerance=0.02),
            Via(pose(at, FIST), CLOSED, speed=0.008, tolerance=0.01),
            Via(pose(shut, FIST), CLOSED, speed=0.008, tolerance=0.03),
            Via(pose(shut - [0, 0.03, -0.08], FIST), OPEN, tolerance=0.03),
        ),
        tilts=tilts,
        pivot=0.008,
    )


def drawer_open(env, cabinet: str = "cabinet") -> bool:
    """MimicGen's ``open`` signal: drawer out by more than 0.10 m and the hand more than 0.24 m from it."""
    scene = getattr(env, "scene", env)
    link = scene.sim.data.body_xpos[scene.sim.model.body_name2id(f"{cabinet}_drawer_link")]
    far = np.linalg.norm(env.eef_pose()[0] - link) > 0.24 if hasattr(env, "eef_pose") else True
    return drawer_qpos(env, cabinet) < -0.10 and bool(far)


def drawer_qpos(env, cabinet: str = "cabinet") -> float:
    """The drawer's slide (0 closed, negative open)."""
    scene = getattr(env, "scene", env)
    return float(scene.sim.data.get_joint_qpos(f"{cabinet}_goal_slidey"))
