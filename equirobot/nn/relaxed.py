"""Relaxed equivariance: layers that start exactly equivariant and may learn to break the symmetry.

For robots whose symmetry is only approximate (a joint that answers positive torque more strongly than
negative, a table edge on one side), exact equivariance is a wrong prior. Each layer here equals an
exactly equivariant layer at initialisation, has a ``regularizer()`` that penalises leaving the
symmetric solution, and a ``symmetry_breaking()`` that reports how far it has moved (0 = exact).

* :class:`RelaxedGroupConv1d`: regular -> regular group convolution (any finite group) whose kernel is a
  group-element-dependent combination of L filter banks, ``K(g) = sum_l alpha[l, g] K_l`` (Wang, Walters
  and Yu, ICML 2022); exact when ``alpha`` does not depend on g.
* :class:`RelaxedSteerableConv2d`: steerable convolutions combined with position-dependent weights,
  ``sum_l w_l(x) (K_l * f)(x)``; exact when the weights are constant over the image.
* :class:`RelaxedLinear`: an equivariant linear map plus an unconstrained one that starts at zero (a
  residual pathway), for MLP heads of any field types.
* :class:`RelaxedMLP`: :class:`~equirobot.nn.mlp.EquivariantMLP`'s architecture built from them (the
  relaxed actors and critics of reinforcement learning).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from escnn import nn as enn
from torch import nn

from equirobot.nn.conv1d import is_regular
from equirobot.nn.mlp import EquivariantLinear


class RelaxedGroupConv1d(nn.Module):
    """Relaxed regular group convolution over time, any finite group G: (B, C_in |G|, T) -> (B, C_out |G|, T).

    With ``kernel_size=1`` on (B, C, 1) it is a relaxed group-linear layer (the MLPs of state-based
    policies). Field channels are in escnn's order of the group elements.
    """

    shift: torch.Tensor  # buffer (N, N): see __init__

    def __init__(self, in_type: enn.FieldType, out_type: enn.FieldType, kernel_size: int, banks: int = 2):
        super().__init__()
        if not is_regular(in_type) or not is_regular(out_type) or in_type.fibergroup != out_type.fibergroup:
            raise ValueError(
                f"RelaxedGroupConv1d needs regular fields of one finite group, got {in_type}, {out_type}"
            )
        self.in_type, self.out_type = in_type, out_type
        self.order = in_type.fibergroup.order()
        self.c_in, self.c_out, self.kernel_size = len(in_type), len(out_type), kernel_size
        fan_in = in_type.size * kernel_size
        self.banks = nn.Parameter(
            torch.randn(banks, self.c_out, self.c_in, self.order, kernel_size) * math.sqrt(2 / fan_in / banks)
        )
        self.alpha = nn.Parameter(torch.ones(banks, self.order))  # equal over g: exactly equivariant
        self.bias = nn.Parameter(torch.zeros(self.c_out))
        # shift[g, h] = the index of g^-1 h: the kernel element that connects input element h to output
        # element g (for C_N: (h - g) mod N). Exact when alpha does not depend on g: then out(k g) reads
        # in(k h) through the same kernel element, which is the regular representation's action.
        elements = list(in_type.fibergroup.elements)
        index = {e: i for i, e in enumerate(elements)}
        shift = [[index[(~g) @ h] for h in elements] for g in elements]
        self.register_buffer("shift", torch.tensor(shift))

    def kernel(self) -> torch.Tensor:
        """(C_out N, C_in N, k) dense kernel: out element g reads ``sum_l alpha[l, g] bank_l[.., g^-1 h]``."""
        per_bank = self.banks[:, :, :, self.shift]  # (L, C_out, C_in, N_g, N_h, k)
        mixed = torch.einsum("lg,loighk->ogihk", self.alpha, per_bank)
        return mixed.reshape(self.out_type.size, self.in_type.size, self.kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias.repeat_interleave(self.order)
        return F.conv1d(x, self.kernel(), bias, padding=self.kernel_size // 2)

    def regularizer(self) -> torch.Tensor:
        """Squared spread of the combination weights over the group (0 when exactly equivariant)."""
        return ((self.alpha - self.alpha.mean(dim=1, keepdim=True)) ** 2).sum()

    def symmetry_breaking(self) -> float:
        """Relative spread of alpha over the group: |alpha - mean_g alpha| / |mean_g alpha|."""
        mean = self.alpha.mean(dim=1, keepdim=True)
        return float(
            ((self.alpha - mean).norm() / mean.expand_as(self.alpha).norm().clamp_min(1e-12)).detach()
        )


class RelaxedGroupLinear(RelaxedGroupConv1d):
    """A relaxed group-linear layer on (B, C |G|) vectors: :class:`RelaxedGroupConv1d` with one tap."""

    def __init__(self, in_type: enn.FieldType, out_type: enn.FieldType, banks: int = 2):
        super().__init__(in_type, out_type, 1, banks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x[..., None])[..., 0]


class RelaxedSteerableConv2d(nn.Module):
    """Relaxed steerable convolution on a fixed-size image: ``sum_l w_l(x) (K_l * f)(x)``.

    ``w_l`` are (H, W) maps initialised to 1/L everywhere, so the layer starts as an exactly equivariant
    steerable convolution (escnn's ``R2Conv`` banks) and breaks the symmetry only where its weights learn
    to vary over the image.
    """

    def __init__(
        self, in_type: enn.FieldType, out_type: enn.FieldType, kernel_size: int, size: int, banks: int = 2
    ):
        super().__init__()
        self.in_type, self.out_type, self.size = in_type, out_type, size
        self.convs = nn.ModuleList(
            enn.R2Conv(in_type, out_type, kernel_size, padding=kernel_size // 2) for _ in range(banks)
        )
        self.maps = nn.Parameter(torch.full((banks, size, size), 1.0 / banks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.size, self.size):
            raise ValueError(
                f"RelaxedSteerableConv2d was built for {self.size}x{self.size}, got {tuple(x.shape[-2:])}"
            )
        geometric = enn.GeometricTensor(x, self.in_type)
        return sum(m * conv(geometric).tensor for m, conv in zip(self.maps, self.convs, strict=True))

    def regularizer(self) -> torch.Tensor:
        """Squared deviation of each weight map from its mean over the image."""
        return ((self.maps - self.maps.mean(dim=(1, 2), keepdim=True)) ** 2).sum()

    def symmetry_breaking(self) -> float:
        mean = self.maps.mean(dim=(1, 2), keepdim=True)
        return float(((self.maps - mean).norm() / mean.expand_as(self.maps).norm().clamp_min(1e-12)).detach())


class RelaxedLinear(nn.Module):
    """``in_type -> out_type``: an equivariant linear map plus a free linear map initialised at zero."""

    def __init__(self, in_type: enn.FieldType, out_type: enn.FieldType):
        super().__init__()
        self.in_type, self.out_type = in_type, out_type
        self.equivariant = EquivariantLinear(in_type, out_type)
        self.free = nn.Linear(in_type.size, out_type.size, bias=False)
        nn.init.zeros_(self.free.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.equivariant(x) + self.free(x)

    def regularizer(self) -> torch.Tensor:
        return (self.free.weight**2).sum()

    def symmetry_breaking(self) -> float:
        """|W_free| / |W_equivariant| (Frobenius norms of the two maps)."""
        eq = self.equivariant.export().weight
        return float((self.free.weight.norm() / eq.norm().clamp_min(1e-12)).detach())


class RelaxedMLP(nn.Module):
    """in_type -> [regular hidden fields, ReLU] x L -> out_type, exactly equivariant at initialisation.

    Regular -> regular layers are :class:`RelaxedGroupLinear` (group-element-dependent weights over
    ``banks`` filter banks), the others (from the input type, to the output type) :class:`RelaxedLinear`.
    """

    def __init__(
        self, in_type: enn.FieldType, hidden_fields: tuple[int, ...], out_type: enn.FieldType, banks: int = 2
    ):
        super().__init__()
        if banks < 1:
            raise ValueError(f"relaxed layers need at least one filter bank, got {banks}")
        self.in_type, self.out_type = in_type, out_type
        layers: list[nn.Module] = []
        t = in_type
        for h in hidden_fields:
            nxt = enn.FieldType(in_type.gspace, h * [in_type.gspace.regular_repr])
            layers += [_relaxed_linear(t, nxt, banks), nn.ReLU()]
            t = nxt
        layers.append(_relaxed_linear(t, out_type, banks))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_type.size:
            raise ValueError(f"expected {self.in_type.size} channels ({self.in_type}), got {x.shape[-1]}")
        return self.net(x)


def _relaxed_linear(in_type: enn.FieldType, out_type: enn.FieldType, banks: int) -> nn.Module:
    if is_regular(in_type) and is_regular(out_type):
        return RelaxedGroupLinear(in_type, out_type, banks)
    return RelaxedLinear(in_type, out_type)


def relaxed_layers(module: nn.Module) -> list[RelaxedGroupConv1d | RelaxedSteerableConv2d | RelaxedLinear]:
    """Every relaxed layer inside ``module``."""
    kinds = (RelaxedGroupConv1d, RelaxedSteerableConv2d, RelaxedLinear)
    return [m for m in module.modules() if isinstance(m, kinds)]


def symmetry_regularizer(module: nn.Module) -> torch.Tensor:
    """Sum of the regularisers of every relaxed layer in ``module`` (add ``weight * this`` to the loss)."""
    terms = [layer.regularizer() for layer in relaxed_layers(module)]
    return torch.stack(terms).sum() if terms else torch.zeros(())
