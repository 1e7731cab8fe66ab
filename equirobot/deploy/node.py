"""The deploy node: a checkpoint's policy driving a robot over a :class:`~equirobot.deploy.bridge.Bridge`.

Each tick (``robot.rate`` per second) the node

1. builds the observation dict the policy was trained on from the latest messages: the same keys,
   shapes and frames as the simulator's (``equirobot_envs.features``), point clouds and voxels cropped
   to the task's workspace in the base frame with the simulator's own functions
   (``equirobot_envs.point_clouds``);
2. checks it: every input fresh (the watchdog), every number finite, the e-stop released;
3. asks ``policy.select_action`` (which keeps the action chunk and the observation history);
4. turns the action into an end-effector target in the base frame (a delta policy's action is added to
   the measured pose, at robosuite's scales), passes it through the :class:`SafetyFilter`, and publishes
   the target and the gripper command with the stamp of the observation it answers.

It imports neither robosuite nor MuJoCo. A new episode (a seed on ``topics.episode``) resets the policy
with that seed, as the in-process evaluation does, and is acknowledged on ``topics.episode_ack``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from equirobot.data.robomimic_hdf5 import atomic_path
from equirobot.deploy import messages as m
from equirobot.deploy.bridge import Bridge
from equirobot.deploy.robot import RobotConfig
from equirobot.deploy.safety import SafetyFilter
from equirobot.policies.base import Policy
from equirobot_envs.features import DELTA_POS_SCALE, DELTA_ROT_SCALE, IMAGE_CAMERAS, mode_features
from equirobot_envs.geometry import Workspace, axis_angle_to_mat, mat_to_quat, quat_to_mat, rot6d_to_mat
from equirobot_envs.point_clouds import cloud_features, crop

log = logging.getLogger("equirobot.deploy")

SUPPORTED = {
    "robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos", "object", "agentview_image",
    "robot0_eye_in_hand_image", "point_cloud", "voxels",
}  # fmt: skip
"""Observation keys the node can build from ROS messages."""


class DeployError(ValueError):
    """A checkpoint the node cannot serve on this robot; says what is missing."""


@dataclass
class Inputs:
    """What the policy needs, read off the checkpoint: keys, sizes, the workspace."""

    keys: list[str]
    control: str
    n_objects: int
    image_size: int
    n_points: int | None
    voxel_size: int | None
    workspace: Workspace


def inputs_of(config: dict) -> Inputs:
    """The inputs of a checkpoint config (``read_config``); refuses observation modes ROS cannot give.

    The workspace comes from the checkpoint; a checkpoint written before it stored one has it read off
    its task, which loads the simulator.
    """
    spec, env = config["spec"], config.get("env", {})
    keys = [f.key for f in mode_features(spec["modes"]) if f.is_policy_input]
    unsupported = [k for k in keys if k not in SUPPORTED]
    if unsupported:
        raise DeployError(
            f"the checkpoint's inputs {unsupported} cannot be built from the robot's messages; the node "
            f"builds {sorted(SUPPORTED)} (observation modes state, rgb, point_cloud, voxels)"
        )
    if spec["control"] not in ("abs", "delta"):
        raise DeployError(f"control={spec['control']!r}: the node sends end-effector targets (abs or delta)")
    if "workspace" in config:
        workspace = Workspace(**{**config["workspace"], "center": tuple(config["workspace"]["center"])})
    else:
        from equirobot_envs.registry import get_task

        workspace = get_task(config["task"]).workspace
    return Inputs(
        keys=keys,
        control=spec["control"],
        n_objects=int(spec["n_objects"]),
        image_size=int(env.get("image_size", 84)),
        n_points=int(env.get("n_points", 1024)) if "point_cloud" in keys else None,
        voxel_size=int(env.get("voxel_size", 64)) if "voxels" in keys else None,
        workspace=workspace,
    )


@dataclass
class Received:
    """The latest message of one input, its stamp and when it arrived (monotonic clock)."""

    msg: m.Message
    stamp: float
    arrived: float


@dataclass
class NodeStats:
    """Counts and timings of a deploy run (``deploy_stats.json``)."""

    commands: int = 0
    episodes: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    """Observation arrival (the last input of the set) to command published."""
    policy_ms: list[float] = field(default_factory=list)
    command_times: list[float] = field(default_factory=list)
    slow_ticks: int = 0
    """Ticks whose work took longer than the tick (the loop is slower than ``robot.rate``)."""

    def summary(self, rate: float, safety: dict[str, int]) -> dict:
        times = np.diff(self.command_times) if len(self.command_times) > 1 else np.array([])
        lat = np.array(self.latencies_ms) if self.latencies_ms else np.array([np.nan])
        return {
            "commands": self.commands,
            "episodes": self.episodes,
            "configured_rate_hz": rate,
            "achieved_rate_hz": float(1.0 / times.mean()) if len(times) else 0.0,
            "latency_ms_median": float(np.median(lat)),
            "latency_ms_p95": float(np.percentile(lat, 95)),
            "policy_ms_median": float(np.median(self.policy_ms)) if self.policy_ms else 0.0,
            "policy_ms_max": float(np.max(self.policy_ms)) if self.policy_ms else 0.0,
            "slow_ticks": self.slow_ticks,
            "safety_events": safety,
        }


class DeployNode:
    """See the module docstring. ``spin()`` runs the loop until ``stop()``; ``tick()`` is one step."""

    def __init__(
        self, policy: Policy, config: dict, robot: RobotConfig, bridge: Bridge, dry_run: bool | None = None
    ) -> None:
        self.policy, self.robot, self.bridge = policy, robot, bridge
        self.inputs = inputs_of(config)
        if dry_run is not None:
            robot.safety.dry_run = dry_run
        self.safety = SafetyFilter(
            robot.safety, np.array(robot.workspace_low), np.array(robot.workspace_high)
        )
        self.stats = NodeStats()
        self._lock = threading.Lock()
        self._latest: dict[str, Received] = {}
        self._acted_stamp = -np.inf
        self._episode_seed: int | None = None
        self._commands_at_reset = 0
        self._events_sent = 0
        self._stop = threading.Event()
        self._sources = self._subscriptions()
        t = robot.topics
        self._publish_target = bridge.publisher(t.target, m.POSE_STAMPED)
        self._publish_gripper = bridge.publisher(t.gripper, m.JOINT_STATE)
        self._publish_event = bridge.publisher(t.events, m.STRING)
        self._publish_ack = bridge.publisher(t.episode_ack, m.INT64)
        bridge.subscribe(t.estop, m.BOOL, self._on_estop)
        bridge.subscribe(t.episode, m.INT64, self._on_episode)
        self._flush_events()  # the limits switched off

    # -- subscriptions --------------------------------------------------------------------------------
    def _subscriptions(self) -> dict[str, tuple[str, str]]:
        """Input name -> (topic, type), subscribed; the inputs the observation is built from."""
        t, keys = self.robot.topics, self.inputs.keys
        sources = {"eef_pose": (t.eef_pose, m.POSE_STAMPED), "joint_states": (t.joint_states, m.JOINT_STATE)}
        if "object" in keys:
            sources["objects"] = (t.objects, m.POSE_ARRAY)
        for camera in IMAGE_CAMERAS:
            if f"{camera}_image" in keys:
                sources[camera] = (t.image(camera), m.IMAGE)
        if "point_cloud" in keys or "voxels" in keys:
            sources["points"] = (t.points, m.POINT_CLOUD2)
        for name, (topic, kind) in sources.items():
            self.bridge.subscribe(topic, kind, self._receiver(name))
        return sources

    def _receiver(self, name: str) -> Callable[[m.Message], None]:
        def receive(msg: m.Message) -> None:
            with self._lock:
                self._latest[name] = Received(msg, m.header_seconds(msg), time.monotonic())

        return receive

    def _on_estop(self, msg: m.Message) -> None:
        self.safety.set_estop(bool(msg["data"]))
        self._flush_events()

    def _on_episode(self, msg: m.Message) -> None:
        """Reset the policy for a new episode and acknowledge it.

        A repeat of the current episode's seed before any command was sent for it (a simulated arm
        republishing an unacknowledged start) is acknowledged without a second reset.
        """
        seed = int(msg["data"])
        with self._lock:
            repeat = seed == self._episode_seed and self.stats.commands == self._commands_at_reset
            if not repeat:
                self.policy.reset([0], [seed])
                self._episode_seed, self._commands_at_reset = seed, self.stats.commands
                # the last episode's observations are not this one's, and a robot's clock may restart
                self._latest.clear()
                self._acted_stamp = -np.inf
                self.stats.episodes += 1
                log.info("episode with seed %d: policy reset", seed)
        self._publish_ack({"data": seed})

    # -- the observation ------------------------------------------------------------------------------
    def observation(self, latest: dict[str, Received]) -> dict[str, np.ndarray]:
        """The raw observation dict (the simulator's keys and dtypes) of a set of messages."""
        inp, robot = self.inputs, self.robot
        pose = m.read_pose_stamped(latest["eef_pose"].msg)
        obs = {
            "robot0_eef_pos": pose[:3].astype(np.float32),
            "robot0_eef_quat": pose[3:].astype(np.float32),
            "robot0_gripper_qpos": m.read_joints(latest["joint_states"].msg, robot.gripper_joints).astype(
                np.float32
            ),
        }
        if "object" in inp.keys:
            poses = m.read_pose_array(latest["objects"].msg)
            if len(poses) != inp.n_objects:
                raise m.MessageError(
                    f"{robot.topics.objects}: {len(poses)} object poses, the policy was trained on "
                    f"{inp.n_objects}"
                )
            obs["object"] = poses.reshape(-1).astype(np.float32)
        for camera in IMAGE_CAMERAS:
            if f"{camera}_image" in inp.keys:
                img = m.read_image(latest[camera].msg)
                want = (inp.image_size, inp.image_size, 3)
                if img.shape != want or img.dtype != np.uint8:
                    raise m.MessageError(
                        f"{robot.topics.image(camera)}: image {img.dtype} {img.shape}, the policy takes "
                        f"uint8 {want}"
                    )
                obs[f"{camera}_image"] = img
        if "points" in latest and ("point_cloud" in inp.keys or "voxels" in inp.keys):
            points = m.read_point_cloud2(latest["points"].msg)
            transform = robot.points_transform
            if not np.allclose(transform, np.eye(4)):
                points[:, :3] = points[:, :3] @ transform[:3, :3].T + transform[:3, 3]
            obs.update(
                cloud_features(crop(points, inp.workspace), inp.workspace, inp.n_points, inp.voxel_size)
            )
        return {k: obs[k] for k in inp.keys}

    def _ready(self) -> tuple[dict[str, Received], float] | None:
        """The message set to act on and its stamp, or None (nothing new; a missing input)."""
        with self._lock:
            latest = dict(self._latest)
        now = time.monotonic()
        ages = {name: now - latest[name].arrived if name in latest else np.inf for name in self._sources}
        if not self.safety.check_fresh(ages) or len(latest) < len(self._sources):
            return None  # stale, or (the watchdog switched off) an input never received
        stamps = {r.stamp for r in latest.values()}
        stamp = max(stamps)
        if self.robot.synchronized and len(stamps) > 1:
            return None  # a step's messages are still arriving
        if self.robot.synchronized and stamp <= self._acted_stamp:
            return None
        return latest, stamp

    # -- one step -------------------------------------------------------------------------------------
    def tick(self) -> bool:
        """Act once if there is something to act on; True if a command was published."""
        ready = self._ready()
        self._flush_events()
        if ready is None or self._episode_seed is None and self.robot.synchronized:
            return False
        latest, stamp = ready
        self._acted_stamp = stamp
        try:
            obs = self.observation(latest)
        except m.MessageError as error:
            self.safety.record("bad_message", f"{error}: holding", logging.ERROR)
            self._flush_events()
            return False
        if not self.safety.check_observation(obs):
            self._flush_events()
            return False
        started = time.monotonic()
        with self._lock, torch.no_grad():
            action = np.asarray(self.policy.select_action({k: v[None] for k, v in obs.items()}))[0]
        self.stats.policy_ms.append(1e3 * (time.monotonic() - started))
        eef_pos = obs["robot0_eef_pos"].astype(np.float64)
        eef_rot = quat_to_mat(obs["robot0_eef_quat"].astype(np.float64))
        pos, rot, gripper = self.target(action.astype(np.float64), eef_pos, eef_rot)
        sent = self.safety.filter(pos, rot, gripper, eef_pos, eef_rot, stamp)
        self._flush_events()
        if sent is None:
            return False
        pos, rot, gripper = sent
        frame = self.robot.base_frame
        self._publish_gripper(m.joint_state(["gripper"], np.array([gripper]), stamp, frame))
        self._publish_target(m.pose_stamped(pos, mat_to_quat(rot), frame, stamp))
        done = time.monotonic()
        arrived = max(r.arrived for r in latest.values())
        self.stats.commands += 1
        self.stats.latencies_ms.append(1e3 * (done - arrived))
        self.stats.command_times.append(done)
        return True

    def target(
        self, action: np.ndarray, eef_pos: np.ndarray, eef_rot: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """(position, rotation matrix, gripper) in the base frame of a policy action."""
        if not np.isfinite(action).all():
            return np.full(3, np.nan), np.full((3, 3), np.nan), float("nan")
        if self.inputs.control == "abs":
            return action[:3], rot6d_to_mat(action[3:9]), float(action[9])
        delta = np.clip(action, -1, 1)
        rot = axis_angle_to_mat(delta[3:6] * DELTA_ROT_SCALE) @ eef_rot
        return eef_pos + delta[:3] * DELTA_POS_SCALE, rot, float(delta[6])

    def _flush_events(self) -> None:
        """Publish the safety events not yet published."""
        for event in self.safety.events[self._events_sent :]:
            self._publish_event({"data": event.to_json()})
        self._events_sent = len(self.safety.events)

    # -- the loop ---------------------------------------------------------------------------------------
    def spin(self, duration: float = 0.0) -> None:
        """Tick at ``robot.rate`` until :meth:`stop` (or ``duration`` seconds, if positive)."""
        period, end = 1.0 / self.robot.rate, time.monotonic() + duration if duration > 0 else np.inf
        next_tick = time.monotonic()
        warned = False
        while not self._stop.is_set() and time.monotonic() < end:
            self.tick()
            next_tick += period
            lag = time.monotonic() - next_tick
            if lag > 0:
                # in lockstep the arm sets the pace: only a free-running loop can be too slow
                self.stats.slow_ticks += not self.robot.synchronized
                if not warned and self.stats.slow_ticks > 10:
                    log.warning(
                        "the loop is slower than robot.rate=%g Hz (%.0f ms behind)",
                        self.robot.rate,
                        1e3 * lag,
                    )
                    warned = True
                next_tick = time.monotonic()
            else:
                self._stop.wait(-lag)

    def wait_for_inputs(self, timeout: float) -> bool:
        """Block until every input has arrived once (or ``timeout`` seconds pass)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                if set(self._sources) <= set(self._latest):
                    return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        self._stop.set()

    def summary(self) -> dict:
        return self.stats.summary(self.robot.rate, self.safety.counts())


def write_json(path: str | Path, data: dict) -> None:
    """Write ``data`` as JSON under a temporary name, then rename it into place."""
    with atomic_path(Path(path)) as tmp:
        tmp.write_text(json.dumps(data, indent=1))
