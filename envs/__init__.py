"""equirobot_envs: MimicGen-benchmark manipulation tasks as Gymnasium environments.

Importing the package registers every task variant as ``equirobot/<Task>-<Variant>-v0``.
"""

from __future__ import annotations

import logging
import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering; must be set before mujoco is imported
# robosuite logs a page of warnings at import (no private macro file, optional robots missing).
logging.getLogger("robosuite_logs").addFilter(lambda record: record.levelno >= logging.ERROR)

import gymnasium as gym  # noqa: E402

from equirobot_envs.registry import TaskSpec, get_task, task_specs  # noqa: E402


def register_tasks() -> None:
    """Register every task variant with gymnasium (idempotent)."""
    for spec in task_specs().values():
        if spec.env_id not in gym.registry:
            gym.register(
                id=spec.env_id,
                entry_point="equirobot_envs.base:TaskEnv",
                max_episode_steps=spec.horizon,
                kwargs={"task": spec.config_name},
            )


register_tasks()

__all__ = ["TaskSpec", "get_task", "register_tasks", "task_specs"]
