"""The settings of a task environment, declared once.

:class:`EnvConfig` is what ``gymnasium.make`` takes as keyword arguments (``TaskEnv(**asdict(cfg))``),
what every ``equirobot`` command that runs a task has as its ``task``, ``obs``, ``control`` and size
settings (the commands' hydra schemas inherit it), and what datasets and checkpoints store to rebuild
the environment they came from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from equirobot_envs.features import CONTROL_MODES, FIXED_MODE_FAMILIES, OBS_MODES, family_modes
from equirobot_envs.registry import resolve_task, task_family

NONFINITE_ACTIONS = ("raise", "hold")
SIZE_FIELDS = ("image_size", "n_points", "voxel_size", "heightmap_size", "point_cloud_camera_size")


@dataclass
class EnvConfig:
    """Which task, how it is observed and how it is controlled."""

    task: str = "stack_d1"
    """Task config name (``equirobot tasks`` lists them) or gymnasium id."""
    obs: list[str] = field(default_factory=lambda: ["state"])
    """Observation modes (``equirobot_envs.features.OBS_MODES``): state, rgb, depth, point_cloud, voxels,
    heightmap; a closed-loop task (``block_picking``, ...) takes gripper_heightmap only, an open-loop one
    (``block_stacking_pick_place``) workspace_heightmap only, a control task (``reacher``, ...)
    joint_state only, and gets it when this is left at its default."""
    control: str = "abs"
    """abs (10-D world-frame target pose, rot6d) or delta (7-D OSC delta); a closed-loop task takes
    closed_loop (5-D gantry step) only, an open-loop task pick_place (3-D primitive) only, a control task
    torque only, and gets it when this is left at its default."""
    image_size: int = 84
    """Side of the rgb and depth images, pixels."""
    n_points: int = 1024
    """Points per point cloud."""
    voxel_size: int = 64
    """Voxels per side of the workspace cube."""
    heightmap_size: int = 64
    """Pixels per side of the top-down heightmap."""
    point_cloud_cameras: list[str] = field(default_factory=lambda: ["agentview", "sideview", "birdview"])
    """Depth cameras fused into point clouds and voxels."""
    point_cloud_camera_size: int = 112
    """Side of each of those depth images, pixels."""
    nonfinite_action: str = "raise"
    """What ``step`` does with an action holding NaN or infinity, which must never reach robosuite (one
    NaN poisons its controller for the rest of the episode): ``raise`` a ValueError, or ``hold`` the
    last valid target (abs: the last finite action; delta: no motion) and set ``info["nonfinite_action"]``."""

    asymmetry: float = 0.0
    """Flip asymmetry delta of the task's asymmetric actuator (``equirobot_envs.flip_control``): gain
    1 + delta for positive commands, 1 - delta for negative; 0 is exactly symmetric. A control task's is
    the motor its module names, a closed-loop task's the gantry's x slide (dx); MimicGen tasks take 0
    only."""

    def __post_init__(self) -> None:
        resolve_task(self.task)  # raises with the list of valid tasks
        family = self._fit_family()
        if not -1 < self.asymmetry < 1:
            raise ValueError(f"asymmetry must be in (-1, 1), got {self.asymmetry}")
        if self.asymmetry and family == "mimicgen":
            raise ValueError(f"task {self.task} (mimicgen) has no asymmetric actuator: asymmetry must be 0")
        for name in SIZE_FIELDS:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.nonfinite_action not in NONFINITE_ACTIONS:
            raise ValueError(f"nonfinite_action={self.nonfinite_action!r}; valid: {list(NONFINITE_ACTIONS)}")
        if not self.point_cloud_cameras and {"point_cloud", "voxels"} & set(self.obs):
            raise ValueError("point_cloud_cameras is empty but point clouds or voxels are requested")

    def _fit_family(self) -> str:
        """Give a closed- or open-loop task its modes where the defaults were left; refuse another family's.

        Unknown modes are refused with the list of the task family's valid ones. Returns the family.
        """
        family = task_family(self.task)
        obs_modes, controls = family_modes(family)
        unknown = [m for m in self.obs if m not in OBS_MODES]
        if unknown:
            raise ValueError(f"unknown observation mode(s) {unknown}; valid modes: {obs_modes}")
        if self.control not in CONTROL_MODES:
            raise ValueError(f"unknown control mode {self.control!r}; valid modes: {controls}")
        fixed = family in FIXED_MODE_FAMILIES
        if fixed:
            if list(self.obs) == ["state"]:
                self.obs = list(obs_modes)
            if self.control == "abs":
                self.control = controls[0]
        foreign = [m for m in self.obs if m not in obs_modes]
        if fixed and list(self.obs) != obs_modes:
            raise ValueError(f"task {self.task} ({family}) observes obs={obs_modes} only, got {self.obs}")
        if foreign:
            raise ValueError(
                f"task {self.task} ({family}) cannot observe {foreign}; valid obs modes: {obs_modes}"
            )
        if self.control not in controls:
            raise ValueError(
                f"task {self.task} ({family}) cannot take control={self.control!r}; valid: {controls}"
            )
        return family

    def env_kwargs(self) -> dict[str, Any]:
        """The settings as ``gymnasium.make`` keyword arguments (the task is the id), JSON-able."""
        return {k: v for k, v in asdict(self).items() if k != "task" and k in ENV_FIELDS}

    @classmethod
    def from_kwargs(cls, task: str, kwargs: dict[str, Any]) -> EnvConfig:
        """The config of ``task`` with ``kwargs`` (``env_kwargs()`` of a dataset or checkpoint) applied.

        Files written before the settings had one declaration name the modes ``obs_modes``; that name
        is read too.
        """
        kwargs = dict(kwargs)
        if "obs_modes" in kwargs:
            kwargs["obs"] = kwargs.pop("obs_modes")
        unknown = sorted(set(kwargs) - set(ENV_FIELDS))
        if unknown:
            raise ValueError(f"unknown environment setting(s) {unknown}; valid: {list(ENV_FIELDS)}")
        lists = {k: list(v) for k, v in kwargs.items() if isinstance(v, tuple)}
        return cls(task=task, **{**kwargs, **lists})


ENV_FIELDS = tuple(f.name for f in fields(EnvConfig))
