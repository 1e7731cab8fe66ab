"""Behaviour cloning with an (equivariant) MLP: robomimic's BC-MLP baseline, in the shared interface.

The network maps the normalised ``lowdim`` input of the last ``n_obs_steps`` observations to the next
``n_action_steps`` actions. Its hidden layers are regular fields of the policy's group, its input and
output the declared layouts of the observation and the action (``equirobot.data.inputs``), so with
``group=C8`` rotating the scene rotates the predicted action exactly; with ``group=C1`` it is a plain MLP.
"""

from __future__ import annotations

import torch
from torch import distributions as D
from torch import nn

from equirobot.data.inputs import ACTION, LOWDIM, action_layout, lowdim_layout
from equirobot.nn.fields import fiber, layout_type, trivial
from equirobot.nn.mlp import EquivariantMLP
from equirobot.policies.base import Batch, Policy
from equirobot.policies.bc.configuration import BCConfig
from equirobot.symmetry.representations import Layout


def _repeat(layout: Layout, n: int) -> Layout:
    out = layout
    for _ in range(n - 1):
        out = out.concat(layout)
    return Layout(f"{layout.name}x{n}", out.parts)


class BCPolicy(Policy):
    """``lowdim`` history -> action(s); MSE regression or a Gaussian-mixture likelihood."""

    config_class = BCConfig
    config: BCConfig

    def __init__(self, config: BCConfig, spec):
        super().__init__(config, spec)
        scene = [f.key for f in spec.scene_features()]
        if scene:
            raise ValueError(f"policy bc reads the lowdim input only (obs=[state]); this data adds {scene}")
        self.in_layout = _repeat(lowdim_layout(spec), self.n_obs)
        self.out_layout = _repeat(action_layout(spec), self.n_action)
        order = self.sym.group.order()
        hidden = tuple(config.fields(h, order) for h in config.hidden)
        out_type = layout_type(self.sym, self.out_layout)
        if config.head == "gmm":  # C1 only: per mode a mean, a log-std per channel and a logit
            k = config.gmm_modes
            out_type = trivial(fiber(self.sym), k * (2 * self.out_layout.size + 1))
        self.mlp = EquivariantMLP(layout_type(self.sym, self.in_layout), hidden, out_type)

    def _net(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        x = self.normalize_obs({LOWDIM: obs[LOWDIM][:, : self.n_obs]})[LOWDIM].flatten(1)
        return self.mlp(self.in_layout.to_fields(x))

    def _mixture(self, out: torch.Tensor) -> D.MixtureSameFamily:
        k, a = self.config.gmm_modes, self.out_layout.size
        means, log_std, logits = out.split([k * a, k * a, k], dim=-1)
        std = nn.functional.softplus(log_std.unflatten(-1, (k, a))) + self.config.min_std
        components = D.Independent(D.Normal(torch.tanh(means.unflatten(-1, (k, a))), std), 1)
        return D.MixtureSameFamily(D.Categorical(logits=logits), components)

    def forward(self, batch: Batch, generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
        start = self.n_obs - 1
        target = batch[ACTION][:, start : start + self.n_action].float()
        target = self.normalizer.normalize(ACTION, target).flatten(1)  # (B, n_action A), layout order
        out = self._net(batch["obs"])
        if self.config.head == "gmm":
            return -self._mixture(out).log_prob(target).mean(), {}
        loss = nn.functional.mse_loss(self.out_layout.from_fields(out), target)
        return loss, {}

    @torch.no_grad()
    def predict_chunk(self, obs: dict[str, torch.Tensor], generators: list[torch.Generator]) -> torch.Tensor:
        out = self._net(obs)
        if self.config.head == "gmm":  # the mean of a mode drawn by its weight (robomimic's low-noise eval)
            mixture = self._mixture(out)
            probs = mixture.mixture_distribution.probs
            modes = torch.stack(
                [torch.multinomial(p, 1, generator=g)[0] for p, g in zip(probs, generators, strict=True)]
            )
            action = mixture.component_distribution.mean[torch.arange(len(modes)), modes]
        else:
            action = self.out_layout.from_fields(out)
        action = action.unflatten(-1, (self.n_action, -1))
        return self.normalizer.unnormalize(ACTION, action)
