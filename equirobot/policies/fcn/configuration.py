"""Configuration of Q-learning in spatial action spaces: a fully convolutional Q-map over pixels x yaws.

Presets (``configs/policy/``), both this one method:

=========  =====  =========================================================================
preset     group  what it is
=========  =====  =========================================================================
equi_fcn   C8     Equivariant FCN (Wang, Walters, Platt, CoRL 2021): 4 yaws as C8 / C2
fcn        C1     the same U-Net without symmetry: a CNN FCN of the same channel counts
=========  =====  =========================================================================

``equirobot train task=block_stacking_pick_place policy=equi_fcn``; the learning rate is the trainer's
(``lr``, shared by every method).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from equirobot.policies.q_learning import QLearningConfig
from equirobot.symmetry.group import SceneSymmetry


@dataclass
class FCNConfig(QLearningConfig):
    """Deep Q-learning over (yaw, pixel) pick-and-place actions, with demonstrations and prioritised replay.

    The Q-network is a U-Net (:class:`~equirobot.nn.heads.SpatialQMap`): ``encoder_channels`` per level
    (each level below the first halves the resolution), a ``features``-channel bottleneck, a
    ``hidden``-channel 1x1 conv, then R = ``rotations`` yaw channels per pixel. For C_N, channel counts
    are regular fields of ``channels // N``, so C8 and C1 networks cost about the same, and the yaws
    form the quotient representation C_N / C_2, which needs N = 2 R.

    The defaults are sized for a CPU: the 64 x 64 heightmap seen at 32 x 32 (``input_pool=2``: a Q-map
    cell is 1.25 cm of the 0.4 m workspace), 20 expert episodes kept in a prioritised buffer with the
    large-margin loss on them (``margin_weight``: the paper's agents learn from demonstrations so), no
    random warm-up (the demonstrations start the buffer), epsilon from 0.5 to 0.05 over 1000 env steps.
    """

    type: str = "fcn"
    name: str = ""
    group: str = "C8"
    rotations: int = 4
    """R: gripper yaws r pi / R, r = 0 .. R - 1, over the half turn [0, pi)."""
    encoder_channels: list[int] = field(default_factory=lambda: [16, 32, 64])
    features: int = 64
    hidden: int = 32
    gamma: float = 0.9
    target_update: int = 50
    eps_start: float = 0.5
    eps_end: float = 0.05
    eps_steps: int = 1000
    demos: int = 20
    prioritized: bool = True
    random_steps: int = 0
    margin_weight: float = 1.0
    margin: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.rotations < 1:
            raise ValueError(f"policy.rotations must be positive, got {self.rotations}")
        sym = SceneSymmetry.from_name(self.group)
        if sym.flips:
            raise ValueError(
                f"policy fcn takes a rotation group C_N (mirrors turn a yaw backwards), got {sym.name}"
            )
        if sym.order > 1 and sym.order != 2 * self.rotations:
            raise ValueError(
                f"policy: group={self.group} acts on N / 2 = {sym.order / 2:g} yaws over [0, pi) (the "
                f"quotient C{sym.order} / C2), but rotations={self.rotations}: set group="
                f"C{2 * self.rotations} (or C1), or rotations={sym.order // 2}"
            )
