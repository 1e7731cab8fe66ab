"""Configuration of behaviour cloning. Preset: ``configs/policy/bc.yaml`` (with ``policy.group=C8``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from equirobot.policies.base import PolicyConfig

HEADS = ("mse", "gmm")


@dataclass
class BCConfig(PolicyConfig):
    """robomimic's BC-MLP baseline: an MLP from the state observation to the next action.

    With ``group=C1`` a plain MLP; with ``group=C8`` (or any C_N / D_N) an equivariant MLP whose input
    and output transform by the declared layouts of the observation and the action.
    """

    type: str = "bc"
    group: str = "C1"
    horizon: int = 1
    n_obs_steps: int = 1
    n_action_steps: int = 1
    use_ema: bool = False
    hidden: list[int] = field(default_factory=lambda: [256, 256])
    """Hidden channels per layer (for C_N: as regular fields, rounded down to a multiple of |G|)."""
    head: str = "mse"
    """mse (regress the action) or gmm (a mixture of Gaussians, robomimic's GMM head; C1 only)."""
    gmm_modes: int = 5
    """Mixture components of the gmm head."""
    min_std: float = 1e-4
    """Smallest standard deviation of a gmm component."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.head not in HEADS:
            raise ValueError(f"policy.head={self.head!r}; valid: {list(HEADS)}")
        if self.head == "gmm" and self.group != "C1":
            raise ValueError("policy.head=gmm is not equivariant: use it with group=C1 (or head=mse)")
        if not self.hidden or min(self.hidden) < 1 or self.gmm_modes < 1 or not self.min_std > 0:
            raise ValueError("policy.hidden (non-empty), gmm_modes and min_std must be positive")
