"""Configuration of soft actor-critic on top-down heightmaps: the equivariant agent and its baselines.

Presets (``configs/policy/``), all this one method:

==================  =====  ============  =====  =====================================================
preset              group  augmentation  demos  what it is
==================  =====  ============  =====  =====================================================
equi_sac            C8     none          0      SO(2)-equivariant SAC (Wang, Walters, Platt, ICLR 2022)
sac                 C1     none          0      the same networks without symmetry: a CNN SAC
rad                 C1     crop          0      SAC with random crops (Laskin et al. 2020)
drq                 C1     shift         0      SAC with random shifts, averaged targets (Kostrikov)
sac_rot_aug         C1     rotate        0      SAC whose buffer stores rotated copies of transitions
equi_sacfd          C8     none          20     equi_sac + demonstrations, prioritised replay, BC term
sacfd               C1     none          20     the CNN counterpart of equi_sacfd
relaxed_sac         C8     none          0      equi_sac with relaxed actor and critic MLPs
mirror_sac          task   none          0      a control task's exact mirror-equivariant SAC (C2, D2)
relaxed_mirror_sac  task   none          0      its relaxed version (relaxed layers in every MLP)
==================  =====  ============  =====  =====================================================

On a control task (``equirobot_envs.flip_control``) ``sac`` (C1) is the unconstrained agent.
"""

from __future__ import annotations

from dataclasses import dataclass

from equirobot.policies.top_down import TopDownConfig

AUGMENTATIONS = ("none", "crop", "shift", "rotate")


@dataclass
class SACConfig(TopDownConfig):
    """Soft actor-critic with twin critics, target critics and automatic entropy tuning.

    The actor and the critics have their own encoders of ``encoder_channels`` (channels per stage; for
    C_N they are regular fields, ``channels // |G|`` each, so C8 and C1 networks cost about the same).
    The actor's mean of (dx, dy) turns with the scene (rho_1), its gripper, dz and dtheta and every
    log-std are invariant; the critics are invariant (group pooling).
    """

    type: str = "sac"
    name: str = ""
    group: str = "C8"
    gamma: float = 0.99
    """Discount."""
    tau: float = 0.01
    """Polyak rate of the target critics."""
    init_alpha: float = 0.01
    """Initial entropy temperature; tuned automatically towards ``target_entropy``."""
    target_entropy: float | None = None
    """Target entropy of the policy; ``None``: minus the action dimension (-5 for the top-down action)."""
    augmentation: str = "none"
    """none, crop (RAD: random crops of ``crop`` pixels less per side at training, the centre at acting),
    shift (DrQ: pad by ``shift`` pixels, random crop back, ``target_samples`` augmented targets
    averaged), rotate (the buffer stores ``rotated_copies`` copies of every transition next to it, each
    turned about the map's centre by its own random angle: observation, next observation and action
    together)."""
    crop: int = 4
    shift: int = 4
    rotated_copies: int = 4
    """Rotated copies of each transition the buffer stores with ``augmentation=rotate`` (the paper's 4)."""
    target_samples: int = 2
    """DrQ's K: augmented copies of the next observation whose targets are averaged (shift only)."""
    bc_weight: float = 0.0
    """Weight of the behaviour-cloning term ||pi(s) - a_demo||^2 on the demonstrations in a batch."""
    relaxed_banks: int = 0
    """0: exactly equivariant networks; L >= 1: relaxed MLPs in the actor and the critics (and the
    state encoders), L filter banks per relaxed group-linear layer, exact at initialisation."""
    relaxed_weight: float = 1e-4
    """Weight of the relaxed layers' regulariser (their distance from the symmetric solution) in the
    actor and critic losses (Wang, Walters and Yu use 1e-6 to 1e-4)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.augmentation not in AUGMENTATIONS:
            raise ValueError(f"policy.augmentation={self.augmentation!r}; valid: {list(AUGMENTATIONS)}")
        if not (0 < self.gamma <= 1 and 0 < self.tau <= 1 and self.init_alpha > 0):
            raise ValueError(
                f"policy: need 0 < gamma <= 1, 0 < tau <= 1, init_alpha > 0; got {self.gamma}, "
                f"{self.tau}, {self.init_alpha}"
            )
        if self.relaxed_banks < 0 or not self.relaxed_weight >= 0:
            raise ValueError(
                f"policy: relaxed_banks and relaxed_weight must be >= 0, got {self.relaxed_banks}, "
                f"{self.relaxed_weight}"
            )
        if (
            min(self.crop, self.shift, self.bc_weight) < 0
            or min(self.target_samples, self.rotated_copies) < 1
        ):
            raise ValueError("policy: target_samples, rotated_copies >= 1 and crop, shift, bc_weight >= 0")
