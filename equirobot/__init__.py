"""equirobot: robot learning that respects symmetry.

``equirobot.load_policy(folder)`` loads any registered method's checkpoint; ``select_action`` on an
observation dict then acts, with neither robosuite nor MuJoCo imported (a robot's computer needs no
simulator). The rest lives in the subpackages (see README.md, "Layout").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from equirobot.policies.checkpoint import load_policy

__all__ = ["load_policy"]


def __getattr__(name: str) -> Any:
    # Lazy, so that `import equirobot` (the command line) does not import torch before it needs it.
    if name == "load_policy":
        from equirobot.policies.checkpoint import load_policy

        return load_policy
    raise AttributeError(f"module 'equirobot' has no attribute {name!r}")
