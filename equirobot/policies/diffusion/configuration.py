"""Configuration of the diffusion policy. Presets: ``configs/policy/{equidiff,diffpo_c,diffpo_c_aug}``."""

from __future__ import annotations

from dataclasses import dataclass, field

from equirobot.policies.base import PolicyConfig

SAMPLERS = ("ddim", "ddpm")


@dataclass
class DiffusionConfig(PolicyConfig):
    """Diffusion Policy (Chi et al., RSS 2023); with ``group=C8`` the Equivariant Diffusion Policy."""

    type: str = "diffusion"
    augment_rotation: bool = False
    """Turn every training sample by a random angle about the symmetry axis (baseline)."""
    down_fields: list[int] = field(default_factory=lambda: [16, 32, 64])
    """Regular fields per UNet level (channels = fields x group order)."""
    kernel_size: int = 5
    """Temporal kernel of the UNet's convolutions (odd)."""
    step_embed_dim: int = 64
    """Size of the diffusion-step embedding."""
    lowdim_hidden: int = 32
    """Hidden regular fields of the lowdim encoder."""
    lowdim_fields: int = 16
    """Output regular fields of the lowdim encoder."""
    visual_fields: int = 16
    """Output regular fields of the point-cloud, voxel and image encoders."""
    point_hidden: list[int] = field(default_factory=lambda: [32, 64, 128])
    """Hidden widths of the point-cloud encoder."""
    grid_widths: list[int] = field(default_factory=lambda: [4, 8, 16, 32])
    """Regular fields per stage of the voxel and image encoders."""
    voxel_input_pool: int = 2
    """Average-pool voxel grids by this factor first."""
    wrist_features: int = 32
    """Invariant features of the wrist camera."""
    train_timesteps: int = 100
    """DDPM noise steps of training."""
    sampler: str = "ddim"
    """ddim (deterministic, few steps) or ddpm."""
    inference_steps: int = 10
    """Sampler steps per action chunk."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.sampler not in SAMPLERS:
            raise ValueError(f"policy.sampler={self.sampler!r}; valid: {list(SAMPLERS)}")
        if not self.down_fields or min(self.down_fields) < 1:
            raise ValueError(
                f"policy.down_fields must be a non-empty list of positive ints, got {self.down_fields}"
            )
        levels = len(self.down_fields)
        if self.horizon % 2 ** (levels - 1):
            raise ValueError(
                f"horizon {self.horizon} must be divisible by 2^(levels-1) = {2 ** (levels - 1)}"
            )
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"policy.kernel_size must be a positive odd number, got {self.kernel_size}")
        if not 1 <= self.inference_steps <= self.train_timesteps:
            raise ValueError(
                f"inference_steps must be in [1, {self.train_timesteps}], got {self.inference_steps}"
            )
        positive = ("step_embed_dim", "lowdim_hidden", "lowdim_fields", "visual_fields", "wrist_features")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"policy.{name} must be positive, got {getattr(self, name)}")
        if min(self.point_hidden + self.grid_widths, default=1) < 1 or self.voxel_input_pool < 1:
            raise ValueError("policy.point_hidden, grid_widths and voxel_input_pool must be positive")
