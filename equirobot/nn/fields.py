"""Field types of the networks: regular and trivial features, and robot-quantity layouts, over a group."""

from __future__ import annotations

from escnn import gspaces
from escnn import nn as enn

from equirobot.symmetry.group import SceneSymmetry
from equirobot.symmetry.representations import Layout


def fiber(sym: SceneSymmetry) -> gspaces.GSpace0D:
    """The group acting on feature vectors alone (no base space): for MLPs and temporal convolutions."""
    return gspaces.no_base_space(sym.group)


def regular(gspace: gspaces.GSpace, n: int) -> enn.FieldType:
    """``n`` regular fields: one channel per group element each; pointwise nonlinearities stay equivariant."""
    return enn.FieldType(gspace, n * [gspace.regular_repr])


def trivial(gspace: gspaces.GSpace, n: int) -> enn.FieldType:
    """``n`` invariant channels."""
    return enn.FieldType(gspace, n * [gspace.trivial_repr])


def layout_type(sym: SceneSymmetry, layout: Layout) -> enn.FieldType:
    """The field type of a flat robot-quantity vector (channels in the layout's field order)."""
    return layout.field_type(sym, fiber(sym))


def derived_buffer(name: str) -> bool:
    """Whether a module buffer is escnn's, computed from the architecture or the weights.

    Basis samples and index maps follow from the architecture; ``filter`` and ``expanded_bias`` are the
    kernels escnn expands from the weights and keeps only in eval mode (``eval()`` recomputes them, and
    ``train()`` drops them). Checkpoints do not save them and weight averages do not copy them.
    """
    last = name.rsplit(".", 1)[-1]
    names = ("sampled_basis", "bias_expansion", "filter", "expanded_bias")
    return last in names or last.startswith(("in_indices_", "out_indices_"))
