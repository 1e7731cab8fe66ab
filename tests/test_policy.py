"""The diffusion policy: data windows, normaliser, sampler equivariance, train/checkpoint/resume loop."""

import csv
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from test_cli import equirobot

from equirobot.config import TrainConfig
from equirobot.data.inputs import DataSpec
from equirobot.data.normalizer import fit_statistics
from equirobot.data.replay_buffer import ReplayBuffer
from equirobot.data.sequence import SequenceDataset
from equirobot.demos.collect import collect
from equirobot.evaluation.episode import PolicyAgent
from equirobot.policies.augmentation import rotate_grid, rotate_pairs
from equirobot.policies.checkpoint import CheckpointError, learned_state, load_policy
from equirobot.policies.diffusion.configuration import DiffusionConfig
from equirobot.policies.diffusion.modeling import DiffusionPolicy
from equirobot.symmetry import transforms as T
from equirobot.symmetry.group import SceneSymmetry
from equirobot.symmetry.representations import ABS_ACTION
from equirobot.training.trainer import Trainer

TINY = dict(
    horizon=8,
    n_obs_steps=2,
    n_action_steps=4,
    down_fields=[4, 8],
    step_embed_dim=16,
    lowdim_hidden=8,
    lowdim_fields=4,
    visual_fields=4,
    point_hidden=[8, 16],
    grid_widths=[2, 4],
    voxel_input_pool=1,
    inference_steps=3,
    train_timesteps=20,
)
CENTER = (0.1, -0.05, 0.8)


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    """Two real Stack D1 expert demos with state and (small) point-cloud observations."""
    out = tmp_path_factory.mktemp("policy_data") / "stack"
    kwargs = {"obs": ("state", "point_cloud"), "control": "abs", "n_points": 64}
    collect("equirobot/Stack-D1-v0", kwargs, out, n_demos=2, workers=2)
    return out.with_suffix(".zarr")


def train_config(dataset, run_dir, **overrides) -> TrainConfig:
    policy = DiffusionConfig(**{**TINY, **overrides.pop("policy", {})})
    defaults = dict(
        task="stack_d1",
        dataset=str(dataset),
        policy=policy,
        steps=6,
        batch_size=8,
        warmup_steps=2,
        eval_episodes=0,
        log_every=2,
        checkpoint_every=100,
        run_dir=str(run_dir),
    )
    return TrainConfig(**{**defaults, **overrides})


# -- data -------------------------------------------------------------------------------------------
def test_windows_pad_episode_edges_and_align_actions(demos):
    data = SequenceDataset(demos, ["state"], "abs", horizon=8, n_obs=2, n_action=4)
    lengths = np.diff(np.concatenate([[0], ReplayBuffer.open(demos).episode_ends]))
    # Per episode, windows start at -(n_obs - 1) .. L - horizon + n_action - 1: L - 3 of them.
    assert len(data) == sum(int(length) - 3 for length in lengths)
    first = data[0]
    assert first["obs"]["lowdim"].shape == (2, 11 + 2 * 9) and first["action"].shape == (8, 10)
    torch.testing.assert_close(first["obs"]["lowdim"][0], first["obs"]["lowdim"][1])  # padded with step 0
    torch.testing.assert_close(
        first["action"][1], torch.from_numpy(data.actions[0])
    )  # step 0 at index n_obs-1


def test_bad_window_sizes_are_refused(demos):
    with pytest.raises(ValueError, match="n_obs"):
        SequenceDataset(demos, ["state"], "abs", horizon=4, n_obs=2, n_action=4)


def test_normaliser_commutes_with_rotations_about_the_axis():
    sym = SceneSymmetry(8)
    rng = np.random.default_rng(0)
    positions = rng.uniform(-0.3, 0.3, (500, 3)) + CENTER
    offset, scale = fit_statistics((("position", 3),), positions, CENTER[:2])
    assert scale[0] == scale[1]  # one unit for x and y
    normalize = lambda p: (p - torch.tensor(offset)) * torch.tensor(scale)  # noqa: E731
    x = torch.tensor(positions[:20], dtype=torch.float32)
    for g in sym.elements:  # normalised positions turn about x = y = 0 (z, invariant, is left alone)
        expected = T.act_on_positions(sym, g, normalize(x), (0.0, 0.0, 0.0))
        torch.testing.assert_close(
            normalize(T.act_on_positions(sym, g, x, CENTER)), expected, atol=1e-5, rtol=1e-5
        )


def test_rotation_augmentation_matches_the_group_action():
    sym, g = SceneSymmetry(4), SceneSymmetry(4).elements[1]  # 90 degrees: grids turn exactly
    cos, sin = torch.tensor([0.0]), torch.tensor([1.0])
    action = torch.randn(1, 5, 10)
    torch.testing.assert_close(
        rotate_pairs(action, ABS_ACTION, cos, sin), T.act_on_abs_action(sym, g, action, (0, 0, 0))
    )
    voxels = torch.rand(1, 3, 6, 6, 6)  # (B, C, X, Y, Z) -> (B, C Z, Y, X) grids
    grid = voxels.permute(0, 1, 4, 3, 2).reshape(1, 18, 6, 6)
    turned = rotate_grid(grid, cos, sin).reshape(1, 3, 6, 6, 6).permute(0, 1, 4, 3, 2)
    torch.testing.assert_close(turned, T.act_on_voxels(sym, g, voxels), atol=1e-5, rtol=1e-5)


# -- the sampler is equivariant -----------------------------------------------------------------------
def _scene_policy(mode: str, sym_name: str, fit: bool = True) -> tuple[DiffusionPolicy, dict]:
    torch.manual_seed(0)
    shapes = (
        {"lowdim": [11], "point_cloud": [96, 6]}
        if mode == "point_cloud"
        else {"lowdim": [11], "voxels": [4, 8, 8, 8]}
    )
    spec = DataSpec(modes=[mode], control="abs", shapes=shapes, n_objects=0, center_xy=list(CENTER[:2]))
    policy = DiffusionPolicy(DiffusionConfig(group=sym_name, **TINY), spec)
    rng = np.random.default_rng(1)

    class Stats:  # enough data to fit the normaliser on
        def statistics_data(self, key):
            n = 300
            pos = rng.uniform(-0.25, 0.25, (n, 3)) + CENTER
            if key == "action":
                return np.concatenate([pos, rng.uniform(-1, 1, (n, 6)), rng.uniform(-1, 1, (n, 1))], 1)
            if key == "lowdim":
                return np.concatenate([pos, rng.uniform(-1, 1, (n, 6)), rng.uniform(0, 0.04, (n, 2))], 1)
            return np.concatenate([pos, rng.uniform(0, 1, (n, 3))], 1)[:, None]

    if fit:
        policy.fit(Stats())
    policy.eval()
    eef = torch.tensor(rng.uniform(-0.2, 0.2, (1, 2, 3)) + CENTER, dtype=torch.float32)
    rot = torch.tensor(
        np.stack([np.linalg.qr(rng.normal(size=(3, 3)))[0] for _ in range(2)]), dtype=torch.float32
    )
    rot = rot * torch.linalg.det(rot)[:, None, None]
    lowdim = torch.cat([eef, rot[:, :2].flatten(1)[None], torch.rand(1, 2, 2) * 0.04], -1)
    obs = {"lowdim": lowdim}
    if mode == "point_cloud":
        xyz = torch.tensor(rng.uniform(-0.25, 0.25, (1, 2, 96, 3)) + CENTER, dtype=torch.float32)
        obs["point_cloud"] = torch.cat([xyz, torch.rand(1, 2, 96, 3)], -1)
    else:
        obs["voxels"] = (torch.rand(1, 2, 4, 8, 8, 8) * 255).to(torch.uint8)
    return policy, obs


@pytest.mark.parametrize(
    ("mode", "group", "fit"),
    [
        ("point_cloud", "C8", True),
        ("point_cloud", "D4", True),
        ("voxels", "C4", True),
        ("point_cloud", "C8", False),
    ],
)
def test_whole_sampler_is_equivariant(mode, group, fit):
    """Turn the scene and the initial noise by g: the sampled action chunk turns by g.

    Also straight from the constructor (``fit=False``): the symmetry axis is part of the model then too.
    """
    policy, obs = _scene_policy(mode, group, fit)
    sym = policy.sym
    noise = torch.randn(1, 8, 10)
    actions = policy.sample(obs, noise)
    assert actions.shape == (1, 4, 10)
    for g in sym.elements:
        turned = {
            "lowdim": torch.cat(
                [
                    T.act_on_positions(sym, g, obs["lowdim"][..., :3], CENTER),
                    T.act_on_rot6d(sym, g, obs["lowdim"][..., 3:9]),
                    obs["lowdim"][..., 9:],
                ],
                -1,
            )
        }
        if mode == "point_cloud":
            turned["point_cloud"] = T.act_on_point_cloud(sym, g, obs["point_cloud"], CENTER)
        else:
            turned["voxels"] = T.act_on_voxels(sym, g, obs["voxels"])
        # The noise lives in normalised action space, whose positions are relative to the axis.
        turned_noise = T.act_on_abs_action(sym, g, noise, (0.0, 0.0, 0.0))
        expected = T.act_on_abs_action(sym, g, actions, CENTER)
        got = policy.sample(turned, turned_noise)
        error = (got - expected).abs().max() / actions.abs().max()
        assert error < 1e-4, f"{mode} {group} element {g}: relative error {error:.2e}"


def test_compiled_policy_samples_the_eager_chunk():
    """``compile_inference`` (torch.compile of encoder and denoiser) changes speed, not actions."""
    policy, obs = _scene_policy("point_cloud", "C8")
    noise = torch.randn(1, 8, 10)
    eager = policy.sample(obs, noise)
    policy.compile_inference()
    torch.testing.assert_close(policy.sample(obs, noise), eager, atol=1e-4, rtol=1e-4)


# -- train -> checkpoint -> load -> act, and exact resume ------------------------------------------
def test_train_checkpoint_load_and_act(demos, tmp_path, make_env):
    trainer = Trainer(train_config(demos, tmp_path / "run"), tmp_path / "run")
    first = {k: v.clone() for k, v in learned_state(trainer.policy).items()}
    summary = trainer.fit()
    assert summary["steps"] == 6
    assert any(not torch.equal(first[k], v) for k, v in learned_state(trainer.policy).items())  # it learned
    assert (tmp_path / "run" / "tb").is_dir()
    policy = load_policy(tmp_path / "run" / "checkpoints" / "latest")
    for key, value in learned_state(trainer.acting_policy).items():
        torch.testing.assert_close(learned_state(policy)[key], value, rtol=0, atol=0)
    env = make_env("stack_d1", obs=("state",), control="abs")
    agent = PolicyAgent(policy, seed=0)
    obs, _ = env.reset(seed=100_000)
    agent.reset()
    for _ in range(6):  # more than one chunk of 4
        action = agent.act(obs)
        assert action.shape == (10,) and np.isfinite(action).all()
        obs, *_ = env.step(action)


def test_point_cloud_policy_trains_on_collected_clouds_and_acts(demos, tmp_path, make_env):
    run = tmp_path / "run"
    trainer = Trainer(train_config(demos, run, obs=["point_cloud"], n_points=64, steps=2), run)
    trainer.fit()
    policy = load_policy(run / "checkpoints" / "latest")
    assert policy.spec.shapes == {"lowdim": [11], "point_cloud": [64, 6]}
    scale = policy.normalizer.point_cloud_scale
    assert scale[0] == scale[1] and torch.all(scale[3:] == 1)  # x, y share a unit; colours untouched
    env = make_env("stack_d1", obs=("point_cloud",), control="abs", n_points=64)
    obs, _ = env.reset(seed=100_000)
    assert PolicyAgent(policy).act(obs).shape == (10,)


@pytest.mark.parametrize("mode", ["rgb", "heightmap", "voxels"])
def test_image_and_grid_policies_train_and_sample(mode):
    shapes = {
        "rgb": {"lowdim": [11], "agentview_image": [3, 32, 32], "robot0_eye_in_hand_image": [3, 32, 32]},
        "heightmap": {"lowdim": [11], "heightmap": [1, 32, 32]},
        "voxels": {"lowdim": [11], "voxels": [4, 16, 16, 16]},
    }[mode]
    spec = DataSpec(modes=[mode], control="delta", shapes=shapes, n_objects=0, center_xy=[0.0, 0.0])
    policy = DiffusionPolicy(DiffusionConfig(group="C4", augment_rotation=True, **TINY), spec)
    obs = {
        k: (torch.rand(3, 2, *s) * 255).to(torch.uint8) if len(s) == 3 and s[0] == 3 or k == "voxels"
        else torch.rand(3, 2, *s)
        for k, s in shapes.items()
    }  # fmt: skip
    loss, _ = policy({"obs": obs, "action": torch.rand(3, 8, 7) * 2 - 1})
    loss.backward()
    assert torch.isfinite(loss)
    assert policy.eval().predict_chunk(obs, [torch.Generator() for _ in range(3)]).shape == (3, 4, 7)


def test_resumed_run_matches_an_uninterrupted_one(demos, tmp_path):
    whole = Trainer(
        train_config(demos, tmp_path / "whole", policy={"augment_rotation": True}), tmp_path / "whole"
    )
    whole.fit()
    cfg = train_config(demos, tmp_path / "resumed", policy={"augment_rotation": True})
    Trainer(cfg, tmp_path / "resumed").fit(until=3)  # as if killed after step 3's checkpoint
    resumed = Trainer(cfg, tmp_path / "resumed")
    resumed.fit()
    assert resumed.step == whole.step == 6
    for name, module in (("model", "policy"), ("acting", "acting_policy")):
        a, b = learned_state(getattr(whole, module)), learned_state(getattr(resumed, module))
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name} {key} differs after resume"
    assert whole.schedulers["main"].get_last_lr() == resumed.schedulers["main"].get_last_lr()


def test_bad_checkpoints_are_named(demos, tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_policy(tmp_path / "nowhere")
    run = tmp_path / "run"
    Trainer(train_config(demos, run, steps=2), run).fit()
    folder = run / "checkpoints" / "latest"
    config = (folder / "config.yaml").read_text()
    (folder / "config.yaml").write_text(config.replace("- 4\n  - 8\n", "- 4\n  - 16\n", 1))
    with pytest.raises(CheckpointError, match="do not match"):
        load_policy(folder)
    (folder / "policy.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="unreadable"):
        load_policy(folder)
    result = equirobot("eval", f"checkpoint={tmp_path / 'nowhere'}", cwd=tmp_path)
    assert (
        result.returncode == 2 and "no such checkpoint" in result.stderr and "Traceback" not in result.stderr
    )
    result = equirobot("train", f"dataset={tmp_path / 'none.zarr'}", cwd=tmp_path)
    assert result.returncode == 2 and "none.zarr: no such replay buffer" in result.stderr


def tiny_train_overrides(demos) -> list[str]:
    """Command-line overrides of a few-second ``equirobot train`` of the TINY policy on ``demos``."""
    policy = [f"policy.{k}={v}" for k, v in TINY.items()]
    return [
        "task=stack_d1", f"dataset={demos}", "steps=4", "batch_size=4", "warmup_steps=1",
        "eval_episodes=0", "threads=1", *(o.replace(" ", "") for o in policy),
    ]  # fmt: skip


def test_two_process_ddp_training_writes_one_checkpoint(demos, tmp_path):
    """torchrun with 2 CPU processes (gloo): both train, rank 0 writes the checkpoint, which loads."""
    run = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "equirobot", "train", *tiny_train_overrides(demos), f"run_dir={run}",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    policy = load_policy(run / "checkpoints" / "latest")
    assert policy.spec.control == "abs"


def test_seed_sweep_runs_in_parallel_with_the_joblib_launcher(demos, tmp_path):
    """``equirobot train -m seed=0,1 hydra/launcher=joblib``: one run folder and checkpoint per seed."""
    sweep = tmp_path / "sweep"
    result = equirobot(
        "train", "-m", "seed=0,1", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
        f"hydra.sweep.dir={sweep}", *tiny_train_overrides(demos), cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    runs = sorted(p.name for p in sweep.iterdir() if (p / "checkpoints" / "latest").is_dir())
    assert runs == ["stack_d1_equidiff_seed0", "stack_d1_equidiff_seed1"]
    weights = [learned_state(load_policy(sweep / r / "checkpoints" / "latest")) for r in runs]
    assert any(not torch.equal(weights[0][k], weights[1][k]) for k in weights[0])  # the seeds differ


def test_eval_writes_tables_plot_and_videos_and_lists_tasks_without_checkpoints(demos, tmp_path):
    run = tmp_path / "run"
    Trainer(train_config(demos, run, steps=2), run).fit()
    result = equirobot(
        "eval", f"checkpoints=[{run}]", "suite=mimicgen12", "episodes=2", "workers=1", "videos=1",
        f"hydra.run.dir={tmp_path / 'eval'}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    rows = list(csv.DictReader(open(tmp_path / "eval" / "results.csv")))
    assert len(rows) == 12
    stack = [r for r in rows if r["task"] == "stack_d1"]
    assert [r["protocol"] for r in stack] == ["last"] and stack[0]["episodes"] == "2"
    assert float(stack[0]["ci_low"]) <= float(stack[0]["success_rate"]) <= float(stack[0]["ci_high"])
    statuses = {r["task"]: r["status"] for r in rows}
    assert "not built yet" not in statuses.values()  # all twelve tasks are built
    assert statuses["square_d2"] == statuses["coffee_preparation_d1"] == "no checkpoint for this task"
    assert (tmp_path / "eval" / "success.png").exists() and (tmp_path / "eval" / "results.md").exists()
    assert len(list((tmp_path / "eval" / "videos").rglob("*.mp4"))) == 1


# -- nothing silently wrong --------------------------------------------------------------------------
def test_a_nan_in_the_dataset_is_named_before_training(demos, tmp_path):
    bad = tmp_path / "bad.zarr"
    shutil.copytree(demos, bad)
    buffer = ReplayBuffer.open(bad, mode="r+")
    actions = np.asarray(buffer["actions_abs"][:])
    actions[5, 2] = np.nan
    buffer["actions_abs"][:] = actions
    result = equirobot("train", *tiny_train_overrides(bad), f"run_dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "'data/actions_abs' is not finite at step 5 (episode 0)" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "run" / "checkpoints").exists()
    info = equirobot("dataset", "info", str(bad), cwd=tmp_path)
    assert info.returncode == 2 and "not finite at step 5" in info.stderr


def test_training_stops_on_a_non_finite_loss_keeping_the_last_good_checkpoint(demos, tmp_path):
    run = tmp_path / "run"
    Trainer(train_config(demos, run, checkpoint_every=2), run).fit(until=2)
    good = (run / "checkpoints" / "latest" / "policy.safetensors").read_bytes()
    trainer = Trainer(train_config(demos, run, checkpoint_every=2), run)
    forward = trainer.policy.forward

    def poisoned(batch, generator=None):
        loss, metrics = forward(batch, generator)
        return loss * float("nan") if trainer.step == 3 else loss, metrics

    trainer.policy.forward = poisoned  # type: ignore[method-assign]
    trainer.model = trainer.policy
    with pytest.raises(FloatingPointError, match="training stopped at step 3: loss is nan"):
        trainer.fit()
    assert (run / "checkpoints" / "latest" / "policy.safetensors").read_bytes() == good
    assert all(torch.isfinite(v).all() for v in learned_state(trainer.policy).values())


@pytest.fixture(scope="module")
def every_mode_demos(tmp_path_factory):
    """Two real Stack D1 expert demos observed in every policy-input mode, at small sizes."""
    out = tmp_path_factory.mktemp("every_mode") / "stack"
    collect("equirobot/Stack-D1-v0", {"obs": MODES, **SMALL}, out, n_demos=2, workers=2)
    return out.with_suffix(".zarr")


MODES = ["state", "point_cloud", "voxels", "rgb", "heightmap"]
SMALL = {"control": "abs", "image_size": 32, "heightmap_size": 32, "voxel_size": 16, "n_points": 64}


@pytest.mark.parametrize("mode", MODES)
def test_every_observation_mode_trains_through_the_trainer_and_acts(
    every_mode_demos, mode, tmp_path, make_env
):
    run = tmp_path / "run"
    cfg = train_config(
        every_mode_demos, run, obs=[mode], **SMALL, steps=3, batch_size=2, policy={"group": "C4"}
    )
    Trainer(cfg, run).fit()
    policy = load_policy(run / "checkpoints" / "latest")
    env = make_env("stack_d1", obs=[mode], **SMALL)
    obs, _ = env.reset(seed=100_000)
    action = PolicyAgent(policy).act(obs)
    assert action.shape == (10,) and np.isfinite(action).all()


@pytest.mark.slow  # 2.5 min on 2 cores: rollouts on two tasks plus three eval processes
def test_eval_refuses_mismatched_checkpoints_names_each_failure_and_exits_1(demos, tmp_path):
    run = tmp_path / "run"
    Trainer(train_config(demos, run, steps=2), run).fit()
    out = tmp_path / "eval"
    # Tried on the whole suite: NutAssembly and PickPlace have 4 objects, this Stack policy reads 2.
    result = equirobot(
        "eval", f"checkpoint={run}", "suite=mimicgen12", "episodes=1", "workers=1", "videos=0",
        f"hydra.run.dir={out}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-3000:]
    rows = {r["task"]: r["status"] for r in csv.DictReader(open(out / "results.csv"))}
    assert rows["stack_d1"] == "ok"
    for task in ("nut_assembly_d0", "pick_place_d0"):
        assert rows[task].startswith("failed:") and "the policy takes inputs" in rows[task]
    assert "evaluations failed" in result.stderr and "Traceback" not in result.stderr
    # Another eval into the same folder is refused and replaces nothing.
    before = (out / "results.csv").read_bytes()
    again = equirobot("eval", f"checkpoint={run}", "episodes=1", f"hydra.run.dir={out}", cwd=tmp_path)
    assert again.returncode == 2 and "holds an earlier evaluation" in again.stderr
    assert (out / "results.csv").read_bytes() == before
    # A damaged checkpoint is a failed row with its cause, not a worker's traceback.
    (run / "checkpoints" / "latest" / "policy.safetensors").write_bytes(b"truncated")
    damaged = equirobot(
        "eval", f"checkpoint={run}", "episodes=1", f"hydra.run.dir={tmp_path / 'e2'}", cwd=tmp_path
    )
    assert damaged.returncode == 1 and "unreadable weights" in damaged.stderr


def test_check_equivariance_reports_the_subgroup_each_policy_mode_is_exact_on():
    """state and point-cloud policies are exact for all of C8 and D4; grid inputs only for the elements
    that map the grid onto itself (C4 of C8; all of D4), in the normaliser, encoder and whole sampler."""
    from equirobot.commands.check_equivariance import policy_rows

    for group, grid_subgroup in (("C8", "C4"), ("D4", "D4 (all of it)")):
        rows = {
            (mode, part): exact
            for _, mode, part, _, exact in policy_rows(SceneSymmetry.from_name(group), 1e-4)
        }
        for mode in ("state", "point_cloud"):
            assert all(
                rows[(mode, p)] == f"{group} (all of it)" for p in ("normaliser", "encoder", "sampler")
            )
        for mode in ("voxels", "heightmap", "rgb"):
            assert rows[(mode, "sampler")] == grid_subgroup and rows[(mode, "encoder")] == grid_subgroup
