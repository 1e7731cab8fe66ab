"""Batch sources of the trainer: where each step's batch comes from.

A source yields the batches of steps ``start, start + 1, ..., stop - 1`` and can save and restore what it
owns for an exact resume. The offline source draws windows of a :class:`SequenceDataset`; the online
source (``equirobot.training.online``: a vector-env collector filling the replay buffer, for
reinforcement learning) implements the same methods, collecting between batches with the policy being
trained.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np
import torch

from equirobot.data.sequence import SequenceDataset


class BatchSource(Protocol):
    """What the trainer draws batches from."""

    def batches(self, start: int, stop: int) -> Iterator[dict[str, Any]]:
        """The batch of every step in ``[start, stop)``, in order."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """What an exact resume needs (JSON-able, or tensors); ``{}`` for a stateless source."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def progress(self) -> dict[str, float]:
        """Numbers to log beside the losses (an online source: env steps, training success)."""
        ...


class StepBatches(torch.utils.data.Sampler):
    """Batch indices of steps ``start, start + 1, ...``; step s draws them with the seed (seed, s, rank)."""

    def __init__(self, n: int, batch_size: int, seed: int, start: int, stop: int, rank: int = 0):
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.start, self.stop, self.rank = start, stop, rank

    def __iter__(self):
        for step in range(self.start, self.stop):
            rng = np.random.default_rng([self.seed, step, self.rank])
            yield rng.integers(self.n, size=self.batch_size).tolist()

    def __len__(self) -> int:
        return self.stop - self.start


class OfflineSource:
    """Uniformly drawn windows of a dataset; step s's batch depends on (seed, s, rank) only (stateless)."""

    def __init__(
        self, dataset: SequenceDataset, batch_size: int, seed: int, rank: int = 0, num_workers: int = 0,
        pin_memory: bool = False,
    ):  # fmt: skip
        self.dataset, self.batch_size, self.seed, self.rank = dataset, batch_size, seed, rank
        self.num_workers, self.pin_memory = num_workers, pin_memory

    def batches(self, start: int, stop: int) -> Iterator[dict[str, Any]]:
        sampler = StepBatches(len(self.dataset), self.batch_size, self.seed, start, stop, self.rank)
        yield from torch.utils.data.DataLoader(
            self.dataset, batch_sampler=sampler, num_workers=self.num_workers, pin_memory=self.pin_memory
        )

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def progress(self) -> dict[str, float]:
        return {}
