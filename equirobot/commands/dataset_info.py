"""``equirobot dataset info <path>``: episodes, lengths, keys, shapes and action ranges of a dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from equirobot.config import DatasetConfig
from equirobot.data.replay_buffer import DatasetError, ReplayBuffer
from equirobot.data.robomimic_hdf5 import open_hdf5, read_demo


def summarize(path: Path) -> dict:
    """Episode count, lengths, per-key shape/dtype, and per-dimension action ranges."""
    if path.suffix == ".zarr" or (path / "meta").exists():
        buffer = ReplayBuffer.open(path)
        for key in buffer.keys:  # non-finite values, named by key, step and episode
            buffer.check_finite(key, np.asarray(buffer[key][: buffer.n_steps]))
        lengths = np.diff(np.concatenate([[0], buffer.episode_ends]))
        keys = {k: (tuple(buffer[k].shape[1:]), str(buffer[k].dtype)) for k in buffer.keys}
        actions = {
            k: np.asarray(buffer[k][: buffer.n_steps]) for k in ("actions", "actions_abs") if k in buffer.keys
        }
    else:
        with open_hdf5(path) as f:
            if "data" not in f:
                raise DatasetError(f"{path}: missing group 'data'")
            names = sorted(
                (k for k in f["data"] if k.startswith("demo_")), key=lambda k: int(k.split("_")[1])
            )
            demos = [read_demo(f, name, path) for name in names]
        if not demos:
            raise DatasetError(f"{path}: no demos under 'data'")
        for name, demo in zip(names, demos, strict=True):
            for key, values in demo.arrays().items():
                if values.dtype.kind == "f" and not np.isfinite(values).all():
                    step = int(np.argmax(~np.isfinite(values.reshape(len(values), -1)).all(axis=1)))
                    raise DatasetError(f"{path}: 'data/{name}/{key}' is not finite at step {step}")
        lengths = np.array([len(d) for d in demos])
        keys = {k: (v.shape[1:], str(v.dtype)) for k, v in demos[0].arrays().items()}
        actions = {
            k: np.concatenate([d.arrays()[k] for d in demos])
            for k in ("actions", "actions_abs")
            if k in demos[0].arrays()
        }
    ranges = {k: (v.min(axis=0), v.max(axis=0)) for k, v in actions.items()}
    return {"episodes": len(lengths), "lengths": lengths, "keys": keys, "action_ranges": ranges}


def run(cfg: DatasetConfig) -> dict:
    """Print the summary of ``cfg.path``."""
    path = Path(cfg.path)
    info = summarize(path)
    console = Console(width=150)
    lengths = info["lengths"]
    console.print(
        f"[bold]{path}[/bold]: {info['episodes']} episodes, {lengths.sum()} steps, length "
        f"min {lengths.min()} / mean {lengths.mean():.1f} / max {lengths.max()}"
    )
    table = Table("key", "shape per step", "dtype")
    for key, (shape, dtype) in info["keys"].items():
        table.add_row(key, str(tuple(shape)), dtype)
    console.print(table)
    for key, (low, high) in info["action_ranges"].items():
        console.print(f"{key} min: {np.array2string(low, precision=3)}")
        console.print(f"{key} max: {np.array2string(high, precision=3)}")
    return info
