"""``equirobot check-equivariance``: the equivariance error of every module, and of whole policies.

Modules: every entry of ``equirobot.nn.catalog``, in train and eval mode. Policies: a small diffusion
policy per observation mode, fitted on synthetic data about an off-origin symmetry axis; for each part
(normaliser, observation encoder, the whole sampler with its initial noise turned too) the largest
error over the group, and the subgroup it is exact on (grid inputs: the elements mapping the grid to
itself); small RL agents on the closed-loop heightmap: SAC's executed action and both critics, DQN's
Q-map (the turned scene's map is the turned map) and its greedy action; and FCN on the open-loop
workspace heightmap: its Q-map over pixels x yaws (turned, the yaw channels shifted) and its greedy
pick; and SAC on each control task's state (the task's own mirror group, C2 or D2), exact and relaxed
(at initialisation, where it must be exact too): the executed commands and both critics.
"""

from __future__ import annotations

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from equirobot.config import CheckEquivarianceConfig
from equirobot.data.inputs import DataSpec, task_data_spec
from equirobot.nn.catalog import catalog
from equirobot.policies.checks import actor_critic_errors, exact_subgroup, part_errors, q_map_errors
from equirobot.policies.diffusion.modeling import DiffusionPolicy
from equirobot.policies.dqn.modeling import DQNPolicy
from equirobot.policies.fcn.modeling import FCNPolicy
from equirobot.policies.registry import make_policy
from equirobot.policies.sac.modeling import SACPolicy
from equirobot.symmetry.checks import equivariance_error
from equirobot.symmetry.group import SceneSymmetry
from equirobot_envs.config import EnvConfig
from equirobot_envs.features import CONTROL_MODES
from equirobot_envs.geometry import axis_angle_to_mat, mat_to_rot6d
from equirobot_envs.registry import control_specs

POLICY_MODES = ("state", "point_cloud", "voxels", "heightmap", "rgb")
CENTER = (0.1, -0.05)
SMALL = EnvConfig(image_size=16, heightmap_size=16, voxel_size=8, n_points=48)
TINY = {
    "type": "diffusion", "horizon": 8, "n_action_steps": 4, "down_fields": [4, 8], "step_embed_dim": 16,
    "lowdim_hidden": 8, "lowdim_fields": 4, "visual_fields": 4, "point_hidden": [8, 16],
    "grid_widths": [2, 4], "voxel_input_pool": 1, "inference_steps": 3, "train_timesteps": 20,
    "wrist_features": 4,
}  # fmt: skip


def synthetic_inputs(spec: DataSpec, n: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """``n`` frames of every policy input: poses about the axis, valid rotations, random scene views."""

    def pose() -> np.ndarray:
        rotation = mat_to_rot6d(axis_angle_to_mat(rng.normal(size=(n, 3))))
        return np.concatenate([rng.uniform(-0.25, 0.25, (n, 3)) + [*CENTER, 0.8], rotation], axis=1)

    lowdim = [pose(), rng.uniform(0, 0.04, (n, 2)), *(pose() for _ in range(spec.n_objects))]
    out = {"lowdim": torch.tensor(np.concatenate(lowdim, axis=1), dtype=torch.float32)}
    for f in spec.scene_features():
        shape = spec.shapes[f.key]
        if f.group_action == "point_cloud":
            xyz = rng.uniform(-0.25, 0.25, (n, shape[0], 3)) + [*CENTER, 0.8]
            out[f.key] = torch.tensor(
                np.concatenate([xyz, rng.uniform(0, 1, (n, shape[0], 3))], -1), dtype=torch.float32
            )
        elif f.dtype == "uint8":
            out[f.key] = torch.from_numpy(rng.integers(0, 256, (n, *shape), dtype=np.uint8))
        else:
            out[f.key] = torch.tensor(rng.uniform(0, 0.2, (n, *shape)), dtype=torch.float32)
    return out


class _Synthetic:
    """Statistics for the normaliser (``statistics_data``), as a dataset would give them."""

    def __init__(self, spec: DataSpec, rng: np.random.Generator):
        self.frames = synthetic_inputs(spec, 200, rng)
        self.actions = np.concatenate(
            [rng.uniform(-0.25, 0.25, (200, 3)) + [*CENTER, 0.8], rng.uniform(-1, 1, (200, 7))], axis=1
        )

    def statistics_data(self, key: str) -> np.ndarray:
        return self.actions if key == "action" else self.frames[key].numpy()


def policy_rows(sym: SceneSymmetry, tolerance: float) -> list[list[str]]:
    """One row per (observation mode, part): largest error, subgroup exact on."""
    rows = []
    for mode in POLICY_MODES:
        torch.manual_seed(0)
        rng = np.random.default_rng(0)
        spec = DataSpec.from_features([mode], "abs", SMALL, 2 if mode == "state" else 0, list(CENTER))
        policy = make_policy({**TINY, "group": sym.name}, spec)
        assert isinstance(policy, DiffusionPolicy)
        policy.fit(_Synthetic(spec, rng))
        inputs = {k: v.reshape(1, 2, *v.shape[1:]) for k, v in synthetic_inputs(spec, 2, rng).items()}
        noise = torch.randn(1, policy.horizon, CONTROL_MODES["abs"].dim)
        for part, errors in part_errors(policy, inputs, noise).items():
            rows.append([sym.name, mode, part, f"{max(errors):.1e}", exact_subgroup(sym, errors, tolerance)])
    return rows


RL_TINY = {"encoder_channels": [8, 16], "features": 16, "hidden": 16}


def actor_critic_rows(sym: SceneSymmetry, tolerance: float) -> list[list[str]]:
    """One row per part of a small SAC agent and a small DQN on the closed-loop heightmap.

    Rotation groups only: dtheta is invariant in both networks, which a mirror would flip.
    """
    if sym.flips:
        return [[sym.name, "sac, dqn", "-", "-", "not defined: dtheta is not a pseudo-scalar of the action"]]
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    spec = DataSpec.from_features(["gripper_heightmap"], "closed_loop", SMALL, 0, list(CENTER))
    sac = make_policy({"type": "sac", **RL_TINY, "group": sym.name}, spec)
    dqn = make_policy({"type": "dqn", **RL_TINY, "group": sym.name}, spec)
    assert isinstance(sac, SACPolicy) and isinstance(dqn, DQNPolicy)
    frames = synthetic_inputs(spec, 2, rng)
    frames["lowdim"] = torch.rand(2, spec.shapes["lowdim"][0])
    inputs = {k: v[:, None] for k, v in frames.items()}
    rows = []
    parts = [("sac", actor_critic_errors(sac, inputs)), ("dqn", q_map_errors(dqn, inputs))]
    if sym.order > 1:  # relaxed_sac at initialisation: as exact as equi_sac
        relaxed = make_policy({"type": "sac", **RL_TINY, "group": sym.name, "relaxed_banks": 2}, spec)
        assert isinstance(relaxed, SACPolicy)
        parts.append(("relaxed_sac", actor_critic_errors(relaxed, inputs)))
    for method, errors in parts:
        for part, values in errors.items():
            rows.append(
                [
                    sym.name,
                    f"{method} (gripper_heightmap)",
                    part,
                    f"{max(values):.1e}",
                    exact_subgroup(sym, values, tolerance),
                ]
            )
    return rows


FCN_TINY = {"type": "fcn", "encoder_channels": [16, 32], "features": 16, "hidden": 16}


def spatial_action_rows(sym: SceneSymmetry, tolerance: float) -> list[list[str]]:
    """The rows of a small FCN (pixels x yaws) on the open-loop workspace heightmap.

    Rotation groups of even order only: the yaws over [0, pi) are the quotient C_N / C_2.
    """
    if sym.flips or sym.order % 2:
        return [[sym.name, "fcn", "-", "-", "not defined: yaws over [0, pi) need C_N, N even"]]
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    spec = DataSpec.from_features(["workspace_heightmap"], "pick_place", SMALL, 0, list(CENTER))
    fcn = make_policy({**FCN_TINY, "group": sym.name, "rotations": sym.order // 2}, spec)
    assert isinstance(fcn, FCNPolicy)
    frames = synthetic_inputs(spec, 2, rng)
    frames["lowdim"] = torch.rand(2, spec.shapes["lowdim"][0])
    inputs = {k: v[:, None] for k, v in frames.items()}
    return [
        [
            sym.name,
            "fcn (workspace_heightmap)",
            part,
            f"{max(values):.1e}",
            exact_subgroup(sym, values, tolerance),
        ]
        for part, values in q_map_errors(fcn, inputs).items()
    ]


def mirror_rows(tolerance: float) -> list[list[str]]:
    """Rows of small SAC agents on every control task's state, in its group: exact and relaxed at init."""
    rows = []
    for name, task in control_specs().items():
        spec = task_data_spec(task, EnvConfig(task=name))
        for preset, banks in (("mirror_sac", 0), ("relaxed_mirror_sac", 2)):
            torch.manual_seed(0)
            policy = make_policy({"type": "sac", "hidden": 16, "features": 16, "group": "task",
                                  "relaxed_banks": banks}, spec)  # fmt: skip
            assert isinstance(policy, SACPolicy)
            states = torch.randn(4, 1, spec.shapes["lowdim"][0])
            for part, values in actor_critic_errors(policy, {"lowdim": states}).items():
                rows.append(
                    [
                        policy.sym.name,
                        f"{preset} ({name} state)",
                        part,
                        f"{max(values):.1e}",
                        exact_subgroup(policy.sym, values, tolerance),
                    ]
                )
    return rows


def run(cfg: CheckEquivarianceConfig) -> bool:
    """Print the module table and the policy table; returns whether every module passed."""
    torch.set_num_threads(cfg.threads)
    all_ok = True
    table = Table(title="modules: equivariance error (relative, max over inputs), train and eval mode")
    for column in ("group", "module", "exact elements", "max error exact", "max error other", "result"):
        table.add_column(column)
    for name in cfg.groups:
        sym = SceneSymmetry.from_name(name)
        for case in catalog(sym):
            errors = []
            for train in (True, False):
                case.module.train(train)
                errors += equivariance_error(
                    case, case.inputs, case.act_in, case.act_out, sym.elements, case.is_exact
                )
            exact = [e.relative_error for e in errors if e.exact]
            other = [e.relative_error for e in errors if not e.exact]
            ok = max(exact) < cfg.tolerance
            all_ok &= ok
            table.add_row(
                name,
                case.name,
                f"{len(exact) // 2}/{len(sym.elements)}",
                f"{max(exact):.1e}",
                f"{max(other):.1e}" if other else "-",
                "[green]ok" if ok else "[red]FAIL",
            )
    console = Console(width=150)
    console.print(table)
    if cfg.policies:
        policies = Table(title="policies: error over the group, and the subgroup each part is exact on")
        for column in ("group", "observation mode", "part", "max error", "exact on"):
            policies.add_column(column)
        for name in cfg.groups:
            for row in policy_rows(SceneSymmetry.from_name(name), cfg.tolerance):
                policies.add_row(*row)
            for row in actor_critic_rows(SceneSymmetry.from_name(name), cfg.tolerance):
                policies.add_row(*row)
            for row in spatial_action_rows(SceneSymmetry.from_name(name), cfg.tolerance):
                policies.add_row(*row)
        for row in mirror_rows(cfg.tolerance):
            policies.add_row(*row)
        console.print(policies)
    return all_ok
