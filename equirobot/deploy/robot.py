"""A robot as the deploy node sees it: topics, frames, rate, joints, workspace, cameras, safety limits.

One config per robot under ``configs/robot/`` (hydra group ``robot``); ``sim_panda`` is the project's
simulated Panda (``equirobot sim-robot``), whose topics and frames a real Panda setup can copy.

Topics (message types in :mod:`equirobot.deploy.messages`)::

    in   joint_states  sensor_msgs/JointState     arm and finger joints (robot0_gripper_qpos)
    in   eef_pose      geometry_msgs/PoseStamped  gripper site in the base frame (robot0_eef_pos/quat)
    in   objects       geometry_msgs/PoseArray    tracked object poses, task order (the ``state`` mode)
    in   images        sensor_msgs/Image          <images>/<camera>/image_raw, rgb8 (the ``rgb`` mode)
    in   points        sensor_msgs/PointCloud2    xyz + rgb, any frame (``point_cloud``, ``voxels``)
    in   estop         std_msgs/Bool              true: publish nothing until false
    in   episode       std_msgs/Int64             a new episode (its seed): the policy forgets its history
    out  episode_ack   std_msgs/Int64             the node has reset for that episode
    out  target        geometry_msgs/PoseStamped  end-effector target in the base frame
    out  gripper       sensor_msgs/JointState     name ["gripper"], position [-1 open .. 1 closed]
    out  events        std_msgs/String            safety events, JSON
    out  result        std_msgs/String            (simulated arm) each finished episode, JSON
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from equirobot.deploy.safety import SafetyConfig


@dataclass
class TopicsConfig:
    """Topic names (see the module docstring)."""

    joint_states: str = "/joint_states"
    eef_pose: str = "/equirobot/eef_pose"
    objects: str = "/equirobot/object_poses"
    images: str = "/equirobot/camera"
    points: str = "/equirobot/points"
    estop: str = "/equirobot/estop"
    episode: str = "/equirobot/episode"
    episode_ack: str = "/equirobot/episode_ack"
    target: str = "/equirobot/eef_target"
    gripper: str = "/equirobot/gripper_command"
    events: str = "/equirobot/safety_events"
    result: str = "/equirobot/episode_result"

    def image(self, camera: str) -> str:
        return f"{self.images}/{camera}/image_raw"


@dataclass
class RobotConfig:
    """``robot=<name>``: how the deploy node reaches one robot."""

    name: str = "sim_panda"
    base_frame: str = "world"
    """The frame of the end-effector pose, the targets, the workspace and the policy's inputs."""
    rate: float = 20.0
    """Commands per second (robosuite's control frequency is 20 Hz)."""
    synchronized: bool = False
    """All inputs of one step carry one stamp (the simulated arm in lockstep): act once per new stamp,
    when every input has it. False (a real robot): act every tick on the latest of each input."""
    gripper_joints: list[str] = field(
        default_factory=lambda: ["gripper0_right_finger_joint1", "gripper0_right_finger_joint2"]
    )
    """JointState names of the finger joints, in ``robot0_gripper_qpos`` order."""
    arm_joints: list[str] = field(default_factory=lambda: [f"robot0_joint{i}" for i in range(1, 8)])
    workspace_low: list[float] = field(default_factory=lambda: [-0.45, -0.45, 0.80])
    """Lower corner of the box targets are clamped into, base frame, metres."""
    workspace_high: list[float] = field(default_factory=lambda: [0.45, 0.45, 1.35])
    points_to_base: list[float] = field(default_factory=lambda: np.eye(4).ravel().tolist())
    """The 4x4 transform (16 numbers, row-major) from the point cloud's frame to the base frame: the
    camera extrinsics of a real setup; identity for the simulated arm, which publishes world points."""
    topics: TopicsConfig = field(default_factory=TopicsConfig)
    safety: SafetyConfig = field(default_factory=SafetyConfig)

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError(f"robot.rate must be positive, got {self.rate}")
        if len(self.points_to_base) != 16 or not np.isfinite(self.points_to_base).all():
            raise ValueError(
                f"robot.points_to_base: need 16 finite numbers (a 4x4 matrix), got {self.points_to_base}"
            )
        if len(self.workspace_low) != 3 or len(self.workspace_high) != 3:
            raise ValueError("robot.workspace_low and robot.workspace_high take 3 numbers each")
        if not (np.asarray(self.workspace_low) < np.asarray(self.workspace_high)).all():
            raise ValueError(
                f"robot.workspace_low {self.workspace_low} must be below workspace_high {self.workspace_high}"
            )

    @property
    def points_transform(self) -> np.ndarray:
        return np.asarray(self.points_to_base, dtype=np.float64).reshape(4, 4)
