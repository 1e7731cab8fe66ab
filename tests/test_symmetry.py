import numpy as np
import pytest
import torch

from equirobot.symmetry import ABS_ACTION, DELTA_ACTION, SceneSymmetry
from equirobot.symmetry import transforms as T
from equirobot.symmetry.representations import Layout, pose_layout
from equirobot_envs.geometry import axis_angle_to_mat, mat_to_rot6d

GROUPS = ["C8", "C4", "D4", "D8"]
CENTER = (0.1, -0.2, 0.8)


@pytest.fixture(params=GROUPS)
def sym(request):
    return SceneSymmetry.from_name(request.param)


def test_group_names():
    assert SceneSymmetry.from_name("D8").group.order() == 16
    with pytest.raises(ValueError, match="C<N> or D<N>"):
        SceneSymmetry.from_name("SO2")


def test_matrices_are_a_representation(sym):
    for g in sym.elements:
        for h in sym.elements:
            np.testing.assert_allclose(sym.matrix(g @ h), sym.matrix(g) @ sym.matrix(h), atol=1e-12)


@pytest.mark.parametrize(
    ("layout", "act"),
    [
        (ABS_ACTION, lambda sym, g, x: T.act_on_abs_action(sym, g, x, (0, 0, 0))),
        (DELTA_ACTION, lambda sym, g, x: T.act_on_delta_action(sym, g, x)),
    ],
)
def test_declared_representation_matches_the_scene_transform(sym, layout, act):
    x = torch.randn(6, layout.size, dtype=torch.float64)
    field_type = layout.field_type(sym)
    for g in sym.elements:
        rep = torch.as_tensor(field_type.representation(g))
        expected = layout.from_fields(layout.to_fields(x) @ rep.T)
        torch.testing.assert_close(act(sym, g, x), expected)


def test_actions_follow_the_moved_gripper(sym):
    """Transforming a pose then applying the transformed delta == transforming the result."""
    rng = np.random.default_rng(0)
    rot = torch.as_tensor(axis_angle_to_mat(rng.normal(size=(4, 3))))
    w = torch.as_tensor(rng.normal(size=(4, 3)))
    for g in sym.elements:
        moved = T.act_on_rotations(sym, g, rot)
        torch.testing.assert_close(torch.linalg.det(moved), torch.ones(4, dtype=torch.float64))
        torch.testing.assert_close(
            T.act_on_rot6d(sym, g, torch.as_tensor(mat_to_rot6d(rot.numpy()))),
            torch.as_tensor(mat_to_rot6d(moved.numpy())),
        )
        stepped = torch.as_tensor(axis_angle_to_mat(w.numpy())) @ rot
        w_moved = T.act_on_axis_angle(sym, g, w)
        torch.testing.assert_close(
            T.act_on_rotations(sym, g, stepped), torch.as_tensor(axis_angle_to_mat(w_moved.numpy())) @ moved
        )


def test_point_cloud_rotates_about_the_axis(sym):
    cloud = torch.rand(2, 50, 6, dtype=torch.float64)
    for g in sym.elements:
        moved = T.act_on_point_cloud(sym, g, cloud, CENTER)
        torch.testing.assert_close(moved[..., 3:], cloud[..., 3:])
        radius = lambda c: torch.linalg.norm(c[..., :2] - torch.tensor(CENTER[:2], dtype=c.dtype), dim=-1)  # noqa: E731
        torch.testing.assert_close(radius(moved), radius(cloud))
        torch.testing.assert_close(moved[..., 2], cloud[..., 2])


def test_grid_transforms_agree_with_point_transforms(sym):
    """A single occupied cell moves where its centre point moves (exact elements)."""
    d = 8
    voxels = torch.zeros(1, d, d, d)
    voxels[0, 6, 1, 3] = 1
    image = torch.zeros(d, d)
    image[1, 6] = 1  # row 1 (near +y), column 6 (+x)
    for g in (g for g in sym.elements if T.is_grid_exact(sym, g)):
        m = sym.matrix(g)
        cell = np.argwhere(T.act_on_voxels(sym, g, voxels)[0].numpy())[0]
        np.testing.assert_allclose(cell + 0.5 - d / 2, m @ (np.array([6, 1, 3]) + 0.5 - d / 2))
        row, col = np.argwhere(T.act_on_top_down(sym, g, image).numpy())[0]
        xy = m[:2, :2] @ np.array([6 + 0.5 - d / 2, -(1 + 0.5 - d / 2)])
        np.testing.assert_allclose([col + 0.5 - d / 2, -(row + 0.5 - d / 2)], xy)


def test_grid_action_composes(sym):
    exact = [g for g in sym.elements if T.is_grid_exact(sym, g)]
    voxels = torch.rand(2, 4, 6, 6, 6)
    for g in exact:
        for h in exact:
            assert torch.equal(
                T.act_on_voxels(sym, g, T.act_on_voxels(sym, h, voxels)), T.act_on_voxels(sym, g @ h, voxels)
            )


def test_non_grid_rotation_resamples_approximately():
    sym = SceneSymmetry.from_name("C8")
    g = sym.elements[1]  # 45 degrees
    assert not T.is_grid_exact(sym, g)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 64), torch.linspace(-1, 1, 64), indexing="ij")
    blob = torch.exp(-((xx - 0.3) ** 2 + (yy - 0.0) ** 2) / 0.02)  # row index ~ y here
    # Rotating twice by 45 degrees is close to one exact quarter turn for a smooth image.
    twice = T.act_on_top_down(sym, g, T.act_on_top_down(sym, g, blob))
    assert torch.abs(twice - T.act_on_top_down(sym, sym.elements[2], blob)).max() < 0.05


def test_layouts_validate_and_permute():
    with pytest.raises(ValueError, match="cover channels"):
        Layout("bad", (("xy", (0, 1), "vector"), ("z", (3,), "scalar")))
    with pytest.raises(ValueError, match="kind 'vector' has channels"):
        Layout("bad", (("x", (0,), "vector"),))
    pose = pose_layout("eef")
    x = torch.arange(9.0)
    torch.testing.assert_close(pose.from_fields(pose.to_fields(x)), x)
    assert ABS_ACTION.concat(pose).size == 19


def test_executed_orientation_turns_with_the_scene_for_any_rot6d(sym):
    """What the env executes, rot6d_to_mat(a), must turn with the scene even when a's rows are not
    orthonormal (a policy's raw output): rot6d_to_mat(g . a) = g . rot6d_to_mat(a), mirrors included."""
    from equirobot_envs.geometry import rot6d_to_mat

    rng = np.random.default_rng(3)
    rotations = axis_angle_to_mat(rng.normal(size=(32, 3)))
    raw = mat_to_rot6d(rotations) + 0.3 * rng.normal(size=(32, 6))  # rows off orthonormal, as trained nets
    raw = torch.tensor(raw)
    executed = torch.tensor(rot6d_to_mat(raw.numpy()))
    for g in sym.elements:
        turned = torch.tensor(rot6d_to_mat(T.act_on_rot6d(sym, g, raw).numpy()))
        torch.testing.assert_close(turned, T.act_on_rotations(sym, g, executed), atol=1e-9, rtol=1e-9)
