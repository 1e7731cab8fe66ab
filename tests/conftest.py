import os

os.environ.setdefault("MUJOCO_GL", "egl")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two pytest workers on the 2 cores: each (and each process it spawns) computes
    # on one thread, or the two oversubscribe the cores and slow each other down.
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"

import gymnasium as gym  # noqa: E402
import pytest  # noqa: E402

import equirobot_envs  # noqa: E402,F401  (registers the tasks)


@pytest.fixture
def make_env():
    """gymnasium.make that closes every env it made at the end of the test."""
    made = []

    def make(task: str = "stack_d1", **kwargs):
        env = gym.make(equirobot_envs.get_task(task).env_id, **kwargs)
        made.append(env)
        return env

    yield make
    for env in made:
        env.close()


def pytest_collection_modifyitems(config, items):
    """The new tasks' experts run in CI in the abs control mode; delta, same planner, is `slow`
    (`make test-slow`), which keeps `make test` within the CI budget on 2 cores."""
    for item in items:
        if item.path.name.startswith("test_tasks_") and item.name == "test_expert_succeeds[delta]":
            item.add_marker(pytest.mark.slow)
