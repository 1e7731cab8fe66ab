"""Point clouds into policy inputs: workspace crop, grid downsampling with farthest point sampling, voxels.

Shared by the simulator's observer (``equirobot_envs.observations``) and the ROS node
(``equirobot.deploy``), which builds the same observations from a real camera's ``PointCloud2``. Imports
numpy and numba only, not the simulator.
"""

from __future__ import annotations

import numba
import numpy as np

from equirobot_envs.geometry import Workspace

POINT_CLOUD_CELLS = 128
"""Grid cells per workspace side of the downsampling before farthest point sampling."""


def crop(points: np.ndarray, workspace: Workspace) -> np.ndarray:
    """The rows of (M, C) points whose xyz lie inside the workspace box (low inclusive, high exclusive)."""
    inside = np.all((points[:, :3] >= workspace.low) & (points[:, :3] < workspace.high), axis=1)
    return points[inside]


def cloud_features(points: np.ndarray, workspace: Workspace, n_points: int | None, voxel_size: int | None):
    """``point_cloud`` (n_points, 6) and/or ``voxels`` (4, D, D, D) of (M, 6) points inside the workspace."""
    out: dict[str, np.ndarray] = {}
    if n_points is not None:
        out["point_cloud"] = downsample(points, n_points, 2 * workspace.half_size / POINT_CLOUD_CELLS)
    if voxel_size is not None:
        out["voxels"] = voxelize(points, workspace, voxel_size)
    return out


@numba.njit(cache=True)
def farthest_point_indices(points: np.ndarray, n: int) -> np.ndarray:
    """Greedy farthest point sampling from index 0; deterministic. points (M, 3), n <= M."""
    m = points.shape[0]
    chosen = np.empty(n, dtype=np.int64)
    dist = np.full(m, np.inf)
    current = 0
    for i in range(n):
        chosen[i] = current
        best, best_d = 0, -1.0
        for j in range(m):
            d = 0.0
            for k in range(3):
                diff = points[j, k] - points[current, k]
                d += diff * diff
            if d < dist[j]:
                dist[j] = d
            if dist[j] > best_d:
                best_d = dist[j]
                best = j
        current = best
    return chosen


def downsample(points: np.ndarray, n: int, cell: float) -> np.ndarray:
    """(M, 6) -> (n, 6): one point per ``cell``-sized grid cell, then farthest point sampling.

    Fewer than ``n`` occupied cells (an almost empty workspace) repeat points cyclically, so the
    output size is fixed. An empty input gives zeros.
    """
    if len(points) == 0:  # nothing in the workspace: all points at the origin, black
        return np.zeros((n, points.shape[1]), dtype=np.float32)
    keys = np.floor(points[:, :3] / cell).astype(np.int64)
    _, first = np.unique(keys, axis=0, return_index=True)
    points = points[np.sort(first)]
    if len(points) <= n:
        return points[np.arange(n) % len(points)].astype(np.float32)
    return points[farthest_point_indices(points[:, :3].astype(np.float64), n)].astype(np.float32)


def voxelize(points: np.ndarray, workspace: Workspace, size: int) -> np.ndarray:
    """(M, 6) xyz+rgb points inside the workspace -> (4, D, D, D) uint8 grid indexed [c, x, y, z].

    Channel 0 is occupancy (0 or 255), channels 1-3 the mean colour of the points in the voxel (0-255).
    """
    grid = np.zeros((4, size, size, size), dtype=np.uint8)
    if len(points) == 0:
        return grid
    idx = ((points[:, :3] - workspace.low) / (2 * workspace.half_size) * size).astype(np.int64)
    idx = np.clip(idx, 0, size - 1)
    flat = np.ravel_multi_index(idx.T, (size, size, size))
    counts = np.bincount(flat, minlength=size**3)
    occupied = counts > 0
    grid[0].reshape(-1)[occupied] = 255
    for c in range(3):
        sums = np.bincount(flat, weights=points[:, 3 + c], minlength=size**3)
        grid[1 + c].reshape(-1)[occupied] = np.round(255 * sums[occupied] / counts[occupied]).astype(np.uint8)
    return grid
