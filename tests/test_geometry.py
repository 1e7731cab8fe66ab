import numpy as np
import pytest

from equirobot_envs.geometry import (
    axis_angle_to_mat,
    mat_to_axis_angle,
    mat_to_quat,
    mat_to_rot6d,
    quat_to_mat,
    rot6d_to_mat,
    rot_z,
    wrap_angle,
    yaw_of,
)


@pytest.fixture
def rotations():
    rng = np.random.default_rng(0)
    return axis_angle_to_mat(rng.normal(size=(16, 3)))


def test_conversions_round_trip(rotations):
    np.testing.assert_allclose(rot6d_to_mat(mat_to_rot6d(rotations)), rotations, atol=1e-12)
    np.testing.assert_allclose(quat_to_mat(mat_to_quat(rotations)), rotations, atol=1e-12)
    np.testing.assert_allclose(axis_angle_to_mat(mat_to_axis_angle(rotations)), rotations, atol=1e-12)


def test_rot6d_pairs_rotate_as_standard_representation(rotations):
    """Rotating about z maps rot6d entries (i, i+3) by the 2x2 rotation: three copies of rho_1."""
    theta = 0.7
    g = rot_z(theta)
    before = mat_to_rot6d(rotations).reshape(-1, 2, 3)  # [row, column]
    after = mat_to_rot6d(g @ rotations).reshape(-1, 2, 3)
    np.testing.assert_allclose(after, np.einsum("ij,bjk->bik", g[:2, :2], before), atol=1e-12)


def test_rot6d_to_mat_orthonormalises_any_input():
    rng = np.random.default_rng(1)
    mats = rot6d_to_mat(rng.normal(size=(32, 6)))
    np.testing.assert_allclose(
        mats @ np.swapaxes(mats, -1, -2), np.broadcast_to(np.eye(3), mats.shape), atol=1e-12
    )
    np.testing.assert_allclose(np.linalg.det(mats), 1.0, atol=1e-12)


def test_yaw_and_wrap():
    assert yaw_of(rot_z(0.3)) == pytest.approx(0.3)
    assert wrap_angle(3 * np.pi / 2) == pytest.approx(-np.pi / 2)


@pytest.mark.parametrize(
    "rot6d", [np.zeros(6), [1, 0, 0, 2, 0, 0], [0, 0, 0, 0, 1, 0], [1e-9, 0, 0, 0, 0, 0]]
)
def test_rot6d_to_mat_keeps_degenerate_rows_finite_and_proper(rot6d):
    mat = rot6d_to_mat(np.asarray(rot6d, dtype=np.float64))
    assert np.isfinite(mat).all()
    np.testing.assert_allclose(mat @ mat.T, np.eye(3), atol=1e-9)
    assert np.linalg.det(mat) == pytest.approx(1.0)
