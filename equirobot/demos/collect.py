"""Collect demonstrations in parallel worker processes, keep the successes, write hdf5 and zarr.

Each attempted seed leaves one file in ``<out>.parts/``: the recorded episode (``seed_<s>.npz``) or a
failure marker (``seed_<s>.fail``), each written under a temporary name and renamed. An interrupted
collection therefore resumes where it stopped and loses no finished demo. The dataset keeps the first
``n_demos`` successful seeds in seed order (the same dataset however the workers were scheduled), and
is written as ``<out>.hdf5`` and ``<out>.zarr``, each complete or absent.

Faults. One collection writes an ``out`` at a time: ``<out>.lock`` is held (``flock``) for the whole run
and a second one is refused. The pair of outputs is committed from the parts, which are removed only
after both outputs are in place: a run killed at any stage leaves ``<out>.parts/`` and a rerun of the
same command completes the pair (any output already renamed into place is rebuilt from the parts,
which hold everything). Temporary files of killed runs (``.*.tmp-<pid>``) are removed on the next run.
Workers die with the process (see ``equirobot.evaluation.engine``).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from itertools import islice
from pathlib import Path

import numpy as np
from tqdm import tqdm

from equirobot.data.replay_buffer import ReplayBuffer
from equirobot.data.robomimic_hdf5 import Demo, write_hdf5
from equirobot.demos.agents import agent_factory
from equirobot.evaluation.engine import RolloutEngine
from equirobot.evaluation.episode import run_episode


@dataclass
class CollectionReport:
    """What a collection produced and what it took."""

    demos: int
    attempts: int
    seconds: float
    hdf5: Path
    zarr: Path

    @property
    def success_rate(self) -> float:
        return self.demos / max(self.attempts, 1)


def _attempt(env, agent, seed: int, video: str | None, parts: Path) -> tuple[int, bool]:
    """Run one seed in a rollout worker and leave its part file; returns (seed, success)."""
    episode = run_episode(env, agent, seed=seed, record=True)
    if episode.success:
        assert episode.trajectory is not None  # run_episode records one with record=True
        tmp = parts / f".seed_{seed:06d}.tmp.npz"
        meta = np.array(json.dumps(episode.meta))
        np.savez_compressed(tmp, model_xml=np.array(episode.model_xml), ep_meta=meta, **episode.trajectory)
        os.replace(tmp, parts / f"seed_{seed:06d}.npz")
    else:
        (parts / f"seed_{seed:06d}.fail").touch()
    return seed, episode.success


def _done_seeds(parts: Path) -> tuple[list[int], list[int]]:
    """Seeds already attempted: (successes, failures)."""
    seed = lambda p: int(p.name.split("_")[1].split(".")[0])  # noqa: E731
    return sorted(seed(p) for p in parts.glob("seed_*.npz")), sorted(
        seed(p) for p in parts.glob("seed_*.fail")
    )


def _load_part(path: Path) -> Demo:
    with np.load(path) as part:
        arrays = {k: part[k] for k in part.files}
    obs = {k.removeprefix("obs/"): v for k, v in arrays.items() if k.startswith("obs/")}
    return Demo(
        obs=obs,
        actions=arrays["actions"],
        states=arrays["states"],
        rewards=arrays["rewards"],
        dones=arrays["dones"],
        actions_abs=arrays["actions_abs"],
        model_file=str(arrays["model_xml"]),
        ep_meta=str(arrays["ep_meta"]) if "ep_meta" in arrays else "{}",
    )


def collect(
    env_id: str,
    env_kwargs: dict,
    out: Path,
    n_demos: int,
    workers: int,
    seed: int = 0,
    max_attempts: int | None = None,
    agent: str = "expert",
    agent_kwargs: dict | None = None,
) -> CollectionReport:
    """Collect ``n_demos`` successful episodes of ``agent``; see the module docstring."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(out.with_suffix(".lock")):
        return _collect(env_id, env_kwargs, out, n_demos, workers, seed, max_attempts, agent, agent_kwargs)


@contextmanager
def _exclusive(lock: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock`` (released when the process dies), or refuse."""
    with open(lock, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            raise FileExistsError(
                f"{lock}: another collection (pid {f.read().strip() or '?'}) writes this out="
            ) from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _collect(
    env_id, env_kwargs, out, n_demos, workers, seed, max_attempts, agent, agent_kwargs
) -> CollectionReport:
    hdf5, zarr_path, parts = out.with_suffix(".hdf5"), out.with_suffix(".zarr"), out.with_suffix(".parts")
    for stale in [*out.parent.glob(f".{out.name}.*.tmp-*"), *parts.glob(".*.tmp*")]:  # killed runs' leftovers
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    if not parts.exists():
        for path in (hdf5, zarr_path):
            if path.exists():
                raise FileExistsError(f"{path} exists; remove it or choose another out=")
    parts.mkdir(parents=True, exist_ok=True)
    max_attempts = max_attempts or 3 * n_demos + 10
    successes, failures = _done_seeds(parts)
    attempted = set(successes) | set(failures)
    start = time.perf_counter()

    def pending_seeds() -> Iterator[int]:
        s = seed
        while True:
            if s not in attempted:
                yield s
            s += 1

    progress = tqdm(
        total=n_demos, initial=min(len(successes), n_demos), desc=f"collect {env_id}", unit="demo"
    )
    factory = agent_factory(agent, **(agent_kwargs or {}))
    budget = islice(pending_seeds(), max(0, max_attempts - len(attempted)))
    with RolloutEngine(env_id, env_kwargs, workers, agent_factory=factory) as engine:
        for s, ok in engine.map_episodes(
            budget if len(successes) < n_demos else [], job=partial(_attempt, parts=parts)
        ):
            attempted.add(s)
            (successes if ok else failures).append(s)
            progress.update(int(ok))
            progress.set_postfix(attempts=len(attempted), rate=f"{len(successes) / len(attempted):.0%}")
            if len(successes) >= n_demos:
                break  # episodes still running finish in their workers: their parts count for a resume
    progress.close()
    chosen = sorted(successes)[:n_demos]
    if len(chosen) < n_demos:
        raise RuntimeError(
            f"only {len(chosen)} successes in {len(attempted)} attempts (max_attempts="
            f"{max_attempts}); parts kept in {parts}, run again with a larger max_attempts"
        )
    env_args = {"env_name": env_id, "type": "equirobot", "env_kwargs": env_kwargs, "agent": agent}
    for path in (hdf5, zarr_path):  # renamed into place by a run killed before it removed the parts
        if path.exists():
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    write_hdf5(hdf5, (_load_part(parts / f"seed_{s:06d}.npz") for s in chosen), env_args)
    _write_zarr(zarr_path, (_load_part(parts / f"seed_{s:06d}.npz") for s in chosen))
    attempts = sum(1 for s in attempted if s <= chosen[-1])  # the attempts it took to reach n_demos
    shutil.rmtree(parts)
    return CollectionReport(len(chosen), attempts, time.perf_counter() - start, hdf5, zarr_path)


def _write_zarr(path: Path, demos: Iterator[Demo]) -> None:
    """The zarr replay buffer of the demos, built under a temporary name and renamed when complete."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    buffer = ReplayBuffer.create(tmp)
    for demo in demos:
        buffer.add_episode({k.removeprefix("obs/"): v for k, v in demo.arrays().items()})
    os.replace(tmp, path)
