"""``equirobot dataset video <path> demo=3`` and ``equirobot dataset plot <path>``.

Videos are rendered by replaying a demo's stored MuJoCo states in the task it was collected in (so any
dataset with states can be watched, whatever observations it stores); plots show end-effector paths.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, cast

import gymnasium as gym
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from rich.console import Console  # noqa: E402

from equirobot.config import DatasetViewConfig  # noqa: E402
from equirobot.data.replay_buffer import DatasetError  # noqa: E402
from equirobot.data.robomimic_hdf5 import Demo, read_hdf5  # noqa: E402
from equirobot.evaluation.episode import render_frame, write_video  # noqa: E402

if TYPE_CHECKING:
    from equirobot_envs.base import TaskEnv


def _demos(path: Path) -> tuple[list[Demo], dict]:
    if path.suffix != ".hdf5":
        raise DatasetError(f"{path}: dataset video/plot read robomimic hdf5 files (with states)")
    demos, env_args = read_hdf5(path)
    if not demos:
        raise DatasetError(f"{path}: no demos under 'data'")
    return demos, env_args


def video(cfg: DatasetViewConfig) -> Path:
    """Replay demo ``cfg.demo``'s states and write an mp4 to the run folder."""
    import equirobot_envs  # noqa: F401  (registers the tasks)

    path = Path(cfg.path)
    demos, env_args = _demos(path)
    if not 0 <= cfg.demo < len(demos):
        raise DatasetError(f"{path}: demo={cfg.demo} out of range, the file has demos 0..{len(demos) - 1}")
    if env_args.get("type") != "equirobot" or env_args.get("env_name") not in gym.registry:
        raise DatasetError(f"{path}: 'env_args' names no equirobot task ({env_args.get('env_name')!r})")
    env = gym.make(
        env_args["env_name"], render_mode="rgb_array", render_size=cfg.size, render_camera=cfg.camera
    )
    env.reset(seed=0)
    task_env = cast("TaskEnv", env.unwrapped)  # gymnasium types `unwrapped` as the base Env
    task_env.set_episode_meta(json.loads(demos[cfg.demo].ep_meta))
    frames = []
    for state in demos[cfg.demo].states:
        task_env.set_state(state)
        frames.append(render_frame(env))
    env.close()
    out = Path(HydraConfig.get().runtime.output_dir) / f"{path.stem}_demo_{cfg.demo}.mp4"
    write_video(out, frames, fps=20)
    Console().print(f"written: {out}")
    return out


def plot(cfg: DatasetViewConfig) -> Path:
    """End-effector xy paths (top view) and heights over time of every demo, as a png in the run folder."""
    path = Path(cfg.path)
    demos, _ = _demos(path)
    if any("robot0_eef_pos" not in d.obs for d in demos):
        raise DatasetError(f"{path}: missing key 'obs/robot0_eef_pos'")
    fig, (top, height) = plt.subplots(1, 2, figsize=(12, 5))
    for i, demo in enumerate(demos):
        pos = demo.obs["robot0_eef_pos"]
        top.plot(pos[:, 0], pos[:, 1], lw=0.8, alpha=0.7)
        top.scatter(pos[-1, 0], pos[-1, 1], s=8)
        height.plot(pos[:, 2], lw=0.8, alpha=0.7, label=f"demo {i}" if i < 10 else None)
    top.set(xlabel="x (m)", ylabel="y (m)", title=f"end-effector paths, top view ({len(demos)} demos)")
    top.set_aspect("equal")
    height.set(xlabel="step", ylabel="z (m)", title="end-effector height")
    out = Path(HydraConfig.get().runtime.output_dir) / f"{path.stem}_eef.png"
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    Console().print(f"written: {out}")
    return out
