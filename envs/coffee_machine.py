"""Look-alikes of MimicGen's coffee machine and coffee pod, built from primitives (its meshes are licensed).

Sizes are the fact sheet's (section 5), in the machine's frame (origin 0.1105 m above its bottom, the
front toward +y): a body block, a base plate in front (``<name>_base_g0``), an arm holding the pod holder
(a cup of 16 wall boxes around a floor disc), and above the holder a lid on a hinge along x at its back
(``<name>_lid_hinge``, 0 closed .. 2 pi / 3 open). Coffee's machine also carries a mug on its base plate.
The holder's inside is 1.2 mm wider in radius than MimicGen's (0.0262 m against 0.025 m): the pod is a
cylinder here, not a tapered mesh, and would jam otherwise.

The MJCF is generated and written to a per-user cache folder, from which robosuite's
``MujocoXMLObject`` loads it (it only reads files).
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import numpy as np
from robosuite.models.objects import CompositeObject, MujocoXMLObject

HALF = (0.0865, 0.1505, 0.1105)  # overall half-size of the machine
HOLDER = (0.0, 0.1061, 0.0635)  # the pod holder's centre
HOLDER_OUTER, HOLDER_INNER, HOLDER_HALF_HEIGHT = 0.0295, 0.0262, 0.028
FLOOR_DROP = 0.021  # the holder's floor disc centre below the holder's centre
HINGE = (0.0, 0.0605, 0.106)  # the lid's hinge; the lid reaches 0.088 m forward of it
LID_HALF = (0.0295, 0.044, 0.0095)
LID_OPEN = 2 * np.pi / 3
POD_HALF_HEIGHT, POD_RADIUS = 0.0231, 0.0243
MACHINE = 'density="1000" friction="0.95 0.3 0.1" group="0"'


def _box(name: str, pos, size, rgba: str, extra: str = "") -> str:
    p, s = " ".join(f"{v:.5g}" for v in pos), " ".join(f"{v:.5g}" for v in size)
    return f'<geom name="{name}" type="box" pos="{p}" size="{s}" rgba="{rgba}" {MACHINE} {extra}/>'


def machine_xml(mug: bool) -> str:
    """The machine's MJCF (robosuite's object layout: a body named ``object`` and the three sites)."""
    grey, dark, steel = "0.55 0.55 0.58 1", "0.15 0.15 0.16 1", "0.75 0.75 0.78 1"
    geoms = [
        _box("body", (0, -0.05, 0), (0.0865, 0.1005, 0.1105), dark),
        _box("base_g0", (0, 0.1005, -0.1055), (0.042, 0.05, 0.005), grey),
        _box("arm", (0, 0.06355, 0.0865), (0.01, 0.01305, 0.005), grey),
    ]
    if mug:  # Coffee's mug, fixed to the base plate: a cup and a handle toward -x
        mug_pos = (0, 0.1061, -0.0755)
        geoms.append(
            '<geom name="mug" type="cylinder" pos="0 0.1061 -0.0755" size="0.03 0.025" '
            f'rgba="0.9 0.9 0.85 1" {MACHINE}/>'
        )
        geoms.append(
            _box("mug_handle", (mug_pos[0] - 0.038, mug_pos[1], mug_pos[2]), (0.008, 0.004, 0.015), steel)
        )
    walls = []
    radius, n = (HOLDER_OUTER + HOLDER_INNER) / 2, 16
    for i in range(n):
        angle = 2 * np.pi * i / n
        pos = (radius * np.cos(angle), radius * np.sin(angle), 0.0)
        quat = f"{np.cos(angle / 2):.6g} 0 0 {np.sin(angle / 2):.6g}"
        size = ((HOLDER_OUTER - HOLDER_INNER) / 2, radius * np.tan(np.pi / n) * 1.08, HOLDER_HALF_HEIGHT)
        walls.append(_box(f"holder_wall{i}", pos, size, steel, f'quat="{quat}"'))
    holder = " ".join(f"{v:.5g}" for v in HOLDER)
    hinge = " ".join(f"{v:.5g}" for v in HINGE)
    lid = _box("lid", (0, LID_HALF[1], 0), LID_HALF, grey)
    return f"""<mujoco model="coffee_machine">
  <worldbody>
    <body>
      <body name="object">
        {" ".join(geoms)}
        <body name="pod_holder" pos="{holder}">
          <geom name="holder_floor" type="cylinder" pos="0 0 {-FLOOR_DROP}" size="{HOLDER_INNER} 0.005"
                rgba="{steel}" {MACHINE}/>
          {" ".join(walls)}
        </body>
        <body name="lid" pos="{hinge}">
          <joint name="hinge" type="hinge" axis="1 0 0" limited="true" range="0 {LID_OPEN:.6f}"
                 damping="0.005"/>
          {lid}
        </body>
      </body>
      <site rgba="0 0 0 0" size="0.005" pos="0 0 {-HALF[2]}" name="bottom_site"/>
      <site rgba="0 0 0 0" size="0.005" pos="0 0 {HALF[2]}" name="top_site"/>
      <site rgba="0 0 0 0" size="0.005" pos="{HALF[0]} {HALF[1]} 0" name="horizontal_radius_site"/>
    </body>
  </worldbody>
</mujoco>
"""


def _cached(xml: str) -> str:
    folder = Path(tempfile.gettempdir()) / "equirobot_assets"
    folder.mkdir(exist_ok=True)
    path = folder / f"coffee_machine_{hashlib.sha1(xml.encode()).hexdigest()[:12]}.xml"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_text(xml)
        tmp.replace(path)
    return str(path)


def make_coffee_machine(name: str = "coffee_machine", mug: bool = True) -> MujocoXMLObject:
    """The movable machine (free joint), with bodies ``<name>_pod_holder``, ``<name>_lid``."""
    return MujocoXMLObject(
        _cached(machine_xml(mug)),
        name=name,
        joints=[dict(type="free", damping="0.0005")],
        obj_type="all",
        duplicate_collision_geoms=True,
    )


def make_pod(name: str = "coffee_pod") -> CompositeObject:
    """A coffee pod: a short cylinder on a narrower foot (so that it drops into the holder)."""
    foot = 0.006
    return CompositeObject(
        name=name,
        total_size=(POD_RADIUS, POD_RADIUS, POD_HALF_HEIGHT),
        geom_types=["cylinder", "cylinder"],
        geom_locations=[(0, 0, foot / 2), (0, 0, -POD_HALF_HEIGHT + foot / 2)],
        geom_sizes=[(POD_RADIUS, POD_HALF_HEIGHT - foot / 2), (POD_RADIUS - 0.004, foot / 2)],
        geom_rgbas=[(0.55, 0.35, 0.2, 1), (0.45, 0.28, 0.15, 1)],
        geom_frictions=[(1.0, 1.0, 1.0)] * 2,
        geom_condims=[4, 4],
        density=100.0,
        solref=(0.001, 1.0),
        solimp=(0.998, 0.998, 0.001),
        locations_relative_to_center=True,
    )
