import json
import subprocess
import sys

import pytest


def equirobot(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from equirobot.cli import main; main()", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


def test_tasks_lists_every_task():
    result = equirobot("tasks")
    assert result.returncode == 0, result.stderr
    for task_id in ("equirobot/Stack-D1-v0", "equirobot/Square-D2-v0", "equirobot/PickPlace-D0-v0"):
        assert task_id in result.stdout
    assert "equirobot/CoffeePreparation-D1-v0" in result.stdout
    assert "MimicGen benchmark: 12/12 tasks built" in result.stdout and "not built yet" not in result.stdout
    for task_id in ("InvertedPendulum-v0", "InvertedDoublePendulum-v0", "Reacher-v0"):  # control tasks
        assert f"equirobot/{task_id}" in result.stdout


def test_rollout_reports_success_and_writes_videos(tmp_path):
    result = equirobot(
        "rollout",
        "task=stack_d0",
        "episodes=2",
        "video=true",
        "video_episodes=1",
        "video_size=64",
        f"hydra.run.dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "rollout.json").read_text())
    assert summary["episodes"] == 2 and summary["success_rate"] == 1.0
    videos = list((tmp_path / "videos").glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 1000
    assert "success 2/2" in result.stdout


def test_bench_obs_writes_json(tmp_path):
    result = equirobot(
        "bench", "obs", "steps=2", "warmup=0", "modes=[physics,point_cloud]", f"hydra.run.dir={tmp_path}"
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "bench_obs.json").read_text())
    assert set(report["results"]) == {"physics", "point_cloud"}
    assert report["results"]["point_cloud"]["ms_median"] > 0


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("task=stack_d9", "valid tasks"),
        ("obs=[pointcloud]", "valid modes"),
        ("control=velocity", "valid modes: ['abs', 'delta']"),
        ("episodes=0", "episodes must be positive"),
        ("agent=robot", "valid: ['expert', 'mimicgen']"),
    ],
)
def test_bad_config_values_are_refused_before_simulation(override, message, tmp_path):
    result = equirobot("rollout", override, f"hydra.run.dir={tmp_path}")
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "rollout.json").exists()


def test_misspelt_key_and_wrong_type_are_refused(tmp_path):
    misspelt = equirobot("rollout", "episode=3", f"hydra.run.dir={tmp_path}")
    assert misspelt.returncode != 0 and "episode" in misspelt.stderr
    wrong_type = equirobot("rollout", "episodes=many", f"hydra.run.dir={tmp_path}")
    assert wrong_type.returncode != 0 and "episodes" in wrong_type.stderr


def test_unknown_command_prints_usage():
    result = equirobot("fly")
    assert result.returncode == 2 and "commands:" in result.stderr and "rollout" in result.stderr


RANGE_CASES = [
    ("train", {"grad_clip": -1}, "grad_clip must be positive"),
    ("train", {"grad_clip": 0}, "grad_clip must be positive"),
    ("train", {"checkpoint_every": 0}, "checkpoint_every must be positive"),
    ("train", {"log_every": 0}, "log_every must be positive"),
    ("train", {"max_episodes": -1}, "max_episodes must be >= 0"),
    ("train", {"top_k": 0}, "top_k must be positive"),
    ("train", {"lr": -1}, "lr must be positive"),
    ("train", {"lr": float("nan")}, "lr must be positive"),
    ("train", {"weight_decay": -1}, "weight_decay must be >= 0"),
    ("train", {"num_workers": -1}, "num_workers must be >= 0"),
    (
        "train",
        {"policy": {"type": "diffusion", "kernel_size": 0}},
        "kernel_size must be a positive odd number",
    ),
    ("train", {"policy": {"type": "diffusion", "down_fields": []}}, "down_fields must be a non-empty list"),
    ("train", {"policy": {"type": "bc", "width": 0}}, "width must be positive"),
    ("train", {"device": "cuda"}, "device=cuda but no GPU"),
    ("eval", {"checkpoint": "x", "video_size": 0}, "video_size must be positive"),
    ("collect", {"workers": 0}, "workers must be positive"),
    ("bench_nets", {"image_widths": [4, 0]}, "image_widths must be positive"),
    ("dataset_video", {"path": "x.hdf5", "size": 0}, "size must be positive"),
]


@pytest.mark.parametrize(("command", "values", "message"), RANGE_CASES)
def test_every_numeric_setting_is_range_checked_at_start_up(command, values, message):
    import torch

    from equirobot.config import SCHEMAS

    if "device" in values and torch.cuda.is_available():
        pytest.skip("a GPU is visible here: device=cuda is valid")
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        SCHEMAS[command](**values)


def test_a_bad_number_on_the_command_line_exits_2_without_a_traceback(tmp_path):
    for args in (["train", "lr=nan"], ["eval", "checkpoint=x", "video_size=0"]):
        result = equirobot(*args, f"hydra.run.dir={tmp_path}", cwd=tmp_path)
        assert result.returncode == 2 and "must be positive" in result.stderr, result.stderr[-2000:]
        assert "Traceback" not in result.stderr
