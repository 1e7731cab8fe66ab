"""``equirobot deploy`` (a checkpoint driving a robot over ROS) and ``equirobot sim-robot`` (the twin).

    roscore &
    equirobot sim-robot task=stack_d1 episodes=10 &
    equirobot deploy checkpoint=runs/<run> robot=sim_panda transport=ros1

``deploy`` runs until interrupted (or ``duration`` seconds) and writes ``deploy_stats.json`` (commands,
achieved rate, observation-to-command latency, safety events) into its run folder; ``sim-robot`` runs
``episodes`` episodes and writes ``sim_robot_results.json`` (per seed: success, steps) and prints the
success rate.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig

from equirobot.config import BenchDeployConfig, DeployConfig, SimRobotConfig
from equirobot.deploy.bridge import make_bridge
from equirobot.deploy.node import DeployNode, write_json
from equirobot.policies.base import Policy
from equirobot.policies.checkpoint import load_policy, read_config

log = logging.getLogger("equirobot.deploy")


def checkpoint_folder(path: str) -> Path:
    """A checkpoint folder, or a run folder's ``checkpoints/latest``."""
    folder = Path(path)
    return folder / "checkpoints" / "latest" if (folder / "checkpoints").is_dir() else folder


def load(cfg: DeployConfig | BenchDeployConfig) -> tuple[Policy, dict]:
    """The policy of ``cfg.checkpoint`` (a checkpoint or run folder) and its config, on ``cfg.threads``."""
    torch.set_num_threads(cfg.threads)
    folder = checkpoint_folder(cfg.checkpoint)
    overrides = {"inference_steps": cfg.inference_steps} if cfg.inference_steps else None
    return load_policy(folder, overrides=overrides), read_config(folder)


def run(cfg: DeployConfig) -> None:
    """``equirobot deploy``: serve the checkpoint until interrupted, then write the stats."""
    policy, config = load(cfg)
    bridge = make_bridge(cfg.transport, "equirobot_deploy", cfg.host, cfg.port)
    node = DeployNode(policy, config, cfg.robot, bridge, dry_run=cfg.dry_run or None)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: node.stop())
    out = Path(HydraConfig.get().runtime.output_dir)
    log.info(
        "deploying %s on %s over %s at %g Hz", cfg.checkpoint, cfg.robot.name, cfg.transport, cfg.robot.rate
    )
    try:
        node.spin(cfg.duration)
    finally:
        summary = node.summary()
        write_json(out / "deploy_stats.json", summary)
        bridge.close()
    print(
        f"deploy: {summary['commands']} commands in {summary['episodes']} episodes, "
        f"{summary['achieved_rate_hz']:.1f} Hz achieved (configured {cfg.robot.rate:g}), latency median "
        f"{summary['latency_ms_median']:.1f} ms, p95 {summary['latency_ms_p95']:.1f} ms; "
        f"safety events {summary['safety_events'] or 'none'}; {out / 'deploy_stats.json'}"
    )


def sim_robot(cfg: SimRobotConfig) -> None:
    """``equirobot sim-robot``: run the episodes on ROS, then write their results."""
    from equirobot.deploy.sim_robot import SimRobot

    bridge = make_bridge(cfg.transport, "equirobot_sim_robot", cfg.host, cfg.port)
    robot = SimRobot(cfg, cfg.robot, bridge, max_steps=cfg.max_steps, lockstep=cfg.lockstep)
    out = Path(HydraConfig.get().runtime.output_dir)
    results = []
    try:
        for i in range(cfg.episodes):
            results.append(robot.episode(cfg.seed + i, cfg.command_timeout, cfg.record_actions))
            write_json(out / "sim_robot_results.json", {"task": cfg.task, "episodes": results})
    except KeyboardInterrupt:  # Ctrl-C or SIGINT: the finished episodes are written
        log.info("sim-robot interrupted after %d episodes", len(results))
    finally:
        robot.close()
        bridge.close()
    successes = sum(r["success"] for r in results)
    print(f"sim-robot {cfg.task}: {successes}/{len(results)} successes; {out / 'sim_robot_results.json'}")


def _master_online() -> bool:
    import rosgraph

    return bool(rosgraph.is_master_online())


def bench(cfg: BenchDeployConfig) -> None:
    """``equirobot bench deploy``: a real-time run against the simulated arm; latency and rate."""
    policy, config = load(cfg)
    out = Path(HydraConfig.get().runtime.output_dir)
    started: list[subprocess.Popen] = []
    try:
        from equirobot.deploy.bridge import import_rospy

        import_rospy()  # a clear error if rospy is missing
        if not _master_online():
            with socket.socket() as s:
                s.bind(("localhost", 0))
                port = s.getsockname()[1]
            os.environ["ROS_MASTER_URI"] = f"http://localhost:{port}"
            started.append(
                subprocess.Popen(
                    ["roscore", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
            )
            deadline = time.monotonic() + 30
            while not _master_online():
                if time.monotonic() > deadline:
                    raise RuntimeError("roscore did not start within 30 s")
                time.sleep(0.3)
        env = config.get("env", {})
        settings = [
            f"{k}={v}"
            for k, v in env.items()
            if k in ("image_size", "n_points", "voxel_size", "point_cloud_camera_size")
        ]
        obs = ",".join(config["spec"]["modes"])
        sim_log = open(out / "sim_robot.log", "w")  # noqa: SIM115 (closed with the process)
        started.append(
            subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "equirobot"),
                    "sim-robot",
                    f"task={config['task']}",
                    f"obs=[{obs}]",
                    *settings,
                    "episodes=1000",
                    "lockstep=false",
                    f"hydra.run.dir={out / 'sim'}",
                ],
                stdout=sim_log,
                stderr=sim_log,
                env={**os.environ, "OMP_NUM_THREADS": "1"},
            )  # fmt: skip
        )
        bridge = make_bridge("ros1", "equirobot_bench_deploy")
        node = DeployNode(policy, config, cfg.robot, bridge)
        if not node.wait_for_inputs(300):
            raise RuntimeError(
                f"bench deploy: the simulated arm sent nothing within 300 s ({out / 'sim_robot.log'})"
            )
        node.spin(cfg.duration)
        folder = str(checkpoint_folder(cfg.checkpoint))
        summary = {"checkpoint": folder, "duration_s": cfg.duration, **node.summary()}
        write_json(out / "bench_deploy.json", summary)
        bridge.close()
    finally:
        for proc in reversed(started):
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    print(
        f"bench deploy: {summary['commands']} commands in {cfg.duration:g} s, achieved "
        f"{summary['achieved_rate_hz']:.1f} Hz of {cfg.robot.rate:g}; observation-to-command latency median "
        f"{summary['latency_ms_median']:.1f} ms, p95 {summary['latency_ms_p95']:.1f} ms; policy median "
        f"{summary['policy_ms_median']:.1f} ms; {out / 'bench_deploy.json'}"
    )
