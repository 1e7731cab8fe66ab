"""The symmetry group of a tabletop scene: C_N or D_N acting about the vertical symmetry axis.

Everything geometric in equirobot goes through :class:`SceneSymmetry`: escnn's gspaces (so network
field types and scene transforms share one convention), the 3x3 matrix by which an element moves the
world, and the list of elements that equivariance checks loop over.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
from escnn import gspaces
from escnn.group import Group, GroupElement, directsum


class SceneSymmetry:
    """C_N (rotations by multiples of 2pi/N about z) or, with ``flips``, D_N (plus mirror planes).

    The reflection of D_N mirrors y (the plane y = 0 through the axis), following escnn's
    ``flipRot2dOnR2`` convention: element (f, k) acts on the plane as ``rot(2pi k / N) @ diag(1, -1)^f``.

    C2 and D2 also serve the control tasks (``equirobot_envs.flip_control``), abstractly: generator k of
    :meth:`mirror_generators` acts as the task's mirror k, by the task's sign vectors.
    """

    def __init__(self, order: int = 8, flips: bool = False):
        if order < 1 or (flips and order < 2):
            raise ValueError(
                f"group order must be >= 1 for C_N and >= 2 for D_N, got {order} (flips={flips})"
            )
        self.order, self.flips = order, flips

    @classmethod
    def from_name(cls, name: str) -> SceneSymmetry:
        """``"C8"`` -> C_8, ``"D4"`` -> D_4."""
        if len(name) < 2 or name[0] not in "CD" or not name[1:].isdigit():
            raise ValueError(f"group name {name!r} is not of the form C<N> or D<N> (e.g. C8, D4)")
        return cls(int(name[1:]), flips=name[0] == "D")

    @property
    def name(self) -> str:
        return f"{'D' if self.flips else 'C'}{self.order}"

    def __repr__(self) -> str:
        return f"SceneSymmetry({self.name})"

    @cached_property
    def gspace2d(self) -> gspaces.GSpace2D:
        """Acting on the plane: images, heightmaps, and planar features."""
        return gspaces.flipRot2dOnR2(self.order) if self.flips else gspaces.rot2dOnR2(self.order)

    @cached_property
    def gspace3d(self) -> gspaces.GSpace3D:
        """Acting on space about the z axis: voxel grids."""
        return gspaces.conicalOnR3(self.order) if self.flips else gspaces.rot2dOnR3(self.order)

    @property
    def group(self) -> Group:
        return self.gspace2d.fibergroup

    @cached_property
    def elements(self) -> list[GroupElement]:
        return list(self.group.elements)

    @cached_property
    def vector_irrep(self):
        """The 2-D representation by which horizontal vectors (x, y) transform.

        Irreducible for C_N with N >= 3 and D_N with N >= 3; C1 (no symmetry: the plain baseline), C2
        (rotation by pi acts as -1 on both axes) and D2 (x: irrep (0, 1), y: irrep (1, 1)) split it into
        two 1-D representations.
        """
        if self.flips and self.order == 2:
            return directsum([self.group.irrep(0, 1), self.group.irrep(1, 1)], name="vector_D2")
        if self.flips:
            return self.group.irrep(1, 1)
        if self.order <= 2:
            return directsum([self.group.irrep(self.order - 1)] * 2, name=f"vector_C{self.order}")
        return self.group.irrep(1)

    @cached_property
    def sign_irrep(self):
        """Det of the planar action: +1 for rotations, -1 for reflections (trivial for C_N)."""
        return self.group.irrep(1, 0) if self.flips else self.group.trivial_representation

    def planar_matrix(self, g: GroupElement) -> np.ndarray:
        """(2, 2) action of ``g`` on horizontal vectors."""
        return np.asarray(self.vector_irrep(g), dtype=np.float64)

    def matrix(self, g: GroupElement) -> np.ndarray:
        """(3, 3) action of ``g`` on world vectors: planar part on (x, y), z unchanged."""
        m = np.eye(3)
        m[:2, :2] = self.planar_matrix(g)
        return m

    def angle(self, g: GroupElement) -> float:
        """Rotation angle of ``g`` (of its rotation part, for a reflection)."""
        m = self.planar_matrix(g)
        return float(np.arctan2(m[1, 0], m[0, 0]))

    def is_reflection(self, g: GroupElement) -> bool:
        return bool(np.linalg.det(self.planar_matrix(g)) < 0)

    def mirror_generators(self) -> list[GroupElement]:
        """The generators a control task's mirrors map to.

        None for C1, the half turn for C2, and for D2 the mirror of y, (1, 0), and the mirror of x,
        (1, 1), whose product is the half turn.
        """
        if self.name == "C1":
            return []
        if self.name == "C2":
            return [self.elements[1]]
        if self.name == "D2":
            return [self.group.element((1, 0)), self.group.element((1, 1))]
        raise ValueError(f"{self.name} is not a mirror group: the control tasks take C1, C2 or D2")
