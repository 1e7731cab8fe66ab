"""Random rotation of whole training samples about the symmetry axis (the augmented baseline).

Every sample of a batch is turned by its own angle in [0, 2pi): the normalised low-dim inputs and
actions by their layouts (each 2-D part turns, scalars stay), point clouds about the axis, voxel
grids and top-down views by bilinear resampling. Inputs are normalised first, so positions are
already relative to the axis (x = y = 0).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from equirobot.symmetry.representations import Layout


def rotate_pairs(x: torch.Tensor, layout: Layout, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """(B, ..., layout.size): turn every 2-D part of the layout by the per-sample angle."""
    out = x.clone()
    shape = (-1,) + (1,) * (x.dim() - 2)
    c, s = cos.view(shape), sin.view(shape)
    for _, idx, kind in layout.parts:
        if kind in ("vector", "mirrored_vector"):
            a, b = x[..., idx[0]], x[..., idx[1]]
            out[..., idx[0]], out[..., idx[1]] = c * a - s * b, s * a + c * b
    return out


def rotate_grid(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """(B, C, Y, X) grids, y and x increasing with the index: turn each sample about the centre."""
    # affine_grid maps output pixel coordinates to input ones: the inverse rotation.
    inverse = torch.stack(
        [
            torch.stack([cos, sin, torch.zeros_like(cos)], -1),
            torch.stack([-sin, cos, torch.zeros_like(cos)], -1),
        ],
        dim=1,
    ).to(x.dtype)
    grid = F.affine_grid(inverse, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def rotate_inputs(
    obs: dict[str, torch.Tensor],
    action: torch.Tensor,
    group_actions: dict[str, str],
    lowdim: Layout,
    action_layout: Layout,
    generator=None,
    angle: torch.Tensor | None = None,
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Turn each sample's normalised inputs (B, n_obs, ...) and actions (B, T, A) by a random angle.

    ``group_actions`` maps each input to its declared group action (``equirobot_envs.features``).
    ``angle`` (B,) gives the angles instead (radians, counter-clockwise seen from above).
    """
    if angle is None:
        angle = torch.rand(action.shape[0], generator=generator, device=action.device) * 2 * torch.pi
    cos, sin = angle.cos(), angle.sin()
    out = {}
    for key, x in obs.items():
        kind = group_actions[key]
        if kind == "lowdim":
            out[key] = rotate_pairs(x, lowdim, cos, sin)
        elif kind == "point_cloud":
            out[key] = torch.cat([rotate_pairs(x[..., :3], _XY, cos, sin), x[..., 3:]], -1)
        elif kind == "voxels":  # (B, T, C, X, Y, Z) -> grids (B, T C Z, Y, X)
            b, t, c, nx, ny, nz = x.shape
            grid = x.permute(0, 1, 2, 5, 4, 3).reshape(b, t * c * nz, ny, nx)
            turned = rotate_grid(grid.float(), cos, sin).to(x.dtype)
            out[key] = turned.reshape(b, t, c, nz, ny, nx).permute(0, 1, 2, 5, 4, 3)
        elif kind == "top_down":  # (B, T, C, H, W), rows from +y down to -y
            b, t, c, h, w = x.shape
            grid = x.flip(-2).reshape(b, t * c, h, w)
            out[key] = rotate_grid(grid.float(), cos, sin).to(x.dtype).reshape(x.shape).flip(-2)
        else:  # the wrist view turns with the gripper, not with the scene
            out[key] = x
    return out, rotate_pairs(action, action_layout, cos, sin)


_XY = Layout("xy", (("xy", (0, 1), "vector"), ("z", (2,), "scalar")))
