"""A simulated arm on ROS: a project task driven by the topics a real arm is driven by.

``equirobot sim-robot task=<t>`` runs the task's environment (absolute end-effector control) and speaks
the robot config's topics (:mod:`equirobot.deploy.robot`): it publishes joint states, the end-effector
pose, the tracked object poses, camera images and the fused point cloud of the task's depth cameras
(world frame, cropped to the workspace) after every step, takes end-effector targets and gripper
commands, and reports each finished episode on ``topics.result``. It is the digital twin for tests and
for rehearsing a deployment.

Two clocks:

* ``lockstep=true`` (the default): the simulation steps once per command that answers its latest
  observation (same stamp), so a run is as reproducible as an in-process evaluation. Each episode starts
  with its seed on ``topics.episode``; the sensors follow once the node has acknowledged it.
* ``lockstep=false``: the simulation runs in real time at the task's control rate and executes the
  latest command, as a real arm does; no command yet (or none since the e-stop) holds the pose.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import cast

import gymnasium as gym
import numpy as np

from equirobot.deploy import messages as m
from equirobot.deploy.bridge import Bridge, BridgeError
from equirobot.deploy.robot import RobotConfig
from equirobot_envs.base import TaskEnv
from equirobot_envs.config import EnvConfig
from equirobot_envs.features import IMAGE_CAMERAS
from equirobot_envs.geometry import quat_to_mat
from equirobot_envs.registry import get_task

log = logging.getLogger("equirobot.deploy.sim_robot")


class SimRobot:
    """See the module docstring."""

    def __init__(
        self,
        env_config: EnvConfig,
        robot: RobotConfig,
        bridge: Bridge,
        max_steps: int = 0,
        lockstep: bool = True,
    ) -> None:
        if env_config.control != "abs":
            raise ValueError("sim-robot executes end-effector targets: control must be abs")
        env_id = get_task(env_config.task).env_id
        self.env = gym.make(env_id, max_episode_steps=max_steps or None, **env_config.env_kwargs())
        self.base = cast(TaskEnv, self.env.unwrapped)
        self.config, self.robot, self.bridge, self.lockstep = env_config, robot, bridge, lockstep
        self.period = 1.0 / float(self.base.scene.control_freq)
        self._joints = robot.arm_joints + robot.gripper_joints
        model = self.base.scene.sim.model
        self._qpos = [model.get_joint_qpos_addr(name) for name in self._joints]
        t = robot.topics
        pub = bridge.publisher
        self._pub = {
            "joint_states": pub(t.joint_states, m.JOINT_STATE),
            "eef_pose": pub(t.eef_pose, m.POSE_STAMPED),
            "objects": pub(t.objects, m.POSE_ARRAY),
            "points": pub(t.points, m.POINT_CLOUD2),
            "episode": pub(t.episode, m.INT64),
            "result": pub(t.result, m.STRING),
            **{camera: pub(t.image(camera), m.IMAGE) for camera in IMAGE_CAMERAS},
        }
        self._cond = threading.Condition()
        self._target: m.Message | None = None
        self._gripper: m.Message | None = None
        self._acked: int | None = None
        self._last_stamp = -np.inf
        bridge.subscribe(t.target, m.POSE_STAMPED, self._on("_target"))
        bridge.subscribe(t.gripper, m.JOINT_STATE, self._on("_gripper"))
        bridge.subscribe(t.episode_ack, m.INT64, self._on_ack)

    def _on(self, slot: str):
        def store(msg: m.Message) -> None:
            with self._cond:
                setattr(self, slot, msg)
                self._cond.notify_all()

        return store

    def _on_ack(self, msg: m.Message) -> None:
        with self._cond:
            self._acked = int(msg["data"])
            self._cond.notify_all()

    # -- sensors ----------------------------------------------------------------------------------------
    def publish(self, obs: dict[str, np.ndarray], stamp: float) -> None:
        """Every sensor message of one step, all with ``stamp``."""
        env, frame = self.base, self.robot.base_frame
        qpos = env.scene.sim.data.qpos
        self._pub["joint_states"](m.joint_state(self._joints, np.array([qpos[a] for a in self._qpos]), stamp))
        if "object" in obs:
            self._pub["objects"](m.pose_array(obs["object"].reshape(-1, 7), frame, stamp))
        for camera in IMAGE_CAMERAS:
            if f"{camera}_image" in obs:
                self._pub[camera](m.image(obs[f"{camera}_image"], f"{camera}_optical_frame", stamp))
        if {"point_cloud", "voxels"} & set(self.config.obs):
            self._pub["points"](m.point_cloud2(env.observer.workspace_points(), frame, stamp, packed=False))
        # the pose last: a node that waits for a full set sees the other inputs of this stamp first
        self._pub["eef_pose"](m.pose_stamped(obs["robot0_eef_pos"], obs["robot0_eef_quat"], frame, stamp))

    def action(self, target: m.Message, gripper: m.Message) -> np.ndarray:
        """The env's absolute action of a target and a gripper command."""
        pose = m.read_pose_stamped(target)
        g = float(np.clip(m.read_joints(gripper, ["gripper"])[0], -1, 1))
        return self.base.pose_to_action(pose[:3], quat_to_mat(pose[3:]), g)

    def hold_action(self) -> np.ndarray:
        """The action that keeps the gripper where it is."""
        pos, rot = self.base.eef_pose()
        return self.base.pose_to_action(pos, rot, -1.0)

    # -- episodes ---------------------------------------------------------------------------------------
    def _answered(self, stamp: float) -> bool:
        """Whether a target and a gripper command carrying ``stamp`` have arrived."""
        return all(
            msg is not None and abs(m.header_seconds(msg) - stamp) < 1e-6
            for msg in (self._target, self._gripper)
        )

    def _wait(self, ready, timeout: float, what: str) -> None:
        with self._cond:
            if not self._cond.wait_for(ready, timeout):
                raise BridgeError(f"sim-robot: no {what} within {timeout:g} s")

    def episode(self, seed: int, command_timeout: float = 30.0, record: bool = False) -> dict:
        """Run one episode from ``seed``; returns and publishes its result (``record``: with its actions)."""
        with self._cond:
            self._acked, self._target, self._gripper = None, None, None
        if self.lockstep:
            # the node must hear the start: wait for its subscription (ros1), and republish now and then
            # in case it subscribed late (rosbridge cannot tell); the node resets once per episode
            self.bridge.wait_for_subscribers(self.robot.topics.episode, command_timeout)
            deadline = time.monotonic() + command_timeout
            while True:
                self._pub["episode"]({"data": seed})
                with self._cond:
                    if self._cond.wait_for(lambda: self._acked == seed, 1.0):
                        break
                if time.monotonic() > deadline:
                    raise BridgeError(
                        f"sim-robot: the episode {seed} was not acknowledged within {command_timeout:g} s"
                    )
        else:
            self._pub["episode"]({"data": seed})
        obs, _ = self.env.reset(seed=seed)
        # stamps: simulation time, one control period a step, never going back (lockstep runs faster or
        # slower than the wall clock); an episode starts at the wall clock or a second after the last one
        start = max(time.time(), self._last_stamp + 1.0)
        steps, success, last = 0, False, None
        executed: list[list[float]] = []
        while True:
            stamp = self._last_stamp = start + steps * self.period
            self.publish(obs, stamp)
            if self.lockstep:
                self._wait(
                    lambda stamp=stamp: self._answered(stamp),
                    command_timeout,
                    f"command answering the observation of step {steps}",
                )
                with self._cond:
                    action = self.action(self._target, self._gripper)  # type: ignore[arg-type]
            else:
                time.sleep(max(0.0, stamp + self.period - time.time()))
                with self._cond:
                    target, gripper = self._target, self._gripper
                if target is not None and gripper is not None:
                    last = self.action(target, gripper)
                action = last if last is not None else self.hold_action()
            executed.append(action.tolist())
            obs, _, terminated, truncated, info = self.env.step(action)
            steps += 1
            success = success or bool(info.get("is_success", False))
            if terminated or truncated:
                break
        result: dict = {"seed": seed, "success": success, "steps": steps}
        self._pub["result"]({"data": json.dumps(result)})
        if record:
            result["actions"] = executed
        log.info("episode %d: %s in %d steps", seed, "success" if success else "failure", steps)
        return result

    def close(self) -> None:
        self.env.close()
