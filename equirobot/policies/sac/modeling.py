"""Soft actor-critic, equivariant or not, relaxed or exact, on a top-down heightmap or a control state.

Input (top-down tasks): the policy's one top-down map (``gripper_heightmap`` of the closed-loop tasks)
as channel 0 and every invariant ``lowdim`` scalar (the holding flag, the finger joints) tiled over the
image as one more channel each, as the SO(2)-equivariant SAC feeds its "holding" channel. Output: the
closed-loop action ``[gripper, dx, dy, dz, dtheta]`` in [-1, 1] (tanh-squashed Gaussian).

Input (the control tasks, ``spec.reflections``): the task's state vector, encoded by an MLP from its
sign layout (``lowdim_layout``: each component the 1-D irrep its mirrors' signs give) to regular fields;
output: the motor commands in [-1, 1], each by the irrep of its signs. For group C2 or D2 the actor's
mean is exactly equivariant (mirroring the state mirrors the commands; tanh commutes with sign flips)
and the critics exactly invariant, for every element; C1 is the unconstrained baseline.

Relaxed (``relaxed_banks`` > 0): the actor's and the critics' MLPs are built from relaxed layers
(``equirobot.nn.relaxed.RelaxedMLP``), so they start exactly equivariant and may learn to break the
symmetry, at a cost of ``relaxed_weight`` times their regulariser in each loss. The heightmap encoders
stay exact (an actuator's asymmetry is the heads' to learn).

Symmetry, for ``group=C_N`` (a rotation g of the scene about the vertical axis turns the map about its
centre): the actor's mean and the distribution of the (dx, dy) sample turn by rho_1(g), everything else
is invariant, and both critics are invariant. The encoders are exact for multiples of 90 degrees (the
pixel grid maps onto itself) and approximate for the other elements of C8; the tanh squashing acts on
each component, which commutes with those quarter turns (signed permutations of dx, dy) but not with
45 degrees, so the executed action is exactly equivariant on C4 (tested) and approximately on C8.

One update (``update``): critic step on the soft Bellman target of the target critics (DrQ: averaged
over ``target_samples`` shifted next observations), actor step on ``alpha log pi - min Q`` (+ the
behaviour-cloning term on demonstrations, SACfD), temperature step towards ``target_entropy``, Polyak
update of the target critics; with prioritised replay the new |TD errors| are left in
``new_priorities`` for the online source to write back.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from equirobot.data.inputs import LOWDIM, action_layout, lowdim_layout
from equirobot.nn.fields import fiber, layout_type, regular
from equirobot.nn.grid_encoders import SteerableConvEncoder
from equirobot.nn.heads import SAC_ACTION, EquivariantGaussianActor, InvariantCritic, make_mlp
from equirobot.nn.relaxed import relaxed_layers, symmetry_regularizer
from equirobot.policies.augmentation import rotate_inputs
from equirobot.policies.base import Batch, Policy, TrainStep
from equirobot.policies.sac.configuration import SACConfig
from equirobot.policies.top_down import TopDownInput

LOG_2 = math.log(2.0)


class SACPolicy(Policy):
    """Actor, twin critics and their targets on heightmap encoders; see the module docstring."""

    config_class = SACConfig
    config: SACConfig
    online = True

    def __init__(self, config: SACConfig, spec):
        super().__init__(config, spec)
        order = self.sym.group.order()
        banks = config.relaxed_banks
        if banks and order == 1:
            raise ValueError("policy.relaxed_banks > 0 relaxes a symmetry: it needs a group, not C1")

        def fields(channels: int) -> int:
            return config.fields(channels, order)

        obs_type = regular(fiber(self.sym), fields(config.features))
        self.inputs: TopDownInput | None = None  # None: a control task's state vector
        if spec.reflections is not None:  # a control task: the state vector, by its mirrors' signs
            if config.augmentation != "none":
                raise ValueError(
                    f"policy.augmentation={config.augmentation} turns heightmaps; a control task's state "
                    "takes none"
                )
            self.state_layout = lowdim_layout(spec)
            self.action_layout = action_layout(spec)
            state_type = layout_type(self.sym, self.state_layout)

            def encoder() -> nn.Module:
                return make_mlp(state_type, (fields(config.hidden),), obs_type, banks)

        else:
            self.inputs = TopDownInput.from_spec(spec, self.sym, "sac", config.input_pool)
            self.action_layout = SAC_ACTION
            in_channels = self.inputs.channels

            def encoder() -> nn.Module:
                stages = tuple(fields(c) for c in config.encoder_channels)
                return SteerableConvEncoder(self.sym, in_channels, stages, fields(config.features))

        self.target_entropy = (
            -float(spec.action_dim) if config.target_entropy is None else config.target_entropy
        )
        hidden = fields(config.hidden)
        self.actor_encoder = encoder()
        self.actor = EquivariantGaussianActor(self.sym, obs_type, self.action_layout, hidden, banks)
        self.critic_encoder = encoder()
        self.critics = nn.ModuleList(
            InvariantCritic(self.sym, obs_type, self.action_layout, hidden, banks) for _ in range(2)
        )
        self.target_encoder = copy.deepcopy(self.critic_encoder).requires_grad_(False)
        self.target_critics = copy.deepcopy(self.critics).requires_grad_(False)
        self.log_alpha = nn.Parameter(torch.tensor(math.log(config.init_alpha)))
        self.new_priorities: tuple[np.ndarray, np.ndarray] | None = None
        """(slots, |TD error|) of the last update's batch, for a prioritised replay buffer."""
        self._lowdim_layout = lowdim_layout(spec)

    # -- networks -------------------------------------------------------------------------------------
    def image(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Policy inputs of one step -> the network input.

        Top-down: (B, 1 + S, H / p, W / p), see ``TopDownInput``; a control task: the state (B, D) in
        field order.
        """
        if self.inputs is None:
            return self.state_layout.to_fields(obs[LOWDIM].float())
        return self.inputs.image(obs)

    def sample(
        self, image: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Squashed Gaussian sample, its log-probability and the squashed mean, for (B, C, H, W) inputs."""
        mean, log_std = self.actor(self.actor_encoder(image))  # layout order
        std = log_std.exp()
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        pre = mean + std * noise
        action = torch.tanh(pre)
        # log N(pre) minus log |d tanh / d pre| = 2 (log 2 - pre - softplus(-2 pre)), numerically stable
        log_prob = (-0.5 * noise**2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_prob = log_prob - (2 * (LOG_2 - pre - F.softplus(-2 * pre))).sum(-1)
        return action, log_prob, torch.tanh(mean)

    def q_values(self, features: torch.Tensor, action: torch.Tensor, target: bool = False) -> torch.Tensor:
        """(2, B) values of both critics (or target critics) for encoded observations."""
        critics = self.target_critics if target else self.critics
        return torch.stack([critic(features, action)[:, 0] for critic in critics])

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.exp()

    # -- acting ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def predict_chunk(self, obs: dict[str, torch.Tensor], generators: list[torch.Generator]) -> torch.Tensor:
        """Training mode: a sample per env (its own generator); eval mode: the squashed mean."""
        image = self._acting_view(self.image({k: v[:, -1] for k, v in obs.items()}))
        if not self.training:
            mean, _ = self.actor(self.actor_encoder(image))
            return torch.tanh(mean)[:, None]
        actions = [self.sample(image[i : i + 1], generators[i])[0] for i in range(len(image))]
        return torch.cat(actions)[:, None]

    def transition_copies(self, transitions: dict, rng: np.random.Generator) -> list[dict]:
        """``augmentation=rotate``: ``rotated_copies`` copies, each transition turned by its own angle.

        The observation, the next observation and the action turn together about the map's centre
        (the gripper): the map by bilinear resampling, (dx, dy) by rho_1, the invariant scalars stay.
        """
        if self.config.augmentation != "rotate":
            return []
        n = len(transitions["action"])
        angles = rng.uniform(0, 2 * np.pi, (self.config.rotated_copies, n))
        return [self._turned(transitions, torch.from_numpy(a).float()) for a in angles]

    def _turned(self, transitions: dict, angle: torch.Tensor) -> dict:
        """Transitions (numpy, as the buffer takes them) turned by ``angle`` (B,), counter-clockwise."""
        obs, next_obs = transitions["obs"], transitions["next_obs"]
        both = {k: torch.from_numpy(np.stack([obs[k], next_obs[k]], 1)).float() for k in obs}
        action = torch.as_tensor(np.asarray(transitions["action"], np.float32))[:, None]
        assert self.inputs is not None  # augmentation=rotate is refused for a control task's state
        kinds = {LOWDIM: "lowdim", self.inputs.grid_key: "top_down"}
        turned, turned_action = rotate_inputs(
            both, action, kinds, self._lowdim_layout, SAC_ACTION, angle=angle
        )
        return {
            **transitions,
            "obs": {k: v[:, 0].numpy() for k, v in turned.items()},
            "next_obs": {k: v[:, 1].numpy() for k, v in turned.items()},
            "action": turned_action[:, 0].numpy(),
        }

    # -- relaxed equivariance ---------------------------------------------------------------------------
    def symmetry_breaking(self) -> dict[str, float]:
        """How far each relaxed layer has left the symmetric solution (0 = exact), by module path.

        Empty for an exact policy. For :class:`~equirobot.nn.relaxed.RelaxedGroupLinear` the relative
        spread of its combination weights over the group, for ``RelaxedLinear`` |W_free| / |W_equiv|.
        """
        out = {}
        for part in ("actor_encoder", "actor", "critic_encoder", "critics"):
            module = getattr(self, part)
            relaxed = {id(layer) for layer in relaxed_layers(module)}
            for name, layer in module.named_modules():
                if id(layer) in relaxed:
                    out[f"{part}.{name}"] = layer.symmetry_breaking()
        return out

    @torch.no_grad()
    def asymmetry_readout(self, obs: dict[str, torch.Tensor], threshold: float = 0.05) -> list[dict]:
        """The flip asymmetry the actor has learned, per mirror of the task and command, from states.

        ``obs`` holds policy inputs of states (``lowdim`` (B, D)). For a mirror that negates command i,
        and each state s whose command a_i(s) (the squashed mean) exceeds ``threshold``, rho =
        |a_i(m s)| / a_i(s), with m s the mirrored state: how much harder the actor pushes the negative
        way than the positive way in mirrored situations. An actor that compensates a motor of gain
        (1 + delta) for positive and (1 - delta) for negative commands has rho = (1 + delta) / (1 - delta),
        so ``delta_hat = tanh(median(log rho) / 2)`` estimates delta: 0 for an exactly equivariant actor,
        its sign the stronger direction. Any network group (C1 too): the mirrors are the task's.
        """
        if self.spec.reflections is None:
            raise ValueError("the asymmetry read-out is for the control tasks' mirrors (spec.reflections)")
        state = obs[LOWDIM].float()

        def commands(x: torch.Tensor) -> torch.Tensor:
            return torch.tanh(self.actor(self.actor_encoder(self.image({LOWDIM: x})))[0])

        action = commands(state)
        out = []
        reflections = self.spec.reflections
        for k, (state_signs, action_signs) in enumerate(
            zip(reflections["state"], reflections["action"], strict=True)
        ):
            mirrored = commands(state * torch.tensor(state_signs))
            for i in [i for i, sign in enumerate(action_signs) if sign < 0]:
                positive = action[:, i] > threshold
                rho = mirrored[positive, i].abs().clamp_min(1e-6) / action[positive, i]
                log_rho = float(rho.log().median()) if len(rho) else float("nan")
                out.append(
                    {
                        "mirror": k,
                        "command": i,
                        "states": int(positive.sum()),
                        "delta_hat": math.tanh(log_rho / 2),
                    }
                )
        return out

    def symmetry_report(self, obs: dict[str, torch.Tensor]) -> dict:
        """After training: each relaxed layer's symmetry breaking and, on a control task, the read-out.

        Empty for an exact agent on a scene task.
        """
        breaking = self.symmetry_breaking()
        if not breaking and self.spec.reflections is None:
            return {}  # an exact agent on a scene task: nothing to report
        report: dict = {"symmetry_breaking": breaking}
        if self.spec.reflections is not None:
            report["asymmetry_readout"] = self.asymmetry_readout(obs)
        return report

    def diagnostics(self) -> dict[str, float]:
        """The largest symmetry breaking of the actor's and of the critics' relaxed layers (if any)."""
        breaking = self.symmetry_breaking()
        return {
            f"symmetry_breaking_{part}": max(v for k, v in breaking.items() if k.startswith(part))
            for part in ("actor", "critic")
            if any(k.startswith(part) for k in breaking)
        }

    def _acting_view(self, image: torch.Tensor) -> torch.Tensor:
        """RAD trains on crops, so it acts on the central crop; other augmentations act on the whole map."""
        c = self.config.crop
        if self.config.augmentation == "crop" and c:
            return image[..., c:-c, c:-c]
        return image

    # -- training -------------------------------------------------------------------------------------
    def make_optimizers(self, train) -> dict[str, torch.optim.Optimizer]:
        """Adam (default betas, no weight decay) for the critics, the actor and the temperature."""
        return {name: torch.optim.Adam(self.optimized_parameters(name), lr=train.lr) for name in _PARTS}

    def optimized_parameters(self, optimizer: str) -> list[nn.Parameter]:
        # Listed once: walking escnn's module trees on every step cost a third of an update.
        if not hasattr(self, "_parameters_of"):
            self._parameters_of = {name: part(self) for name, part in _PARTS.items()}
        return self._parameters_of[optimizer]

    def forward(self, batch: Batch, generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
        """The critic loss of a batch (what ``update`` minimises first); for inspection and tests."""
        loss, q, *_ = self._critic_loss(batch, generator)
        return loss, {"q": float(q.detach().mean())}

    def _critic_loss(self, batch: Batch, generator) -> tuple[torch.Tensor, ...]:
        """Importance-weighted squared TD error of both critics.

        Returns (loss, Q (2, B), target, images, critic features, actions), after augmentation: the
        actor step reuses the images, features and actions.
        """
        images, next_images, action = self._augmented(batch, generator)
        target = self._target(batch, next_images, generator)
        features = self.critic_encoder(images)
        q = self.q_values(features, action)
        loss = (batch["weight"] * ((q - target) ** 2).sum(0)).mean()
        if self.config.relaxed_banks:
            loss = loss + self.config.relaxed_weight * (
                symmetry_regularizer(self.critic_encoder) + symmetry_regularizer(self.critics)
            )
        return loss, q, target, images, features, action

    def update(self, batch: Batch, step: TrainStep, generator: torch.Generator | None = None) -> dict:
        critic_loss, q, target, images, features, action = self._critic_loss(batch, generator)
        metrics = {
            "loss": float(critic_loss.detach()),
            "q": float(q.detach().mean()),
            "target": float(target.mean()),
        }
        metrics["grad_norm_critic"] = step.step(critic_loss, "critic")

        sampled, log_prob, mean = self.sample(images, generator)
        actor_loss = (
            self.alpha.detach() * log_prob - self.q_values(features.detach(), sampled).min(0).values
        ).mean()
        demo = batch["demo"].float()
        if self.config.bc_weight and demo.sum() > 0:
            bc = (((mean - action) ** 2).sum(-1) * demo).sum() / demo.sum()
            actor_loss = actor_loss + self.config.bc_weight * bc
            metrics["bc"] = float(bc.detach())
        if self.config.relaxed_banks:
            actor_loss = actor_loss + self.config.relaxed_weight * (
                symmetry_regularizer(self.actor_encoder) + symmetry_regularizer(self.actor)
            )
        metrics["actor_loss"] = float(actor_loss.detach())
        metrics["grad_norm_actor"] = step.step(actor_loss, "actor")

        alpha_loss = -(self.log_alpha * (log_prob.detach() + self.target_entropy)).mean()
        step.step(alpha_loss, "alpha")
        metrics |= {"alpha": float(self.alpha.detach()), "entropy": float(-log_prob.detach().mean())}

        with torch.no_grad():
            tau = self.config.tau
            for target_module, module in (
                (self.target_encoder, self.critic_encoder),
                (self.target_critics, self.critics),
            ):
                for p_target, p in zip(target_module.parameters(), module.parameters(), strict=True):
                    p_target.lerp_(p, tau)
        td_error = (q[0] - target).detach().abs().cpu().numpy()
        self.new_priorities = (batch["index"].cpu().numpy(), td_error)
        return metrics

    @torch.no_grad()
    def _target(self, batch: Batch, next_images: list[torch.Tensor], generator) -> torch.Tensor:
        """The soft Bellman target, r + gamma (1 - terminal) (min target Q - alpha log pi).

        Averaged over the next images given (DrQ's K augmented copies; one otherwise).
        """
        values = []
        for image in next_images:
            next_action, log_prob, _ = self.sample(image, generator)
            q = self.q_values(self.target_encoder(image), next_action, target=True).min(0).values
            values.append(q - self.alpha * log_prob)
        soft_value = torch.stack(values).mean(0)
        return batch["reward"] + self.config.gamma * (1 - batch["terminal"]) * soft_value

    def _augmented(self, batch: Batch, generator) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
        """Images of the observations, of the next observations (DrQ: several), and the actions."""
        obs, next_obs, action = batch["obs"], batch["next_obs"], batch["action"].float()
        cfg = self.config
        images, next_image = self.image(obs), self.image(next_obs)
        if cfg.augmentation == "crop" and cfg.crop:
            return (
                _random_crop(images, cfg.crop, generator),
                [_random_crop(next_image, cfg.crop, generator)],
                action,
            )
        if cfg.augmentation == "shift" and cfg.shift:
            shifted = [_random_shift(next_image, cfg.shift, generator) for _ in range(cfg.target_samples)]
            return _random_shift(images, cfg.shift, generator), shifted, action
        return images, [next_image], action


_PARTS = {
    "critic": lambda p: [*p.critic_encoder.parameters(), *p.critics.parameters()],
    "actor": lambda p: [*p.actor_encoder.parameters(), *p.actor.parameters()],
    "alpha": lambda p: [p.log_alpha],
}
"""Optimiser name -> the parameters it steps."""


def _random_crop(x: torch.Tensor, margin: int, generator) -> torch.Tensor:
    """RAD: each sample's own crop of (H - 2 margin, W - 2 margin)."""
    b, _, h, w = x.shape
    offsets = torch.randint(0, 2 * margin + 1, (b, 2), generator=generator, device=x.device).tolist()
    return torch.stack(
        [x[i, :, dy : dy + h - 2 * margin, dx : dx + w - 2 * margin] for i, (dy, dx) in enumerate(offsets)]
    )


def _random_shift(x: torch.Tensor, pad: int, generator) -> torch.Tensor:
    """DrQ: replicate-pad by ``pad`` and crop each sample back to its size at a random offset."""
    b, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    offsets = torch.randint(0, 2 * pad + 1, (b, 2), generator=generator, device=x.device).tolist()
    return torch.stack([padded[i, :, dy : dy + h, dx : dx + w] for i, (dy, dx) in enumerate(offsets)])
