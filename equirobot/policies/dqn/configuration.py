"""Configuration of deep Q-learning on top-down heightmaps over a discrete set of closed-loop moves.

Presets (``configs/policy/``), both this one method:

=========  =====  ===================================================================
preset     group  what it is
=========  =====  ===================================================================
equi_dqn   C4     SO(2)-equivariant DQN (Wang, Walters, Platt, ICLR 2022), a C4 Q-map
dqn        C1     the same network without symmetry: a CNN DQN of the same channel counts
=========  =====  ===================================================================

The learning rate is the trainer's (``lr``, shared by every method); the paper's is 1e-4:
``equirobot train task=block_picking policy=equi_dqn lr=1e-4``.
"""

from __future__ import annotations

from dataclasses import dataclass

from equirobot.policies.q_learning import QLearningConfig


@dataclass
class DQNConfig(QLearningConfig):
    """DQN with a target network, Huber loss, epsilon-greedy acting and (optionally) prioritised replay.

    Discount, target network and epsilon schedule: ``equirobot.policies.q_learning``.

    Actions: a 3 x 3 grid of xy moves (each of dx, dy in {-1, 0, 1} x ``xy_step``) times 3 dz ({-1, 0, 1}
    x ``z_step``) times 3 dtheta ({-1, 0, 1} x ``theta_step``) times 2 gripper commands (open -1, close
    1): 162 actions, 18 invariant channels per xy cell. Steps are in action units (1 = 5 cm, pi / 8).
    Channel counts are as in ``sac``: for C_N regular fields of ``channels // |G|``, so C4 and C1
    networks cost about the same.
    """

    type: str = "dqn"
    name: str = ""
    group: str = "C4"
    xy_step: float = 0.4
    """Size of an xy move, action units (0.4: 2 cm)."""
    z_step: float = 0.4
    """Size of a dz move, action units (0.4: 2 cm)."""
    theta_step: float = 0.5
    """Size of a dtheta move, action units (0.5: pi / 16)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not all(0 < s <= 1 for s in (self.xy_step, self.z_step, self.theta_step)):
            raise ValueError(
                f"policy: xy_step, z_step, theta_step must be in (0, 1] (action units), got "
                f"{self.xy_step}, {self.z_step}, {self.theta_step}"
            )
