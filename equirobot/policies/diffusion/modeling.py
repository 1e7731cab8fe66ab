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

import torch

# From their modules: under TYPE_CHECKING `diffusers` re-exports the classes' dummy placeholders.
from diffusers.schedulers.scheduling_ddim import DDIMScheduler
from diffusers.schedulers.scheduling_ddpm import DDPMScheduler
from torch import nn

from equirobot.data.inputs import ACTION, LOWDIM, action_layout, lowdim_layout
from equirobot.nn.conv1d import cache_kernels
from equirobot.nn.unet import ConditionalUnet1D
from equirobot.policies.augmentation import rotate_inputs
from equirobot.policies.base import Batch, Policy
from equirobot.policies.diffusion.configuration import DiffusionConfig
from equirobot.policies.obs_encoder import ObservationEncoder


class DiffusionPolicy(Policy):
    """Denoises action chunks conditioned on encoded observations. See the module docstring."""

    config_class = DiffusionConfig
    config: DiffusionConfig

    def __init__(self, config: DiffusionConfig, spec):
        super().__init__(config, spec)
        cfg = config
        self.lowdim_layout = lowdim_layout(spec)
        self.action_layout = action_layout(spec)
        self.obs_encoder = ObservationEncoder(self.sym, spec, self.lowdim_layout, self.n_obs, cfg)
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

    # -- training -----------------------------------------------------------------------------------
    def forward(self, batch: Batch, generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
        """Noise-prediction MSE of a batch ``{"obs": {key: (B, n_obs, ...)}, "action": (B, horizon, A)}``."""
        obs = self.normalize_obs({k: v[:, : self.n_obs] for k, v in batch["obs"].items()})
        action = self.normalizer.normalize(ACTION, batch[ACTION].float())
        if self.config.augment_rotation:
            kinds = {LOWDIM: "lowdim", **{f.key: f.group_action for f in self.spec.scene_features()}}
            obs, action = rotate_inputs(obs, action, kinds, self.lowdim_layout, self.action_layout, generator)
        cond = self.obs_encoder(obs)
        device = action.device
        noise = torch.randn(action.shape, generator=generator, device=device)
        steps = torch.randint(
            0, self.config.train_timesteps, (action.shape[0],), generator=generator, device=device
        )
        noisy = self.noise_scheduler.add_noise(action, noise, steps)
        return nn.functional.mse_loss(self.denoiser(noisy, steps, cond), noise), {}

    # -- acting -------------------------------------------------------------------------------------
    @torch.no_grad()
    def predict_chunk(self, obs: dict[str, torch.Tensor], generators: list[torch.Generator]) -> torch.Tensor:
        """``{key: (B, n_obs, ...)}`` policy inputs -> (B, n_action, A) actions to execute."""
        shape = (self.horizon, self.action_layout.size)
        device = obs[next(iter(obs))].device
        noise = torch.stack([torch.randn(shape, generator=g, device=device) for g in generators])
        return self.sample(obs, noise, generators)

    @torch.no_grad()
    def sample(self, obs: dict[str, torch.Tensor], noise: torch.Tensor, generators=None) -> torch.Tensor:
        """Denoise ``noise`` (B, horizon, A) given policy inputs; returns the executed (B, n_action, A)."""
        cond = self.obs_encoder(self.normalize_obs(obs))
        batch, x = cond.shape[0], noise
        self.sampler.set_timesteps(self.config.inference_steps)
        for t in self.sampler.timesteps:
            eps = self.denoiser(x, t.to(cond.device).expand(batch), cond)
            x = self.sampler.step(eps, t, x, generator=generators).prev_sample
        actions = self.normalizer.unnormalize(ACTION, x)
        start = self.n_obs - 1  # the chunk starts at the latest observed step
        return actions[:, start : start + self.n_action]

    def compile_inference(self) -> DiffusionPolicy:
        """Compile the encoder and the denoiser with ``torch.compile`` for acting at fixed shapes.

        The first ``predict_chunk`` compiles (about 40 s on 2 CPU cores, seconds with inductor's cache);
        ``equirobot bench policy`` measures what later calls gain. For acting only: the compiled
        submodules prefix their state-dict keys with ``_orig_mod.``, so save checkpoints before this.
        """
        self.eval()
        cache_kernels(self)  # else the compiled graph expands every kernel on every call (1.8x)
        # torch.compile returns an OptimizedModule, which forwards attribute access to the module it wraps;
        # its stub types the result as a bare callable.
        self.obs_encoder = torch.compile(self.obs_encoder, dynamic=False)  # type: ignore[assignment]
        self.denoiser = torch.compile(self.denoiser, dynamic=False)  # type: ignore[assignment]
        return self
