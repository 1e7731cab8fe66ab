"""Equivariance of a whole policy, part by part.

Diffusion: normaliser, observation encoder, sampler; reinforcement learning: actor and critics (SAC),
the Q-map and its greedy action (DQN, FCN).

Every scene input is turned by each group element the way its feature declares (``group_action``):
``lowdim`` by its quantities (positions about the symmetry axis), point clouds about the axis, voxel
grids and top-down views as grids (exact only on the elements that map the grid onto itself), the
wrist view not at all. A part is exact for an element when its output turns by the declared
representation to float precision; :func:`exact_subgroup` names the elements a policy is exact for.
"""

from __future__ import annotations

import torch

from equirobot.data.inputs import LOWDIM, action_layout, lowdim_layout, lowdim_quantities
from equirobot.policies.diffusion.modeling import DiffusionPolicy
from equirobot.policies.q_learning import QLearningPolicy
from equirobot.policies.sac.modeling import SACPolicy
from equirobot.symmetry import transforms as T
from equirobot.symmetry.checks import field_action
from equirobot_envs.features import CONTROL_MODES

SCENE_ACTIONS = {
    "point_cloud": lambda sym, g, x, center: T.act_on_point_cloud(sym, g, x, center),
    "voxels": lambda sym, g, x, center: T.act_on_voxels(sym, g, x),
    "top_down": lambda sym, g, x, center: T.act_on_top_down(sym, g, x),
    "with_gripper": lambda sym, g, x, center: x,
}


def act_on_inputs(
    policy: DiffusionPolicy | SACPolicy | QLearningPolicy, g, inputs: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Policy inputs ``{key: (B, n_obs, ...)}`` (raw units) of a scene turned by ``g``.

    A control task's state is mirrored by its sign vectors instead.
    """
    spec, sym = policy.spec, policy.sym
    if spec.reflections is not None:
        return {LOWDIM: T.act_on_layout(sym, g, inputs[LOWDIM], lowdim_layout(spec))}
    center = (*spec.center_xy, 0.0)
    out = {LOWDIM: T.act_on_quantities(sym, g, inputs[LOWDIM], lowdim_quantities(spec), center)}
    for feature in spec.scene_features():
        out[feature.key] = SCENE_ACTIONS[feature.group_action](sym, g, inputs[feature.key], center)
    return out


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


@torch.no_grad()
def part_errors(policy: DiffusionPolicy, inputs: dict[str, torch.Tensor], noise: torch.Tensor) -> dict:
    """{part: [relative error per group element]} for the normaliser, the encoder and the whole sampler."""
    policy.eval()
    sym, quantities = policy.sym, CONTROL_MODES[policy.spec.control].quantities
    center = (*policy.spec.center_xy, 0.0)
    normalized = policy.normalize_obs(inputs)
    cond = policy.obs_encoder(normalized)
    act_cond = field_action(policy.obs_encoder.cond_type)
    actions = policy.sample(inputs, noise)
    errors: dict[str, list[float]] = {"normaliser": [], "encoder": [], "sampler": []}
    lowdim = lowdim_quantities(policy.spec)
    for g in sym.elements:
        turned = act_on_inputs(policy, g, inputs)
        turned_norm = policy.normalize_obs(turned)
        expected_norm = T.act_on_quantities(sym, g, normalized[LOWDIM], lowdim, (0.0, 0.0, 0.0))
        errors["normaliser"].append(_relative(turned_norm[LOWDIM], expected_norm))
        errors["encoder"].append(_relative(policy.obs_encoder(turned_norm), act_cond(g, cond)))
        turned_noise = T.act_on_quantities(sym, g, noise, quantities, (0.0, 0.0, 0.0))  # normalised space
        expected = T.act_on_quantities(sym, g, actions, quantities, center)
        errors["sampler"].append(_relative(policy.sample(turned, turned_noise), expected))
    return errors


@torch.no_grad()
def actor_critic_errors(policy: SACPolicy, inputs: dict[str, torch.Tensor]) -> dict:
    """{part: [relative error per group element]} of an actor-critic.

    ``actor``: the action it executes (eval mode: the squashed mean) against the turned action (a
    control task's: the mirrored commands); ``critics``: both critics' values of the turned scene and
    action against the values before.
    """
    policy.eval()
    sym, quantities = policy.sym, CONTROL_MODES[policy.spec.control].quantities

    def turn_action(g, action: torch.Tensor) -> torch.Tensor:
        if policy.spec.reflections is not None:
            return T.act_on_layout(sym, g, action, action_layout(policy.spec))
        return T.act_on_quantities(sym, g, action, quantities, (0.0, 0.0, 0.0))  # displacements

    generators = [torch.Generator() for _ in range(len(inputs[LOWDIM]))]
    action = policy.predict_chunk(inputs, generators)[:, 0]
    q = policy.q_values(policy.critic_encoder(policy.image({k: v[:, -1] for k, v in inputs.items()})), action)
    errors: dict[str, list[float]] = {"actor": [], "critics": []}
    for g in sym.elements:
        turned = act_on_inputs(policy, g, inputs)
        expected = turn_action(g, action)
        errors["actor"].append(_relative(policy.predict_chunk(turned, generators)[:, 0], expected))
        image = policy.image({k: v[:, -1] for k, v in turned.items()})
        errors["critics"].append(_relative(policy.q_values(policy.critic_encoder(image), expected), q))
    return errors


@torch.no_grad()
def q_map_errors(policy: QLearningPolicy, inputs: dict[str, torch.Tensor]) -> dict:
    """{part: [relative error per group element]} of a Q-map method (dqn, fcn).

    ``q-map``: the Q-map of the turned scene against the turned map (``policy.act_on_q_map``: dqn's
    (B, 18, 3, 3) turns as a top-down image; fcn's (B, R, S, S) too, its yaw channels shifted);
    ``greedy action``: the executed action (eval mode) against the turned one.
    """
    policy.eval()
    sym, quantities = policy.sym, CONTROL_MODES[policy.spec.control].quantities
    generators = [torch.Generator() for _ in range(len(inputs[LOWDIM]))]
    q = policy.q_map({k: v[:, -1] for k, v in inputs.items()})
    action = policy.predict_chunk(inputs, generators)[:, 0]
    errors: dict[str, list[float]] = {"q-map": [], "greedy action": []}
    for g in sym.elements:
        turned = act_on_inputs(policy, g, inputs)
        q_turned = policy.q_map({k: v[:, -1] for k, v in turned.items()})
        errors["q-map"].append(_relative(q_turned, policy.act_on_q_map(g, q)))
        expected = T.act_on_quantities(sym, g, action, quantities, (0.0, 0.0, 0.0))  # about the centre
        errors["greedy action"].append(_relative(policy.predict_chunk(turned, generators)[:, 0], expected))
    return errors


def exact_subgroup(sym, errors: list[float], tolerance: float) -> str:
    """The name of the subgroup of elements whose error is below ``tolerance`` (e.g. ``C4 of C8``)."""
    exact = [g for g, e in zip(sym.elements, errors, strict=True) if e < tolerance]
    rotations = sum(1 for g in exact if not sym.is_reflection(g))
    mirrors = len(exact) - rotations
    name = f"{'D' if mirrors else 'C'}{rotations}"
    return name if len(exact) < len(sym.elements) else f"{name} (all of it)"
