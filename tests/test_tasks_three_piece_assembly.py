"""ThreePieceAssembly: seeding, success as MimicGen defines it, the planned expert, Gymnasium's checks."""

import numpy as np
import pytest

from equirobot_envs import testing
from equirobot_envs.tasks.three_piece_assembly import first_piece_assembled, pieces_assembled

TASKS = ("three_piece_assembly_d0", "three_piece_assembly_d1", "three_piece_assembly_d2")
QUARTER = (np.cos(np.pi / 4), 0.0, 0.0, np.sin(np.pi / 4))


@pytest.mark.parametrize("task", TASKS)
def test_same_seed_same_scene(task, make_env):
    env = make_env(task)
    if task.endswith("d0"):  # the base stays put; only the pieces move
        first, _ = env.reset(seed=1)
        np.testing.assert_allclose(first["object"][:2], 0.0, atol=1e-6)
    testing.assert_seeding(env)


def test_success_needs_both_pieces(make_env):
    env = make_env("three_piece_assembly_d0")
    env.reset(seed=0)
    testing.park_arm(env)
    testing.set_object(env, "piece_1", (0.0, 0.0, 0.852), QUARTER)
    testing.set_object(env, "piece_2", (0.2, 0.2, 0.881), QUARTER)
    testing.settle(env)
    task_env = env.unwrapped
    assert first_piece_assembled(task_env) and not pieces_assembled(task_env)
    assert not task_env.is_success()
    testing.set_object(env, "piece_2", (0.0, 0.0, 0.92), QUARTER)  # its walls astride piece 1's fin
    testing.settle(env, 20)
    assert task_env.is_success()
    testing.set_object(env, "piece_2", (0.0, 0.0, 0.93), (1.0, 0.0, 0.0, 0.0))  # turned: rests on the fin
    testing.settle(env, 20)
    assert not task_env.is_success()


@pytest.mark.parametrize("control", ["abs", "delta"])
def test_expert_succeeds(control, make_env):
    success, steps = testing.expert_rollout(make_env("three_piece_assembly_d2", control=control), seed=0)
    assert success and steps < 500


@pytest.mark.parametrize("task", TASKS)
def test_check_env(task, make_env):
    testing.assert_check_env(make_env(task, obs=("state",)))


def test_check_env_visual(make_env):
    testing.assert_check_env(make_env("three_piece_assembly_d2", obs=("depth",), image_size=32))
