"""The task registry: one :class:`TaskSpec` per task variant, collected from ``equirobot_envs.tasks``.

Each task module defines its variants in a ``VARIANTS`` tuple; :func:`task_specs` builds the registry
afresh on each call, so no caller can mutate a shared default. :data:`CATALOGUE` lists the variants
without importing the task modules (which import robosuite), so that registering the gymnasium ids
and validating a task name stay light; :func:`task_specs` checks that the modules agree with it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from equirobot_envs.geometry import Workspace

if TYPE_CHECKING:
    from equirobot_envs.experts import Waypoint

# (task module, task name, variant, horizon): one line per registered variant.
CATALOGUE = (
    ("stack", "Stack", "D0", 400),
    ("stack", "Stack", "D1", 400),
    ("nut_assembly", "Square", "D0", 400),
    ("nut_assembly", "Square", "D2", 400),
    ("nut_assembly", "NutAssembly", "D0", 500),
    ("pick_place", "PickPlace", "D0", 1000),
    ("stack_three", "StackThree", "D0", 400),
    ("stack_three", "StackThree", "D1", 400),
    ("three_piece_assembly", "ThreePieceAssembly", "D0", 500),
    ("three_piece_assembly", "ThreePieceAssembly", "D1", 500),
    ("three_piece_assembly", "ThreePieceAssembly", "D2", 500),
    ("threading", "Threading", "D0", 400),
    ("threading", "Threading", "D1", 400),
    ("threading", "Threading", "D2", 400),
    ("coffee", "Coffee", "D0", 400),
    ("coffee", "Coffee", "D1", 400),
    ("coffee", "Coffee", "D2", 400),
    ("hammer_cleanup", "HammerCleanup", "D0", 500),
    ("hammer_cleanup", "HammerCleanup", "D1", 500),
    ("mug_cleanup", "MugCleanup", "D0", 500),
    ("mug_cleanup", "MugCleanup", "D1", 500),
    ("kitchen", "Kitchen", "D0", 800),
    ("kitchen", "Kitchen", "D1", 800),
    ("coffee_preparation", "CoffeePreparation", "D0", 800),
    ("coffee_preparation", "CoffeePreparation", "D1", 800),
)

# The closed-loop RL tasks of SO(2)-equivariant RL (Wang, Walters, Platt, ICLR 2022; BulletArm), on a
# gantry gripper in plain MuJoCo (``equirobot_envs.closed_loop``): one variant each, named without one.
CLOSED_LOOP = (
    ("block_picking", "BlockPicking", "", 100),
    ("block_pulling", "BlockPulling", "", 100),
    ("drawer_opening", "DrawerOpening", "", 100),
    ("block_stacking", "BlockStacking", "", 100),
)
# The open-loop pick-and-place tasks of Equivariant Q Learning in Spatial Action Spaces (Wang, Walters,
# Platt, CoRL 2021) on the same gantry gripper (``equirobot_envs.open_loop``): one action per primitive.
OPEN_LOOP = (("block_stacking_pick_place", "BlockStackingPickPlace", "", 10),)
# Gymnasium's MuJoCo control tasks with a mirror symmetry and a flip-asymmetric actuator, for relaxed
# equivariance (``equirobot_envs.flip_control``); their stock horizons.
CONTROL = (
    ("inverted_pendulum", "InvertedPendulum", "", 1000),
    ("inverted_double_pendulum", "InvertedDoublePendulum", "", 1000),
    ("reacher", "Reacher", "", 50),
)
CATALOGUES = {
    "mimicgen": CATALOGUE,
    "closed_loop": CLOSED_LOOP,
    "open_loop": OPEN_LOOP,
    "control": CONTROL,
}
"""Task family (``equirobot_envs.features.FAMILIES``) -> its catalogue."""
ENTRY_POINTS = {
    "mimicgen": "equirobot_envs.base:TaskEnv",
    "closed_loop": "equirobot_envs.closed_loop:ClosedLoopEnv",
    "open_loop": "equirobot_envs.open_loop:OpenLoopEnv",
    "control": "equirobot_envs.flip_control:make_env",
}

# The twelve tasks of the MimicGen benchmark (Equivariant Diffusion Policy's evaluation suite).
BENCHMARK = (
    ("Stack", "D1"),
    ("StackThree", "D1"),
    ("Square", "D2"),
    ("Threading", "D2"),
    ("Coffee", "D2"),
    ("ThreePieceAssembly", "D2"),
    ("HammerCleanup", "D1"),
    ("MugCleanup", "D1"),
    ("Kitchen", "D1"),
    ("NutAssembly", "D0"),
    ("PickPlace", "D0"),
    ("CoffeePreparation", "D1"),
)


class TaskEnv(Protocol):
    """The privileged env API that scripted experts, subtask signals and MimicGen generation read.

    ``equirobot_envs.base.TaskEnv`` implements it; a learned policy never sees it (it gets observations).
    """

    task: TaskSpec
    control: str
    workspace_center: np.ndarray
    scene: Any
    """The robosuite environment (MuJoCo model and data, robot, objects)."""
    np_random: np.random.Generator
    expert_speed_scale: float
    """:class:`~equirobot_envs.experts.ScriptedExpert` multiplies waypoint speeds by this."""
    expert_max_turn: float
    """Radians per step that :class:`~equirobot_envs.experts.ScriptedExpert` turns the gripper at most."""

    def eef_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """World position (3,) and rotation (3, 3) of the gripper site."""
        ...

    def body_pose(self, body: str) -> tuple[np.ndarray, np.ndarray]:
        """World position and rotation of a task object (or any MuJoCo body)."""
        ...

    def get_state(self) -> np.ndarray: ...

    def set_state(self, state: np.ndarray) -> None: ...

    def is_success(self) -> bool: ...

    def pose_to_action(self, pos: np.ndarray, rot: np.ndarray, gripper: float) -> np.ndarray:
        """The action, in the env's control mode, that drives the gripper site to a world pose."""
        ...


SELECTIONS = ("random", "nearest")
SELECTION_K = 3


@dataclass(frozen=True)
class Subtask:
    """One object-centric segment of a task, as MimicGen splits demonstrations.

    The segment moves relative to ``object`` (a key of ``TaskSpec.objects``; ``None``: the world frame)
    and ends ``offset`` steps (drawn uniformly) after ``signal`` first turns true; the last subtask has
    no signal and ends with the demonstration.
    """

    object: str | None
    signal: Callable[[TaskEnv], bool] | None = None
    offset: tuple[int, int] = (10, 20)
    symmetry: int = 1
    """The object looks the same after turns of 2 pi / symmetry about its z axis (cubes: 4)."""
    selection: str = "random"
    """How generation picks the source demo whose segment it replays: ``"random"``, or ``"nearest"``
    (MimicGen's nearest_neighbor_object: uniformly among the ``SELECTION_K`` source demos whose object
    pose at the segment's start is nearest to the object's pose now)."""

    def __post_init__(self) -> None:
        if self.selection not in SELECTIONS:
            raise ValueError(f"unknown selection {self.selection!r}; valid: {list(SELECTIONS)}")


@dataclass(frozen=True)
class TaskSpec:
    """Everything the framework needs to know about one task variant."""

    name: str
    """Task name as in the MimicGen benchmark, e.g. ``"Stack"``."""
    variant: str
    """Initial-distribution variant: ``"D0"`` (narrow), ``"D1"``, ``"D2"`` (wider); ``""`` for a task with
    one (the closed-loop tasks)."""
    scene_class: type
    """The robosuite environment class (mixing in :class:`~equirobot_envs.scene.SceneMixin`); for a
    closed-loop task its :class:`~equirobot_envs.closed_loop.Scene` subclass."""
    horizon: int
    """Rollout horizon in env steps (MimicGen tasks: at 20 Hz, the benchmark's evaluation horizon)."""
    objects: dict[str, str]
    """Object name -> MuJoCo body whose pose enters the ``object`` observation, in order."""
    expert: Callable[[TaskEnv], Iterator[Waypoint]]
    """Scripted expert: yields waypoints, reading privileged object poses as it goes."""
    workspace: Workspace
    description: str
    scene_kwargs: dict[str, Any] = field(default_factory=dict)
    subtasks: tuple[Subtask, ...] = ()
    """MimicGen's segmentation of a demonstration (fact sheet), for demonstration generation."""
    select_source_per_subtask: bool = True
    """MimicGen's ``select_src_per_subtask``: pick a source demo for every subtask; ``False``: pick one
    for the first subtask and follow it to the end (when a later subtask depends on how an earlier
    one was done, e.g. where the fingers hold the nut that goes onto the peg)."""

    @property
    def env_id(self) -> str:
        return env_id(self.name, self.variant)

    @property
    def reflections(self) -> Any:
        """A control task's mirror symmetry (``equirobot_envs.flip_control.Reflections``); else ``None``."""
        return getattr(self.scene_class, "reflections", None)

    @property
    def family(self) -> str:
        return task_family(self.config_name)

    @property
    def config_name(self) -> str:
        return config_name(self.name, self.variant)


def env_id(name: str, variant: str) -> str:
    """The gymnasium id of a task variant: ``equirobot/Stack-D1-v0`` (no variant: ``BlockPicking-v0``)."""
    return f"equirobot/{name}-{variant}-v0" if variant else f"equirobot/{name}-v0"


def config_name(name: str, variant: str) -> str:
    """The config name of a task variant: ``stack_d1``; without a variant ``block_picking``."""
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
    return f"{snake}_{variant.lower()}" if variant else snake


def _find(name: str) -> tuple[str, tuple[str, str, str, int]] | None:
    for family, catalogue in CATALOGUES.items():
        for entry in catalogue:
            if name in (config_name(*entry[1:3]), env_id(*entry[1:3])):
                return family, entry
    return None


def resolve_task(name: str) -> tuple[str, str, str, int]:
    """The catalogue entry of a config name or gymnasium id, without importing any task module.

    Every catalogue is searched: :data:`CATALOGUE` (MimicGen), :data:`CLOSED_LOOP`, :data:`OPEN_LOOP`,
    :data:`CONTROL`.
    """
    found = _find(name)
    if found is not None:
        return found[1]
    valid = [config_name(n, v) for catalogue in CATALOGUES.values() for _, n, v, _ in catalogue]
    raise ValueError(
        f"unknown task {name!r}; valid tasks: {valid} (or their ids, e.g. {env_id(*CATALOGUE[0][1:3])})"
    )


def task_family(name: str) -> str:
    """The family (``"mimicgen"``, ``"closed_loop"``, ``"open_loop"``, ``"control"``) of a task name or id."""
    resolve_task(name)  # raises with the list of valid tasks
    found = _find(name)
    assert found is not None
    return found[0]


def _specs(catalogue: tuple[tuple[str, str, str, int], ...], label: str) -> dict[str, TaskSpec]:
    specs: dict[str, TaskSpec] = {}
    for module in dict.fromkeys(entry[0] for entry in catalogue):
        for spec in importlib.import_module(f"equirobot_envs.tasks.{module}").VARIANTS:
            specs[spec.config_name] = spec
    listed = {(n, v, h) for _, n, v, h in catalogue}
    defined = {(s.name, s.variant, s.horizon) for s in specs.values()}
    if listed != defined:
        raise RuntimeError(
            f"registry.{label} {sorted(listed)} disagrees with the task modules {sorted(defined)}"
        )
    return specs


def task_specs() -> dict[str, TaskSpec]:
    """The MimicGen task variants (:data:`CATALOGUE`) keyed by config name (``"stack_d1"``), in order."""
    return _specs(CATALOGUE, "CATALOGUE")


def closed_loop_specs() -> dict[str, TaskSpec]:
    """The closed-loop RL tasks (:data:`CLOSED_LOOP`) keyed by config name (``"block_picking"``)."""
    return _specs(CLOSED_LOOP, "CLOSED_LOOP")


def open_loop_specs() -> dict[str, TaskSpec]:
    """The open-loop pick-and-place tasks (:data:`OPEN_LOOP`) keyed by config name."""
    return _specs(OPEN_LOOP, "OPEN_LOOP")


def control_specs() -> dict[str, TaskSpec]:
    """The flip-asymmetric control tasks (:data:`CONTROL`) keyed by config name (``"reacher"``)."""
    return _specs(CONTROL, "CONTROL")


FAMILY_SPECS: dict[str, Callable[[], dict[str, TaskSpec]]] = {
    "mimicgen": task_specs,
    "closed_loop": closed_loop_specs,
    "open_loop": open_loop_specs,
    "control": control_specs,
}
"""Task family -> the function that builds its registry."""


def get_task(name: str) -> TaskSpec:
    """Look a task of any catalogue up by config name (``stack_d1``) or gymnasium id.

    Ids: ``equirobot/Stack-D1-v0``; closed- and open-loop tasks have no variant: ``block_picking``,
    ``equirobot/BlockPicking-v0``, ``equirobot/BlockStackingPickPlace-v0``.
    """
    _, task, variant, _ = resolve_task(name)
    return FAMILY_SPECS[task_family(name)]()[config_name(task, variant)]
