"""Deployment over ROS: a real roscore, `equirobot sim-robot` and `equirobot deploy` as processes, ROS's
own command-line tools (rostopic) as the independent check, and the safety layer's faults."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from test_policy import train_config

from equirobot.demos.collect import collect
from equirobot.deploy import messages as m
from equirobot.deploy.robot import RobotConfig
from equirobot.deploy.safety import SafetyConfig, SafetyFilter
from equirobot.policies.checkpoint import load_policy
from equirobot.training.trainer import Trainer
from equirobot_envs.geometry import mat_to_quat, mat_to_rot6d, quat_to_mat, rot6d_to_mat

BIN = Path(sys.executable).parent
ROS_BIN = Path("/usr/bin")
OBS = ["state", "point_cloud"]
SIZES = {"n_points": 64, "point_cloud_camera_size": 64}
STEPS = 25
"""Episode length of the loop tests."""
LOOSE = [
    "robot.safety.max_step_m=5", "robot.safety.max_step_rad=4", "robot.safety.max_speed_m_s=200",
    "robot.workspace_low=[-3,-3,-1]", "robot.workspace_high=[3,3,4]",
]  # fmt: skip
"""Limits that an (almost untrained) tiny policy's targets stay within, so that ROS and in-process runs
agree; the limits themselves are tested below."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ros_env():
    """A real roscore on a free port; the environment that points ROS clients at it."""
    if not (ROS_BIN / "roscore").exists():
        pytest.fail("roscore is not installed: `make setup` installs Debian's ros-core")
    port = free_port()
    env = {**os.environ, "ROS_MASTER_URI": f"http://localhost:{port}", "ROS_HOSTNAME": "localhost"}
    env.pop("ROS_IP", None)
    core = subprocess.Popen(
        [str(ROS_BIN / "roscore"), "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if subprocess.run([str(ROS_BIN / "rostopic"), "list"], env=env, capture_output=True).returncode == 0:
            break
        time.sleep(0.3)
    else:
        core.kill()
        pytest.fail("roscore did not come up within 30 s")
    yield env
    core.send_signal(signal.SIGINT)
    core.wait(timeout=20)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A small diffusion policy trained on two Stack D1 expert demos (state and point-cloud inputs)."""
    root = tmp_path_factory.mktemp("deploy")
    out = root / "stack"
    collect(
        "equirobot/Stack-D1-v0", {"obs": tuple(OBS), "control": "abs", **SIZES}, out, n_demos=2, workers=2
    )
    cfg = train_config(out.with_suffix(".zarr"), root / "run", obs=OBS, steps=20, **SIZES)
    Trainer(cfg, root / "run").fit()
    return root / "run" / "checkpoints" / "latest"


def in_process(checkpoint: Path, seeds: list[int]) -> list[dict]:
    """The in-process evaluation of the episodes sim-robot runs: same env, seeds and policy resets."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the deploy node computes: another thread count rounds differently
    policy = load_policy(checkpoint)
    env = gym.make("equirobot/Stack-D1-v0", obs=OBS, control="abs", max_episode_steps=STEPS, **SIZES)
    results = []
    policy.reset()
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        policy.reset([0], [seed])
        actions, success = [], False
        while True:
            with torch.no_grad():
                action = np.asarray(policy.select_action({k: v[None] for k, v in obs.items()}))[0]
            actions.append(executed(action))
            obs, _, terminated, truncated, info = env.step(actions[-1])
            success = success or info["is_success"]
            if terminated or truncated:
                break
        results.append({"seed": seed, "success": success, "steps": len(actions), "actions": actions})
    env.close()
    torch.set_num_threads(threads)
    return results


def executed(action: np.ndarray) -> np.ndarray:
    """An abs action as the simulated arm executes it after ROS: the rotation sent as a quaternion (the
    same conversions in the same precision as node and sim-robot), the gripper clipped to [-1, 1]. The
    controller executes the raw action the same way, up to float rounding."""
    quat = mat_to_quat(rot6d_to_mat(action[3:9].astype(np.float64)))
    rot6d = mat_to_rot6d(quat_to_mat(quat))
    return np.concatenate([action[:3], rot6d, np.clip(action[9:].astype(np.float64), -1, 1)]).astype(
        np.float32
    )


def start(args: list[str], env: dict, cwd: Path, log: str) -> subprocess.Popen:
    out = open(cwd / log, "w")  # noqa: SIM115  (closed with the process)
    return subprocess.Popen(
        [str(BIN / "equirobot"), *args], env={**env, "OMP_NUM_THREADS": "1"}, cwd=cwd, stdout=out, stderr=out
    )


def stop(proc: subprocess.Popen, timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    return proc.wait(timeout=timeout)


@pytest.fixture(scope="module")
def rosbridge_port():
    """The rosbridge STAND-IN server (tests/rosbridge_standin.py: no rosbridge server installs here)."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("rosbridge_standin.py")), str(port)]
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    yield port
    server.kill()
    server.wait()


@pytest.mark.parametrize("transport", ["ros1", "rosbridge"])
def test_the_policy_completes_episodes_over_ros_as_it_does_in_process(
    transport, request, checkpoint, tmp_path
):
    """sim-robot and deploy as processes, in lockstep, over rospy and a roscore or over roslibpy and the
    rosbridge stand-in: the arm executes exactly the actions of the in-process evaluation."""
    if transport == "ros1":
        env, link = request.getfixturevalue("ros_env"), ["transport=ros1"]
    else:
        port = request.getfixturevalue("rosbridge_port")
        env, link = dict(os.environ), ["transport=rosbridge", "host=127.0.0.1", f"port={port}"]
    seeds = [100_000, 100_001]
    sim = start(
        ["sim-robot", "task=stack_d1", "obs=[state,point_cloud]", *[f"{k}={v}" for k, v in SIZES.items()],
         f"episodes={len(seeds)}", f"max_steps={STEPS}", "record_actions=true", "hydra.run.dir=sim", *link],
        env, tmp_path, "sim.log",
    )  # fmt: skip
    node = start(
        ["deploy", f"checkpoint={checkpoint}", "robot.synchronized=true", "robot.rate=200", *LOOSE,
         "hydra.run.dir=node", *link],
        env, tmp_path, "node.log",
    )  # fmt: skip
    try:
        assert sim.wait(timeout=240) == 0, (tmp_path / "sim.log").read_text()[-3000:]
    finally:
        code = stop(node)
    assert code == 0, (tmp_path / "node.log").read_text()[-3000:]
    over_ros = json.loads((tmp_path / "sim" / "sim_robot_results.json").read_text())["episodes"]
    stats = json.loads((tmp_path / "node" / "deploy_stats.json").read_text())
    reference = in_process(checkpoint, seeds)
    for ros, ref in zip(over_ros, reference, strict=True):
        assert (ros["seed"], ros["success"], ros["steps"]) == (ref["seed"], ref["success"], ref["steps"])
        # every executed action is the in-process one: same observations, same seeded sampling
        np.testing.assert_array_equal(np.array(ros["actions"], dtype=np.float32), np.array(ref["actions"]))
    assert stats["commands"] == sum(r["steps"] for r in reference) and stats["episodes"] == len(seeds)
    assert stats["latency_ms_median"] > 0
    # no limit bound; the watchdog held while the simulation reset between episodes
    assert set(stats["safety_events"]) <= {"stale", "fresh"}, stats["safety_events"]


# -- the safety layer, alone -----------------------------------------------------------------------
LOW, HIGH = np.array([-0.3, -0.3, 0.8]), np.array([0.3, 0.3, 1.2])
EYE = np.eye(3)


def test_safety_clamps_to_the_workspace_and_limits_each_step():
    safety = SafetyFilter(SafetyConfig(max_step_m=0.05, max_speed_m_s=0.5), LOW, HIGH)
    eef = np.array([0.29, 0.0, 1.0])
    pos, rot, g = safety.filter(np.array([0.6, 0.0, 1.0]), EYE, 2.0, eef, EYE, stamp=0.0)
    np.testing.assert_allclose(pos, [0.3, 0.0, 1.0])  # clamped into the box, then within 5 cm of the eef
    assert g == 1.0 and safety.counts()["workspace"] == 1
    far = safety.filter(np.array([0.0, 0.0, 1.0]), EYE, 0.0, eef, EYE, stamp=0.05)
    assert far is not None
    # 0.05 s after the last command at 0.5 m/s: 2.5 cm, tighter than the 5 cm step limit
    np.testing.assert_allclose(np.linalg.norm(far[0] - eef), 0.025, rtol=1e-9)
    turned = safety.filter(eef, m_rot(1.2), 0.0, eef, EYE, stamp=1.0)
    assert turned is not None
    angle = np.arccos((np.trace(turned[1]) - 1) / 2)
    np.testing.assert_allclose(angle, 0.5, rtol=1e-9)
    assert {"max_velocity", "max_step"} <= set(safety.counts())


def m_rot(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def test_safety_sends_nothing_nonfinite_nor_under_estop_nor_in_dry_run():
    safety = SafetyFilter(SafetyConfig(), LOW, HIGH)
    eef = np.array([0.0, 0.0, 1.0])
    assert safety.filter(np.array([np.nan, 0, 1]), EYE, 0.0, eef, EYE, stamp=0.0) is None
    assert safety.filter(eef, EYE, np.inf, eef, EYE, stamp=0.0) is None
    safety.set_estop(True)
    assert safety.filter(eef, EYE, 0.0, eef, EYE, stamp=0.0) is None
    safety.set_estop(False)
    assert safety.filter(eef, EYE, 0.0, eef, EYE, stamp=0.0) is not None
    assert not safety.check_observation({"object": np.array([0.0, np.nan], dtype=np.float32)})
    assert safety.check_fresh({"eef_pose": 0.1}) and not safety.check_fresh({"eef_pose": 0.1, "objects": 2.0})
    counts = safety.counts()
    assert counts["nonfinite_action"] == 2 and counts["estop"] == 1 and counts["estop_released"] == 1
    assert counts["nonfinite_observation"] == 1 and counts["stale"] == 1
    dry = SafetyFilter(SafetyConfig(dry_run=True), LOW, HIGH)
    assert dry.filter(eef, EYE, 0.0, eef, EYE, stamp=0.0) is None and dry.counts() == {"dry_run": 1}


def test_a_limit_is_switched_off_only_by_name_and_with_a_warning(caplog):
    with pytest.raises(ValueError, match="safety.max_step_m must be a positive number.*safety.disabled"):
        SafetyConfig(max_step_m=0)
    with pytest.raises(ValueError, match="unknown limit.*'brakes'"):
        SafetyConfig(disabled=["brakes"])
    with caplog.at_level("WARNING"):
        safety = SafetyFilter(SafetyConfig(disabled=["max_step"]), LOW, HIGH)
    assert "safety limit 'max_step' is switched off" in caplog.text
    eef = np.array([0.0, 0.0, 1.0])
    far = safety.filter(np.array([0.2, 0.0, 1.0]), EYE, 0.0, eef, EYE, stamp=0.0)
    assert far is not None and np.allclose(far[0], [0.2, 0.0, 1.0])
    with pytest.raises(ValueError, match="workspace_low"):
        RobotConfig(workspace_low=[0, 0, 2])


# -- messages ------------------------------------------------------------------------------------------
def test_sensor_messages_round_trip():
    rng = np.random.default_rng(0)
    points = np.hstack([rng.normal(size=(50, 3)), rng.integers(0, 256, (50, 3)) / 255]).astype(np.float32)
    cloud = m.point_cloud2(points, "world", 12.5)  # packed rgb, 8 bits a channel
    np.testing.assert_allclose(m.read_point_cloud2(cloud), points, atol=1e-7)
    assert m.header_seconds(cloud) == 12.5
    exact = points.copy()
    exact[:, 3:] = rng.random((50, 3))
    np.testing.assert_array_equal(
        m.read_point_cloud2(m.point_cloud2(exact, "world", 0.0, packed=False)), exact
    )
    missing = exact.copy()
    missing[3, 0] = np.nan  # a depth camera's missing return
    assert len(m.read_point_cloud2(m.point_cloud2(missing, "world", 0.0))) == 49
    rgb = rng.integers(0, 256, (6, 5, 3)).astype(np.uint8)
    np.testing.assert_array_equal(m.read_image(m.image(rgb, "cam", 0.0)), rgb)
    depth = rng.random((6, 5, 1)).astype(np.float32)
    np.testing.assert_array_equal(m.read_image(m.image(depth, "cam", 0.0)), depth)
    pose = np.array([0.1, 0.2, 0.3, 0, 0, np.sin(0.3), np.cos(0.3)])
    np.testing.assert_allclose(m.read_pose_stamped(m.pose_stamped(pose[:3], pose[3:], "w", 1.0)), pose)
    with pytest.raises(m.MessageError, match=r"lacks joint\(s\) \['finger'\]"):
        m.read_joints(m.joint_state(["a"], np.zeros(1), 0.0), ["finger"])
    with pytest.raises(m.MessageError, match="encoding 'bgr16'"):
        m.read_image({**m.image(rgb, "cam", 0.0), "encoding": "bgr16"})


def rostopic(env: dict, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """ROS's own command-line tool (not the project's code), with a time limit (returncode 124 on it)."""
    return subprocess.run(
        ["timeout", str(timeout), str(ROS_BIN / "rostopic"), *args], env=env, capture_output=True, text=True
    )


def test_rostopic_sees_the_commands_the_estop_stops_them_and_a_silent_robot_gets_none(
    ros_env, checkpoint, tmp_path
):
    """Real time (sim-robot lockstep=false, the node on its clock): `rostopic echo` sees targets; an e-stop
    from `rostopic pub` stops them until released; when the arm's sensors fall silent the node holds."""
    sim = start(
        ["sim-robot", "task=stack_d1", "obs=[state,point_cloud]", *[f"{k}={v}" for k, v in SIZES.items()],
         "episodes=1", "max_steps=100000", "lockstep=false", "hydra.run.dir=sim"],
        ros_env, tmp_path, "sim.log",
    )  # fmt: skip
    node = start(
        ["deploy", f"checkpoint={checkpoint}", *LOOSE, "hydra.run.dir=node"], ros_env, tmp_path, "node.log"
    )
    target = "/equirobot/eef_target"
    try:
        seen = rostopic(ros_env, "echo", "-n", "1", target, timeout=90)
        assert seen.returncode == 0 and "position" in seen.stdout and "world" in seen.stdout, (
            seen.stderr + (tmp_path / "node.log").read_text()[-2000:]
        )
        gripper = rostopic(ros_env, "echo", "-n", "1", "/equirobot/gripper_command")
        assert gripper.returncode == 0 and "gripper" in gripper.stdout
        assert (
            rostopic(ros_env, "pub", "-1", "/equirobot/estop", "std_msgs/Bool", "data: true").returncode == 0
        )
        time.sleep(1.0)
        assert rostopic(ros_env, "echo", "-n", "1", target, timeout=4).returncode == 124  # nothing sent
        assert (
            rostopic(ros_env, "pub", "-1", "/equirobot/estop", "std_msgs/Bool", "data: false").returncode == 0
        )
        assert rostopic(ros_env, "echo", "-n", "1", target, timeout=30).returncode == 0  # released
        sim.kill()  # the arm's sensors fall silent
        sim.wait(timeout=10)
        time.sleep(1.5)
        assert rostopic(ros_env, "echo", "-n", "1", target, timeout=4).returncode == 124
    finally:
        sim.kill()
        code = stop(node)
    assert code == 0, (tmp_path / "node.log").read_text()[-3000:]
    stats = json.loads((tmp_path / "node" / "deploy_stats.json").read_text())
    events = stats["safety_events"]
    assert events["estop"] == 1 and events["estop_released"] == 1 and events["stale"] >= 1, events
    assert stats["commands"] > 0 and 0 < stats["achieved_rate_hz"] <= 20 * 1.2


# -- faults, on a node in this process with real ROS messages -----------------------------------------
@pytest.fixture(scope="module")
def scene_obs():
    """A real Stack D1 observation (state + point cloud) and the joint positions behind it."""
    env = gym.make("equirobot/Stack-D1-v0", obs=OBS, control="abs", **SIZES)
    obs, _ = env.reset(seed=3)
    base = env.unwrapped
    joints = RobotConfig().arm_joints + RobotConfig().gripper_joints
    qpos = base.scene.sim.data.qpos
    positions = np.array([qpos[base.scene.sim.model.get_joint_qpos_addr(n)] for n in joints])
    points = base.observer.workspace_points()
    env.close()
    return obs, joints, positions, points


@pytest.fixture
def ros_link(ros_env):
    """Bridges of this process (rospy: one ROS node per process, on the module's roscore)."""
    os.environ.update(ROS_MASTER_URI=ros_env["ROS_MASTER_URI"], ROS_HOSTNAME="localhost")
    from equirobot.deploy.bridge import Ros1Bridge

    made = []

    def make():
        made.append(Ros1Bridge("equirobot_test"))
        return made[-1]

    yield make
    for bridge in made:
        bridge.close()


class Arm:
    """Publishes a real observation's sensor messages on the robot topics and records the node's commands."""

    def __init__(self, bridge, scene_obs, topics) -> None:
        self.obs, self.joints, self.positions, self.points = scene_obs
        self.pub = {
            "joint_states": bridge.publisher(topics.joint_states, m.JOINT_STATE),
            "eef_pose": bridge.publisher(topics.eef_pose, m.POSE_STAMPED),
            "objects": bridge.publisher(topics.objects, m.POSE_ARRAY),
            "points": bridge.publisher(topics.points, m.POINT_CLOUD2),
        }
        self.estop = bridge.publisher(topics.estop, m.BOOL)
        self.targets: list[m.Message] = []
        bridge.subscribe(topics.target, m.POSE_STAMPED, self.targets.append)
        time.sleep(1.0)  # connections

    def send(self, silent: tuple[str, ...] = (), stamp: float | None = None) -> None:
        t, o = time.time() if stamp is None else stamp, self.obs
        messages = {
            "joint_states": m.joint_state(self.joints, self.positions, t),
            "eef_pose": m.pose_stamped(o["robot0_eef_pos"], o["robot0_eef_quat"], "world", t),
            "objects": m.pose_array(o["object"].reshape(-1, 7), "world", t),
            "points": m.point_cloud2(self.points, "world", t, packed=False),
        }
        for name, msg in messages.items():
            if name not in silent:
                self.pub[name](msg)


def run_node(node, arm: Arm, ticks: int, silent: tuple[str, ...] = ()) -> int:
    """Send sensors and tick the node ``ticks`` times, 0.1 s apart; how many targets arrived."""
    before = len(arm.targets)
    for _ in range(ticks):
        arm.send(silent)
        time.sleep(0.1)
        node.tick()
    time.sleep(0.5)
    return len(arm.targets) - before


def make_node(checkpoint, bridge, **safety):
    from equirobot.deploy.node import DeployNode
    from equirobot.policies.checkpoint import read_config

    robot = RobotConfig(safety=SafetyConfig(**{"max_step_m": 5.0, "max_step_rad": 4.0, **safety}))
    return DeployNode(load_policy(checkpoint), read_config(checkpoint), robot, bridge)


def test_a_silent_camera_or_a_stale_joint_state_stops_the_commands(ros_link, scene_obs, checkpoint):
    node = make_node(checkpoint, ros_link(), stale_after_s=0.3)
    arm = Arm(ros_link(), scene_obs, node.robot.topics)
    assert run_node(node, arm, 5) >= 3  # fresh inputs: commands
    for silent in (("points",), ("joint_states",)):
        time.sleep(0.5)  # the silent input goes stale
        assert run_node(node, arm, 6, silent=silent) == 0, silent
        assert node.safety.stale
        assert run_node(node, arm, 5) >= 3  # fresh again: resumes
    events = node.safety.counts()
    assert events["stale"] >= 2 and events["fresh"] >= 2


def test_nonfinite_actions_and_out_of_workspace_targets_are_never_sent(ros_link, scene_obs, checkpoint):
    node = make_node(checkpoint, ros_link())
    node.robot.workspace_low, node.robot.workspace_high = [-0.05, -0.05, 1.0], [0.05, 0.05, 1.02]
    node.safety.low, node.safety.high = (
        np.array(node.robot.workspace_low),
        np.array(node.robot.workspace_high),
    )
    arm = Arm(ros_link(), scene_obs, node.robot.topics)
    assert run_node(node, arm, 6) >= 4
    sent = np.array([m.read_pose_stamped(t)[:3] for t in arm.targets])
    assert (sent >= node.safety.low - 1e-9).all() and (sent <= node.safety.high + 1e-9).all()
    assert node.safety.counts()["workspace"] >= 4
    with torch.no_grad():
        for p in node.policy.parameters():
            p.fill_(float("nan"))
    node.policy.reset()
    assert run_node(node, arm, 5) == 0
    assert node.safety.counts()["nonfinite_action"] >= 1
    # and a NaN in an observation is never given to the policy
    arm.obs = {**arm.obs, "object": np.full_like(arm.obs["object"], np.nan)}
    assert run_node(node, arm, 3) == 0 and node.safety.counts()["nonfinite_observation"] >= 1


def test_the_node_builds_observations_and_acts_without_the_simulator(
    ros_env, scene_obs, checkpoint, tmp_path
):
    """A robot's computer: the node, its observation from ROS messages and the policy's action load
    neither robosuite nor MuJoCo, and the observation is the simulator's own."""
    from equirobot.deploy.bridge import json_safe

    obs, joints, positions, points = scene_obs
    sensors = {
        "eef_pose": m.pose_stamped(obs["robot0_eef_pos"], obs["robot0_eef_quat"], "world", 1.0),
        "joint_states": m.joint_state(joints, positions, 1.0),
        "objects": m.pose_array(obs["object"].reshape(-1, 7), "world", 1.0),
        "points": m.point_cloud2(points, "world", 1.0, packed=False),
    }
    (tmp_path / "sensors.json").write_text(json.dumps(json_safe(sensors)))
    np.savez(tmp_path / "obs.npz", **obs)
    script = f"""
import json, sys
import numpy as np
from equirobot.deploy.bridge import Ros1Bridge
from equirobot.deploy.node import DeployNode, Received
from equirobot.deploy.robot import RobotConfig
from equirobot.policies.checkpoint import load_policy, read_config
node = DeployNode(load_policy({str(checkpoint)!r}), read_config({str(checkpoint)!r}), RobotConfig(),
                  Ros1Bridge("no_simulator"))
sensors = json.loads(open({str(tmp_path / "sensors.json")!r}).read())
built = node.observation({{k: Received(v, 1.0, 0.0) for k, v in sensors.items()}})
want = np.load({str(tmp_path / "obs.npz")!r})
assert sorted(built) == sorted(want.files), (sorted(built), want.files)
for key in built:
    np.testing.assert_array_equal(built[key], want[key], err_msg=key)
assert node.policy.select_action({{k: v[None] for k, v in built.items()}}).shape == (1, 10)
print("simulator:", sorted(m for m in sys.modules if m.split(".")[0] in ("robosuite", "mujoco")))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], env=ros_env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "simulator: []" in result.stdout, result.stdout


def test_deploy_refuses_what_it_cannot_serve(ros_env, checkpoint, tmp_path):
    from equirobot.deploy.node import DeployError, inputs_of

    heightmap = {"task": "block_picking", "spec": {"modes": ["gripper_heightmap"], "control": "closed_loop"}}
    with pytest.raises(DeployError, match=r"inputs \['gripper_heightmap', 'holding'\] cannot be built"):
        inputs_of(heightmap)
    dead = {**ros_env, "ROS_MASTER_URI": f"http://localhost:{free_port()}"}
    no_master = subprocess.run(
        [str(BIN / "equirobot"), "deploy", f"checkpoint={checkpoint}", "hydra.run.dir=x"],
        env=dead, cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert no_master.returncode == 1 and "no ROS master" in no_master.stderr, no_master.stderr[-2000:]
    off = subprocess.run(
        [str(BIN / "equirobot"), "deploy", f"checkpoint={checkpoint}", "robot.safety.max_step_m=0"],
        env=ros_env, cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert off.returncode == 2 and "safety.disabled" in off.stderr


def test_bench_deploy_prints_latency_and_rate(ros_env, checkpoint, tmp_path):
    result = subprocess.run(
        [str(BIN / "equirobot"), "bench", "deploy", f"checkpoint={checkpoint}", "duration=4",
         "hydra.run.dir=b"],
        env=ros_env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "achieved" in result.stdout and "latency median" in result.stdout
    bench = json.loads((tmp_path / "b" / "bench_deploy.json").read_text())
    assert bench["commands"] > 0 and 0 < bench["achieved_rate_hz"] <= 20 * 1.2
    assert bench["latency_ms_median"] > 0 and bench["policy_ms_max"] >= bench["policy_ms_median"] > 0


def test_a_synchronized_node_acts_once_per_stamp_and_anew_when_an_episode_restarts_the_clock(
    ros_link, scene_obs, checkpoint
):
    """In lockstep the node answers each stamp once; a new episode may start at an earlier stamp (a
    simulation faster than the wall clock, a robot driver restarted) and is answered too."""
    node = make_node(checkpoint, ros_link())
    node.robot.synchronized = True
    link = ros_link()
    arm = Arm(link, scene_obs, node.robot.topics)
    episode = link.publisher(node.robot.topics.episode, m.INT64)
    time.sleep(0.5)
    episode({"data": 7})
    time.sleep(0.5)
    now = time.time()

    def answered(stamp: float) -> int:
        before = len(arm.targets)
        arm.send(stamp=stamp)
        time.sleep(0.3)
        for _ in range(3):  # three ticks, one stamp
            node.tick()
        time.sleep(0.3)
        return len(arm.targets) - before

    assert node._episode_seed == 7
    assert answered(now) == 1 and answered(now + 0.05) == 1
    episode({"data": 8})
    time.sleep(0.5)
    assert node._episode_seed == 8 and answered(now - 5.0) == 1  # the clock went back with the episode


class Offline:
    """A bridge whose publishers and subscriptions go nowhere: for tests of what the node computes."""

    def publisher(self, topic, msg_type):
        return lambda msg: None

    def subscribe(self, topic, msg_type, callback):
        pass


def test_a_delta_policys_action_becomes_the_target_the_env_would_reach(checkpoint):
    """The node turns a delta action into an absolute target at the env's own scales: the inverse of
    the delta env's pose_to_action."""
    from equirobot.deploy.node import DeployNode
    from equirobot.policies.checkpoint import read_config

    env = gym.make("equirobot/Stack-D1-v0", obs=["state"], control="delta")
    env.reset(seed=2)
    base = env.unwrapped
    eef_pos, eef_rot = base.eef_pose()
    goal_pos, goal_rot = eef_pos + [0.02, -0.01, 0.015], m_rot(0.3) @ eef_rot
    action = base.pose_to_action(goal_pos, goal_rot, 1.0)
    env.close()
    config = read_config(checkpoint)
    config = {**config, "spec": {**config["spec"], "control": "delta"}}
    node = DeployNode(load_policy(checkpoint), config, RobotConfig(), Offline())
    pos, rot, gripper = node.target(action.astype(np.float64), eef_pos, eef_rot)
    np.testing.assert_allclose(pos, goal_pos, atol=1e-6)
    np.testing.assert_allclose(rot, goal_rot, atol=1e-6)
    assert gripper == 1.0


def test_the_node_builds_the_simulators_camera_images_and_refuses_another_size(checkpoint):
    """rgb8 Images on the camera topics become the policy's image inputs, as the simulator renders them;
    an image of another size is refused by name (the node then holds)."""
    from equirobot.deploy.node import DeployNode, Received
    from equirobot.policies.checkpoint import read_config

    env = gym.make("equirobot/Stack-D1-v0", obs=["state", "rgb"], control="abs", image_size=32)
    obs, _ = env.reset(seed=5)
    env.close()
    config = read_config(checkpoint)
    config = {**config, "spec": {**config["spec"], "modes": ["state", "rgb"]}, "env": {"image_size": 32}}

    node = DeployNode(load_policy(checkpoint), config, RobotConfig(), Offline())
    joints = RobotConfig().gripper_joints
    latest = {
        "eef_pose": m.pose_stamped(obs["robot0_eef_pos"], obs["robot0_eef_quat"], "world", 1.0),
        "joint_states": m.joint_state(joints, obs["robot0_gripper_qpos"].astype(np.float64), 1.0),
        "objects": m.pose_array(obs["object"].reshape(-1, 7), "world", 1.0),
        "agentview": m.image(obs["agentview_image"], "agentview", 1.0),
        "robot0_eye_in_hand": m.image(obs["robot0_eye_in_hand_image"], "wrist", 1.0),
    }
    built = node.observation({k: Received(v, 1.0, 0.0) for k, v in latest.items()})
    assert sorted(built) == sorted(obs)
    for key in obs:
        np.testing.assert_array_equal(built[key], obs[key], err_msg=key)
    small = {**latest, "agentview": m.image(obs["agentview_image"][:16, :16], "agentview", 1.0)}
    with pytest.raises(
        m.MessageError, match=r"camera/agentview/image_raw: image uint8 \(16, 16, 3\).*\(32, 32, 3\)"
    ):
        node.observation({k: Received(v, 1.0, 0.0) for k, v in small.items()})
