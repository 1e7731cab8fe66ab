"""What a policy sees: raw observations -> named policy inputs, read from the feature declarations.

One function, :func:`policy_inputs`, turns observations (one step or a stacked history, from the env or
from a dataset) into the inputs the networks take, so training and acting can never disagree. Every
decision comes from ``equirobot_envs.features``:

* ``lowdim``: the concatenated ``lowdim`` features (proprio always, ``object`` with the ``state`` mode),
  quaternions turned into rot6d; :func:`lowdim_layout` says how each part turns with the scene and
  :func:`lowdim_norm` how it is normalised, both from the declared quantities; a control task's
  ``joint_state`` is its ``lowdim``, acted on by the task's mirrors (``DataSpec.reflections``);
* every other policy-input feature under its own key: ``point_cloud`` (N, 6), ``voxels``
  (4, D, D, D) uint8, top-down views channel-first ``heightmap`` (1, H, W) and ``agentview_image``
  (3, H, W) uint8, and the wrist view ``robot0_eye_in_hand_image`` (3, H, W), which turns with the
  gripper and so enters as invariant features.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

from equirobot.symmetry.representations import Layout, quantity_layout, sign_layout
from equirobot_envs.features import (
    CONTROL_MODES,
    POSE_CHANNELS,
    QUANTITY_CHANNELS,
    Feature,
    control_mode,
    mode_features,
)
from equirobot_envs.geometry import mat_to_rot6d, quat_to_mat

LOWDIM = "lowdim"
ACTION = "action"
# How each quantity is normalised (equirobot.data.normalizer kinds); quaternions enter as rot6d.
NORM_KIND = {"position": "position", "vector": "vector", "axis_angle": "vector", "rot6d": "rotation"}
NORM_KIND |= {"quaternion": "rotation", "scalar": "scalar"}
NORM_KIND |= {"planar": "identity", "half_turn": "identity"}  # already in [-1, 1] (pick_place actions)
POLICY_QUANTITY = {"quaternion": "rot6d"}


@dataclass
class DataSpec:
    """What the data fixes about a policy: its observations, actions and symmetry axis (in checkpoints)."""

    modes: list[str]
    """Observation modes the inputs come from."""
    control: str
    """Control mode of the actions (``equirobot_envs.features.CONTROL_MODES``)."""
    shapes: dict[str, list[int]]
    """Per-frame shape of every policy input (``lowdim`` included)."""
    n_objects: int
    """Objects whose poses the ``object`` feature holds (0 unless ``state`` is a mode)."""
    center_xy: list[float]
    """The symmetry axis (the task's workspace centre), world frame."""
    reflections: dict | None = None
    """A control task's mirrors (``equirobot_envs.flip_control.Reflections.to_dict``: group and sign
    vectors of the state and the motor commands); ``None`` for the scene tasks."""

    def __post_init__(self) -> None:
        control_mode(self.control)
        mode_features(self.modes)  # raises on unknown modes
        reflected = any(f.group_action == "reflected" for f in mode_features(self.modes))
        if reflected != (self.reflections is not None):
            raise ValueError(
                f"data spec: modes {self.modes} need reflections exactly when a control task's state is "
                f"observed, got reflections={self.reflections}"
            )

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def action_dim(self) -> int:
        if self.reflections is not None:
            return len(self.reflections["action"][0])
        return CONTROL_MODES[self.control].dim

    def lowdim_features(self) -> tuple[Feature, ...]:
        """The features concatenated into ``lowdim`` (a control task's state is one)."""
        return tuple(f for f in mode_features(self.modes) if f.group_action in ("lowdim", "reflected"))

    def scene_features(self) -> tuple[Feature, ...]:
        """The policy inputs besides ``lowdim``, in declaration order."""
        lowdim = self.lowdim_features()
        return tuple(f for f in mode_features(self.modes) if f.is_policy_input and f not in lowdim)

    @classmethod
    def from_features(
        cls,
        modes: list[str],
        control: str,
        settings,
        n_objects: int,
        center_xy: list[float],
        reflections: dict | None = None,
    ) -> DataSpec:
        """The spec of data with these modes, its input shapes read off the feature declarations.

        ``settings`` has the size fields of ``EnvConfig`` (``image_size``, ``n_points``, ...); a control
        task's state has the size of its ``reflections``' sign vectors.
        """
        features = mode_features(modes)
        blank = {
            f.key: np.zeros(
                (len(reflections["state"][0]),)
                if f.group_action == "reflected" and reflections
                else f.shape(settings, n_objects),
                dtype=f.dtype,
            )
            for f in features
        }
        if "object" in blank:  # valid rotations: identity quaternions
            blank["object"] = np.tile([0, 0, 0, 0, 0, 0, 1], n_objects).astype(np.float32)
        if "robot0_eef_quat" in blank:
            blank["robot0_eef_quat"] = np.array([0, 0, 0, 1], dtype=np.float32)
        spec = cls(list(modes), control, {}, n_objects, list(center_xy), reflections)
        spec.shapes = {k: list(v.shape) for k, v in policy_inputs(blank, spec).items()}
        return spec


def task_data_spec(task, env) -> DataSpec:
    """The spec of what a task (a ``TaskSpec``) gives with settings ``env`` (an ``EnvConfig``).

    Shapes come from the feature declarations, objects and symmetry axis from the task, and a control
    task's mirrors from its ``reflections``.
    """
    n_objects = len(task.objects) if "object" in {f.key for f in mode_features(env.obs)} else 0
    center = [float(c) for c in task.workspace.center[:2]]
    reflections = task.reflections.to_dict() if task.reflections is not None else None
    return DataSpec.from_features(list(env.obs), env.control, env, n_objects, center, reflections)


def _feature_quantities(f: Feature, n_objects: int) -> tuple[str, ...]:
    """The quantities of one lowdim feature, repeated per object for ``object``."""
    per = sum(QUANTITY_CHANNELS[q] for q in f.quantities)
    repeats = n_objects if f.key == "object" else 1
    if f.key == "object" and per != POSE_CHANNELS:
        raise ValueError(f"feature object: quantities cover {per} channels, a pose has {POSE_CHANNELS}")
    return f.quantities * repeats


def lowdim_quantities(spec: DataSpec) -> tuple[str, ...]:
    """The quantities of ``lowdim`` as the policy sees them (quaternions as rot6d).

    None for a control task's state, on which its mirrors act by sign vectors.
    """
    raw = [q for f in spec.lowdim_features() for q in _feature_quantities(f, spec.n_objects)]
    return tuple(POLICY_QUANTITY.get(q, q) for q in raw)


def lowdim_layout(spec: DataSpec) -> Layout:
    """How ``lowdim`` transforms under the scene group (a control task's: under its mirrors)."""
    if spec.reflections is not None:
        return sign_layout(LOWDIM, spec.reflections["state"])
    return quantity_layout(LOWDIM, lowdim_quantities(spec))


def norm_spec(quantities: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    """Normalisation kinds of a quantity sequence (see ``equirobot.data.normalizer``)."""
    return tuple((NORM_KIND[q], QUANTITY_CHANNELS[POLICY_QUANTITY.get(q, q)]) for q in quantities)


def lowdim_norm(spec: DataSpec) -> tuple[tuple[str, int], ...]:
    """Normalisation kinds of ``lowdim``'s channels (a control task's state: left as is, as mirrors need)."""
    if spec.reflections is not None:
        return (("identity", len(spec.reflections["state"][0])),)
    return norm_spec(lowdim_quantities(spec))


def action_layout(spec: DataSpec) -> Layout:
    """How the actions transform under the scene group (a control task's: under its mirrors)."""
    if spec.reflections is not None:
        return sign_layout(f"{spec.control}_action", spec.reflections["action"])
    return quantity_layout(f"{spec.control}_action", CONTROL_MODES[spec.control].quantities)


def action_norm(spec: DataSpec) -> tuple[tuple[str, int], ...]:
    """Normalisation kinds of the action channels (a control task's commands are in [-1, 1] already)."""
    if spec.reflections is not None:
        return (("identity", spec.action_dim),)
    return norm_spec(CONTROL_MODES[spec.control].quantities)


def lowdim_input(obs: Mapping[str, np.ndarray], features: tuple[Feature, ...]) -> np.ndarray:
    """(..., D) ``lowdim`` from raw observations: the features concatenated, quaternions as rot6d."""
    parts = []
    for f in features:
        x = np.asarray(obs[f.key], dtype=np.float64)
        if "quaternion" not in f.quantities:
            parts.append(x)
            continue
        sizes = [QUANTITY_CHANNELS[q] for q in f.quantities]
        groups = x.reshape(*x.shape[:-1], -1, sum(sizes))  # (..., repeats, per-repeat channels)
        bounds = np.cumsum([0, *sizes])
        out = []
        for q, a, b in zip(f.quantities, bounds[:-1], bounds[1:], strict=True):
            v = groups[..., a:b]
            out.append(mat_to_rot6d(quat_to_mat(v)) if q == "quaternion" else v)
        parts.append(np.concatenate(out, axis=-1).reshape(*x.shape[:-1], -1))
    return np.concatenate(parts, axis=-1).astype(np.float32)


def scene_input(f: Feature, value: np.ndarray) -> np.ndarray:
    """A scene input from the raw observation of the same name.

    Images become channel-first (still uint8), top-down maps get a channel axis; point clouds and voxels
    stay as they are.
    """
    value = np.asarray(value)
    if f.group_action in ("top_down", "with_gripper") and f.key.endswith("_image"):
        return np.moveaxis(value, -1, -3)
    if f.group_action == "top_down":
        return value.astype(np.float32)[..., None, :, :]
    return value


def policy_inputs(obs: Mapping[str, np.ndarray], spec: DataSpec) -> dict[str, np.ndarray]:
    """Raw observations (any leading dims) -> policy inputs (same leading dims); see the module docstring."""
    missing = [f.key for f in mode_features(spec.modes) if f.is_policy_input and f.key not in obs]
    if missing:
        raise KeyError(f"observation lacks {missing}, which the policy's modes {spec.modes} need")
    out = {LOWDIM: lowdim_input(obs, spec.lowdim_features())}
    out.update({f.key: scene_input(f, obs[f.key]) for f in spec.scene_features()})
    return out
