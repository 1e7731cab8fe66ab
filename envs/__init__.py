"""equirobot_envs: MimicGen-benchmark manipulation tasks and closed-loop RL tasks as Gymnasium environments.

Importing the package registers every MimicGen task variant as ``equirobot/<Task>-<Variant>-v0`` and
every closed-loop task (``equirobot_envs.closed_loop``), open-loop task (``equirobot_envs.open_loop``)
and flip-asymmetric control task (``equirobot_envs.flip_control``) as ``equirobot/<Task>-v0``. It imports
neither robosuite nor MuJoCo: those load with the first environment (``equirobot_envs.base``), so the
declarations (``features``, ``geometry``, ``config``) serve a policy on a computer without the simulator.
"""

from __future__ import annotations

import logging
import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering; must be set before mujoco is imported
# robosuite logs a page of warnings at import (no private macro file, optional robots missing).
logging.getLogger("robosuite_logs").addFilter(lambda record: record.levelno >= logging.ERROR)

from equirobot_envs.registry import (  # noqa: E402
    CATALOGUES,
    ENTRY_POINTS,
    TaskSpec,
    closed_loop_specs,
    config_name,
    control_specs,
    env_id,
    get_task,
    open_loop_specs,
    task_specs,
)


def register_tasks() -> None:
    """Register every task variant of every family with gymnasium (idempotent)."""
    import gymnasium as gym

    for family, catalogue in CATALOGUES.items():
        for _, name, variant, horizon in catalogue:
            if env_id(name, variant) not in gym.registry:
                gym.register(
                    id=env_id(name, variant),
                    entry_point=ENTRY_POINTS[family],
                    max_episode_steps=horizon,
                    kwargs={"task": config_name(name, variant)},
                )


register_tasks()

__all__ = [
    "TaskSpec",
    "closed_loop_specs",
    "control_specs",
    "get_task",
    "open_loop_specs",
    "register_tasks",
    "task_specs",
]
