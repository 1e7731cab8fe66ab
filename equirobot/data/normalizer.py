"""Normalisation of policy inputs and actions that keeps them equivariant.

Every key is mapped channel by channel, ``x -> (x - offset) * scale``, with the statistics chosen per
kind of quantity so that a rotation of the scene about the symmetry axis still acts on the normalised
values by the same representation:

* ``position`` (x, y, z): x and y share one scale and are centred on the symmetry axis, so the
  normalised plane point turns exactly as the world point did; z (invariant) is min-max scaled;
* ``vector`` (dx, dy, dz, or a rotation vector): no offset; x and y share one scale, z has its own;
* ``rotation`` (rot6d): left as is, already in [-1, 1];
* ``scalar`` (gripper, invariant): min-max scaled to [-1, 1];
* ``identity``: left as is (point colours).

Per-channel min-max scaling of x and y, as Diffusion Policy does, would break equivariance: a
rotation mixes x and y, so both must be measured in the same unit about the same axis.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

KINDS = {"position": 3, "vector": 3, "rotation": 6, "scalar": 1, "identity": 1}
Spec = tuple[tuple[str, int], ...]


def _expand(spec: Spec) -> list[tuple[str, int]]:
    """[(kind, channels)] with ``n`` scalars/identities as n entries of one channel."""
    out = []
    for kind, n in spec:
        if kind not in KINDS:
            raise ValueError(f"unknown normalisation kind {kind!r}; valid: {list(KINDS)}")
        if KINDS[kind] == 1:
            out += [(kind, 1)] * n
        elif n != KINDS[kind]:
            raise ValueError(f"normalisation kind {kind!r} covers {KINDS[kind]} channels, got {n}")
        else:
            out.append((kind, n))
    return out


def _min_max(x: np.ndarray) -> tuple[float, float]:
    """(offset, scale) mapping [min, max] to [-1, 1]; a constant channel is only centred."""
    lo, hi = float(x.min()), float(x.max())
    return (lo + hi) / 2, (2 / (hi - lo) if hi - lo > 1e-4 else 1.0)


def fit_statistics(spec: Spec, data: np.ndarray, center_xy: tuple[float, float]) -> tuple[np.ndarray, ...]:
    """(offset, scale), each (channels,), of ``data`` (..., channels) laid out as ``spec``."""
    data = np.asarray(data, dtype=np.float64).reshape(-1, np.shape(data)[-1])
    offset, scale = np.zeros(data.shape[1]), np.ones(data.shape[1])
    c = 0
    for kind, n in _expand(spec):
        x = data[:, c : c + n]
        if kind == "position":
            radius = np.linalg.norm(x[:, :2] - np.asarray(center_xy), axis=1).max()
            offset[c : c + 2], scale[c : c + 2] = center_xy, 1 / max(radius, 1e-4)
            offset[c + 2], scale[c + 2] = _min_max(x[:, 2])
        elif kind == "vector":
            scale[c : c + 2] = 1 / max(np.linalg.norm(x[:, :2], axis=1).max(), 1e-4)
            scale[c + 2] = 1 / max(np.abs(x[:, 2]).max(), 1e-4)
        elif kind == "scalar":
            offset[c], scale[c] = _min_max(x[:, 0])
        c += n
    if c != data.shape[1]:
        raise ValueError(f"normalisation spec covers {c} channels, the data has {data.shape[1]}")
    return offset.astype(np.float32), scale.astype(np.float32)


def _channels(spec: Spec) -> int:
    return sum(n for _, n in _expand(spec))


class Normalizer(nn.Module):
    """Per-key channel-wise affine normalisation; statistics are buffers (saved with the policy).

    Each key's kinds and the symmetry axis are fixed at construction, so even before :meth:`fit` the
    positions are centred on the axis (scale 1): an unfitted model is already equivariant about it.

    Args:
        specs: key -> its normalisation kinds, ``(("position", 3), ("rotation", 6), ...)``.
        center_xy: the symmetry axis, world frame.
    """

    def __init__(self, specs: Mapping[str, Spec], center_xy: tuple[float, float] | list[float]):
        super().__init__()
        self.keys = tuple(specs)
        self.specs = {key: tuple(spec) for key, spec in specs.items()}
        self.center_xy = (float(center_xy[0]), float(center_xy[1]))
        for key, spec in self.specs.items():
            offset = torch.zeros(_channels(spec))
            c = 0
            for kind, n in _expand(spec):
                if kind == "position":
                    offset[c : c + 2] = torch.tensor(self.center_xy)
                c += n
            self.register_buffer(f"{key}_offset", offset)
            self.register_buffer(f"{key}_scale", torch.ones(len(offset)))

    def fit(self, key: str, data: np.ndarray) -> None:
        """Fit ``key``'s statistics on ``data`` (..., channels)."""
        offset, scale = fit_statistics(self.specs[key], data, self.center_xy)
        getattr(self, f"{key}_offset").copy_(torch.from_numpy(offset))
        getattr(self, f"{key}_scale").copy_(torch.from_numpy(scale))

    def normalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        return (x - getattr(self, f"{key}_offset")) * getattr(self, f"{key}_scale")

    def unnormalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        return x / getattr(self, f"{key}_scale") + getattr(self, f"{key}_offset")

    def statistics(self) -> dict[str, dict[str, list[float]]]:
        """Readable copy of the statistics, e.g. for ``normalizer.json`` beside a checkpoint."""
        return {k: {s: getattr(self, f"{k}_{s}").tolist() for s in ("offset", "scale")} for k in self.keys}
