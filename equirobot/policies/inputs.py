"""What a policy sees: raw environment observations -> named policy inputs, and how each transforms.

One function, :func:`policy_inputs`, turns observations (one step or a stacked history, from the env or
from a dataset) into the inputs the networks take, so training and acting can never disagree:

* ``lowdim``: end-effector position and rot6d, gripper joints, and (``state`` mode) every object's
  position and rot6d; its :class:`~equirobot.symmetry.representations.Layout` says how each part turns;
* ``point_cloud`` (N, 6), ``voxels`` (4, D, D, D) uint8, ``heightmap`` (1, H, W): scene views that
  turn with the scene;
* ``agentview_image`` (3, H, W) uint8: the front camera, treated as an approximately top-down view
  (as the Equivariant Diffusion Policy treats it); ``robot0_eye_in_hand_image`` (3, H, W) uint8: the
  wrist view, which turns with the gripper and enters as invariant features.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from equirobot.symmetry.representations import ABS_ACTION, DELTA_ACTION, Layout, pose_layout, scalars_layout
from equirobot_envs.geometry import mat_to_rot6d, quat_to_mat

LOWDIM = "lowdim"
WRIST_IMAGE = "robot0_eye_in_hand_image"

# Scene inputs per observation mode, besides ``lowdim`` which every policy gets.
MODE_INPUTS = {
    "state": (),
    "point_cloud": ("point_cloud",),
    "voxels": ("voxels",),
    "heightmap": ("heightmap",),
    "rgb": ("agentview_image", WRIST_IMAGE),
}

# Per-channel normalisation kinds (see equirobot.data.normalizer): position, rotation, vector, scalar.
LOWDIM_PROPRIO_NORM = (("position", 3), ("rotation", 6), ("scalar", 2))
OBJECT_NORM = (("position", 3), ("rotation", 6))
ACTION_NORM = {
    "abs": (("position", 3), ("rotation", 6), ("scalar", 1)),
    "delta": (("vector", 3), ("vector", 3), ("scalar", 1)),
}
ACTION_LAYOUT = {"abs": ABS_ACTION, "delta": DELTA_ACTION}


def input_keys(modes: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The policy inputs of these observation modes (``lowdim`` first)."""
    unknown = [m for m in modes if m not in MODE_INPUTS]
    if unknown:
        raise ValueError(f"no policy inputs for observation mode(s) {unknown}; valid: {list(MODE_INPUTS)}")
    return (LOWDIM, *(k for m in modes for k in MODE_INPUTS[m]))


def _pose9(pos: np.ndarray, quat: np.ndarray) -> np.ndarray:
    return np.concatenate([pos, mat_to_rot6d(quat_to_mat(quat))], axis=-1)


def lowdim_input(obs: Mapping[str, np.ndarray], with_objects: bool) -> np.ndarray:
    """(..., D) ``lowdim``: end-effector pose, gripper joints and, ``with_objects``, every object's pose."""
    parts = [_pose9(obs["robot0_eef_pos"], obs["robot0_eef_quat"]), obs["robot0_gripper_qpos"]]
    if with_objects:
        objects = np.asarray(obs["object"])
        per_object = objects.reshape(*objects.shape[:-1], -1, 7)
        parts.append(_pose9(per_object[..., :3], per_object[..., 3:]).reshape(*objects.shape[:-1], -1))
    return np.concatenate(parts, axis=-1).astype(np.float32)


def scene_input(key: str, value: np.ndarray) -> np.ndarray:
    """The scene input ``key`` from the raw observation of the same name.

    Images become channel-first (still uint8), heightmaps get a channel axis; point clouds and voxels
    stay as they are.
    """
    if key.endswith("_image"):
        return np.moveaxis(np.asarray(value), -1, -3)
    if key == "heightmap":
        return np.asarray(value, dtype=np.float32)[..., None, :, :]
    return np.asarray(value)


def policy_inputs(obs: Mapping[str, np.ndarray], modes: tuple[str, ...] | list[str]) -> dict[str, np.ndarray]:
    """Raw observations (any leading dims) -> policy inputs (same leading dims); see the module docstring."""
    out = {LOWDIM: lowdim_input(obs, "state" in modes)}
    out.update({key: scene_input(key, obs[key]) for key in input_keys(modes)[1:]})
    return out


def lowdim_layout(n_objects: int) -> Layout:
    """How ``lowdim`` transforms: end-effector pose, gripper joints, then each object's pose."""
    layout = pose_layout("eef").concat(scalars_layout("gripper", 2))
    for i in range(n_objects):
        layout = layout.concat(pose_layout(f"object{i}"))
    return Layout("lowdim", layout.parts)


def lowdim_norm(n_objects: int) -> tuple[tuple[str, int], ...]:
    """Normalisation kinds of ``lowdim``'s channels (see ``equirobot.data.normalizer``)."""
    return LOWDIM_PROPRIO_NORM + OBJECT_NORM * n_objects
