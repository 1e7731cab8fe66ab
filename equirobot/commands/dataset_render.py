"""``equirobot dataset render in=<hdf5> obs=[point_cloud,voxels] out=<hdf5>``: add observations by replay.

Every stored MuJoCo state is restored in the dataset's task and observed in the requested modes, so a
dataset collected with low-dimensional observations (or an official MimicGen file, whose states and
scene equirobot can rebuild) gains point clouds, voxels, images or heightmaps. Delta actions also get
their absolute equivalent (``actions_abs``) by replaying the controller's goal computation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, cast

import gymnasium as gym
import numpy as np
from rich.console import Console
from tqdm import tqdm

from equirobot.config import DatasetRenderConfig
from equirobot.data.replay_buffer import DatasetError
from equirobot.data.robomimic_hdf5 import Demo, open_hdf5, read_demo, write_hdf5
from equirobot_envs.registry import get_task

if TYPE_CHECKING:
    from equirobot_envs.base import TaskEnv


def task_of(env_args: dict, path: Path) -> str:
    """The equirobot task of a dataset: its own env name, or an official MimicGen one (``Stack_D1``)."""
    name = env_args.get("env_name", "")
    for candidate in (name, name.lower()):
        try:
            return get_task(candidate).env_id
        except ValueError:
            continue
    raise DatasetError(f"{path}: env_args names {name!r}, which is no equirobot task (see `equirobot tasks`)")


def rendered(path: Path, env: gym.Env, add_abs: bool) -> Iterator[Demo]:
    """Each demo of ``path`` with the env's observations (and absolute actions) recomputed by replay."""
    task_env = cast("TaskEnv", env.unwrapped)  # gymnasium types `unwrapped` as the base Env
    state_size = len(task_env.get_state())
    with open_hdf5(path) as f:
        names = sorted((k for k in f["data"] if k.startswith("demo_")), key=lambda k: int(k.split("_")[1]))
        for name in tqdm(names, desc=f"render {path.name}", unit="demo"):
            demo = read_demo(f, name, path)
            if demo.states.shape[1] != state_size:
                raise DatasetError(
                    f"{path}: 'data/{name}/states' has {demo.states.shape[1]} entries per step, but "
                    f"equirobot's {task_env.task.env_id} scene has {state_size}: the file was recorded in a "
                    "different scene (other objects or robot), which equirobot cannot replay"
                )
            task_env.set_episode_meta(json.loads(demo.ep_meta))
            frames: dict[str, list] = {}
            for state in demo.states:
                task_env.set_state(state)
                for key, value in task_env.observe().items():
                    frames.setdefault(key, []).append(value)
            obs = {**demo.obs, **{k: np.stack(v) for k, v in frames.items()}}
            actions_abs = demo.actions_abs
            if add_abs:
                actions_abs = np.stack(
                    [task_env.absolute_action(s, a) for s, a in zip(demo.states, demo.actions, strict=True)]
                )
            yield Demo(
                obs=obs,
                actions=demo.actions,
                states=demo.states,
                rewards=demo.rewards,
                dones=demo.dones,
                model_file=demo.model_file,
                actions_abs=actions_abs,
                ep_meta=demo.ep_meta,
            )


def run(cfg: DatasetRenderConfig) -> Path:
    """Write ``cfg.out`` (default: ``<in>_<modes>.hdf5``) with the added observations."""
    import equirobot_envs  # noqa: F401  (registers the tasks)

    source = Path(cfg.input)
    with open_hdf5(source) as f:
        if "data" not in f:
            raise DatasetError(f"{source}: missing group 'data'")
        env_args = json.loads(f["data"].attrs.get("env_args", "{}"))
        first = next((k for k in f["data"] if k.startswith("demo_")), None)
        if first is None:
            raise DatasetError(f"{source}: no demos under 'data': nothing to render")
        action_dim = f["data"][first]["actions"].shape[1] if first and "actions" in f["data"][first] else None
    env_id = task_of(env_args, source)
    control = "delta" if action_dim == 7 else "abs"
    env = gym.make(env_id, obs=tuple(cfg.obs), control=control)
    env.reset(seed=0)
    out = Path(cfg.out) if cfg.out else source.with_name(f"{source.stem}_{'+'.join(cfg.obs)}.hdf5")
    with open_hdf5(source) as f:
        has_abs = first is not None and "actions_abs" in f["data"][first]
    count = write_hdf5(
        out,
        rendered(source, env, add_abs=control == "delta" and not has_abs),
        {**env_args, "rendered_obs": list(cfg.obs)},
    )
    env.close()
    Console().print(f"{count} demos rendered with {list(cfg.obs)}: {out}")
    return out
