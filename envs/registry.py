"""The task registry: one :class:`TaskSpec` per task variant, collected from ``equirobot_envs.tasks``.

Each task module defines its variants in a ``VARIANTS`` tuple; :func:`task_specs` builds the registry
afresh on each call, so no caller can mutate a shared default.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from equirobot_envs.observations import Workspace

if TYPE_CHECKING:
    from equirobot_envs.base import TaskEnv
    from equirobot_envs.experts import Waypoint

TASK_MODULES = (
    "stack",
    "nut_assembly",
    "pick_place",
    "stack_three",
    "three_piece_assembly",
    "threading",
    "coffee",
    "hammer_cleanup",
    "mug_cleanup",
    "kitchen",
)

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
    """Initial-distribution variant: ``"D0"`` (narrow), ``"D1"``, ``"D2"`` (wider)."""
    scene_class: type
    """The robosuite environment class (mixing in :class:`~equirobot_envs.scene.SceneMixin`)."""
    horizon: int
    """Rollout horizon in steps at 20 Hz (the benchmark's evaluation horizon)."""
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
        return f"equirobot/{self.name}-{self.variant}-v0"

    @property
    def config_name(self) -> str:
        snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in self.name).lstrip("_")
        return f"{snake}_{self.variant.lower()}"


def task_specs() -> dict[str, TaskSpec]:
    """All task variants keyed by config name (``"stack_d1"``), in registry order."""
    specs: dict[str, TaskSpec] = {}
    for module in TASK_MODULES:
        for spec in importlib.import_module(f"equirobot_envs.tasks.{module}").VARIANTS:
            specs[spec.config_name] = spec
    return specs


def get_task(name: str) -> TaskSpec:
    """Look a task up by config name (``stack_d1``) or gymnasium id (``equirobot/Stack-D1-v0``)."""
    specs = task_specs()
    by_id = {spec.env_id: spec for spec in specs.values()}
    if name in specs:
        return specs[name]
    if name in by_id:
        return by_id[name]
    raise ValueError(
        f"unknown task {name!r}; valid tasks: {sorted(specs)} (or their ids, e.g. {next(iter(by_id))})"
    )
