"""Typed configs of the ``equirobot`` commands.

Each command's config is a dataclass registered in hydra's ConfigStore as ``<command>_schema``; the
YAML file of the same command under ``configs/`` starts from it. A misspelt key or a value of the
wrong type is refused by hydra; a value of the right type that makes no sense (an unknown task, a
negative episode count) is refused by ``__post_init__`` before any simulation starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore

from equirobot_envs.base import CONTROL_MODES
from equirobot_envs.observations import OBS_MODES, ObservationConfig
from equirobot_envs.registry import get_task, task_specs

AGENTS = ("expert",)


@dataclass
class EnvConfig:
    """Which task and how it is observed and controlled; every command that runs a task has these."""

    task: str = "stack_d1"
    """Task config name (``equirobot tasks`` lists them) or gymnasium id."""
    obs: list[str] = field(default_factory=lambda: ["state"])
    """Observation modes, any of: state, rgb, depth, point_cloud, voxels, heightmap."""
    control: str = "abs"
    """abs (10-D world-frame target pose, rot6d) or delta (7-D OSC delta)."""
    image_size: int = 84
    n_points: int = 1024
    voxel_size: int = 64
    heightmap_size: int = 64
    point_cloud_cameras: list[str] = field(default_factory=lambda: ["agentview", "sideview", "birdview"])
    point_cloud_camera_size: int = 112

    def __post_init__(self) -> None:
        get_task(self.task)  # raises with the list of valid tasks
        if self.control not in CONTROL_MODES:
            raise ValueError(f"control={self.control!r} is not a control mode; valid: {list(CONTROL_MODES)}")
        self.observation_config()  # raises on unknown modes and non-positive sizes

    def observation_config(self) -> ObservationConfig:
        return ObservationConfig(
            modes=tuple(self.obs),
            image_size=self.image_size,
            point_cloud_cameras=tuple(self.point_cloud_cameras),
            point_cloud_camera_size=self.point_cloud_camera_size,
            n_points=self.n_points,
            voxel_size=self.voxel_size,
            heightmap_size=self.heightmap_size,
        )

    def env_kwargs(self) -> dict:
        """Keyword arguments for ``gymnasium.make`` of this task."""
        return {
            "obs_modes": tuple(self.obs),
            "control": self.control,
            "image_size": self.image_size,
            "n_points": self.n_points,
            "voxel_size": self.voxel_size,
            "heightmap_size": self.heightmap_size,
            "point_cloud_cameras": tuple(self.point_cloud_cameras),
            "point_cloud_camera_size": self.point_cloud_camera_size,
        }


@dataclass
class TasksConfig:
    """``equirobot tasks``: list the task registry."""


@dataclass
class RolloutConfig(EnvConfig):
    """``equirobot rollout``: run an agent for some episodes, report success, optionally record videos."""

    agent: str = "expert"
    """Who acts: ``expert`` (the task's scripted expert on privileged state)."""
    episodes: int = 5
    seed: int = 0
    """Episode i is reset with seed ``seed + i``."""
    video: bool = False
    video_episodes: int = 3
    """Record at most this many episodes (rendering a video frame costs more than a step)."""
    video_size: int = 192
    video_camera: str = "agentview"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.agent not in AGENTS:
            raise ValueError(f"agent={self.agent!r} is not an agent; valid: {list(AGENTS)}")
        if self.episodes <= 0:
            raise ValueError(f"episodes must be positive, got {self.episodes}")
        if self.video_size <= 0 or self.video_episodes < 0:
            raise ValueError(
                f"video_size must be positive and video_episodes >= 0, got {self.video_size}, "
                f"{self.video_episodes}"
            )


@dataclass
class BenchObsConfig(EnvConfig):
    """``equirobot bench obs``: time one env step per observation mode against physics alone."""

    modes: list[str] = field(default_factory=lambda: ["physics", *OBS_MODES])
    """``physics`` is proprio only (no rendering): the reference."""
    steps: int = 40
    warmup: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = [m for m in self.modes if m != "physics" and m not in OBS_MODES]
        if unknown:
            raise ValueError(f"unknown modes {unknown} to benchmark; valid: {['physics', *OBS_MODES]}")
        if self.steps <= 0 or self.warmup < 0:
            raise ValueError(f"steps must be positive and warmup >= 0, got {self.steps}, {self.warmup}")


@dataclass
class BenchExpertsConfig:
    """``equirobot bench experts``: success rate of the scripted experts over many seeds."""

    tasks: list[str] = field(default_factory=lambda: list(task_specs()))
    controls: list[str] = field(default_factory=lambda: list(CONTROL_MODES))
    episodes: int = 50
    workers: int = 2

    def __post_init__(self) -> None:
        for task in self.tasks:
            get_task(task)
        unknown = [c for c in self.controls if c not in CONTROL_MODES]
        if unknown:
            raise ValueError(f"unknown control modes {unknown}; valid: {list(CONTROL_MODES)}")
        if self.episodes <= 0 or self.workers <= 0:
            raise ValueError(f"episodes and workers must be positive, got {self.episodes}, {self.workers}")


@dataclass
class CheckEquivarianceConfig:
    """``equirobot check-equivariance``: numerical equivariance of every module in ``equirobot.nn``."""

    groups: list[str] = field(default_factory=lambda: ["C8", "D4"])
    tolerance: float = 1e-4
    """Largest relative error accepted on the elements where equivariance is exact."""

    def __post_init__(self) -> None:
        from equirobot.symmetry.group import SceneSymmetry

        for name in self.groups:
            SceneSymmetry.from_name(name)  # raises on a malformed name


@dataclass
class BenchNetsConfig:
    """``equirobot bench nets``: forward/backward times of encoders and denoiser, equivariant vs not."""

    group: str = "C8"
    threads: int = 2
    repeats: int = 10
    batch: int = 8
    image_size: int = 84
    image_widths: list[int] = field(default_factory=lambda: [4, 8, 16, 32])
    voxel_size: int = 64
    voxel_widths: list[int] = field(default_factory=lambda: [2, 4, 8, 16])
    voxel_input_pool: int = 2
    n_points: int = 1024
    out_fields: int = 32
    horizon: int = 16
    down_dims: list[int] = field(default_factory=lambda: [32, 64, 128])

    def __post_init__(self) -> None:
        from equirobot.symmetry.group import SceneSymmetry

        SceneSymmetry.from_name(self.group)
        if min(self.threads, self.repeats, self.batch) <= 0:
            raise ValueError("threads, repeats and batch must be positive")


@dataclass
class CollectConfig(EnvConfig):
    """``equirobot collect``: scripted-expert demonstrations, successes only, as hdf5 + zarr."""

    n_demos: int = 100
    workers: int = 2
    seed: int = 0
    """Episodes use seeds seed, seed + 1, ...; evaluation uses seeds from 100000 on."""
    max_attempts: int = 0
    """0: 3 n_demos + 10."""
    out: str = ""
    """Dataset path without suffix; default datasets/<task>_<control>_<obs>_<n_demos>."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_demos <= 0 or self.workers <= 0 or self.max_attempts < 0:
            raise ValueError(
                f"n_demos and workers must be positive, max_attempts >= 0; got {self.n_demos}, "
                f"{self.workers}, {self.max_attempts}"
            )

    def out_path(self) -> str:
        from equirobot_envs.registry import get_task

        name = f"{get_task(self.task).config_name}_{self.control}_{'+'.join(self.obs)}_{self.n_demos}"
        return self.out or f"datasets/{name}"


@dataclass
class DatasetConfig:
    """``equirobot dataset <info|video|plot> <path>``: look at a dataset."""

    path: str = "???"
    """An hdf5 file or a zarr replay buffer."""


@dataclass
class DatasetViewConfig(DatasetConfig):
    """``equirobot dataset video <path> demo=3`` / ``equirobot dataset plot <path>``."""

    demo: int = 0
    size: int = 256
    camera: str = "agentview"


@dataclass
class GenerateConfig(CollectConfig):
    """``equirobot generate``: MimicGen-style demonstrations from a few source demos."""

    source: str = ""
    """Source demos (hdf5 with states, actions_abs, obs/object); empty: collect n_source expert demos."""
    n_source: int = 10

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_source <= 0:
            raise ValueError(f"n_source must be positive, got {self.n_source}")

    def out_path(self) -> str:
        return self.out or super().out_path() + "_mimicgen"


@dataclass
class DatasetRenderConfig:
    """``equirobot dataset render in=<hdf5> obs=[point_cloud,voxels] [out=<hdf5>]``."""

    input: str = "???"
    """The source hdf5 (``in=`` on the command line)."""
    obs: list[str] = field(default_factory=lambda: ["point_cloud"])
    out: str = ""

    def __post_init__(self) -> None:
        ObservationConfig(modes=tuple(self.obs))  # raises on unknown modes


SCHEMAS = {
    "tasks": TasksConfig,
    "rollout": RolloutConfig,
    "bench_obs": BenchObsConfig,
    "bench_experts": BenchExpertsConfig,
    "check_equivariance": CheckEquivarianceConfig,
    "bench_nets": BenchNetsConfig,
    "collect": CollectConfig,
    "generate": GenerateConfig,
    "dataset_info": DatasetConfig,
    "dataset_render": DatasetRenderConfig,
    "dataset_video": DatasetViewConfig,
    "dataset_plot": DatasetViewConfig,
}


def register_schemas() -> None:
    """Make every command schema available to hydra as ``<command>_schema``."""
    store = ConfigStore.instance()
    for name, schema in SCHEMAS.items():
        store.store(name=f"{name}_schema", node=schema)
