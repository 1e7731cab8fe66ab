"""MimicGen-style demonstration generation (Mandlekar et al., CoRL 2023), as an agent.

From a few source demonstrations, each split into object-centric subtasks (``TaskSpec.subtasks``:
a subtask ends a few steps after its signal, e.g. "cubeA grasped", first turns true), a new scene is
solved subtask by subtask: pick a source demo, take its segment for this subtask, move the segment's
end-effector target poses rigidly with the subtask's object, from where the object was in the source
demo to where it is now (T_new = O_now O_src^-1 T_src), interpolate from the current target to the
segment's first pose, and play the segment with its gripper commands and a little action noise.
Episodes that end in success are kept by :func:`~equirobot.demos.collect.collect`, which runs this
agent like any other, in parallel and resumably.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import gymnasium as gym
import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from equirobot.data.replay_buffer import DatasetError
from equirobot.data.robomimic_hdf5 import Demo, read_hdf5
from equirobot_envs.geometry import quat_to_mat, rot6d_to_mat, rot_z
from equirobot_envs.registry import SELECTION_K, SELECTIONS

if TYPE_CHECKING:
    from equirobot_envs.base import TaskEnv

REACH = 0.9
"""Horizontal distance from the robot's base axis (m) beyond the gripper site's reach (the Panda's
reach is 0.855 m; the experts' targets stay within 0.86 m)."""


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    """Angle (radians) of the rotation between two orientations."""
    return float(np.arccos(np.clip((np.trace(a.T @ b) - 1) / 2, -1.0, 1.0)))


def pose_distance(a: np.ndarray, b: np.ndarray, symmetry: int = 1) -> float:
    """MimicGen's object-pose distance: metres apart plus radians of turn (least over the symmetry)."""
    turn = min(_angle(a[:3, :3] @ rot_z(2 * np.pi * k / symmetry), b[:3, :3]) for k in range(symmetry))
    return float(np.linalg.norm(a[:3, 3] - b[:3, 3]) + turn)


def pose(pos: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """(..., 4, 4) homogeneous transforms."""
    out = np.zeros((*pos.shape[:-1], 4, 4))
    out[..., :3, :3], out[..., :3, 3], out[..., 3, 3] = rot, pos, 1.0
    return out


@dataclass
class SourceSegment:
    """One subtask of one source demo: target poses, gripper commands, the object's pose at its start."""

    targets: np.ndarray  # (T, 4, 4)
    gripper: np.ndarray  # (T,)
    object_pose: np.ndarray | None  # (4, 4), None for world-frame subtasks


def segment_demo(env: gym.Env, demo: Demo, rng: np.random.Generator) -> list[SourceSegment]:
    """Split a demo at its subtask boundaries (signal's first rise + an offset), replaying its states.

    Raises :class:`DatasetError` for a demo that does not decompose into the task's subtasks: a signal
    that never fires, or one that rises again in the next subtask's segment (the expert let go and
    took the object again, e.g. slid a nut out of the peg's way before taking it by its handle; that
    segment would replay the second grasp relative to the wrong object).
    """
    task_env = cast("TaskEnv", env.unwrapped)  # gymnasium types `unwrapped` as the base Env
    spec = task_env.task
    if demo.actions_abs is None or "object" not in demo.obs:
        raise DatasetError("source demos need 'actions_abs' and 'obs/object' (collect with obs=[state])")
    names = list(spec.objects)
    targets = pose(demo.actions_abs[:, :3], rot6d_to_mat(demo.actions_abs[:, 3:9]))
    task_env.set_episode_meta(json.loads(demo.ep_meta))  # e.g. where Square D2's peg stood
    checks = []
    for i, subtask in enumerate(spec.subtasks[:-1]):
        if subtask.signal is None:
            raise ValueError(
                f"task {spec.config_name}: subtask {i} has no signal (only the last may lack one)"
            )
        checks.append(subtask.signal)
    signals = np.zeros((len(spec.subtasks) - 1, len(demo)), dtype=bool)
    for t in range(len(demo)):
        task_env.set_state(demo.states[t])
        signals[:, t] = [bool(signal(task_env)) for signal in checks]
    # rising[i, t]: signal i turns true at step t (or is true at step 0)
    rising = signals & ~np.concatenate([np.zeros_like(signals[:, :1]), signals[:, :-1]], axis=1)
    boundaries, start = [], 0
    for i, subtask in enumerate(spec.subtasks[:-1]):
        # A signal already true where the segment starts counts as rising there.
        rises = [start] if signals[i, start] else np.flatnonzero(rising[i, start:]) + start
        if not len(rises):
            raise DatasetError(f"a source demo never reaches the signal of subtask {i}")
        end = min(int(rises[0]) + int(rng.integers(subtask.offset[0], subtask.offset[1] + 1)), len(demo) - 1)
        boundaries.append((start, end))
        start = end
    boundaries.append((start, len(demo)))
    for i, (_, (a, b)) in enumerate(zip(boundaries[:-1], boundaries[1:], strict=True)):
        if rising[i, a + 1 : b].any():
            raise DatasetError(f"a source demo reaches the signal of subtask {i} again in the next segment")
    segments = []
    for subtask, (a, b) in zip(spec.subtasks, boundaries, strict=True):
        object_pose = None
        if subtask.object is not None:
            k = names.index(subtask.object)
            state = demo.obs["object"][a, 7 * k : 7 * k + 7]
            object_pose = pose(state[:3], quat_to_mat(state[3:]))
        segments.append(SourceSegment(targets[a:b], demo.actions_abs[a:b, 9], object_pose))
    return segments


class MimicGenAgent:
    """Acts by replaying transformed source segments; ``reset()`` starts a new scene's plan."""

    def __init__(
        self,
        env: gym.Env,
        source: str | Path,
        n_source: int = 10,
        interpolation_steps: int = 5,
        noise: float = 0.05,
        seed: int = 0,
        selection: str | None = None,
    ):
        """Segment the first ``n_source`` demos of ``source``.

        ``selection``: how to pick each segment's source demo, ``"random"`` or ``"nearest"`` (see
        :class:`~equirobot_envs.registry.Subtask`); ``None``: as each subtask declares.
        """
        self.env = cast("TaskEnv", env.unwrapped)  # gymnasium types `unwrapped` as the base Env
        if not self.env.task.subtasks:
            raise ValueError(f"task {self.env.task.config_name} declares no subtasks to generate from")
        if selection is not None and selection not in SELECTIONS:
            raise ValueError(f"unknown selection {selection!r}; valid: {list(SELECTIONS)}")
        self.selection = selection
        demos, _ = read_hdf5(source)
        if not demos:
            raise DatasetError(f"{source}: no source demos")
        self.rng = np.random.default_rng(seed)
        self.sources, self.skipped = [], 0
        for demo in demos[:n_source]:
            try:
                self.sources.append(segment_demo(env, demo, self.rng))
            except DatasetError:  # e.g. a grasp the contact test misses, or a regrasp: unusable
                self.skipped += 1
        if not self.sources:
            raise DatasetError(
                f"{source}: none of {min(n_source, len(demos))} source demos could be segmented"
            )
        self.interpolation_steps, self.noise = interpolation_steps, noise
        self.names = list(self.env.task.objects)

    def reset(self) -> None:
        # Draw this episode's choices from the env's generator, which reset(seed) has just seeded: the same
        # seed then generates the same demonstration in any worker.
        self.rng = np.random.default_rng(int(self.env.np_random.integers(2**63)))
        self._queue: deque[tuple[np.ndarray, float]] = deque()
        self._subtask = 0
        self._source = 0
        pos, rot = self.env.eef_pose()
        self._last = (pose(pos, rot), -1.0)

    def _object_pose(self, subtask) -> np.ndarray:
        return pose(*self.env.body_pose(self.env.task.objects[subtask.object]))

    def _choose_source(self, index: int) -> int:
        """The source demo for subtask ``index``.

        Kept from the first subtask unless the task selects per subtask; else drawn at random, or
        uniformly among the k whose object pose at the segment's start is nearest to the object's now.
        """
        spec = self.env.task
        if index > 0 and not spec.select_source_per_subtask:
            return self._source
        subtask = spec.subtasks[index]
        if (self.selection or subtask.selection) == "random" or subtask.object is None:
            return int(self.rng.integers(len(self.sources)))
        now = self._object_pose(subtask)
        distances = []
        for source in self.sources:
            object_pose = source[index].object_pose
            assert object_pose is not None  # segment_demo gives every subtask with an object its pose
            distances.append(pose_distance(now, object_pose, subtask.symmetry))
        nearest = np.argsort(distances, kind="stable")[:SELECTION_K]
        return int(nearest[self.rng.integers(len(nearest))])

    def _plan_next(self) -> None:
        """Queue the next subtask: interpolation to the transformed segment, then the segment."""
        index = self._subtask
        self._source = self._choose_source(index)
        segment = self.sources[self._source][index]
        targets = segment.targets
        start, gripper = self._last
        subtask = self.env.task.subtasks[index]
        if segment.object_pose is not None:
            now = self._object_pose(subtask)
            pos, rot = now[:3, 3], now[:3, :3]
            # Of the object frames its symmetry makes equivalent, the one needing the least wrist turn
            # among those whose segment stays within the arm's reach (turning a placement about the
            # peg may move its start to the far side of the peg, off the table).
            candidates = [
                pose(pos, rot @ rot_z(2 * np.pi * k / subtask.symmetry))
                @ np.linalg.inv(segment.object_pose)
                @ targets
                for k in range(subtask.symmetry)
            ]
            base = self.env.body_pose("robot0_base")[0][:2]
            reach = [np.linalg.norm(c[:, :2, 3] - base, axis=1).max() for c in candidates]
            within = [c for c, r in zip(candidates, reach, strict=True) if r <= REACH] or candidates
            targets = min(within, key=lambda c: _angle(c[0][:3, :3], start[:3, :3]))
        ends = Rotation.from_matrix(np.stack([start[:3, :3], targets[0][:3, :3]]))
        slerp = Slerp([0.0, 1.0], ends)
        # At least MimicGen's 5 steps, and slow enough for the arm to follow (1.5 cm, 0.1 rad a step).
        distance = np.linalg.norm(targets[0][:3, 3] - start[:3, 3])
        turn = (ends[1] * ends[0].inv()).magnitude()
        steps = max(self.interpolation_steps, int(np.ceil(distance / 0.015)), int(np.ceil(turn / 0.1)))
        for s in np.linspace(0, 1, steps + 1)[1:]:
            step = np.eye(4)
            step[:3, :3] = slerp([s]).as_matrix()[0]
            step[:3, 3] = (1 - s) * start[:3, 3] + s * targets[0][:3, 3]
            self._queue.append((step, gripper))
        self._queue.extend(zip(targets, segment.gripper, strict=True))
        self._subtask += 1

    def act(self, obs=None) -> np.ndarray:
        if not self._queue and self._subtask < len(self.env.task.subtasks):
            self._plan_next()
        target, gripper = self._queue.popleft() if self._queue else self._last
        self._last = (target, gripper)
        pos, rot = target[:3, 3], target[:3, :3]
        if self.noise:  # MimicGen's action noise, in units of the OSC delta scale (5 cm, 0.5 rad)
            pos = pos + self.rng.normal(0, self.noise * 0.05, 3)
            rot = Rotation.from_rotvec(self.rng.normal(0, self.noise * 0.5, 3)).as_matrix() @ rot
        return self.env.pose_to_action(pos, rot, float(np.sign(gripper) or -1.0))
