"""Control tasks with a mirror symmetry and a tunable flip asymmetry (the relaxed-equivariance tasks).

Gymnasium's MuJoCo InvertedPendulum, InvertedDoublePendulum and Reacher are, up to two small built-in
asymmetries, symmetric under mirrors: mirroring the state and negating the torques mirrors what happens
next. Real robots are symmetric only approximately (a worn joint answers positive torque more strongly
than negative), so each task here has an ``asymmetry`` delta: its asymmetric actuator applies

    (1 + delta) u  for a command u > 0,    (1 - delta) u  for u < 0,

and delta = 0 is exactly symmetric (the stock models' asymmetries are removed, see each task). The
agent's command is clipped to the stock control range first; the actuator's own range is widened by
(1 + |delta|) so that the gain is never cut by it.

The symmetry is data (:class:`Reflections`, ``env.unwrapped.reflections``): the group (C2: one mirror;
D2: two mirrors and their product, the half turn) and, for each generating mirror, the sign vector by
which it acts on the observation and on the action. ``env.unwrapped.mirror_state(k)`` mirrors the
simulator's state by generator k, which is how the tests show the symmetry: at delta = 0, for every
state s and action a, ``step(mirror(s), signs_a * a)`` observes ``signs_s * step(s, a)``.

A task is a subclass of its Gymnasium env and :class:`FlipControl` in ``equirobot_envs.tasks.<name>``,
with a ``VARIANTS`` entry for the registry. Its Gymnasium id (``equirobot/InvertedPendulum-v0``, made by
:func:`make_env`) observes ``{"joint_state": the stock observation}`` (observation mode ``joint_state``),
takes commands in [-1, 1] scaled to the stock control range (control mode ``torque``), and reports
``info["is_success"]`` at the end of an episode by the task's own test (:meth:`FlipControl.succeeded`).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

GROUPS = ("C2", "D2")


@dataclass(frozen=True)
class Reflections:
    """A task's mirror symmetry: the group and how its generating mirrors act (sign vectors)."""

    group: str
    """C2 (one generator) or D2 (two generators; their product is the third non-identity element)."""
    state: tuple[tuple[float, ...], ...]
    """Per generator, the signs of the observation's components under that mirror."""
    action: tuple[tuple[float, ...], ...]
    """Per generator, the signs of the action's components under that mirror."""

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ValueError(f"group {self.group!r}; valid: {list(GROUPS)}")
        generators = 1 if self.group == "C2" else 2
        if len(self.state) != generators or len(self.action) != generators:
            raise ValueError(f"{self.group} has {generators} generator(s): one sign vector each")
        for signs in (*self.state, *self.action):
            if not set(signs) <= {-1.0, 1.0}:
                raise ValueError(f"sign vectors hold +1 and -1 only, got {signs}")

    @property
    def generators(self) -> int:
        return len(self.state)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (a policy's data spec stores it)."""
        return {
            "group": self.group,
            "state": [list(s) for s in self.state],
            "action": [list(a) for a in self.action],
        }

    def elements(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Every group element as (observation signs, action signs), the identity first."""
        state, action = np.asarray(self.state), np.asarray(self.action)
        out = [(np.ones(state.shape[1]), np.ones(action.shape[1]))]
        out += [(state[k], action[k]) for k in range(len(state))]
        if self.group == "D2":
            out.append((state[0] * state[1], action[0] * action[1]))
        return out


def asymmetric_gain(command: np.ndarray, delta: float) -> np.ndarray:
    """What the asymmetric actuator applies: (1 + delta) u for u > 0, (1 - delta) u otherwise."""
    command = np.asarray(command, dtype=np.float64)
    return np.where(command > 0, (1 + delta) * command, (1 - delta) * command)


def patched_model(stock: Path, replacements: dict[str, str]) -> str:
    """The stock MJCF with each ``old -> new`` text replacement made, written to a temporary file.

    Each ``old`` must occur exactly once, so a changed stock model fails loudly instead of silently
    keeping an asymmetry. The caller loads the returned path and removes it (``FlipControl.__init__``).
    """
    text = stock.read_text()
    for old, new in replacements.items():
        if text.count(old) != 1:
            raise RuntimeError(f"{stock}: expected {old!r} exactly once, found it {text.count(old)} times")
        text = text.replace(old, new)
    handle, path = tempfile.mkstemp(suffix=".xml", prefix=f"{stock.stem}_")
    with os.fdopen(handle, "w") as f:
        f.write(text)
    return path


class FlipControl:
    """Mixin for a Gymnasium MuJoCo env: the asymmetric actuator, the reflections and mirrored states.

    A task class lists it before its Gymnasium env class and sets ``reflections``, the stock model and
    its ``patches`` (if any) and ``asymmetric_actuator``, and overrides :meth:`mirror_qpos` and
    :meth:`mirror_qvel` where a mirror does more than negate every joint.
    """

    reflections: Reflections
    stock_model: Path | None = None
    """The Gymnasium env's model file, loaded with ``patches`` made (``None``: the stock model as is)."""
    patches: dict[str, str] = {}
    """``old -> new`` replacements in the stock model (:func:`patched_model`) that remove its asymmetries."""
    asymmetric_actuator: int = 0
    """The actuator whose gain depends on the command's sign."""
    model: Any  # annotations only: the Gymnasium env class provides these
    data: Any
    action_space: Any
    observation_space: Any

    def __init__(self, asymmetry: float = 0.0, **kwargs: Any):
        if not -1 < asymmetry < 1:
            raise ValueError(f"asymmetry must be in (-1, 1), got {asymmetry}")
        if self.stock_model is not None:
            path = patched_model(self.stock_model, self.patches)
            try:
                super().__init__(xml_file=path, **kwargs)  # type: ignore[call-arg]
            finally:
                Path(path).unlink()
        else:
            super().__init__(**kwargs)
        self.asymmetry = float(asymmetry)
        self.command_low = self.action_space.low.copy()
        self.command_high = self.action_space.high.copy()
        self.model.actuator_ctrlrange[self.asymmetric_actuator] *= 1 + abs(self.asymmetry)

    def step(self, action: np.ndarray):
        return super().step(self.applied(action))  # type: ignore[misc]

    @property
    def state_reflection(self) -> tuple[tuple[float, ...], ...]:
        """Per generating mirror, the signs by which it acts on the observation."""
        return self.reflections.state

    @property
    def action_reflection(self) -> tuple[tuple[float, ...], ...]:
        """Per generating mirror, the signs by which it acts on the motor commands."""
        return self.reflections.action

    def succeeded(self, obs: np.ndarray) -> bool:
        """The task's success test at the end of an episode that was not ended early (default: it lasted).

        The pendulums succeed by staying up for the whole horizon; Reacher overrides it.
        """
        return True

    def applied(self, action: np.ndarray) -> np.ndarray:
        """The controls the actuators receive for an agent's command."""
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self.command_low.shape:
            raise ValueError(f"action has shape {action.shape}, expected {self.command_low.shape}")
        if not np.isfinite(action).all():
            raise ValueError(f"action {action} is not finite")
        ctrl = np.clip(action, self.command_low, self.command_high)
        i = self.asymmetric_actuator
        ctrl[i] = asymmetric_gain(ctrl[i], self.asymmetry)
        return ctrl

    def mirror_state(self, generator: int) -> None:
        """Mirror the simulator's state (positions and velocities) by a generating mirror."""
        qpos = self.mirror_qpos(self.data.qpos.copy(), generator)
        qvel = self.mirror_qvel(self.data.qvel.copy(), generator)
        self.set_state(qpos, qvel)  # type: ignore[attr-defined]

    def mirror_qpos(self, qpos: np.ndarray, generator: int) -> np.ndarray:
        """Joint positions after mirroring the scene by generator ``generator`` (default: all negated)."""
        return -qpos

    def mirror_qvel(self, qvel: np.ndarray, generator: int) -> np.ndarray:
        """Joint velocities after the mirror (default: all negated).

        Every joint of the pendulums is a hinge about, or a slide along, an axis that the mirror
        reverses.
        """
        return -qvel


class FlipControlEnv(gym.Wrapper):
    """A :class:`FlipControl` task as the framework's envs are: dict observations, commands in [-1, 1].

    ``info["is_success"]`` is true on the step that reaches ``horizon`` without the task ending the
    episode early, if the task's :meth:`FlipControl.succeeded` holds there. A non-finite command raises
    (``nonfinite_action="raise"``) or is replaced by zero torque (``"hold"``, flagged in
    ``info["nonfinite_action"]``).
    """

    def __init__(self, env: FlipControl, horizon: int, nonfinite_action: str = "raise"):
        super().__init__(env)  # type: ignore[arg-type]
        low, high = env.command_low, env.command_high
        if not np.allclose(low, -high):
            raise ValueError(f"{type(env).__name__}: stock control range [{low}, {high}] is not symmetric")
        self.scale, self.horizon, self.nonfinite_action = high, horizon, nonfinite_action
        self.observation_space = gym.spaces.Dict(
            {"joint_state": gym.spaces.Box(-np.inf, np.inf, env.observation_space.shape, np.float32)}
        )
        self.action_space = gym.spaces.Box(-1.0, 1.0, low.shape, np.float32)
        self.steps = 0

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self.steps = 0
        return {"joint_state": obs.astype(np.float32)}, {**info, "is_success": False}

    def step(self, action):
        action = np.asarray(action, dtype=np.float64)
        info: dict[str, Any] = {}
        if not np.isfinite(action).all():
            if self.nonfinite_action == "raise":
                raise ValueError(f"action {action} is not finite (nonfinite_action=raise)")
            action, info["nonfinite_action"] = np.zeros_like(action), True
        obs, reward, terminated, truncated, stock_info = self.env.step(np.clip(action, -1, 1) * self.scale)
        self.steps += 1
        task: FlipControl = self.env.unwrapped  # type: ignore[assignment]
        success = not terminated and self.steps >= self.horizon and task.succeeded(obs)
        info |= {**stock_info, "is_success": bool(success)}
        return {"joint_state": obs.astype(np.float32)}, float(reward), terminated, truncated, info


def make_env(
    task: str,
    asymmetry: float = 0.0,
    nonfinite_action: str = "raise",
    render_mode: str | None = None,
    render_size: int | None = None,
    render_camera: str | None = None,
    **settings: Any,
) -> FlipControlEnv:
    """The Gymnasium entry point of a control task (``gym.make("equirobot/Reacher-v0", asymmetry=0.3)``).

    ``settings`` are the other ``EnvConfig`` fields (sizes of image modes), which a control task does
    not use; ``EnvConfig`` has already checked ``obs`` and ``control``.
    """
    from equirobot_envs.registry import get_task

    spec = get_task(task)
    size = {"width": render_size, "height": render_size} if render_size else {}
    camera = {"camera_name": render_camera} if render_camera else {}
    env = spec.scene_class(asymmetry=asymmetry, render_mode=render_mode, **size, **camera)
    return FlipControlEnv(env, spec.horizon, nonfinite_action)


def no_expert(env: Any) -> Any:
    """A control task's ``TaskSpec.expert``: there is none (its agents learn by trial and error)."""
    raise ValueError(
        "the control tasks have no scripted expert: train them with policy.demos=0 (the default of sac)"
    )


def control_variants(task: type[FlipControl], horizon: int, description: str) -> tuple:
    """A control task module's ``VARIANTS``: one registry entry, named after the class, no expert."""
    from equirobot_envs.geometry import Workspace
    from equirobot_envs.registry import TaskSpec

    return (
        TaskSpec(
            name=task.__name__,
            variant="",
            scene_class=task,
            horizon=horizon,
            objects={},
            expert=no_expert,
            workspace=Workspace((0.0, 0.0, 0.0)),  # no scene: the mirrors act on the state itself
            description=description,
        ),
    )
