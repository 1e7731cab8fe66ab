"""Rotation helpers shared by the environments and the learning code.

Conventions (robosuite's): quaternions are (x, y, z, w); rotation matrices act on column vectors;
``rot6d`` is the first two *rows* of a rotation matrix, flattened ``[r00 r01 r02 r10 r11 r12]``.
Rows are used rather than columns because a rotation g about the world z axis acts on the left
(``R -> g R``): it mixes row 0 with row 1 and leaves row 2 alone, so the pairs (0, 3), (1, 4) and (2, 5)
of rot6d are each a standard 2-D representation of the rotation, which is what equivariant models need.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import overload

import numpy as np
from scipy.spatial.transform import Rotation


def quat_to_mat(quat: np.ndarray) -> np.ndarray:
    """(..., 4) xyzw quaternion -> (..., 3, 3) rotation matrix."""
    return Rotation.from_quat(np.asarray(quat).reshape(-1, 4)).as_matrix().reshape(*np.shape(quat)[:-1], 3, 3)


def mat_to_quat(mat: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrix -> (..., 4) xyzw quaternion."""
    return Rotation.from_matrix(np.asarray(mat).reshape(-1, 3, 3)).as_quat().reshape(*np.shape(mat)[:-2], 4)


def mat_to_axis_angle(mat: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrix -> (..., 3) axis-angle (rotation vector)."""
    return Rotation.from_matrix(np.asarray(mat).reshape(-1, 3, 3)).as_rotvec().reshape(*np.shape(mat)[:-2], 3)


def axis_angle_to_mat(rotvec: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle -> (..., 3, 3) rotation matrix."""
    return (
        Rotation.from_rotvec(np.asarray(rotvec).reshape(-1, 3))
        .as_matrix()
        .reshape(*np.shape(rotvec)[:-1], 3, 3)
    )


def mat_to_rot6d(mat: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrix -> (..., 6): its first two rows."""
    mat = np.asarray(mat)
    return mat[..., :2, :].reshape(*mat.shape[:-2], 6)


def rot6d_to_mat(rot6d: np.ndarray) -> np.ndarray:
    """(..., 6) -> (..., 3, 3): the nearest two orthonormal rows (polar projection), third by the cross.

    The two rows B (2 x 3) are replaced by the orthogonal polar factor U V^T of their SVD B = U S V^T, the
    matrix with orthonormal rows nearest to B. Unlike Gram-Schmidt, which treats the first row
    specially, it commutes with the scene group: polar(Q B P) = Q polar(B) P for orthogonal Q (the
    rotation about z mixing the rows) and P (a reflection's mirror of the body frame), so the executed
    orientation of a non-orthonormal network output turns exactly with the scene. Rows that are nearly
    parallel or zero (an untrained network's output) fall back to Gram-Schmidt with the world axes as
    the default, never NaNs or a singular matrix.
    """
    rot6d = np.asarray(rot6d, dtype=np.float64)
    rows = rot6d.reshape(*rot6d.shape[:-1], 2, 3)
    u, s, vt = np.linalg.svd(rows, full_matrices=False)
    polar = u @ vt  # (..., 2, 3), orthonormal rows
    r0, r1 = polar[..., 0, :], polar[..., 1, :]
    proper = np.stack([r0, r1, np.cross(r0, r1)], axis=-2)
    degenerate = (s[..., 1] <= 1e-6 * np.maximum(s[..., 0], 1e-12))[..., None, None]
    return np.where(degenerate, _gram_schmidt(rot6d), proper)


def _gram_schmidt(rot6d: np.ndarray) -> np.ndarray:
    """The fallback of :func:`rot6d_to_mat` for degenerate rows: Gram-Schmidt, world axes by default."""
    a, b = rot6d[..., :3], rot6d[..., 3:]
    # Degenerate input (a ~ 0, or b parallel to a: an untrained network's output) falls back to the
    # world axes instead of producing NaNs or a singular matrix.
    norm = np.linalg.norm(a, axis=-1, keepdims=True)
    r0 = np.where(norm > 1e-6, a / np.maximum(norm, 1e-12), [1.0, 0.0, 0.0])
    b = b - np.sum(r0 * b, axis=-1, keepdims=True) * r0
    norm = np.linalg.norm(b, axis=-1, keepdims=True)
    fallback = np.cross(r0, np.where(np.abs(r0[..., 2:]) < 0.9, [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]))
    fallback /= np.linalg.norm(fallback, axis=-1, keepdims=True)
    r1 = np.where(norm > 1e-6, b / np.maximum(norm, 1e-12), fallback)
    r2 = np.cross(r0, r1)
    return np.stack([r0, r1, r2], axis=-2)


def rot_z(theta: float) -> np.ndarray:
    """Rotation matrix about the world z axis by ``theta`` radians."""
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def yaw_of(mat: np.ndarray) -> float:
    """Heading of a rotation: the angle of its x axis projected on the horizontal plane."""
    return float(np.arctan2(mat[1, 0], mat[0, 0]))


@overload
def wrap_angle(theta: float) -> float: ...
@overload
def wrap_angle(theta: np.ndarray) -> np.ndarray: ...
def wrap_angle(theta: float | np.ndarray) -> float | np.ndarray:
    """Wrap angles to [-pi, pi) (a float gives a numpy float64, an array an array)."""
    return (np.asarray(theta) + np.pi) % (2 * np.pi) - np.pi


@dataclass(frozen=True)
class Workspace:
    """The cube that point clouds, voxels and heightmaps cover.

    ``center`` lies on the table top; the vertical line through it is the symmetry axis. The cube spans
    ``center.xy +- half_size`` horizontally and starts ``floor_clearance`` above the table, so the table
    plane itself is cropped away and only objects and the robot remain.
    """

    center: tuple[float, float, float]
    half_size: float = 0.35
    floor_clearance: float = 0.005
    height: float | None = None
    """Vertical extent from ``low``; ``None``: ``2 * half_size`` (a cube)."""

    @property
    def low(self) -> np.ndarray:
        cx, cy, cz = self.center
        return np.array([cx - self.half_size, cy - self.half_size, cz + self.floor_clearance])

    @property
    def high(self) -> np.ndarray:
        height = 2 * self.half_size if self.height is None else self.height
        return self.low + [2 * self.half_size, 2 * self.half_size, height]
