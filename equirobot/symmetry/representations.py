"""How each robot quantity transforms: vectors of numbers as escnn field types.

A :class:`Layout` names the parts of a flat vector (an action, a proprio vector) and the kind of each
part: ``scalar`` (unchanged: z, gripper), ``vector`` (a horizontal 2-D vector: x y, each rot6d column
pair), ``mirrored_vector`` (a 2-D vector that a reflection also negates: rot6d's middle column, the
horizontal part of an axis-angle) and ``pseudo_scalar`` (negated by reflections: the vertical part of
an axis-angle). For C_N the mirrored kinds equal the plain ones. A control task's state and motor
commands are ``signs:<pattern>`` channels, one sign per mirror of the task (``signs:-+``: negated by the
first mirror, kept by the second), which the group's ``mirror_generators`` carry: its 1-D irrep with
those values (a subgroup reads the first signs: C2 the first mirror, C1 none). ``field_type`` turns a
layout into an escnn ``FieldType`` plus the permutation from the layout's channel order to the field's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from escnn import nn as enn
from escnn.group import Representation

from equirobot.symmetry.group import SceneSymmetry
from equirobot_envs.features import CONTROL_MODES

KINDS = ("scalar", "pseudo_scalar", "vector", "mirrored_vector")
SIGNS = "signs:"


def sign_representation(sym: SceneSymmetry, pattern: str) -> Representation:
    """The 1-D irrep of a mirror group whose value on generator k is the k-th sign of ``pattern``."""
    generators = sym.mirror_generators()
    signs = [1.0 if c == "+" else -1.0 for c in pattern[: len(generators)]]
    for irrep in sym.group.irreps():
        if irrep.size == 1 and all(
            float(irrep(g)[0, 0]) == s for g, s in zip(generators, signs, strict=True)
        ):
            return irrep
    raise ValueError(f"{sym.name} has no 1-D irrep with signs {pattern!r}")  # not for C1, C2, D2


def sign_layout(name: str, signs: tuple[tuple[float, ...], ...] | list[list[float]]) -> Layout:
    """Channels that the task's mirrors negate by ``signs`` (per mirror, one sign per channel)."""
    size = len(signs[0]) if len(signs) else 0
    patterns = ["".join("+" if mirror[i] > 0 else "-" for mirror in signs) for i in range(size)]
    return Layout(name, tuple((f"{name}_{i}", (i,), SIGNS + p) for i, p in enumerate(patterns)))


def representation(sym: SceneSymmetry, kind: str) -> Representation:
    """The escnn representation of one part kind."""
    if kind.startswith(SIGNS):
        return sign_representation(sym, kind.removeprefix(SIGNS))
    if kind == "scalar":
        return sym.group.trivial_representation
    if kind == "pseudo_scalar":
        return sym.sign_irrep
    if kind == "vector":
        return sym.vector_irrep
    if kind == "mirrored_vector":
        return sym.vector_irrep.tensor(sym.sign_irrep) if sym.flips else sym.vector_irrep
    raise ValueError(f"unknown representation kind {kind!r}; valid: {list(KINDS)}")


@dataclass(frozen=True)
class Layout:
    """Named parts of a flat vector: ``(name, channel indices, kind)``, covering every channel once."""

    name: str
    parts: tuple[tuple[str, tuple[int, ...], str], ...]

    def __post_init__(self) -> None:
        channels = sorted(i for _, idx, _ in self.parts for i in idx)
        if channels != list(range(len(channels))):
            raise ValueError(f"layout {self.name}: parts must cover channels 0..n-1 once, got {channels}")
        for part, idx, kind in self.parts:
            signs = kind.startswith(SIGNS) and set(kind.removeprefix(SIGNS)) <= {"+", "-"}
            expected = 1 if signs or kind in ("scalar", "pseudo_scalar") else 2
            if (kind not in KINDS and not signs) or len(idx) != expected:
                raise ValueError(f"layout {self.name}: part {part} of kind {kind!r} has channels {idx}")

    @property
    def size(self) -> int:
        return sum(len(idx) for _, idx, _ in self.parts)

    @property
    def permutation(self) -> list[int]:
        """Field channel c holds layout channel ``permutation[c]``."""
        return [i for _, idx, _ in self.parts for i in idx]

    def field_type(self, sym: SceneSymmetry, gspace=None) -> enn.FieldType:
        """The escnn field type of this layout (on ``sym.gspace2d`` unless another gspace is given)."""
        gspace = gspace or sym.gspace2d
        return enn.FieldType(gspace, [representation(sym, kind) for _, _, kind in self.parts])

    def to_fields(self, x: torch.Tensor) -> torch.Tensor:
        """(..., size) layout order -> field order (along the last dim)."""
        return x[..., self.permutation]

    def from_fields(self, x: torch.Tensor) -> torch.Tensor:
        """(..., size) field order -> layout order."""
        inverse = torch.empty(self.size, dtype=torch.long)
        inverse[self.permutation] = torch.arange(self.size)
        return x[..., inverse]

    def concat(self, other: Layout, name: str | None = None) -> Layout:
        """Concatenation: the parts of ``self``, then those of ``other`` with shifted channels."""
        shift = self.size
        moved = tuple((p, tuple(i + shift for i in idx), k) for p, idx, k in other.parts)
        return Layout(name or f"{self.name}+{other.name}", self.parts + moved)


def _quantity_parts(name: str, quantity: str, c: int) -> tuple[tuple[str, tuple[int, ...], str], ...]:
    """The parts of one quantity (``equirobot_envs.features``) starting at channel ``c``."""
    if quantity in ("position", "vector"):  # positions are relative to the symmetry axis
        return ((f"{name}xy", (c, c + 1), "vector"), (f"{name}z", (c + 2,), "scalar"))
    if quantity == "axis_angle":  # a pseudo-vector: reflections negate it once more
        return ((f"{name}w_xy", (c, c + 1), "mirrored_vector"), (f"{name}w_z", (c + 2,), "pseudo_scalar"))
    if quantity == "rot6d":  # the first two rows of R: columns (c, c+3), (c+1, c+4), (c+2, c+5) are rho1
        kinds = ("vector", "mirrored_vector", "vector")
        return tuple((f"{name}rot6d_col{j}", (c + j, c + j + 3), kinds[j]) for j in range(3))
    if quantity == "scalar":
        return ((f"{name}scalar", (c,), "scalar"),)
    if quantity == "planar":
        return ((f"{name}xy", (c, c + 1), "vector"),)
    if quantity == "half_turn":
        raise ValueError(
            "no layout for quantity 'half_turn': an angle modulo pi shifts under rotations, which no linear "
            "representation does (networks choose it among discrete rotations, as fcn does)"
        )
    raise ValueError(f"no layout for quantity {quantity!r} (quaternions enter policies as rot6d)")


def quantity_layout(name: str, quantities: tuple[str, ...] | list[str]) -> Layout:
    """The layout of a vector made of these quantities, in order (``equirobot_envs.features``)."""
    parts: tuple[tuple[str, tuple[int, ...], str], ...] = ()
    c = 0
    for i, quantity in enumerate(quantities):
        new = _quantity_parts(f"{i}_", quantity, c)
        parts += new
        c += sum(len(idx) for _, idx, _ in new)
    return Layout(name, parts)


ABS_ACTION = quantity_layout("abs_action", CONTROL_MODES["abs"].quantities)
"""[pos (3), rot6d (6), gripper]: position relative to the symmetry axis."""

DELTA_ACTION = quantity_layout("delta_action", CONTROL_MODES["delta"].quantities)
"""[dpos (3), daxis-angle (3), gripper] in the world frame."""


def pose_layout(name: str) -> Layout:
    """[pos (3), rot6d (6)] of one body, position relative to the symmetry axis."""
    return quantity_layout(name, ("position", "rot6d"))


def scalars_layout(name: str, n: int) -> Layout:
    """``n`` invariant channels (gripper joint positions, ...)."""
    return Layout(name, tuple((f"{name}_{i}", (i,), "scalar") for i in range(n)))
