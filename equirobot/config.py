"""Typed configs of the ``equirobot`` commands.

Each command's config is a dataclass registered in hydra's ConfigStore as ``<command>_schema``; the
YAML file of the same command under ``configs/`` starts from it. A misspelt key or a value of the
wrong type is refused by hydra; a value of the right type that makes no sense (an unknown task, a
negative episode count) is refused by ``__post_init__`` before any simulation starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from hydra.core.config_store import ConfigStore

from equirobot.demos.agents import AGENTS
from equirobot.deploy.bridge import TRANSPORTS
from equirobot.deploy.robot import RobotConfig
from equirobot.policies.base import resolve_group
from equirobot.policies.registry import POLICIES, config_class, make_config
from equirobot_envs.config import EnvConfig
from equirobot_envs.features import CONTROL_MODES, OBS_MODES, check_modes, family_modes
from equirobot_envs.registry import config_name, get_task, resolve_task, task_family, task_specs


def check_ranges(cfg: Any, positive: tuple[str, ...] = (), non_negative: tuple[str, ...] = ()) -> None:
    """Raise a ValueError naming the first setting out of its range; numbers must be finite too.

    A list setting (``down_dims=[...]``) is checked element by element and must not be empty.
    """
    for names, ok, what in (
        (positive, lambda v: v > 0, "positive"),
        (non_negative, lambda v: v >= 0, ">= 0"),
    ):
        for name in names:
            value = getattr(cfg, name)
            values = list(value) if isinstance(value, list | tuple) else [value]
            if not values or not all(math.isfinite(v) and ok(v) for v in values):
                each = " (each, non-empty)" if isinstance(value, list) else ""
                raise ValueError(f"{name} must be {what}{each}, got {value}")


def default_dataset(env: EnvConfig, n_demos: int) -> str:
    """``equirobot collect``'s default dataset path, no suffix: datasets/<task>_<control>_<obs>_<n>."""
    name = config_name(*resolve_task(env.task)[1:3])
    return f"datasets/{name}_{env.control}_{'+'.join(env.obs)}_{n_demos}"


@dataclass
class TasksConfig:
    """``equirobot tasks``: list the task registry."""


@dataclass
class RolloutConfig(EnvConfig):
    """``equirobot rollout``: run an agent for some episodes, report success, optionally record videos."""

    agent: str = "expert"
    """Who acts: an agent of ``equirobot.demos.agents.AGENTS`` (``expert``: the task's scripted expert;
    ``mimicgen``: generation from source demos, ``+agent_args.source=<hdf5>``)."""
    agent_args: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the agent."""
    workers: int = 1
    episodes: int = 5
    seed: int = 0
    """Episode i is reset with seed ``seed + i``."""
    video: bool = False
    video_episodes: int = 3
    """Record at most this many episodes (rendering a video frame costs more than a step)."""
    video_size: int = 192
    video_camera: str = ""
    """Camera of the videos; empty: the task's default view (agentview, overview on the closed-loop tasks)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.agent not in AGENTS:
            raise ValueError(f"agent={self.agent!r} is not an agent; valid: {sorted(AGENTS)}")
        check_ranges(self, positive=("episodes", "workers", "video_size"), non_negative=("video_episodes",))


@dataclass
class BenchObsConfig(EnvConfig):
    """``equirobot bench obs``: time one env step per observation mode against physics alone."""

    modes: list[str] = field(default_factory=lambda: ["physics", *family_modes("mimicgen")[0]])
    """``physics`` is proprio only (no rendering): the reference. The default: the MimicGen tasks' modes
    (a closed-loop task has one, ``gripper_heightmap``)."""
    steps: int = 40
    warmup: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = [m for m in self.modes if m != "physics" and m not in OBS_MODES]
        if unknown:
            raise ValueError(f"unknown modes {unknown} to benchmark; valid: {['physics', *OBS_MODES]}")
        check_ranges(self, positive=("steps",), non_negative=("warmup",))


@dataclass
class BenchExpertsConfig:
    """``equirobot bench experts``: success rate of the scripted experts over many seeds."""

    tasks: list[str] = field(default_factory=lambda: list(task_specs()))
    controls: list[str] = field(default_factory=lambda: list(CONTROL_MODES))
    """Each task runs those of these its family takes (MimicGen: abs, delta; closed-loop: closed_loop)."""
    episodes: int = 50
    workers: int = 2

    def __post_init__(self) -> None:
        unknown = [c for c in self.controls if c not in CONTROL_MODES]
        if unknown:
            raise ValueError(f"unknown control modes {unknown}; valid: {list(CONTROL_MODES)}")
        for task in self.tasks:
            if not self.controls_of(task):
                family = get_task(task).family
                valid = family_modes(family)[1]
                raise ValueError(
                    f"task {task} ({family}) takes none of controls={self.controls}; valid: {valid}"
                )

    def controls_of(self, task: str) -> list[str]:
        """The controls of ``controls`` that ``task`` takes."""
        family = get_task(task).family
        return [c for c in self.controls if CONTROL_MODES[c].family == family]
        check_ranges(self, positive=("episodes", "workers"))


@dataclass
class CheckEquivarianceConfig:
    """``equirobot check-equivariance``: numerical equivariance of every module in ``equirobot.nn``."""

    groups: list[str] = field(default_factory=lambda: ["C8", "D4"])
    tolerance: float = 1e-4
    """Largest relative error accepted on the elements where equivariance is exact."""
    policies: bool = True
    """Also check whole diffusion policies per observation mode (normaliser, encoder, sampler)."""
    threads: int = 2
    """torch CPU threads."""

    def __post_init__(self) -> None:
        from equirobot.symmetry.group import SceneSymmetry

        for name in self.groups:
            SceneSymmetry.from_name(name)  # raises on a malformed name
        check_ranges(self, positive=("tolerance", "threads"))


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
        numbers = ("threads", "repeats", "batch", "image_size", "image_widths", "voxel_size", "voxel_widths")
        check_ranges(
            self, positive=(*numbers, "voxel_input_pool", "n_points", "out_fields", "horizon", "down_dims")
        )


@dataclass
class BenchPolicyConfig:
    """``equirobot bench policy``: training throughput and action-chunk latency per mode and method."""

    task: str = "stack_d1"
    """Fixes the state size (its objects)."""
    modes: list[str] = field(default_factory=lambda: ["state", "point_cloud", "voxels"])
    policies: list[str] = field(default_factory=lambda: ["equidiff", "diffpo_c", "diffpo_c_aug"])
    """Method presets of configs/policy/."""
    inference_steps: list[int] = field(default_factory=lambda: [4, 10])
    threads: int = 2
    repeats: int = 5
    batch_size: int = 64
    """Training batch of state policies."""
    visual_batch_size: int = 16
    """Training batch of point-cloud and voxel policies."""
    n_points: int = 1024
    voxel_size: int = 64
    compile: bool = True
    """Also time action chunks with ``torch.compile`` (about 40 s of compiling per policy)."""

    def __post_init__(self) -> None:
        get_task(self.task)
        unknown = [m for m in self.modes if m not in ("state", "point_cloud", "voxels")]
        if unknown:
            raise ValueError(f"bench policy times modes state, point_cloud, voxels; got {unknown}")
        numbers = ("inference_steps", "threads", "repeats", "batch_size", "visual_batch_size", "n_points")
        check_ranges(self, positive=(*numbers, "voxel_size"))


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
        check_ranges(self, positive=("n_demos", "workers"), non_negative=("max_attempts", "seed"))

    def out_path(self) -> str:
        return self.out or default_dataset(self, self.n_demos)


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

    def __post_init__(self) -> None:
        check_ranges(self, positive=("size",), non_negative=("demo",))


@dataclass
class GenerateConfig(CollectConfig):
    """``equirobot generate``: MimicGen-style demonstrations from a few source demos."""

    source: str = ""
    """Source demos (hdf5 with states, actions_abs, obs/object); empty: collect n_source expert demos."""
    n_source: int = 10
    selection: str = ""
    """How each segment's source demo is chosen: random or nearest (MimicGen's nearest-neighbour); empty:
    the task's own choice per subtask."""

    def __post_init__(self) -> None:
        super().__post_init__()
        from equirobot_envs.registry import SELECTIONS

        check_ranges(self, positive=("n_source",))
        if self.selection and self.selection not in SELECTIONS:
            raise ValueError(f"selection={self.selection!r}; valid: {list(SELECTIONS)} or empty")

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
        check_modes(self.obs)


@dataclass
class TrainConfig(EnvConfig):
    """``equirobot train``: fit a policy; evaluate and checkpoint as it goes.

    Imitation methods learn from a dataset; online methods (reinforcement learning, on the closed-loop
    tasks) from their own interaction.
    """

    dataset: str = ""
    """A zarr replay buffer; default datasets/<task>_<control>_<obs>_100.zarr (``equirobot collect``)."""
    max_episodes: int = 0
    """Use the first episodes only (0: all)."""
    policy: Any = field(default_factory=lambda: {"type": "diffusion"})
    """The method: a preset of ``configs/policy/`` (``policy=bc``), a dict with a ``type`` of
    ``equirobot.policies.registry``; checked and typed at start-up."""
    steps: int = 3000
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-6
    betas: list[float] = field(default_factory=lambda: [0.95, 0.999])
    """Adam betas of the method's optimisers."""
    warmup_steps: int = 200
    grad_clip: float = 1.0
    ema_power: float = 0.75
    """EMA decay 1 - (1 + step)^-power, capped at 0.9999 (Diffusion Policy's schedule)."""
    amp: bool = True
    """bfloat16 autocast on GPU (ignored on CPU)."""
    device: str = "auto"
    """auto (cuda if available), cpu or cuda."""
    num_workers: int = 0
    seed: int = 0
    log_every: int = 50
    checkpoint_every: int = 500
    eval_every: int = 1000
    """Rollout evaluation of the EMA policy every this many steps and at the end (0: only at the end)."""
    eval_episodes: int = 20
    """Episodes per evaluation (0: no rollout evaluation)."""
    eval_workers: int = 2
    top_k: int = 3
    """Keep the k checkpoints with the best evaluated success rate, plus the latest."""
    threads: int = 2
    """torch CPU threads of the training process."""
    wandb: bool = False
    """Also log to Weights & Biases (needs the wandb package and an account)."""
    run_dir: str = ""
    """Run folder; default: hydra's run dir. An existing run folder is resumed."""
    envs: int = 2
    """Online methods (reinforcement learning): envs stepped in parallel, one worker process each; every
    trainer step collects one transition per env, then makes one update."""
    buffer_size: int = 100_000
    """Online methods: transitions the replay buffer holds (demonstrations included)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.policy = make_config(self.policy)
        # the policy's group against the task's symmetry, before any work (a control task declares its own)
        control = task_family(self.task) == "control"
        resolve_group(self.policy.group, get_task(self.task).reflections.to_dict() if control else None)
        positive = (
            "steps",
            "batch_size",
            "envs",
            "buffer_size",
            "eval_workers",
            "threads",
            "log_every",
            "checkpoint_every",
            "top_k",
        )
        non_negative = ("eval_episodes", "eval_every", "max_episodes", "num_workers", "warmup_steps")
        check_ranges(
            self,
            positive=(*positive, "lr", "grad_clip", "ema_power"),
            non_negative=(*non_negative, "weight_decay"),
        )
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device={self.device!r}; valid: auto, cpu, cuda")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("device=cuda but no GPU is visible (device=auto uses one when there is)")

    def dataset_path(self) -> str:
        return self.dataset or default_dataset(self, 100) + ".zarr"


@dataclass
class EvalConfig:
    """``equirobot eval checkpoint=<dir> [suite=mimicgen12] episodes=50 workers=2``."""

    checkpoint: str = ""
    """A checkpoint directory, or a run folder (then its last and its best checkpoint are evaluated)."""
    checkpoints: list[str] = field(default_factory=list)
    """Instead: one checkpoint (or run folder) per task, as the benchmark trains one policy per task."""
    suite: str = ""
    """Evaluate on every task of a suite (``mimicgen12``) with the same checkpoint; empty: its own task."""
    episodes: int = 50
    workers: int = 2
    seed: int = 100_000
    """Episode i uses seed seed + i: disjoint from the training demos' seeds (0, 1, ...)."""
    videos: int = 3
    """Videos per task (the first episodes)."""
    video_size: int = 192
    threads: int = 1
    """torch CPU threads per worker."""
    inference_steps: int = 0
    """Sampler steps per action chunk (0: the checkpoint's own setting)."""
    obs_noise: float = 0.0
    """Robustness test: the policy sees every float observation plus Gaussian noise of this standard
    deviation (raw units); the env is not disturbed. 0: none."""

    def __post_init__(self) -> None:
        if bool(self.checkpoint) == bool(self.checkpoints):
            raise ValueError("give either checkpoint=<checkpoint or run folder> or checkpoints=[a,b,...]")
        if self.suite and self.suite != "mimicgen12":
            raise ValueError(f"suite={self.suite!r}; valid: mimicgen12")
        check_ranges(
            self,
            positive=("episodes", "workers", "threads", "video_size"),
            non_negative=("videos", "inference_steps", "obs_noise"),
        )


@dataclass
class RosConnection:
    """How a ROS command reaches ROS (``transport=ros1|rosbridge``)."""

    transport: str = "ros1"
    """``ros1``: rospy on the master at ``ROS_MASTER_URI``; ``rosbridge``: a rosbridge v2 server."""
    host: str = "localhost"
    """rosbridge server host."""
    port: int = 9090
    """rosbridge server port."""

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise ValueError(f"transport={self.transport!r}; valid: {list(TRANSPORTS)}")
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be in 1..65535, got {self.port}")


@dataclass
class DeployConfig(RosConnection):
    """``equirobot deploy checkpoint=<dir> robot=sim_panda transport=ros1``."""

    checkpoint: str = ""
    """A checkpoint folder, or a run folder (its ``checkpoints/latest``)."""
    robot: RobotConfig = field(default_factory=RobotConfig)
    duration: float = 0.0
    """Seconds to run; 0: until interrupted (Ctrl-C or SIGTERM), then the stats are written."""
    inference_steps: int = 0
    """Sampler steps per action chunk (0: the checkpoint's own setting)."""
    threads: int = 1
    """torch CPU threads."""
    dry_run: bool = False
    """Log the targets, send nothing (``robot.safety.dry_run``)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.checkpoint:
            raise ValueError("give checkpoint=<checkpoint folder or run folder>")
        check_ranges(self, positive=("threads",), non_negative=("duration", "inference_steps"))


@dataclass
class BenchDeployConfig:
    """``equirobot bench deploy checkpoint=<dir> duration=20``: the node's latency and achieved rate.

    Starts a roscore (unless one answers at ``ROS_MASTER_URI``) and ``equirobot sim-robot`` in real time
    on the checkpoint's task and observation settings, runs the node for ``duration`` seconds, prints
    and writes ``bench_deploy.json``. ros1 only.
    """

    checkpoint: str = ""
    robot: RobotConfig = field(default_factory=RobotConfig)
    duration: float = 20.0
    threads: int = 1
    inference_steps: int = 0
    """Sampler steps per action chunk (0: the checkpoint's own setting)."""

    def __post_init__(self) -> None:
        if not self.checkpoint:
            raise ValueError("give checkpoint=<checkpoint folder or run folder>")
        check_ranges(self, positive=("duration", "threads"), non_negative=("inference_steps",))


@dataclass
class SimRobotConfig(EnvConfig, RosConnection):
    """``equirobot sim-robot task=<t> episodes=10``: the task's env on the robot config's topics."""

    robot: RobotConfig = field(default_factory=RobotConfig)
    episodes: int = 10
    seed: int = 100_000
    """Episode i uses seed seed + i (the seeds of ``equirobot eval``)."""
    lockstep: bool = True
    """Step once per command that answers the latest observation; false: real time at the control rate."""
    max_steps: int = 0
    """Episode length; 0: the task's horizon."""
    command_timeout: float = 30.0
    """Lockstep: seconds to wait for the node before failing."""
    record_actions: bool = False
    """Keep each executed action in the results file (to compare a run with an in-process one)."""

    def __post_init__(self) -> None:
        EnvConfig.__post_init__(self)
        RosConnection.__post_init__(self)
        if self.control != "abs":
            raise ValueError("sim-robot executes end-effector targets: control must be abs")
        if task_family(self.task) != "mimicgen":
            raise ValueError(f"sim-robot drives the Panda tasks (mimicgen family); {self.task} is not one")
        check_ranges(self, positive=("episodes", "command_timeout"), non_negative=("max_steps",))


SCHEMAS = {
    "tasks": TasksConfig,
    "rollout": RolloutConfig,
    "bench_obs": BenchObsConfig,
    "bench_experts": BenchExpertsConfig,
    "check_equivariance": CheckEquivarianceConfig,
    "bench_nets": BenchNetsConfig,
    "bench_policy": BenchPolicyConfig,
    "collect": CollectConfig,
    "generate": GenerateConfig,
    "dataset_info": DatasetConfig,
    "dataset_render": DatasetRenderConfig,
    "dataset_video": DatasetViewConfig,
    "dataset_plot": DatasetViewConfig,
    "train": TrainConfig,
    "eval": EvalConfig,
    "deploy": DeployConfig,
    "bench_deploy": BenchDeployConfig,
    "sim_robot": SimRobotConfig,
}


def register_schemas() -> None:
    """Make every command schema available to hydra as ``<command>_schema``."""
    store = ConfigStore.instance()
    for name, schema in SCHEMAS.items():
        store.store(name=f"{name}_schema", node=schema)
    for type_ in POLICIES:  # each method's schema, under which its presets in configs/policy/ compose
        store.store(group="policy", name=f"{type_}_schema", node=config_class(type_))
