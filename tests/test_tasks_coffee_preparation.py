"""CoffeePreparation: seeding, the pod in the drawer, success as MimicGen defines it, expert, generation."""

import gymnasium as gym
import numpy as np
import pytest

from equirobot_envs import testing
from equirobot_envs.coffee_machine import HOLDER, POD_HALF_HEIGHT
from equirobot_envs.drawer import LONG, drawer_qpos
from equirobot_envs.tasks.coffee import lid_angle, lid_closed, pod_in_holder
from equirobot_envs.tasks.coffee_preparation import (
    BASE_TOP,
    MUG_HALF_HEIGHT,
    POD_X,
    POD_Y,
    mug_placed,
    mug_placed_lid_open,
)

TASKS = ("coffee_preparation_d0", "coffee_preparation_d1")


@pytest.mark.parametrize("task", TASKS)
def test_same_seed_same_scene_lid_and_drawer_shut(task, make_env):
    env = make_env(task)
    testing.assert_seeding(env)
    env.reset(seed=3)
    assert lid_angle(env.unwrapped) == pytest.approx(0.0, abs=1e-6)
    assert drawer_qpos(env.unwrapped) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("task", TASKS)
def test_the_pod_starts_on_the_drawer_bottom_within_its_patch(task, make_env):
    env = make_env(task)
    task_env = env.unwrapped
    offsets = []
    for seed in range(6):
        env.reset(seed=seed)
        model, data = task_env.scene.sim.model, task_env.scene.sim.data
        bottom = model.geom_name2id("cabinet_drawer_bottom")
        centre, rot = data.geom_xpos[bottom], data.geom_xmat[bottom].reshape(3, 3)
        pod, pod_rot = task_env.body_pose("coffee_pod_root")
        local = rot.T @ (pod - centre)
        assert POD_X[0] <= local[0] <= POD_X[1] and POD_Y[0] <= local[1] <= POD_Y[1]
        assert local[2] == pytest.approx(LONG.bottom_half[2] + POD_HALF_HEIGHT + 0.001, abs=1e-6)
        np.testing.assert_allclose(pod_rot, rot, atol=1e-6)  # the pod's yaw is the drawer's
        offsets.append(local[:2])
    assert np.ptp(np.array(offsets), axis=0).min() > 0.01  # drawn, not fixed


def _mug_on_base(env, y: float = 0.125, tilt: float = 0.0) -> None:
    task_env = env.unwrapped
    machine, rot = task_env.body_pose("coffee_machine_main")
    at = machine + rot @ np.array([0.0, y, BASE_TOP + MUG_HALF_HEIGHT + 0.001])
    yaw = np.arctan2(rot[1, 0], rot[0, 0])
    quat = (np.cos(yaw / 2) * np.cos(tilt / 2), np.cos(yaw / 2) * np.sin(tilt / 2), 0.0, np.sin(yaw / 2))
    testing.set_object(env, "mug", at, quat)


def _pod_in_holder(env) -> None:
    machine, rot = env.unwrapped.body_pose("coffee_machine_main")
    testing.set_object(env, "coffee_pod", machine + rot @ (np.array(HOLDER) + [0, 0, 0.008]))


def _set_lid(env, angle: float) -> None:
    scene = env.unwrapped.scene
    scene.sim.data.qpos[scene.hinge_qpos] = angle
    scene.sim.forward()


def test_success_needs_pod_in_lid_shut_and_mug_upright_on_the_base(make_env):
    env = make_env("coffee_preparation_d1")
    env.reset(seed=0)
    task_env = env.unwrapped
    testing.park_arm(env, 0.35)
    assert not task_env.is_success()
    _mug_on_base(env)
    _pod_in_holder(env)
    testing.settle(env, 20)
    assert mug_placed(task_env) and pod_in_holder(task_env) and lid_closed(task_env)
    assert task_env.is_success()
    _set_lid(env, np.radians(30))  # near miss: the lid not shut (checked at once: it falls shut)
    assert not lid_closed(task_env) and not task_env.is_success()
    _set_lid(env, 0.0)
    _mug_on_base(env, y=0.30)  # near miss: the mug upright on the table in front of the base
    testing.settle(env, 15)
    assert pod_in_holder(task_env) and not mug_placed(task_env) and not task_env.is_success()
    _mug_on_base(env, tilt=np.pi / 2)  # near miss: on the base, but lying on its side
    testing.settle(env, 15)
    assert not mug_placed(task_env) and not task_env.is_success()


def test_mug_place_signal_needs_the_lid_opened(make_env):
    env = make_env("coffee_preparation_d0")
    env.reset(seed=0)
    task_env = env.unwrapped
    testing.park_arm(env, 0.35)
    _mug_on_base(env)
    testing.settle(env, 15)
    assert mug_placed(task_env) and not mug_placed_lid_open(task_env)
    _set_lid(env, 2.094)  # at its limit, 2 pi / 3
    testing.settle(env, 5)
    assert lid_angle(env.unwrapped) > 2.08 and mug_placed_lid_open(task_env)


@pytest.mark.parametrize(("task", "seed"), [("coffee_preparation_d0", 0), ("coffee_preparation_d1", 1)])
def test_expert_grasps_and_places_the_mug_and_opens_the_lid(task, seed, make_env):
    """The first two subtasks (about 250 of the expert's 500-650 steps)."""
    from equirobot_envs.experts import ScriptedExpert

    env = make_env(task)
    expert = ScriptedExpert(env)
    obs, _ = env.reset(seed=seed)
    expert.reset()
    for _ in range(300):
        obs, *_ = env.step(expert.act(obs))
        if mug_placed_lid_open(env.unwrapped):
            break
    assert mug_placed_lid_open(env.unwrapped)


@pytest.mark.slow  # about 30 s an episode on 2 cores, 90 with the others running
@pytest.mark.parametrize("control", ["abs", "delta"])
def test_expert_succeeds(control, make_env):
    success, steps = testing.expert_rollout(make_env("coffee_preparation_d1", control=control), seed=0)
    assert success and steps < 800


@pytest.mark.parametrize("task", TASKS)
def test_check_env(task, make_env):
    testing.assert_check_env(make_env(task, obs=("state",)))


def test_check_env_visual(make_env):
    testing.assert_check_env(make_env("coffee_preparation_d1", obs=("depth",), image_size=32))


@pytest.mark.slow  # three source demos and one generated episode: about 2 minutes
def test_mimicgen_generation_segments_the_five_subtasks_and_succeeds(tmp_path):
    import equirobot_envs
    from equirobot.demos.collect import collect
    from equirobot.demos.mimicgen import MimicGenAgent
    from equirobot.evaluation.episode import run_episode

    env_id = equirobot_envs.get_task("coffee_preparation_d0").env_id
    source = collect(env_id, {"obs": ("state",)}, tmp_path / "source", n_demos=3, workers=1)
    env = gym.make(env_id)
    agent = MimicGenAgent(env, source.hdf5)
    assert len(agent.sources) == 3 and all(len(s) == 5 for s in agent.sources)
    assert run_episode(env, agent, seed=GENERATION_SEED).success
    env.close()


GENERATION_SEED = 1000
