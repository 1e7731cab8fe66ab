"""Methods by name: ``type`` -> its configuration and policy classes.

One line per method. Classes are named as ``"module:Class"`` and imported on first use, so that loading
a behaviour-cloning checkpoint never imports the diffusion method's dependencies (diffusers).
"""

from __future__ import annotations

import importlib
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from equirobot.data.inputs import DataSpec
from equirobot.policies.base import Policy, PolicyConfig

POLICIES: dict[str, tuple[str, str]] = {
    "diffusion": (
        "equirobot.policies.diffusion.configuration:DiffusionConfig",
        "equirobot.policies.diffusion.modeling:DiffusionPolicy",
    ),
    "bc": ("equirobot.policies.bc.configuration:BCConfig", "equirobot.policies.bc.modeling:BCPolicy"),
    "sac": ("equirobot.policies.sac.configuration:SACConfig", "equirobot.policies.sac.modeling:SACPolicy"),
    "dqn": ("equirobot.policies.dqn.configuration:DQNConfig", "equirobot.policies.dqn.modeling:DQNPolicy"),
    "fcn": ("equirobot.policies.fcn.configuration:FCNConfig", "equirobot.policies.fcn.modeling:FCNPolicy"),
}


def _load(target: str) -> Any:
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def _entry(type_: str) -> tuple[str, str]:
    if type_ not in POLICIES:
        raise ValueError(f"unknown policy type {type_!r}; valid types: {sorted(POLICIES)}")
    return POLICIES[type_]


def config_class(type_: str) -> type[PolicyConfig]:
    """The configuration dataclass of a method."""
    return _load(_entry(type_)[0])


def policy_class(type_: str) -> type[Policy]:
    """The policy class of a method."""
    return _load(_entry(type_)[1])


def make_config(values: dict[str, Any] | PolicyConfig) -> PolicyConfig:
    """A method's typed, checked configuration from a dict with its ``type`` (a preset, a checkpoint).

    A key the method does not have, or a value of the wrong type, raises a ValueError naming it.
    """
    if isinstance(values, PolicyConfig):
        return values
    values = dict(values)
    type_ = values.get("type")
    if not type_:
        raise ValueError(f"policy config has no type; valid types: {sorted(POLICIES)}")
    cls = config_class(type_)
    try:
        merged = OmegaConf.merge(OmegaConf.structured(cls), values)
        return OmegaConf.to_object(merged)  # type: ignore[return-value]
    except OmegaConfBaseException as error:
        raise ValueError(f"policy ({type_}): {error}".split("\n")[0]) from error


def make_policy(config: dict[str, Any] | PolicyConfig, spec: DataSpec) -> Policy:
    """A freshly initialised policy of the method ``config.type`` for data ``spec``."""
    config = make_config(config)
    return policy_class(config.type)(config, spec)
