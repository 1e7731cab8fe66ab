"""robomimic / MimicGen hdf5: the exchange format of demonstration datasets.

Layout (robomimic's)::

    data/                      attrs: total (steps), env_args (JSON)
        demo_<i>/              attrs: num_samples, model_file (MJCF xml of the scene)
            obs/<key>          (T, ...)
            actions            (T, A)  in the dataset's control mode
            actions_abs        (T, 10) absolute [pos, rot6d, gripper] (equirobot addition)
            states             (T, S)  flattened MuJoCo state, for replay and re-rendering
            rewards, dones     (T,)

Files are written under a temporary name and renamed when complete, so a crash never leaves a file
that looks finished.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from equirobot.data.replay_buffer import DatasetError

DEMO_KEYS = ("actions", "states", "rewards", "dones")


@dataclass
class Demo:
    """One demonstration; arrays share their first dimension T."""

    obs: dict[str, np.ndarray]
    actions: np.ndarray
    states: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    model_file: str = ""
    actions_abs: np.ndarray | None = None
    ep_meta: str = "{}"
    """JSON of ``TaskEnv.episode_meta()``: restore it with ``set_episode_meta`` before replaying states."""

    def __post_init__(self) -> None:
        lengths = {k: len(v) for k, v in self.arrays().items()}
        if len(set(lengths.values())) != 1:
            raise DatasetError(f"demo arrays must share their length, got {lengths}")

    def arrays(self) -> dict[str, np.ndarray]:
        """Every per-step array, obs keys prefixed with ``obs/``."""
        out = {f"obs/{k}": v for k, v in self.obs.items()}
        out.update(actions=self.actions, states=self.states, rewards=self.rewards, dones=self.dones)
        if self.actions_abs is not None:
            out["actions_abs"] = self.actions_abs
        return out

    def __len__(self) -> int:
        return len(self.actions)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; rename it to ``path`` only if the block succeeds."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_hdf5(path: str | Path, demos: Iterable[Demo], env_args: dict) -> int:
    """Write demos as ``data/demo_0..`` to ``path`` (refusing to overwrite); returns the demo count."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists; remove it or choose another path")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        data = f.create_group("data")
        total, count = 0, 0
        for i, demo in enumerate(demos):
            group = data.create_group(f"demo_{i}")
            for key, value in demo.arrays().items():
                image_like = value.ndim >= 3
                group.create_dataset(
                    key,
                    data=value,
                    compression="gzip" if image_like else None,
                    chunks=(1, *value.shape[1:]) if image_like else None,
                )
            group.attrs["num_samples"] = len(demo)
            group.attrs["model_file"] = demo.model_file
            group.attrs["ep_meta"] = demo.ep_meta
            total, count = total + len(demo), i + 1
        data.attrs["total"] = total
        data.attrs["env_args"] = json.dumps(env_args)
    return count


def _demo_names(f: h5py.File, path: Path) -> list[str]:
    if "data" not in f:
        raise DatasetError(f"{path}: missing group 'data'")
    names = [k for k in f["data"] if k.startswith("demo_")]
    return sorted(names, key=lambda k: int(k.split("_")[1]))


def read_demo(f: h5py.File, name: str, path: Path) -> Demo:
    """One demo of an open file; missing keys and mismatched lengths raise naming file and key."""
    group = f["data"][name]
    for key in (*DEMO_KEYS, "obs"):
        if key not in group:
            raise DatasetError(f"{path}: missing key 'data/{name}/{key}'")
    try:
        obs = {k: group["obs"][k][()] for k in group["obs"]}
        arrays = {k: group[k][()] for k in DEMO_KEYS}
        actions_abs = group["actions_abs"][()] if "actions_abs" in group else None
    except OSError as error:  # truncated or corrupt chunks
        raise DatasetError(f"{path}: cannot read 'data/{name}' ({error})") from error
    model_file = group.attrs.get("model_file", "")
    ep_meta = group.attrs.get("ep_meta", "{}")
    try:
        return Demo(obs=obs, actions_abs=actions_abs, model_file=model_file, ep_meta=ep_meta, **arrays)
    except DatasetError as error:
        raise DatasetError(f"{path}: 'data/{name}': {error}") from None


def open_hdf5(path: str | Path) -> h5py.File:
    """Open a dataset for reading, turning h5py's errors into one that names the file."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file")
    try:
        return h5py.File(path, "r")
    except OSError as error:
        raise DatasetError(f"{path}: not a readable hdf5 file ({error})") from None


def read_hdf5(path: str | Path) -> tuple[list[Demo], dict]:
    """All demos and the ``env_args`` of a robomimic/MimicGen file."""
    path = Path(path)
    with open_hdf5(path) as f:
        demos = [read_demo(f, name, path) for name in _demo_names(f, path)]
        env_args = json.loads(f["data"].attrs.get("env_args", "{}"))
    return demos, env_args
