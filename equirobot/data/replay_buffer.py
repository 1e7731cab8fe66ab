"""Zarr replay buffer: episodes concatenated over time, as Diffusion Policy's training code reads them.

Layout: ``data/<key>`` arrays of shape (total steps, ...) and ``meta/episode_ends`` (episodes,), the
exclusive end index of each episode. ``episode_ends`` is written last for every episode, so it is the
commit record: steps beyond its last entry (an episode interrupted mid-write) are ignored and
overwritten by the next append. Image-like arrays are chunked one frame per chunk and compressed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import zarr
from zarr.codecs import BloscCodec, BloscShuffle


class DatasetError(ValueError):
    """A dataset that is missing, truncated or inconsistent; the message names the file and key."""


OpenMode = Literal["r", "r+", "a", "w", "w-"]
"""zarr's access modes (``zarr.open_group``'s ``mode``)."""


def _compressor() -> BloscCodec:
    return BloscCodec(cname="zstd", clevel=3, shuffle=BloscShuffle.bitshuffle)


def _chunks(shape: tuple[int, ...]) -> tuple[int, ...]:
    """One frame per chunk for images/voxels/clouds; ~1000 steps for small vectors."""
    frame = int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1
    return (1, *shape[1:]) if frame >= 4096 else (max(1, 100_000 // max(frame, 1)), *shape[1:])


class ReplayBuffer:
    """Append-only episode storage in a zarr directory."""

    def __init__(self, root: zarr.Group, path: Path):
        self.root, self.path = root, path
        for group in ("data", "meta"):
            if group not in root:
                raise DatasetError(f"{path}: not a replay buffer, missing group {group!r}")
        if "episode_ends" not in self._group("meta"):
            raise DatasetError(f"{path}: missing key 'meta/episode_ends'")

    def _group(self, name: str) -> zarr.Group:
        """The group at ``name`` (``data`` or ``meta``) in the store."""
        node = self.root[name]
        if not isinstance(node, zarr.Group):
            raise DatasetError(f"{self.path}: '{name}' is an array, expected a group")
        return node

    def _array(self, name: str) -> zarr.Array:
        """The array at ``name`` (a path such as ``meta/episode_ends``) in the store."""
        node = self.root[name]
        if not isinstance(node, zarr.Array):
            raise DatasetError(f"{self.path}: '{name}' is a group, expected an array")
        return node

    @classmethod
    def create(cls, path: str | Path) -> ReplayBuffer:
        """A new, empty buffer; refuses to overwrite an existing path."""
        path = Path(path)
        if path.exists():
            raise FileExistsError(f"{path} exists; remove it or choose another path")
        root = zarr.open_group(str(path), mode="w")
        root.create_group("data")
        root.create_group("meta").create_array("episode_ends", shape=(0,), dtype=np.int64, chunks=(10_000,))
        return cls(root, path)

    @classmethod
    def open(cls, path: str | Path, mode: OpenMode = "r") -> ReplayBuffer:
        """An existing buffer (``mode="a"`` to append); raises :class:`DatasetError` naming what is wrong."""
        path = Path(path)
        if not path.exists():
            raise DatasetError(f"{path}: no such replay buffer")
        try:
            root = zarr.open_group(str(path), mode=mode)
        except Exception as error:  # zarr raises several types for an unreadable store
            raise DatasetError(f"{path}: not a readable zarr group ({error})") from error
        buffer = cls(root, path)
        buffer.validate()
        return buffer

    # -- reading ---------------------------------------------------------------------------------
    @property
    def episode_ends(self) -> np.ndarray:
        return np.asarray(self._array("meta/episode_ends")[:])

    @property
    def n_episodes(self) -> int:
        return int(self._array("meta/episode_ends").shape[0])

    @property
    def n_steps(self) -> int:
        ends = self._array("meta/episode_ends")
        return int(np.asarray(ends[ends.shape[0] - 1])) if ends.shape[0] else 0

    @property
    def keys(self) -> list[str]:
        return sorted(self._group("data").array_keys())

    def __getitem__(self, key: str) -> zarr.Array:
        if key not in self._group("data"):
            raise DatasetError(f"{self.path}: missing key 'data/{key}'; keys: {self.keys}")
        return self._array(f"data/{key}")

    def episode_slice(self, i: int) -> slice:
        if not 0 <= i < self.n_episodes:
            raise IndexError(f"{self.path}: episode {i} out of range [0, {self.n_episodes})")
        ends = self.episode_ends
        return slice(int(ends[i - 1]) if i else 0, int(ends[i]))

    def get_episode(self, i: int, keys: list[str] | None = None) -> dict[str, np.ndarray]:
        s = self.episode_slice(i)
        return {k: np.asarray(self[k][s]) for k in (keys or self.keys)}

    def validate(self) -> None:
        """Every data array covers at least the committed steps; episode ends increase."""
        ends = self.episode_ends
        if len(ends) and (np.any(np.diff(ends) <= 0) or ends[0] <= 0):
            raise DatasetError(f"{self.path}: 'meta/episode_ends' is not strictly increasing")
        for key in self.keys:
            if self[key].shape[0] < self.n_steps:
                raise DatasetError(
                    f"{self.path}: 'data/{key}' has {self[key].shape[0]} steps, episodes need {self.n_steps}"
                )

    def check_finite(self, key: str, values: np.ndarray) -> None:
        """Raise DatasetError naming the first step (and its episode) where ``data/<key>`` is not finite.

        ``values`` is ``data/<key>`` (or its first steps) as read; integer arrays cannot hold NaN.
        """
        values = np.asarray(values)
        if values.dtype.kind != "f" or len(values) == 0:
            return
        bad = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)
        if bad.any():
            step = int(np.argmax(bad))
            episode = int(np.searchsorted(self.episode_ends, step, side="right"))
            raise DatasetError(
                f"{self.path}: 'data/{key}' is not finite at step {step} (episode {episode}); "
                f"{int(bad.sum())} step(s) affected. Remove or re-collect those episodes"
            )

    # -- writing ---------------------------------------------------------------------------------
    def add_episode(self, episode: dict[str, np.ndarray]) -> None:
        """Append one episode: every key, same length; ``episode_ends`` last (the commit)."""
        lengths = {k: len(v) for k, v in episode.items()}
        if len(set(lengths.values())) != 1 or 0 in lengths.values():
            raise DatasetError(f"{self.path}: episode arrays must share a non-zero length, got {lengths}")
        if self.n_episodes and set(episode) != set(self.keys):
            raise DatasetError(
                f"{self.path}: episode keys {sorted(episode)} differ from the buffer's {self.keys}"
            )
        start, length = self.n_steps, next(iter(lengths.values()))
        data = self._group("data")
        for key, value in episode.items():
            value = np.asarray(value)
            if key not in data:
                data.create_array(
                    key,
                    shape=(0, *value.shape[1:]),
                    dtype=value.dtype,
                    chunks=_chunks(value.shape),
                    compressors=_compressor(),
                )
            array = self[key]
            if array.shape[1:] != value.shape[1:] or array.dtype != value.dtype:
                raise DatasetError(
                    f"{self.path}: 'data/{key}' holds {array.dtype}{array.shape[1:]}, "
                    f"episode gives {value.dtype}{value.shape[1:]}"
                )
            array.resize((start + length, *value.shape[1:]))  # drops any uncommitted tail
            array[start:] = value
        ends = self._array("meta/episode_ends")
        ends.resize((ends.shape[0] + 1,))
        ends[ends.shape[0] - 1] = start + length
