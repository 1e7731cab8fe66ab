"""Speed of the RL parts at the CPU size: updates per second of every agent preset, env steps per second.

Updates: each preset of ``configs/policy/`` of the family's methods (closed-loop: ``sac`` and ``dqn``;
open-loop: ``fcn``) at its default (CPU) size on a replay buffer of random transitions of the family's
64 x 64 observation, batch 64, one torch thread, interleaved in rounds so that load on the machine hits
every agent alike. Env steps: every task of the family with random actions (an open-loop step is a whole
pick or place primitive). Writes ``scripts/results/rl_bench.json`` (``rl_bench_open_loop.json``).

    python scripts/bench_rl.py [--rounds 3 --updates 10]
    python scripts/bench_rl.py --family open_loop --batch 32 --env-steps 100
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import torch
from omegaconf import OmegaConf

import equirobot_envs
from equirobot.cli import CONFIG_DIR
from equirobot.data.inputs import DataSpec
from equirobot.data.transitions import TransitionBuffer
from equirobot.policies.base import TrainStep
from equirobot.policies.registry import POLICIES, make_policy
from equirobot_envs.config import EnvConfig

RESULTS = Path(__file__).parent / "results"
FAMILIES = {
    # family: (methods, a task, its observation mode, its control mode)
    "closed_loop": (("sac", "dqn"), "block_picking", "gripper_heightmap", "closed_loop"),
    "open_loop": (("fcn",), "block_stacking_pick_place", "workspace_heightmap", "pick_place"),
}


def presets(methods: tuple[str, ...]) -> dict[str, dict]:
    out = {}
    for path in sorted((CONFIG_DIR / "policy").glob("*.yaml")):
        values = OmegaConf.to_container(OmegaConf.load(path))
        assert isinstance(values, dict)
        schema = values.pop("defaults")[0].removesuffix("_schema")
        if schema in POLICIES and schema in methods:
            out[path.stem] = {"type": schema, **values}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--updates", type=int, default=10)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--env-steps", type=int, default=300)
    parser.add_argument("--family", choices=list(FAMILIES), default="closed_loop")
    args = parser.parse_args()
    torch.set_num_threads(1)
    methods, task, obs_mode, control = FAMILIES[args.family]
    settings = EnvConfig(task=task)
    spec = DataSpec.from_features([obs_mode], control, settings, 0, [0.0, 0.0])
    rng = np.random.default_rng(0)
    dim = spec.action_dim
    buffer = TransitionBuffer(2000, {k: (tuple(v), "float32") for k, v in spec.shapes.items()}, dim)
    obs = {k: rng.uniform(0, 0.1, (2000, *v)).astype(np.float32) for k, v in spec.shapes.items()}
    buffer.add(obs, rng.uniform(-1, 1, (2000, dim)), rng.integers(0, 2, 2000), obs, np.zeros(2000))

    agents = {}
    for name, values in presets(methods).items():
        policy = make_policy(values, spec)
        optimizers = policy.make_optimizers(SimpleNamespace(lr=1e-3, weight_decay=0.0, betas=(0.9, 0.999)))
        step = TrainStep(policy, optimizers, 10.0, policy.optimized_parameters)
        params = sum(p.numel() for p in policy.parameters() if p.requires_grad)
        agents[name] = (policy.train(), step, params)
    seconds = {name: 0.0 for name in agents}
    for _ in range(args.rounds):
        for name, (policy, step, _) in agents.items():
            batches = [buffer.sample(args.batch, rng) for _ in range(args.updates + 1)]
            policy.update(batches[0], step, torch.Generator().manual_seed(0))  # warm-up
            tic = time.perf_counter()
            for i, batch in enumerate(batches[1:]):
                policy.update(batch, step, torch.Generator().manual_seed(i))
            seconds[name] += time.perf_counter() - tic
    updates = {
        name: {
            "updates_per_s": round(args.rounds * args.updates / seconds[name], 2),
            "parameters": agents[name][2],
        }
        for name in agents
    }

    env_rates = {}
    for spec_ in equirobot_envs.registry.FAMILY_SPECS[args.family]().values():
        env = gym.make(spec_.env_id)
        env.reset(seed=0)
        tic = time.perf_counter()
        for _ in range(args.env_steps):
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                env.reset()
        env_rates[spec_.config_name] = round(args.env_steps / (time.perf_counter() - tic), 1)
        env.close()
    result = {
        "batch": args.batch,
        "threads": 1,
        "heightmap_size": 64,
        "agents": updates,
        "env_steps_per_s": env_rates,
    }
    RESULTS.mkdir(exist_ok=True)
    name = "rl_bench.json" if args.family == "closed_loop" else f"rl_bench_{args.family}.json"
    (RESULTS / name).write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
