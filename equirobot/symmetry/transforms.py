"""Acting with a group element on observations and actions (torch tensors, batched).

Conventions are DESIGN.md's: the symmetry axis is the vertical line through ``center``; point clouds
are (..., N, 3 + F) with world xyz first; voxels are (..., C, D, D, D) indexed [x, y, z]; heightmaps
and top-down images are (..., H, W) or (..., C, H, W) with image right = +x and image up = +y; the
``abs`` action is [pos (3), rot6d (6), gripper], the ``delta`` action [dpos (3), daxis-angle (3),
gripper].

A body's orientation R (body frame -> world) turns with the scene: R -> M R. A mirror M would make the
frame left-handed, so under reflections the body is mirrored across its own local x-z plane as well,
R -> M R F with F = diag(1, -1, 1): for the gripper site that plane holds the approach axis (z) and
the finger-opening axis (x), about which the Panda hand is mirror-symmetric.

Grids (voxels, images) rotate exactly by multiples of 90 degrees (and mirror exactly); other angles
resample bilinearly, so they are only approximately a group action: :func:`is_grid_exact` says which.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from escnn import gspaces
from escnn.group import GroupElement

from equirobot.symmetry.group import SceneSymmetry
from equirobot.symmetry.representations import Layout
from equirobot_envs.features import QUANTITY_CHANNELS


def _matrix(sym: SceneSymmetry, g: GroupElement, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(sym.matrix(g), dtype=like.dtype, device=like.device)


def act_on_vectors(sym: SceneSymmetry, g: GroupElement, v: torch.Tensor) -> torch.Tensor:
    """(..., 3) world vectors (displacements, velocities): v -> M v."""
    return v @ _matrix(sym, g, v).T


def act_on_positions(sym: SceneSymmetry, g: GroupElement, p: torch.Tensor, center) -> torch.Tensor:
    """(..., 3) world points about the vertical axis through ``center``."""
    c = torch.as_tensor(np.asarray(center, dtype=np.float64), dtype=p.dtype, device=p.device)
    return act_on_vectors(sym, g, p - c) + c


BODY_MIRROR = np.diag([1.0, -1.0, 1.0])


def _body_mirror(sym: SceneSymmetry, g: GroupElement, like: torch.Tensor) -> torch.Tensor:
    f = BODY_MIRROR if sym.is_reflection(g) else np.eye(3)
    return torch.as_tensor(f, dtype=like.dtype, device=like.device)


def act_on_rotations(sym: SceneSymmetry, g: GroupElement, r: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) body orientations: R -> M R (M R F for a reflection, see the module docstring)."""
    return _matrix(sym, g, r) @ r @ _body_mirror(sym, g, r)


def act_on_rot6d(sym: SceneSymmetry, g: GroupElement, rot6d: torch.Tensor) -> torch.Tensor:
    """(..., 6) first two rows of a body orientation (``equirobot_envs.geometry``).

    M leaves z alone, so rows 0 and 1 of M R are the planar part of M applied to rows 0 and 1 of R: the
    entry pairs (0, 3), (1, 4), (2, 5) each turn as a 2-D vector. A reflection's F negates column 1.
    """
    rows = rot6d.unflatten(-1, (2, 3))  # (..., 2, 3)
    rows = _matrix(sym, g, rot6d)[:2, :2] @ rows @ _body_mirror(sym, g, rot6d)
    return rows.flatten(-2)


def act_on_axis_angle(sym: SceneSymmetry, g: GroupElement, w: torch.Tensor) -> torch.Tensor:
    """(..., 3) world-frame rotation increments (R_next = exp(w) R): a pseudo-vector, w -> det(M) M w.

    From R -> M R F: exp(w') = M exp(w) M^T, whose rotation vector is det(M) M w.
    """
    m = _matrix(sym, g, w)
    return torch.linalg.det(m) * (w @ m.T)


def act_on_abs_action(sym: SceneSymmetry, g: GroupElement, a: torch.Tensor, center) -> torch.Tensor:
    """(..., 10) [pos, rot6d, gripper] -> the same target pose in the transformed scene."""
    return torch.cat(
        [act_on_positions(sym, g, a[..., :3], center), act_on_rot6d(sym, g, a[..., 3:9]), a[..., 9:]], -1
    )


def act_on_delta_action(sym: SceneSymmetry, g: GroupElement, a: torch.Tensor) -> torch.Tensor:
    """(..., 7) [dpos, daxis-angle, gripper] in the world frame."""
    return torch.cat(
        [act_on_vectors(sym, g, a[..., :3]), act_on_axis_angle(sym, g, a[..., 3:6]), a[..., 6:]], -1
    )


def act_on_quaternions(sym: SceneSymmetry, g: GroupElement, q: torch.Tensor) -> torch.Tensor:
    """(..., 4) xyzw unit quaternions, via rotation matrices; output sign fixed to w >= 0."""
    from scipy.spatial.transform import Rotation

    flat = q.detach().cpu().double().reshape(-1, 4).numpy()
    mats = torch.as_tensor(Rotation.from_quat(flat).as_matrix())
    out = Rotation.from_matrix(act_on_rotations(sym, g, mats).numpy()).as_quat()
    out *= np.where(out[:, 3:] < 0, -1.0, 1.0)
    return torch.as_tensor(out, dtype=q.dtype, device=q.device).reshape(q.shape)


def act_on_planar(sym: SceneSymmetry, g: GroupElement, v: torch.Tensor) -> torch.Tensor:
    """(..., 2) horizontal vectors: v -> M v (rho1)."""
    m = torch.as_tensor(sym.planar_matrix(g), dtype=v.dtype, device=v.device)
    return v @ m.T


def act_on_half_turn(sym: SceneSymmetry, g: GroupElement, a: torch.Tensor) -> torch.Tensor:
    """(..., 1) a yaw in [0, pi) as ``a = 2 theta / pi - 1``: theta -> (angle(g) +- theta) mod pi.

    A parallel-jaw grasp at yaw theta is the grasp at theta + pi; a mirror negates the yaw first.
    """
    theta = (a + 1) * (np.pi / 2)
    if sym.is_reflection(g):
        theta = -theta
    turned = torch.remainder(theta + sym.angle(g), np.pi)
    return turned * (2 / np.pi) - 1


def act_on_point_cloud(sym: SceneSymmetry, g: GroupElement, cloud: torch.Tensor, center) -> torch.Tensor:
    """(..., N, 3 + F): xyz about the axis, features (colour) unchanged."""
    return torch.cat([act_on_positions(sym, g, cloud[..., :3], center), cloud[..., 3:]], dim=-1)


def is_grid_exact(sym: SceneSymmetry, g: GroupElement) -> bool:
    """Whether ``g`` maps a square grid onto itself (rotation by a multiple of 90 degrees)."""
    quarter_turns = sym.angle(g) / (np.pi / 2)
    return bool(abs(quarter_turns - round(quarter_turns)) < 1e-9)


def act_on_grid(
    sym: SceneSymmetry, g: GroupElement, grid: torch.Tensor, x_dim: int, y_dim: int
) -> torch.Tensor:
    """Rotate a grid whose dims ``x_dim``, ``y_dim`` index world x and y in increasing order.

    Exact (index permutation) for multiples of 90 degrees and mirrors; bilinear resampling otherwise.
    """
    x_dim, y_dim = x_dim % grid.dim(), y_dim % grid.dim()
    if sym.is_reflection(g):
        grid = grid.flip(y_dim)  # y -> -y about the centre
    angle = sym.angle(g)
    if is_grid_exact(sym, g):
        return torch.rot90(grid, k=int(round(angle / (np.pi / 2))) % 4, dims=(x_dim, y_dim))
    return _resample_rotated(grid, angle, x_dim, y_dim)


def _resample_rotated(grid: torch.Tensor, angle: float, x_dim: int, y_dim: int) -> torch.Tensor:
    # Move (x, y) to the last two dims as (H=y, W=x) for grid_sample, whose grid is (x, y) in [-1, 1].
    others = [d for d in range(grid.dim()) if d not in (x_dim, y_dim)]
    perm = [*others, y_dim, x_dim]
    moved = grid.permute(perm)
    lead = moved.shape[:-2]
    flat = moved.reshape(1, -1, *moved.shape[-2:]).to(
        torch.float64 if grid.dtype == torch.float64 else torch.float32
    )
    c, s = np.cos(angle), np.sin(angle)
    inverse = torch.tensor([[c, s, 0.0], [-s, c, 0.0]], dtype=flat.dtype)  # output pixel -> input pixel
    sample_at = F.affine_grid(inverse[None], list(flat.shape), align_corners=False)
    out = F.grid_sample(flat, sample_at, mode="bilinear", padding_mode="zeros", align_corners=False)
    out = out.reshape(*lead, *moved.shape[-2:]).to(grid.dtype)
    return out.permute(np.argsort(perm).tolist())


def act_on_voxels(sym: SceneSymmetry, g: GroupElement, voxels: torch.Tensor) -> torch.Tensor:
    """(..., C, D, D, D) indexed [x, y, z]."""
    return act_on_grid(sym, g, voxels, -3, -2)


def act_on_top_down(sym: SceneSymmetry, g: GroupElement, image: torch.Tensor) -> torch.Tensor:
    """(..., H, W) top-down image (heightmap; or (..., C, H, W)), right = +x, up = +y, about its centre.

    Rows run from +y (top) to -y, so the row axis is flipped to index y increasingly before rotating.
    """
    return act_on_grid(sym, g, image.flip(-2), -1, -2).flip(-2)


def act_on_quantities(
    sym: SceneSymmetry, g: GroupElement, x: torch.Tensor, quantities: tuple[str, ...] | list[str], center
) -> torch.Tensor:
    """(..., D) a vector of declared quantities (``equirobot_envs.features``), positions about ``center``.

    Positions turn about the axis, vectors as displacements, axis-angles as pseudo-vectors, rot6d as
    the top rows of a body orientation, scalars stay, planar vectors turn by rho1, half-turn yaws shift
    (:func:`act_on_half_turn`); quaternions are not policy quantities (rot6d).
    """
    acts = {
        "position": lambda v: act_on_positions(sym, g, v, center),
        "vector": lambda v: act_on_vectors(sym, g, v),
        "axis_angle": lambda v: act_on_axis_angle(sym, g, v),
        "rot6d": lambda v: act_on_rot6d(sym, g, v),
        "scalar": lambda v: v,
        "planar": lambda v: act_on_planar(sym, g, v),
        "half_turn": lambda v: act_on_half_turn(sym, g, v),
    }
    sizes = QUANTITY_CHANNELS
    parts, c = [], 0
    for quantity in quantities:
        if quantity not in acts:
            raise ValueError(f"no action on quantity {quantity!r}; valid: {list(acts)}")
        parts.append(acts[quantity](x[..., c : c + sizes[quantity]]))
        c += sizes[quantity]
    if c != x.shape[-1]:
        raise ValueError(f"quantities {list(quantities)} cover {c} channels, the vector has {x.shape[-1]}")
    return torch.cat(parts, dim=-1)


def act_on_layout(sym: SceneSymmetry, g: GroupElement, x: torch.Tensor, layout: Layout) -> torch.Tensor:
    """(..., layout.size) a vector in layout order, each part turned by its representation.

    For a control task's sign layouts (``representations.sign_layout``): each channel times its sign
    under ``g``.
    """
    field_type = layout.field_type(sym, gspaces.no_base_space(sym.group))
    matrix = torch.as_tensor(field_type.representation(g), dtype=x.dtype, device=x.device)
    return layout.from_fields(layout.to_fields(x) @ matrix.T)
