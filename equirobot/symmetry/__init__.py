"""Symmetry toolkit: the scene's group, how robot quantities transform, and equivariance checks."""

from equirobot.symmetry.group import SceneSymmetry
from equirobot.symmetry.representations import ABS_ACTION, DELTA_ACTION, Layout

__all__ = ["ABS_ACTION", "DELTA_ACTION", "Layout", "SceneSymmetry"]
