"""equirobot_envs: MimicGen-benchmark manipulation tasks as Gymnasium environments.

Importing the package registers every task variant as ``equirobot/<Task>-<Variant>-v0``. It imports
neither robosuite nor MuJoCo: those load with the first environment (``equirobot_envs.base``), so the
declarations (``features``, ``geometry``, ``config``) serve a policy on a computer without the simulator.
"""

from __future__ import annotations

import logging
import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering; must be set before mujoco is imported
# robosuite logs a page of warnings at import (no private macro file, optional robots missing).
logging.getLogger("robosuite_logs").addFilter(lambda record: record.levelno >= logging.ERROR)

from equirobot_envs.registry import CATALOGUE, TaskSpec, config_name, env_id, get_task, task_specs  # noqa: E402


def register_tasks() -> None:
    """Register every task variant with gymnasium (idempotent)."""
    import gymnasium as gym

    for _, name, variant, horizon in CATALOGUE:
        if env_id(name, variant) not in gym.registry:
            gym.register(
                id=env_id(name, variant),
                entry_point="equirobot_envs.base:TaskEnv",
                max_episode_steps=horizon,
                kwargs={"task": config_name(name, variant)},
            )


register_tasks()

__all__ = ["TaskSpec", "get_task", "register_tasks", "task_specs"]
