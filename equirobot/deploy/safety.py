"""What stands between a policy's action and the robot: limits that are on unless switched off by name.

:class:`SafetyFilter` turns the policy's end-effector target into the one that is sent, or into nothing:

* non-finite observations or actions: nothing is sent (never disabled);
* e-stop: while engaged, nothing is sent (never disabled);
* stale observations (the watchdog): no input newer than ``stale_after`` seconds: hold, nothing new sent;
* ``workspace``: the target position is clamped into the robot config's workspace box (before and
  after the step limits, so a sent target is always inside it);
* ``max_step``: the target moves at most ``max_step_m`` metres and ``max_step_rad`` radians from the
  measured end-effector pose (LeRobot's ``max_relative_target``, per command);
* ``max_velocity``: and at most ``max_speed_m_s`` times the time since the last command, read from the
  observations' stamps (robot time; the simulated arm's simulation time);
* ``dry_run``: targets are computed and logged, never sent.

Every intervention is an :class:`Event` (logged and published by the node). The four limits that can be
turned off are turned off only by listing them in ``disabled`` (``safety.disabled=[max_step]``), which
logs a warning at start; a limit set to a non-positive value is refused.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

log = logging.getLogger("equirobot.deploy.safety")

LIMITS = ("workspace", "max_step", "max_velocity", "watchdog")


@dataclass
class SafetyConfig:
    """Limits of the deploy node (``robot.safety``); see the module docstring."""

    max_step_m: float = 0.05
    """Largest distance of a target from the measured end-effector position, metres."""
    max_step_rad: float = 0.5
    """Largest rotation of a target from the measured end-effector orientation, radians."""
    max_speed_m_s: float = 0.5
    """Largest target speed: a target moves at most this times the time (observation stamps) since the
    last one."""
    stale_after_s: float = 0.5
    """An observation older than this (wall clock since it arrived) stops the policy: hold."""
    disabled: list[str] = field(default_factory=list)
    """Limits switched off on purpose (any of ``workspace, max_step, max_velocity, watchdog``)."""
    dry_run: bool = False
    """Log each target instead of sending it."""

    def __post_init__(self) -> None:
        unknown = [name for name in self.disabled if name not in LIMITS]
        if unknown:
            raise ValueError(f"safety.disabled: unknown limit(s) {unknown}; valid: {list(LIMITS)}")
        for name in ("max_step_m", "max_step_rad", "max_speed_m_s", "stale_after_s"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(
                    f"safety.{name} must be a positive number, got {value}; to switch a limit off, list it "
                    f"in safety.disabled (one of {list(LIMITS)})"
                )

    def enabled(self, limit: str) -> bool:
        return limit not in self.disabled


@dataclass
class Event:
    """One intervention of the safety layer."""

    kind: str
    """``nonfinite_observation``, ``nonfinite_action``, ``estop``, ``estop_released``, ``stale``,
    ``fresh``, ``workspace``, ``max_step``, ``max_velocity``, ``dry_run``, ``disabled``."""
    detail: str
    time: float = field(default_factory=time.time)

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, "detail": self.detail, "time": self.time})


class SafetyFilter:
    """Checks and clamps end-effector targets; keeps the e-stop and watchdog state and the event log."""

    def __init__(self, config: SafetyConfig, low: np.ndarray, high: np.ndarray) -> None:
        low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
        if low.shape != (3,) or high.shape != (3,) or not (low < high).all():
            raise ValueError(f"robot.workspace: need low < high, 3 numbers each; got {low} and {high}")
        self.config, self.low, self.high = config, low, high
        self.events: list[Event] = []
        self.estopped = False
        self.stale = False
        self._last_sent: float | None = None
        for name in config.disabled:
            self.record(
                "disabled", f"safety limit {name!r} is switched off (safety.disabled)", logging.WARNING
            )

    def record(self, kind: str, detail: str, level: int = logging.INFO) -> Event:
        event = Event(kind, detail)
        self.events.append(event)
        log.log(level, "safety %s: %s", kind, detail)
        return event

    def counts(self) -> dict[str, int]:
        return dict(Counter(event.kind for event in self.events))

    # -- state --------------------------------------------------------------------------------------------
    def set_estop(self, engaged: bool) -> None:
        if engaged and not self.estopped:
            self.record("estop", "e-stop engaged: no commands until it is released", logging.WARNING)
        elif not engaged and self.estopped:
            self.record("estop_released", "e-stop released")
        self.estopped = engaged

    def check_fresh(self, ages: dict[str, float]) -> bool:
        """Whether every input is younger than ``stale_after_s`` (seconds since arrival, inf if never)."""
        if not self.config.enabled("watchdog"):
            return True
        old = {k: a for k, a in ages.items() if a > self.config.stale_after_s}
        if old and not self.stale:
            detail = ", ".join(
                f"{k} {'never received' if a == np.inf else f'{a:.2f} s old'}" for k, a in old.items()
            )
            self.record(
                "stale",
                f"stale observation ({detail} > {self.config.stale_after_s} s): holding",
                logging.WARNING,
            )
        elif not old and self.stale:
            self.record("fresh", "observations fresh again: resuming")
        self.stale = bool(old)
        return not old

    def check_observation(self, obs: dict[str, np.ndarray]) -> bool:
        bad = [k for k, v in obs.items() if v.dtype.kind == "f" and not np.isfinite(v).all()]
        if bad:
            self.record("nonfinite_observation", f"non-finite values in {bad}: holding", logging.WARNING)
        return not bad

    # -- the target ---------------------------------------------------------------------------------------
    def filter(
        self,
        pos: np.ndarray,
        rot: np.ndarray,
        gripper: float,
        eef_pos: np.ndarray,
        eef_rot: np.ndarray,
        stamp: float,
    ) -> tuple[np.ndarray, np.ndarray, float] | None:
        """The target to send for a policy target (world position, rotation matrix, gripper), or None.

        ``eef_pos``, ``eef_rot``: the measured end-effector pose the step limits are relative to;
        ``stamp``: the time of that measurement (seconds, the sensor's clock).
        """
        if not (np.isfinite(pos).all() and np.isfinite(rot).all() and np.isfinite(gripper)):
            self.record(
                "nonfinite_action", "the policy's action is not finite: nothing sent", logging.WARNING
            )
            return None
        if self.estopped:
            return None
        cfg = self.config
        pos, gripper = np.asarray(pos, dtype=np.float64).copy(), float(np.clip(gripper, -1.0, 1.0))
        if cfg.enabled("workspace"):
            clamped = np.clip(pos, self.low, self.high)
            if not np.allclose(clamped, pos):
                self.record(
                    "workspace",
                    f"target {np.round(pos, 3).tolist()} clamped to {np.round(clamped, 3).tolist()}",
                )
            pos = clamped
        limit = cfg.max_step_m if cfg.enabled("max_step") else np.inf
        reason = "max_step"
        if cfg.enabled("max_velocity") and self._last_sent is not None:
            by_speed = cfg.max_speed_m_s * max(stamp - self._last_sent, 0.0)
            if by_speed < limit:
                limit, reason = by_speed, "max_velocity"
        step = pos - eef_pos
        distance = float(np.linalg.norm(step))
        if distance > limit:
            pos = eef_pos + step * (limit / distance)
            self.record(reason, f"target {distance:.3f} m away, moved {limit:.3f} m")
        if cfg.enabled("max_step"):
            relative = Rotation.from_matrix(rot @ eef_rot.T).as_rotvec()
            angle = float(np.linalg.norm(relative))
            if angle > cfg.max_step_rad:
                rot = Rotation.from_rotvec(relative * (cfg.max_step_rad / angle)).as_matrix() @ eef_rot
                self.record("max_step", f"target turns {angle:.3f} rad, turned {cfg.max_step_rad:.3f} rad")
        if cfg.enabled("workspace"):
            # the step limits pull a target towards the measured pose, which may lie outside the box (the
            # arm was moved there by hand): the box wins
            pos = np.clip(pos, self.low, self.high)
        if cfg.dry_run:
            self.record("dry_run", f"target {np.round(pos, 4).tolist()} gripper {gripper:+.2f} (not sent)")
            return None
        self._last_sent = stamp
        return pos, rot, gripper
