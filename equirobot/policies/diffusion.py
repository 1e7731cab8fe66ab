"""Diffusion Policy (Chi et al., RSS 2023) with equivariant networks (Wang et al., CoRL 2024).

The policy denoises a chunk of ``horizon`` actions conditioned on the last ``n_obs`` observations and
executes ``n_action`` of them. Which method it is depends on the config alone:

* ``group=C8`` (or any C_N / D_N): the Equivariant Diffusion Policy. Encoder and denoiser are exactly
  equivariant, the normaliser keeps equivariance, and the schedulers combine noise and prediction
  with scalar coefficients (sample clipping, a per-coordinate operation, is off), so rotating the
  scene and the initial noise rotates the sampled actions;
* ``group=C1``: the same networks with every constraint gone, the CNN-UNet Diffusion Policy
  (DiffPo-C); with ``augment_rotation=true`` each training sample is also turned by a random angle.

Training uses DDPM's noise schedule; sampling uses DDIM (deterministic, few steps) or DDPM.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from diffusers import DDIMScheduler, DDPMScheduler
from torch import nn

from equirobot.data.normalizer import Normalizer
from equirobot.nn.conv1d import cache_kernels
from equirobot.nn.unet import ConditionalUnet1D
from equirobot.policies.augmentation import rotate_inputs
from equirobot.policies.inputs import ACTION_LAYOUT, ACTION_NORM, LOWDIM, lowdim_layout, lowdim_norm
from equirobot.policies.obs_encoder import ObservationEncoder
from equirobot.symmetry.group import SceneSymmetry

SAMPLERS = ("ddim", "ddpm")


@dataclass
class PolicySpec:
    """What the data fixes about a policy: its inputs and actions (saved with every checkpoint)."""

    modes: list[str]
    """Observation modes the inputs come from."""
    control: str
    """abs or delta."""
    shapes: dict[str, list[int]]
    """Per-frame shape of every policy input."""
    n_objects: int
    """Objects whose poses ``lowdim`` holds (0 unless ``state`` is a mode)."""
    center_xy: list[float]
    """The symmetry axis (the task's workspace centre), world frame."""

    def to_dict(self) -> dict:
        return asdict(self)


class DiffusionPolicy(nn.Module):
    """``predict_action(obs)`` -> action chunk; ``loss(batch)`` for training. See the module docstring.

    Args:
        spec: inputs and actions (:class:`PolicySpec`).
        cfg: hyperparameters (``equirobot.config.PolicyConfig``).
    """

    def __init__(self, spec: PolicySpec, cfg):
        super().__init__()
        if cfg.sampler not in SAMPLERS:
            raise ValueError(f"policy.sampler={cfg.sampler!r}; valid: {list(SAMPLERS)}")
        self.spec, self.cfg = spec, cfg
        self.sym = SceneSymmetry.from_name(cfg.group)
        self.lowdim_layout = lowdim_layout(spec.n_objects)
        self.action_layout = ACTION_LAYOUT[spec.control]
        self.horizon, self.n_obs, self.n_action = cfg.horizon, cfg.n_obs_steps, cfg.n_action_steps
        channels = {LOWDIM: spec.shapes[LOWDIM][-1], "action": self.action_layout.size}
        if "point_cloud" in spec.shapes:
            channels["point_cloud"] = spec.shapes["point_cloud"][-1]
        self.normalizer = Normalizer(channels)
        self.obs_encoder = ObservationEncoder(self.sym, spec.shapes, self.lowdim_layout, self.n_obs, cfg)
        self.denoiser = ConditionalUnet1D(
            self.sym,
            self.action_layout,
            self.obs_encoder.cond_type,
            down_dims=cfg.scaled(cfg.down_fields),
            kernel_size=cfg.kernel_size,
            step_embed_dim=cfg.step_embed_dim,
        )
        self.noise_scheduler = DDPMScheduler(
            num_train_timesteps=cfg.train_timesteps,
            beta_schedule="squaredcos_cap_v2",
            clip_sample=False,  # per-coordinate clipping would break equivariance
            prediction_type="epsilon",
        )
        sampler = DDIMScheduler if cfg.sampler == "ddim" else DDPMScheduler
        self.sampler = sampler.from_config(self.noise_scheduler.config)

    # -- data ---------------------------------------------------------------------------------------
    def fit_normalizer(self, dataset) -> None:
        """Fit the statistics on a :class:`~equirobot.data.sequence.SequenceDataset`."""
        center = tuple(self.spec.center_xy)
        self.normalizer.fit(LOWDIM, lowdim_norm(self.spec.n_objects), dataset.statistics_data(LOWDIM), center)
        self.normalizer.fit(
            "action", ACTION_NORM[self.spec.control], dataset.statistics_data("action"), center
        )
        if "point_cloud" in self.normalizer.keys:
            spec = (("position", 3), ("identity", self.spec.shapes["point_cloud"][-1] - 3))
            self.normalizer.fit("point_cloud", spec, dataset.statistics_data("point_cloud"), center)

    def normalize_obs(self, obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = {}
        for key, x in obs.items():
            if key in self.normalizer.keys:
                out[key] = self.normalizer.normalize(key, x.float())
            elif x.dtype == torch.uint8:  # voxels and images
                out[key] = x.float() / 255
            else:  # heightmaps, metres above the table
                out[key] = x.float() * 10
        return out

    # -- training -----------------------------------------------------------------------------------
    def loss(self, batch: dict, generator: torch.Generator | None = None) -> torch.Tensor:
        """Noise-prediction MSE of a batch ``{"obs": {key: (B, n_obs, ...)}, "action": (B, horizon, A)}``."""
        obs = self.normalize_obs({k: v[:, : self.n_obs] for k, v in batch["obs"].items()})
        action = self.normalizer.normalize("action", batch["action"].float())
        if self.cfg.augment_rotation:
            obs, action = rotate_inputs(obs, action, self.lowdim_layout, self.action_layout, generator)
        cond = self.obs_encoder(obs)
        device = action.device
        noise = torch.randn(action.shape, generator=generator, device=device)
        steps = torch.randint(
            0, self.cfg.train_timesteps, (action.shape[0],), generator=generator, device=device
        )
        noisy = self.noise_scheduler.add_noise(action, noise, steps)
        return nn.functional.mse_loss(self.denoiser(noisy, steps, cond), noise)

    def forward(self, batch: dict, generator: torch.Generator | None = None) -> torch.Tensor:
        """The training loss (so that DistributedDataParallel, which hooks forward, sees it)."""
        return self.loss(batch, generator)

    # -- acting -------------------------------------------------------------------------------------
    @torch.no_grad()
    def predict_action(
        self, obs: dict[str, torch.Tensor], noise: torch.Tensor | None = None, generator=None
    ) -> torch.Tensor:
        """``{key: (B, n_obs, ...)}`` raw policy inputs -> (B, n_action, A) actions to execute.

        ``noise`` (B, horizon, A) is the initial sample (drawn if not given).
        """
        cond = self.obs_encoder(self.normalize_obs(obs))
        batch = cond.shape[0]
        x = (
            noise
            if noise is not None
            else torch.randn(
                batch, self.horizon, self.action_layout.size, generator=generator, device=cond.device
            )
        )
        self.sampler.set_timesteps(self.cfg.inference_steps)
        for t in self.sampler.timesteps:
            eps = self.denoiser(x, t.to(cond.device).expand(batch), cond)
            x = self.sampler.step(eps, t, x, generator=generator).prev_sample
        actions = self.normalizer.unnormalize("action", x)
        start = self.n_obs - 1  # the chunk starts at the latest observed step
        return actions[:, start : start + self.n_action]

    def compile_inference(self) -> DiffusionPolicy:
        """Compile the encoder and the denoiser with ``torch.compile`` for acting at fixed shapes.

        The first ``predict_action`` compiles (about 40 s on 2 CPU cores, seconds with inductor's cache);
        ``equirobot bench policy`` measures what later calls gain. For acting only: the compiled
        submodules prefix their state-dict keys with ``_orig_mod.``, so save checkpoints before this.
        """
        self.eval()
        cache_kernels(self)  # else the compiled graph expands every kernel on every call (1.8x)
        self.obs_encoder = torch.compile(self.obs_encoder, dynamic=False)
        self.denoiser = torch.compile(self.denoiser, dynamic=False)
        return self

    def n_parameters(self) -> dict[str, int]:
        count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
        return {"obs_encoder": count(self.obs_encoder), "denoiser": count(self.denoiser)}


class PolicyAgent:
    """A policy as an agent of the rollout loop: keeps the observation history and the action queue."""

    def __init__(self, policy: DiffusionPolicy, seed: int = 0):
        self.policy = policy.eval()
        self.device = next(policy.parameters()).device
        self.generator = torch.Generator(self.device).manual_seed(seed)
        self.history: list[dict[str, np.ndarray]] = []
        self.queue: list[np.ndarray] = []

    def reset(self) -> None:
        self.history, self.queue = [], []

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        from equirobot.policies.inputs import policy_inputs

        step = policy_inputs(obs, self.policy.spec.modes)
        # Before n_obs steps exist, the first observation stands in for the missing ones.
        self.history = (self.history or [step] * self.policy.n_obs)[1:] + [step]
        if not self.queue:
            stacked = {
                k: torch.from_numpy(np.stack([h[k] for h in self.history]))[None].to(self.device)
                for k in step
            }
            chunk = self.policy.predict_action(stacked, generator=self.generator)[0].cpu().numpy()
            self.queue = list(chunk)
        return self.queue.pop(0)
