"""The house for every method: the registry, the shared policy interface, a second method (bc), the
trainer and rollout engine that do not know the method, and a policy that loads without the simulator."""

import csv
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from test_cli import equirobot
from test_policy import CENTER, TINY, demos, tiny_train_overrides, train_config  # noqa: F401  (fixture)

from equirobot.config import TrainConfig
from equirobot.data.inputs import DataSpec
from equirobot.evaluation.episode import PolicyAgent
from equirobot.policies.bc.modeling import BCPolicy
from equirobot.policies.checkpoint import CheckpointError, learned_state, load_policy
from equirobot.policies.diffusion.modeling import DiffusionPolicy
from equirobot.policies.registry import POLICIES, make_config, make_policy
from equirobot.symmetry import transforms as T
from equirobot.training.trainer import Trainer
from equirobot_envs.config import EnvConfig
from equirobot_envs.features import mode_features


def bc_config(dataset, run_dir, steps=30, **policy) -> TrainConfig:
    return TrainConfig(
        task="stack_d1", dataset=str(dataset), policy={"type": "bc", "hidden": [32, 32], **policy},
        steps=steps, batch_size=16, warmup_steps=2, lr=3e-3, eval_episodes=0, log_every=10,
        run_dir=str(run_dir),
    )  # fmt: skip


# -- the registry -----------------------------------------------------------------------------------
def test_registry_builds_each_method_by_type_and_names_bad_settings():
    assert set(POLICIES) >= {"diffusion", "bc", "sac", "dqn"}
    spec = DataSpec.from_features(["state"], "abs", EnvConfig(), 2, [0.0, 0.0])
    assert spec.shapes == {"lowdim": [11 + 2 * 9]}  # read off the declarations, no magic numbers
    assert isinstance(make_policy({"type": "bc"}, spec), BCPolicy)
    assert isinstance(make_policy({"type": "diffusion", **TINY}, spec), DiffusionPolicy)
    with pytest.raises(ValueError, match="unknown policy type 'ppo'.*valid types"):
        make_config({"type": "ppo"})
    with pytest.raises(ValueError, match="hiden"):
        make_config({"type": "bc", "hiden": [3]})
    with pytest.raises(ValueError, match="gmm is not equivariant"):
        make_config({"type": "bc", "head": "gmm", "group": "C8"})
    with pytest.raises(ValueError, match="lowdim input only"):
        make_policy(
            {"type": "bc"}, DataSpec.from_features(["point_cloud"], "abs", EnvConfig(n_points=32), 0, [0, 0])
        )


def test_train_policy_preset_picks_the_method_by_name(demos, tmp_path):  # noqa: F811
    result = equirobot("train", "policy=bc", "--cfg", "job", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert OmegaConf.create(result.stdout).policy.type == "bc"


# -- bc: train -> save -> load -> act -> eval ---------------------------------------------------------
@pytest.mark.parametrize("group", ["C1", pytest.param("C8", marks=pytest.mark.slow)])
def test_bc_trains_saves_loads_acts_and_evaluates(demos, tmp_path, make_env, group):  # noqa: F811
    run = tmp_path / "run"
    trainer = Trainer(bc_config(demos, run, group=group), run)
    assert trainer.ema is None  # bc acts with its own weights
    summary = trainer.fit()
    assert summary["steps"] == 30
    policy = load_policy(run / "checkpoints" / "latest")
    assert isinstance(policy, BCPolicy) and policy.config.group == group
    for key, value in learned_state(trainer.policy).items():
        torch.testing.assert_close(learned_state(policy)[key], value, rtol=0, atol=0)
    env = make_env("stack_d1", obs=("state",), control="abs")
    agent = PolicyAgent(policy, seed=0)
    obs, _ = env.reset(seed=100_000)
    agent.reset()
    for _ in range(3):
        action = agent.act(obs)
        assert action.shape == (10,) and np.isfinite(action).all()
        obs, *_ = env.step(action)
    result = equirobot(
        "eval", f"checkpoint={run}", "episodes=2", "workers=2", "videos=0",
        f"hydra.run.dir={tmp_path / 'eval'}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    rows = list(csv.DictReader(open(tmp_path / "eval" / "results.csv")))
    assert [(r["method"], r["episodes"], r["status"]) for r in rows] == [("bc", "2", "ok")]


def test_bc_learns_the_demonstrations(demos, tmp_path):  # noqa: F811
    run = tmp_path / "run"
    trainer = Trainer(bc_config(demos, run), run)
    batch = next(iter(trainer.source.batches(0, 1)))
    before = float(trainer.policy(batch)[0].detach())
    trainer.fit()
    assert float(trainer.policy(batch)[0].detach()) < 0.5 * before  # 30 steps halve the error on the data


def test_gmm_head_trains_and_samples(demos, tmp_path):  # noqa: F811
    run = tmp_path / "run"
    trainer = Trainer(bc_config(demos, run, head="gmm", gmm_modes=3), run)
    trainer.fit()
    policy = load_policy(run / "checkpoints" / "latest")
    obs = {f.key: np.zeros((2, *f.shape(EnvConfig(), 2)), np.float32) for f in mode_features(["state"])}
    obs["robot0_eef_quat"][:, 3] = 1
    obs["object"][:, 6::7] = 1
    assert policy.select_action(obs).shape == (2, 10)


@pytest.mark.parametrize("group", ["C8", "D4"])
def test_equivariant_bc_turns_its_action_with_the_scene(group):
    torch.manual_seed(0)
    spec = DataSpec.from_features(["state"], "abs", EnvConfig(), 1, list(CENTER[:2]))
    policy = make_policy({"type": "bc", "group": group, "hidden": [64]}, spec).eval()
    rng = np.random.default_rng(0)

    class Stats:
        def statistics_data(self, key):
            n = 200
            size = spec.shapes["lowdim"][0] if key == "lowdim" else 10
            x = rng.uniform(-1, 1, (n, size))
            x[:, :2] += CENTER[:2]
            return x

    policy.fit(Stats())
    sym = policy.sym
    lowdim = torch.tensor(Stats().statistics_data("lowdim")[:3], dtype=torch.float32)[:, None]
    action = policy.predict_chunk({"lowdim": lowdim}, [torch.Generator()] * 3)
    for g in sym.elements:  # lowdim: eef position, eef rot6d, 2 finger joints, object position, object rot6d
        turned = lowdim.clone()
        for pos, rot in ((0, 3), (11, 14)):
            turned[..., pos : pos + 3] = T.act_on_positions(sym, g, lowdim[..., pos : pos + 3], CENTER)
            turned[..., rot : rot + 6] = T.act_on_rot6d(sym, g, lowdim[..., rot : rot + 6])
        expected = T.act_on_abs_action(sym, g, action, CENTER)
        got = policy.predict_chunk({"lowdim": turned}, [torch.Generator()] * 3)
        assert (got - expected).abs().max() < 1e-4 * action.abs().max(), f"{group} element {g}"


# -- the shared acting interface --------------------------------------------------------------------
def test_batched_select_action_acts_for_each_env_as_alone(demos, tmp_path):  # noqa: F811
    """select_action on B envs = B separate single-env calls: each env has its own history, queue, noise."""
    run = tmp_path / "run"
    Trainer(train_config(demos, run, steps=2), run).fit()
    policy = load_policy(run / "checkpoints" / "latest")
    rng = np.random.default_rng(0)

    def frame():
        return {f.key: rng.uniform(-0.2, 0.2, f.shape(EnvConfig(), 2)).astype(np.float32)
                for f in mode_features(["state"])}  # fmt: skip

    first, second = [frame() for _ in range(5)], [frame() for _ in range(5)]
    together = []
    policy.reset()
    policy.reset([0, 1], [7, 8])
    for t in range(5):  # env 1 restarts at step 2: its history and queue start over, env 0's do not
        if t == 2:
            policy.reset([1], [9])
        together.append(policy.select_action({k: np.stack([first[t][k], second[t][k]]) for k in first[t]}))

    def alone(frames, restarts):
        policy.reset()
        out = []
        for t, obs in enumerate(frames):
            if t in restarts:
                policy.reset([0], [restarts[t]])
            out.append(policy.select_action({k: v[None] for k, v in obs.items()})[0])
        return np.stack(out)

    np.testing.assert_allclose(np.stack(together)[:, 0], alone(first, {0: 7}), atol=1e-5)
    np.testing.assert_allclose(np.stack(together)[:, 1], alone(second, {0: 8, 2: 9}), atol=1e-5)


def test_select_action_refuses_non_finite_observations_naming_the_key():
    spec = DataSpec.from_features(["state"], "abs", EnvConfig(), 2, [0.0, 0.0])
    policy = make_policy({"type": "bc"}, spec)
    obs = {f.key: np.zeros((2, *f.shape(EnvConfig(), 2)), np.float32) for f in mode_features(["state"])}
    obs["robot0_eef_quat"][:, 3] = 1
    obs["object"][:, 6::7] = 1
    assert policy.select_action(obs).shape == (2, 10)
    obs["object"][1, 4] = np.nan
    with pytest.raises(ValueError, match=r"observation 'object' is not finite at \[1, 4\]"):
        policy.select_action(obs)


def test_checkpoint_without_a_type_loads_as_the_diffusion_policy_it_is(demos, tmp_path):  # noqa: F811
    """Checkpoints written before the registry have no ``type``: they hold diffusion policies."""
    run = tmp_path / "run"
    Trainer(train_config(demos, run, steps=2), run).fit()
    folder = run / "checkpoints" / "latest"
    config = OmegaConf.to_container(OmegaConf.load(folder / "config.yaml"))
    del config["type"], config["policy"]["type"], config["policy"]["use_ema"]
    config["env"]["obs_modes"] = config["env"].pop("obs")  # the old name of the modes
    OmegaConf.save(OmegaConf.create(config), folder / "config.yaml")
    assert isinstance(load_policy(folder), DiffusionPolicy)
    config["policy"]["type"] = "ppo"
    OmegaConf.save(OmegaConf.create(config), folder / "config.yaml")
    with pytest.raises(CheckpointError, match="unknown policy type 'ppo'"):
        load_policy(folder)


def test_load_policy_and_act_import_neither_robosuite_nor_mujoco(demos, tmp_path):  # noqa: F811
    run = tmp_path / "run"
    Trainer(train_config(demos, run, steps=2), run).fit()
    script = textwrap.dedent(f"""
        import sys, time
        import numpy as np
        start = time.perf_counter()
        import equirobot
        policy = equirobot.load_policy({str(run / "checkpoints" / "latest")!r})
        loaded = time.perf_counter() - start
        from equirobot_envs.config import EnvConfig
        from equirobot_envs.features import mode_features
        obs = {{f.key: np.zeros((1, *f.shape(EnvConfig(), 2)), f.dtype) for f in mode_features(["state"])}}
        obs["robot0_eef_quat"][:, 3] = 1
        obs["object"][:, 6::7] = 1
        assert policy.select_action(obs).shape == (1, 10)
        print("simulator:", sorted(m for m in sys.modules if m.split(".")[0] in ("robosuite", "mujoco")))
        print(f"load seconds: {{loaded:.2f}}")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "simulator: []" in result.stdout, result.stdout


def test_train_run_dir_resumes_with_the_runs_own_config(demos, tmp_path):  # noqa: F811
    run = tmp_path / "run"
    first = equirobot("train", *tiny_train_overrides(demos), f"run_dir={run}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    # No task, dataset or policy given: the run's saved config supplies them; steps=6 trains it further.
    again = equirobot("train", f"run_dir={run}", "steps=6", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming" in again.stdout and "trained 6 steps" in again.stdout
    assert OmegaConf.load(run / "checkpoints" / "latest" / "config.yaml").step == 6
