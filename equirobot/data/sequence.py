"""Training samples from a zarr replay buffer: observation histories and action chunks.

A sample starting at step t of an episode holds the policy inputs of steps t .. t + n_obs - 1 and the
actions of steps t .. t + horizon - 1. Windows may start up to ``n_obs - 1`` steps before an episode
and end up to ``n_action - 1`` steps after it; steps outside repeat the first or last one, as Diffusion
Policy pads, so every executed action of every demo is a training target.

Small inputs (low-dim vectors, point clouds) are loaded into memory once; large ones (voxels, images)
are read from the zarr store per sample, where each frame is its own chunk.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from equirobot.data.inputs import ACTION, LOWDIM, lowdim_input, scene_input
from equirobot.data.replay_buffer import DatasetError, ReplayBuffer
from equirobot_envs.features import control_mode, mode_features

IN_MEMORY_BYTES = 2 * 1024**3


class SequenceDataset(torch.utils.data.Dataset):
    """``{"obs": {input: (n_obs, ...)}, "action": (horizon, A)}`` samples of a replay buffer."""

    def __init__(
        self,
        path: str | Path,
        modes: tuple[str, ...] | list[str],
        control: str,
        horizon: int = 16,
        n_obs: int = 2,
        n_action: int = 8,
        max_episodes: int | None = None,
    ):
        self.path, self.modes = Path(path), tuple(modes)
        action_key = control_mode(control).dataset_key
        features = mode_features(modes)
        if not 1 <= n_obs <= horizon or not 1 <= n_action <= horizon - n_obs + 1:
            raise ValueError(
                f"need 1 <= n_obs <= horizon and n_obs + n_action - 1 <= horizon, got "
                f"n_obs={n_obs}, n_action={n_action}, horizon={horizon}"
            )
        self.horizon, self.n_obs = horizon, n_obs
        buffer = ReplayBuffer.open(self.path)
        n_episodes = buffer.n_episodes if max_episodes is None else min(max_episodes, buffer.n_episodes)
        if n_episodes == 0:
            raise DatasetError(f"{self.path}: no episodes")
        ends = buffer.episode_ends[:n_episodes]
        self.n_steps = int(ends[-1])
        for f in features:  # stored as declared (equirobot_envs.features)?
            if f.is_policy_input and np.dtype(buffer[f.key].dtype).kind != np.dtype(f.dtype).kind:
                dtype = buffer[f.key].dtype
                raise DatasetError(
                    f"{self.path}: 'data/{f.key}' has dtype {dtype}, its feature declares {f.dtype}"
                )
        self.actions = np.asarray(buffer[action_key][: self.n_steps], dtype=np.float32)
        buffer.check_finite(action_key, self.actions)
        # Low-dim inputs come from the raw keys in one vectorised pass; scene views stay as stored.
        lowdim = tuple(f for f in features if f.group_action == "lowdim")
        raw = {f.key: np.asarray(buffer[f.key][: self.n_steps]) for f in lowdim}
        for key, values in raw.items():
            buffer.check_finite(key, values)
        self.inputs: dict[str, np.ndarray] = {LOWDIM: lowdim_input(raw, lowdim)}
        self._lazy: dict = {}
        self._features = {f.key: f for f in features if f.is_policy_input and f.group_action != "lowdim"}
        for key, feature in self._features.items():  # scene inputs are stored under their own names
            array = buffer[key]
            if array.nbytes * self.n_steps / max(array.shape[0], 1) <= IN_MEMORY_BYTES:
                values = np.asarray(array[: self.n_steps])
                buffer.check_finite(key, values)
                self.inputs[key] = scene_input(feature, values)
            else:
                self._lazy[key] = array
        # Every window start, with the episode bounds it is clamped to.
        starts = np.concatenate([[0], ends[:-1]])
        self.windows = np.array(
            [
                (t, s, e)
                for s, e in zip(starts, ends, strict=True)
                for t in range(s - (n_obs - 1), e - horizon + (n_action - 1) + 1)
            ],
            dtype=np.int64,
        )
        self.n_episodes = n_episodes

    def __len__(self) -> int:
        return len(self.windows)

    def _indices(self, i: int) -> np.ndarray:
        t, s, e = self.windows[i]
        return np.clip(t + np.arange(self.horizon), s, e - 1)

    def __getitem__(self, i: int) -> dict:
        idx = self._indices(i)
        obs_idx = idx[: self.n_obs]
        obs = {k: torch.from_numpy(v[obs_idx]) for k, v in self.inputs.items()}
        for key, array in self._lazy.items():
            block = array[int(obs_idx[0]) : int(obs_idx[-1]) + 1]
            obs[key] = torch.from_numpy(scene_input(self._features[key], block[obs_idx - obs_idx[0]]))
        return {"obs": obs, ACTION: torch.from_numpy(self.actions[idx])}

    def shapes(self) -> dict[str, list[int]]:
        """Per-frame shape of every policy input."""
        first = self[0]["obs"]
        return {k: list(v.shape[1:]) for k, v in first.items()}

    def statistics_data(self, key: str, max_frames: int = 2000) -> np.ndarray:
        """Values of an input (or ``action``) to fit a normaliser on.

        Every step of ``lowdim`` and ``action``; up to ``max_frames`` evenly spaced frames of scene inputs.
        """
        if key == ACTION:
            return self.actions
        if key == LOWDIM:
            return self.inputs[key]
        frames = np.linspace(0, self.n_steps - 1, min(max_frames, self.n_steps)).astype(int)
        return self.inputs[key][frames] if key in self.inputs else self._lazy[key].oindex[frames]
