"""An outside check of the RL loop: stable-baselines3's SAC on the same env, observation and CNN as ``sac``.

The env is ``equirobot/<Task>-v0`` seen exactly as equirobot's ``sac`` sees it (the gripper heightmap
x10, average-pooled by 2, with the invariant scalars, the finger joints and the holding flag, tiled as
more channels); the features extractor has the ``sac`` preset's layout (conv 16-32-64, each ReLU + 2x
max pool, 1x1 conv to 64, global max pool); the hyperparameters are the ``sac`` preset's (Adam 1e-3,
batch 64, gamma 0.99, tau 0.01, initial alpha 0.01 tuned to entropy -5, 2 envs (``--envs``), one update
per vector step, 200 random steps per env, gradient clipping none in SB3 vs 1.0 in equirobot), with the
same 20 expert episodes in the buffer (``policy.demos=20`` of ``scripts/rl_curves.py``). It evaluates
the deterministic policy on the held-out seeds equirobot's periodic evaluation uses (200000 + i) and
appends rows to ``scripts/results/rl_sb3.csv`` as agent ``sb3_sac`` (``scripts/plot_rl_curves.py`` plots
them beside the ``sac`` runs).

    .venv/bin/pip install -e ".[sb3]"     # stable-baselines3 2.9.2
    python scripts/sb3_sac_check.py --seeds 0 --env-steps 3000
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3 import SAC
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.vec_env import DummyVecEnv
from torch import nn

import equirobot_envs  # noqa: F401  (registers the tasks)
from equirobot_envs.experts import ScriptedExpert

RESULTS = Path(__file__).parent / "results"
PERIODIC_EVAL_SEED = 200_000


class SacView(gym.ObservationWrapper):
    """The closed-loop observation as equirobot's sac sees it: (1 + 3, H/2, W/2) float32."""

    def __init__(self, env: gym.Env, pool: int = 2):
        super().__init__(env)
        self.pool = pool
        h = env.observation_space["gripper_heightmap"].shape[0] // pool
        self.observation_space = spaces.Box(-np.inf, np.inf, (4, h, h), np.float32)

    def observation(self, obs):
        grid = torch.from_numpy(obs["gripper_heightmap"])[None, None] * 10.0
        grid = F.avg_pool2d(grid, self.pool)[0]
        scalars = np.concatenate([obs["robot0_gripper_qpos"], obs["holding"]]).astype(np.float32)
        tiled = np.broadcast_to(scalars[:, None, None], (3, *grid.shape[-2:]))
        return np.concatenate([grid.numpy(), tiled]).astype(np.float32)


class SacCNN(BaseFeaturesExtractor):
    """The C1 encoder of equirobot's sac preset, written in plain torch."""

    def __init__(self, observation_space: spaces.Box, channels=(16, 32, 64), features: int = 64):
        super().__init__(observation_space, features)
        layers, c = [], observation_space.shape[0]
        for w in channels:
            layers += [nn.Conv2d(c, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            c = w
        layers += [nn.Conv2d(c, features, 1), nn.ReLU(), nn.AdaptiveMaxPool2d(1), nn.Flatten()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def make_env(env_id: str, heightmap_size: int):
    return lambda: SacView(gym.make(env_id, heightmap_size=heightmap_size))


def add_demonstrations(model: SAC, env_id: str, heightmap_size: int, n: int, seed: int, envs: int) -> int:
    """``n`` successful expert episodes into the replay buffer (the seeds OnlineSource uses)."""
    env = SacView(gym.make(env_id, heightmap_size=heightmap_size))
    kept, k, transitions = 0, 0, []
    while kept < n:
        obs, _ = env.reset(seed=5_000_000 + seed * 100_000 + k)
        k += 1
        expert = ScriptedExpert(env)
        expert.reset()
        episode = []
        while True:
            action = expert.act(None)
            next_obs, reward, terminated, truncated, info = env.step(action)
            episode.append((obs, next_obs, action, reward, terminated, info))
            obs = next_obs
            if terminated or truncated:
                break
        if info["is_success"]:
            transitions += episode
            kept += 1
    env.close()
    # SB3's buffer takes one transition per env per call; the last one fills up an incomplete call
    transitions += transitions[-1:] * (-len(transitions) % envs)
    for group in zip(*(transitions[k::envs] for k in range(envs)), strict=True):
        o, o2, a, r, d, i = (list(x) for x in zip(*group, strict=True))
        model.replay_buffer.add(np.stack(o), np.stack(o2), np.stack(a), np.array(r), np.array(d), i)
    return kept


def evaluate(model: SAC, env_id: str, heightmap_size: int, episodes: int) -> float:
    env = SacView(gym.make(env_id, heightmap_size=heightmap_size))
    wins = 0
    for i in range(episodes):
        obs, _ = env.reset(seed=PERIODIC_EVAL_SEED + i)
        while True:
            action, _ = model.predict(obs, deterministic=True)
            obs, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                wins += bool(info["is_success"])
                break
    env.close()
    return wins / episodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="BlockPicking")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--env-steps", type=int, default=3000)
    parser.add_argument("--eval-every", type=int, default=500, help="env steps")
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--demos", type=int, default=20)
    parser.add_argument("--heightmap-size", type=int, default=64)
    parser.add_argument("--envs", type=int, default=2, help="parallel envs; one update per vector step")
    parser.add_argument("--out", type=Path, default=RESULTS / "rl_sb3.csv")
    args = parser.parse_args()
    torch.set_num_threads(1)
    env_id = f"equirobot/{args.task}-v0"
    task = "".join(f"_{c.lower()}" if c.isupper() else c for c in args.task).lstrip("_")
    for seed in args.seeds:
        venv = DummyVecEnv([make_env(env_id, args.heightmap_size) for _ in range(args.envs)])
        venv.seed(10_000_000 + seed * 1_000_000)
        model = SAC(
            "CnnPolicy", venv, learning_rate=1e-3, buffer_size=100_000, batch_size=64, gamma=0.99, tau=0.01,
            ent_coef="auto_0.01", target_entropy=-5.0, learning_starts=200 * args.envs, train_freq=1,
            gradient_steps=1,
            policy_kwargs={"features_extractor_class": SacCNN, "normalize_images": False,
                           "net_arch": [64, 64]},
            seed=seed, device="cpu",
        )  # fmt: skip
        add_demonstrations(model, env_id, args.heightmap_size, args.demos, seed, args.envs)
        rows, start = [], time.perf_counter()
        for done in range(args.eval_every, args.env_steps + 1, args.eval_every):
            model.learn(total_timesteps=args.eval_every, reset_num_timesteps=False)
            rate = evaluate(model, env_id, args.heightmap_size, args.eval_episodes)
            seconds = round(time.perf_counter() - start, 1)
            rows.append({"task": task, "agent": "sb3_sac", "seed": seed, "step": done // args.envs,
                         "env_steps": done, "success_rate": rate, "train_seconds": seconds})  # fmt: skip
            print(rows[-1], flush=True)
        new = not args.out.exists()
        with open(args.out, "a", newline="") as f:
            writer = csv.DictWriter(f, list(rows[0]))
            if new:
                writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    main()
