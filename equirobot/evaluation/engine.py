"""The rollout engine: many episodes in spawned worker processes, one environment each.

Every command that runs episodes (``collect``, ``generate``, ``eval``, ``rollout``, ``bench experts``,
the trainer's periodic evaluation) runs them here. There are three ways to act:

* :meth:`RolloutEngine.map_episodes`: an agent that needs the environment itself (a scripted expert,
  MimicGen generation, which read privileged state) is built inside each worker and runs whole
  episodes there; seeds go to whichever worker is free, results come back as they finish;
* :meth:`RolloutEngine.step_envs` (with :meth:`~RolloutEngine.reset_env`): the caller steps every
  worker's env once with a batch of actions and gets each :class:`Step` back (the collector of
  reinforcement learning, which stores transitions, works this way);
* :meth:`RolloutEngine.run_policy`: a learned policy stays in this process and acts for every worker at
  once. Each step the observations of all workers are stacked and ``policy.select_action`` is called
  once, so inference is batched across environments (as the Equivariant Diffusion Policy's runner does),
  while the workers step their physics in parallel.

Workers are spawned (forked MuJoCo GL contexts crash), use one torch thread, and die with this process
(``PR_SET_PDEATHSIG``): a ``kill -9`` of the command leaves no worker behind. An exception in a worker
is raised here as a :class:`WorkerError` carrying the worker's traceback.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import signal
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from equirobot.evaluation.episode import Agent, Episode, render_frame, run_episode, write_video


class WorkerError(RuntimeError):
    """An exception raised inside a rollout worker; the message holds its traceback."""


class ActingPolicy(Protocol):
    """What :meth:`RolloutEngine.run_policy` needs of a policy (``equirobot.policies.base.Policy``)."""

    def reset(self, env_ids: Sequence[int] | None = None, seeds: Sequence[int] | None = None) -> None: ...

    def select_action(self, obs: dict[str, np.ndarray]) -> np.ndarray: ...


@dataclass
class EpisodeResult:
    """Outcome of one episode of :meth:`RolloutEngine.run_policy`."""

    seed: int
    success: bool
    steps: int
    video: str | None = None
    episode_return: float = 0.0
    """The sum of the episode's rewards."""


@dataclass
class Step:
    """What one worker's env returned for one action (the observation is the new one, never a reset's)."""

    obs: dict[str, np.ndarray]
    reward: float
    terminated: bool
    truncated: bool
    success: bool

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated


def die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies (a no-op elsewhere)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1


def plain_episode(env, agent: Agent, seed: int, video: str | None) -> tuple[int, bool, int]:
    """The default job of :meth:`RolloutEngine.map_episodes`: (seed, success, steps)."""
    episode: Episode = run_episode(env, agent, seed=seed, video_path=Path(video) if video else None)
    return seed, episode.success, episode.steps


def _worker(
    conn: Connection, env_id: str, env_kwargs: dict, render: dict, agent_factory, threads: int
) -> None:
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the parent, which then closes us
    try:
        import gymnasium as gym
        import torch

        import equirobot_envs  # noqa: F401  (registers the tasks in the spawned process)

        torch.set_num_threads(threads)
        env = gym.make(env_id, **render, **env_kwargs)
        agent = agent_factory(env) if agent_factory is not None else None
        conn.send(("ready", None))
    except Exception:
        conn.send(("error", traceback.format_exc()))
        return
    frames: list[np.ndarray] = []
    video: str | None = None
    while True:
        command, payload = conn.recv()
        try:
            if command == "close":
                env.close()
                return
            if command == "episode":  # a whole episode with the worker's own agent
                job, seed, video_path = payload
                conn.send(("ok", job(env, agent, seed, video_path)))
            elif command == "reset":
                seed, video = payload
                obs, _ = env.reset(seed=seed)
                frames = [render_frame(env)] if video else []
                conn.send(("ok", obs))
            elif command == "step":
                obs, reward, terminated, truncated, info = env.step(payload)
                if video:
                    frames.append(render_frame(env))
                if (terminated or truncated) and video:
                    write_video(Path(video), frames, fps=env.metadata.get("render_fps", 20))
                step = Step(obs, float(reward), bool(terminated), bool(truncated), bool(info["is_success"]))
                conn.send(("ok", step))
            else:
                raise ValueError(f"unknown worker command {command!r}")
        except Exception:
            conn.send(("error", traceback.format_exc()))


class RolloutEngine:
    """``workers`` spawned processes, each with ``gymnasium.make(env_id, **env_kwargs)``.

    Args:
        env_id: gymnasium id of the task.
        env_kwargs: its settings (``EnvConfig.env_kwargs()``).
        workers: number of worker processes.
        agent_factory: ``env -> agent`` (picklable) for :meth:`map_episodes`; ``None`` for policies.
        render_size: frame size when videos are recorded (``None``: no rendering).
        render_camera: the camera of the videos (empty: the task's default view).
        threads: torch threads per worker.
    """

    def __init__(
        self,
        env_id: str,
        env_kwargs: dict,
        workers: int,
        agent_factory: Callable[[Any], Agent] | None = None,
        render_size: int | None = None,
        render_camera: str = "",
        threads: int = 1,
    ):
        if workers < 1:
            raise ValueError(f"workers must be positive, got {workers}")
        render: dict[str, Any] = {"render_mode": "rgb_array", "render_size": render_size}
        if render_camera:  # else the task's own default view
            render["render_camera"] = render_camera
        context = multiprocessing.get_context("spawn")
        self._conns: list[Connection] = []
        self._procs = []
        for _ in range(workers):
            parent, child = context.Pipe()
            args = (child, env_id, env_kwargs, render if render_size else {}, agent_factory, threads)
            proc = context.Process(target=_worker, args=args, daemon=True)
            proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)
        for i in range(workers):
            self._receive(i)  # "ready", or the worker's start-up error

    @property
    def workers(self) -> int:
        return len(self._conns)

    def _receive(self, i: int) -> Any:
        try:
            status, payload = self._conns[i].recv()
        except EOFError as error:
            code = self._procs[i].exitcode
            raise WorkerError(f"rollout worker {i} died (exit code {code})") from error
        if status == "error":
            raise WorkerError(f"rollout worker {i} failed:\n{payload}")
        return payload

    def close(self) -> None:
        for conn in self._conns:
            try:
                conn.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
        for proc in self._procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
        self._conns, self._procs = [], []

    def __enter__(self) -> RolloutEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- agents that run inside the workers ------------------------------------------------------------
    def map_episodes(
        self, seeds: Iterable[int], job: Callable = plain_episode, videos: dict[int, str] | None = None
    ) -> Iterator[Any]:
        """``job(env, agent, seed, video)`` for each seed in the workers; yields results as they finish.

        ``seeds`` is read lazily, one seed per free worker, so it may be endless: stop iterating when
        enough results came back (episodes still running finish in their workers before they close).
        """
        pending = iter(seeds)
        busy: dict[int, int] = {}  # worker index -> the seed it is running
        videos, exhausted = videos or {}, False
        while busy or not exhausted:
            for i in range(self.workers):
                if i not in busy and not exhausted:
                    seed = next(pending, None)
                    if seed is None:
                        exhausted = True
                        break
                    self._conns[i].send(("episode", (job, seed, videos.get(seed))))
                    busy[i] = seed
            if not busy:
                return
            ready = wait([self._conns[i] for i in busy])
            for i in [i for i in busy if self._conns[i] in ready]:
                del busy[i]
                yield self._receive(i)

    # -- stepping the workers from this process --------------------------------------------------------
    def reset_env(self, i: int, seed: int, video: str | None = None) -> dict[str, np.ndarray]:
        """Reset worker ``i``'s env with ``seed`` (recording a video to ``video``); its first observation."""
        self._conns[i].send(("reset", (seed, video)))
        return self._receive(i)

    def step_envs(self, actions: np.ndarray, envs: Sequence[int] | None = None) -> dict[int, Step]:
        """Step the envs ``envs`` (default: all) with their rows of ``actions``, in parallel.

        An env that ends (terminated or truncated) stays ended until :meth:`reset_env`: the caller sees
        its last observation (what a replay buffer needs as the next observation).
        """
        envs = list(range(self.workers)) if envs is None else list(envs)
        for i in envs:
            self._conns[i].send(("step", actions[i]))
        return {i: self._receive(i) for i in envs}

    # -- a policy in this process, batched across the workers ------------------------------------------
    def run_policy(
        self,
        policy: ActingPolicy,
        seeds: Sequence[int],
        videos: dict[int, str] | None = None,
        on_episode: Callable[[EpisodeResult], None] | None = None,
        obs_noise: float = 0.0,
        noise_keys: Sequence[str] = (),
    ) -> list[EpisodeResult]:
        """Episodes of ``policy`` on ``seeds``, stepping every worker in lockstep (see the module docstring).

        Env i's row of the stacked observation is always row i: a worker whose seeds are used up keeps
        its last observation in the batch and its actions are dropped. With ``obs_noise`` the policy
        sees the observations ``noise_keys`` plus Gaussian noise of that standard deviation (raw units),
        drawn from a generator seeded by the episode's seed; the env itself is not disturbed.
        """
        videos, pending = videos or {}, list(seeds)
        n = min(self.workers, len(pending))
        seed_of: dict[int, int] = {}
        steps: dict[int, int] = {}
        success: dict[int, bool] = {}
        returns: dict[int, float] = {}
        noise: dict[int, np.random.Generator] = {}
        obs: list[dict[str, np.ndarray]] = [{} for _ in range(n)]
        results: list[EpisodeResult] = []
        policy.reset()

        def start(i: int) -> None:
            seed = pending.pop(0)
            seed_of[i], steps[i], success[i], returns[i] = seed, 0, False, 0.0
            noise[i] = np.random.default_rng([seed, 7])
            obs[i] = self.reset_env(i, seed, videos.get(seed))
            policy.reset([i], [seed])

        def seen(i: int) -> dict[str, np.ndarray]:
            if not obs_noise:
                return obs[i]
            noisy = {
                k: obs[i][k] + obs_noise * noise[i].standard_normal(np.shape(obs[i][k])) for k in noise_keys
            }
            return {**obs[i], **{k: v.astype(obs[i][k].dtype) for k, v in noisy.items()}}

        for i in range(n):
            start(i)
        running = set(range(n))
        while running:
            views = [seen(i) for i in range(n)]
            stacked = {k: np.stack([o[k] for o in views]) for k in views[0]}
            actions = policy.select_action(stacked)
            for i, step in self.step_envs(actions, sorted(running)).items():
                obs[i] = step.obs
                steps[i] += 1
                success[i] = success[i] or step.success
                returns[i] += step.reward
                if step.done:
                    result = EpisodeResult(
                        seed_of[i], success[i], steps[i], videos.get(seed_of[i]), returns[i]
                    )
                    results.append(result)
                    if on_episode is not None:
                        on_episode(result)
                    if pending:
                        start(i)
                    else:
                        running.discard(i)
        return sorted(results, key=lambda r: r.seed)
