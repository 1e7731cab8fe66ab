"""Checkpoints: a folder per checkpoint, safetensors weights with the config and normaliser beside them.

``<run>/checkpoints/<name>/`` holds

* ``policy.safetensors``: the weights the policy acts with (the EMA weights);
* ``normalizer.safetensors`` and a readable ``normalizer.json``: the normalisation statistics;
* ``config.yaml``: ``type`` (the method's registry name), the data ``spec``, the ``policy`` config, and what
  the trainer adds (task, env settings, training config, step, evaluations);
* only in ``latest``: ``trainer/`` with what an exact resume needs (raw weights, optimiser, LR schedule,
  RNG states, step), tensors in safetensors or weights-only torch files, everything else in JSON.

Loading never unpickles code, and imports neither robosuite nor MuJoCo: a robot's computer runs
``load_policy(folder).select_action(obs)`` without the simulator. Checkpoints written before methods had
a ``type`` hold a diffusion policy, and load as one.

A folder is written under a temporary name and renamed into place, so a
kill leaves the previous checkpoint intact, never a half-written one.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from omegaconf import OmegaConf
from safetensors.torch import load_file, save_file

from equirobot.data.inputs import DataSpec
from equirobot.nn.fields import derived_buffer
from equirobot.policies.base import Policy
from equirobot.policies.registry import make_config, make_policy

POLICY_FILES = ("policy.safetensors", "normalizer.safetensors", "config.yaml")


class CheckpointError(ValueError):
    """A checkpoint that is missing, incomplete or does not match its config; names the path."""


def learned_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state a checkpoint stores: parameters and learned buffers (normaliser, batch-norm statistics)."""
    return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items() if not derived_buffer(k)}


def load_state(module: torch.nn.Module, state: dict[str, torch.Tensor], source: Path) -> None:
    """Load ``state`` into ``module``, naming every key that is missing, unexpected or of another shape.

    Derived buffers in ``state`` (older checkpoints saved escnn's expanded kernels) are ignored.
    """
    state = {k: v for k, v in state.items() if not derived_buffer(k)}
    expected = learned_state(module)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
        detail = "; ".join(
            f"{name}: {keys[:4]}{' ...' if len(keys) > 4 else ''}"
            for name, keys in (("missing", missing), ("unexpected", unexpected), ("shape differs", wrong))
            if keys
        )
        raise CheckpointError(f"{source}: weights do not match the policy its config describes ({detail})")
    module.load_state_dict(state, strict=False)


def write_atomically(folder: Path, write) -> None:
    """Call ``write(tmp_folder)``, then move the result to ``folder``, replacing any older one."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp, old = folder.with_name(f".{folder.name}.tmp"), folder.with_name(f".{folder.name}.old")
    for stale in (tmp, old):
        shutil.rmtree(stale, ignore_errors=True)
    tmp.mkdir()
    write(tmp)
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)


def save_policy(folder: Path, policy: Policy, config: dict) -> None:
    """Write the three policy files of a checkpoint into ``folder`` (an existing, empty folder)."""
    state = learned_state(policy)
    weights = {k: v for k, v in state.items() if not k.startswith("normalizer.")}
    stats = {k.removeprefix("normalizer."): v for k, v in state.items() if k.startswith("normalizer.")}
    save_file(weights, folder / "policy.safetensors")
    save_file(stats, folder / "normalizer.safetensors")
    (folder / "normalizer.json").write_text(json.dumps(policy.normalizer.statistics(), indent=1))
    full = {
        "type": policy.config.type,
        "spec": policy.spec.to_dict(),
        "policy": OmegaConf.to_container(OmegaConf.structured(policy.config)),
        **config,
    }
    OmegaConf.save(OmegaConf.create(full), folder / "config.yaml")


def read_config(folder: str | Path) -> dict:
    """A checkpoint's ``config.yaml`` as a dict; a clear error if the folder is not a checkpoint."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: no such checkpoint folder")
    missing = [f for f in POLICY_FILES if not (folder / f).exists()]
    if missing:
        raise CheckpointError(f"{folder}: not a checkpoint, missing {missing}")
    try:
        config = OmegaConf.to_container(OmegaConf.load(folder / "config.yaml"))
    except Exception as error:  # yaml and omegaconf raise several types
        raise CheckpointError(f"{folder / 'config.yaml'}: unreadable ({error})") from error
    if not isinstance(config, dict):
        raise CheckpointError(f"{folder / 'config.yaml'}: not a mapping, got {type(config).__name__}")
    return config


def build_policy(config: dict, overrides: dict | None = None) -> Policy:
    """A freshly initialised policy from a checkpoint config (``type``, ``spec`` and ``policy`` sections)."""
    try:
        values = {**config["policy"], **(overrides or {})}
        values.setdefault("type", config.get("type", "diffusion"))  # before types, every policy was diffusion
        spec = DataSpec(**config["spec"])
        return make_policy(make_config(values), spec)
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"checkpoint config does not describe a policy: {error}") from error


def load_weights(policy: Policy, folder: Path) -> None:
    """Load a checkpoint's weights and normaliser into ``policy``, naming every mismatch."""
    try:
        weights = load_file(folder / "policy.safetensors")
        stats = {f"normalizer.{k}": v for k, v in load_file(folder / "normalizer.safetensors").items()}
    except Exception as error:  # safetensors raises its own error types on a damaged file
        raise CheckpointError(f"{folder}: unreadable weights ({error})") from error
    load_state(policy, {**weights, **stats}, folder)


def load_policy(folder: str | Path, device: str = "cpu", overrides: dict | None = None) -> Policy:
    """The policy of a checkpoint folder, in eval mode, e.g. ``load_policy("runs/x/checkpoints/latest")``.

    ``overrides`` change acting-time settings (``{"inference_steps": 4}``), never the networks. Any
    registered method loads: the config's ``type`` names it.
    """
    folder = Path(folder)
    policy = build_policy(read_config(folder), overrides)
    load_weights(policy, folder)
    return policy.to(device).eval()
