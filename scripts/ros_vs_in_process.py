"""A checkpoint's success over ROS (roscore, `equirobot sim-robot` and `equirobot deploy` in lockstep)
against its in-process evaluation (`equirobot eval`) on the same seeds.

    python scripts/ros_vs_in_process.py runs/demo_stack_d1 --episodes 20

Writes scripts/results/ros_vs_in_process.json: success both ways, per seed over ROS, and the node's
stats (how often each safety limit bound). The robot config's limits are on unless overridden:

    python scripts/ros_vs_in_process.py runs/demo_stack_d1 --work runs/ros_loose \
        --out scripts/results/ros_vs_in_process_loose.json robot.safety.max_speed_m_s=5
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from omegaconf import OmegaConf

from equirobot.commands.deploy import checkpoint_folder

RESULTS = Path(__file__).parent / "results"
BIN = Path(sys.executable).parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run", type=Path, help="a run folder or checkpoint folder")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=100_000)
    parser.add_argument("--work", type=Path, default=Path("runs/ros_vs_in_process"))
    parser.add_argument("--out", type=Path, default=RESULTS / "ros_vs_in_process.json")
    parser.add_argument("overrides", nargs="*", help="deploy overrides, e.g. robot.safety.max_speed_m_s=2")
    args = parser.parse_intermixed_args()
    checkpoint = checkpoint_folder(str(args.run))
    config = OmegaConf.to_container(OmegaConf.load(checkpoint / "config.yaml"))
    assert isinstance(config, dict)
    args.work.mkdir(parents=True, exist_ok=True)
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "ROS_MASTER_URI": f"http://localhost:{port}", "ROS_HOSTNAME": "localhost"}
    env["OMP_NUM_THREADS"] = "1"
    core = subprocess.Popen(["roscore", "-p", str(port)], env=env, stdout=subprocess.DEVNULL)
    time.sleep(5)
    modes = ",".join(config["spec"]["modes"])
    sizes = [f"{k}={v}" for k, v in config["env"].items() if k in ("image_size", "n_points", "voxel_size")]
    started = time.time()
    procs: list[subprocess.Popen] = []
    try:
        sim = subprocess.Popen(
            [str(BIN / "equirobot"), "sim-robot", f"task={config['task']}", f"obs=[{modes}]", *sizes,
             f"episodes={args.episodes}", f"seed={args.seed}", f"hydra.run.dir={args.work / 'sim'}"],
            env=env,
        )  # fmt: skip
        node = subprocess.Popen(
            [str(BIN / "equirobot"), "deploy", f"checkpoint={checkpoint}", "robot.synchronized=true",
             "robot.rate=1000", f"hydra.run.dir={args.work / 'node'}", *args.overrides],
            env=env,
        )  # fmt: skip
        procs += [sim, node]
        if sim.wait() != 0:
            sys.exit("sim-robot failed")
        node.send_signal(signal.SIGINT)
        node.wait(timeout=60)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        core.send_signal(signal.SIGINT)
        core.wait(timeout=30)
    ros_seconds = time.time() - started
    over_ros = json.loads((args.work / "sim" / "sim_robot_results.json").read_text())["episodes"]
    stats = json.loads((args.work / "node" / "deploy_stats.json").read_text())
    evaluation = args.work / "eval"
    subprocess.run(
        [str(BIN / "equirobot"), "eval", f"checkpoint={checkpoint}", f"episodes={args.episodes}", "workers=1",
         f"seed={args.seed}", "videos=0", f"hydra.run.dir={evaluation}"],
        check=True, env=env,
    )  # fmt: skip
    with open(next(evaluation.rglob("results.csv"))) as f:
        row = next(csv.DictReader(f))
    result = {
        "checkpoint": str(checkpoint),
        "deploy_overrides": args.overrides,
        "episodes": args.episodes,
        "over_ros": {"successes": sum(e["success"] for e in over_ros), "episodes": over_ros},
        "in_process": {"successes": int(row["successes"]), "success_rate": float(row["success_rate"])},
        "deploy_stats": stats,
        "ros_wall_seconds": ros_seconds,
    }
    args.out.write_text(json.dumps(result, indent=1))
    print(
        f"over ROS {result['over_ros']['successes']}/{args.episodes}, in process "
        f"{result['in_process']['successes']}/{args.episodes}; {args.out}"
    )


if __name__ == "__main__":
    main()
