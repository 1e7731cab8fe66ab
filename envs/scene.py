"""The robosuite side of a task: builds the MuJoCo scene with the cameras equirobot needs.

Every task's robosuite environment class mixes in :class:`SceneMixin`, which adds the top-down
orthographic heightmap camera over the workspace and MimicGen's wide ``agentview_full`` camera
(optionally swapped with ``agentview``, as MimicGen's D1/D2 variants of several tasks do).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

import numpy as np

from equirobot_envs.geometry import Workspace
from equirobot_envs.observations import HEIGHTMAP_CAMERA

if TYPE_CHECKING:  # what the mixin is mixed into (its model, sim, _load_model); robosuite is untyped
    from robosuite.environments.manipulation.manipulation_env import ManipulationEnv as _MixedInto
else:
    _MixedInto = object

# MimicGen's wide view of the table (fact sheet, section 0), wxyz quaternion.
AGENTVIEW_FULL_POSE = ((0.75308, 0.0, 1.51947), (0.64324, 0.29367, 0.29367, 0.64324))
HEIGHTMAP_CAMERA_HEIGHT = 1.0  # metres above the table top


def xml_floats(values) -> str:
    """Numbers as an MJCF attribute string."""
    return " ".join(f"{v:.6g}" for v in values)


class SceneMixin(_MixedInto):
    """Adds equirobot's cameras to a robosuite ``ManipulationEnv`` subclass's model."""

    def __init__(
        self, *, workspace: Workspace, agentview_full: bool = False, swap_agentview: bool = False, **kwargs
    ):
        self.workspace = workspace
        self.agentview_full = agentview_full or swap_agentview
        self.swap_agentview = swap_agentview
        super().__init__(**kwargs)

    def _load_model(self) -> None:
        super()._load_model()
        worldbody = self.model.worldbody
        cameras = {cam.get("name"): cam for cam in worldbody.iter("camera")}
        cx, cy, cz = self.workspace.center
        ET.SubElement(
            worldbody,
            "camera",
            name=HEIGHTMAP_CAMERA,
            pos=xml_floats((cx, cy, cz + HEIGHTMAP_CAMERA_HEIGHT)),
            quat="1 0 0 0",  # looking down, image right = +x, image up = +y
            projection="orthographic",
            fovy=xml_floats([2 * self.workspace.half_size]),  # for orthographic cameras: the extent in metres
        )
        if self.agentview_full:
            pos, quat = AGENTVIEW_FULL_POSE
            agentview = cameras["agentview"]
            full = ET.SubElement(
                worldbody, "camera", name="agentview_full", pos=xml_floats(pos), quat=xml_floats(quat)
            )
            if self.swap_agentview:
                for key in ("pos", "quat"):
                    value = agentview.get(key)
                    agentview.set(key, full.get(key))
                    full.set(key, value)

    def fixture_poses(self) -> dict[str, list[float]]:
        """Poses [x, y, z, qw, qx, qy, qz] of fixed bodies this episode moved (not in the MuJoCo state)."""
        return {}

    def set_fixture_poses(self, poses: dict[str, list[float]]) -> None:
        """Restore :meth:`fixture_poses` (before replaying stored states)."""
        for body, pose in poses.items():
            i = self.sim.model.body_name2id(body)
            self.sim.model.body_pos[i], self.sim.model.body_quat[i] = pose[:3], pose[3:]
        self.sim.forward()

    def body_pose(self, body: str) -> tuple[np.ndarray, np.ndarray]:
        """World position (3,) and rotation matrix (3, 3) of a MuJoCo body."""
        i = self.sim.model.body_name2id(body)
        return self.sim.data.body_xpos[i].copy(), self.sim.data.body_xmat[i].reshape(3, 3).copy()
