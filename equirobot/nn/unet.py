"""Conditional 1-D UNet that predicts the noise of an action sequence, exactly equivariant.

The layout follows Diffusion Policy's ConditionalUnet1D (residual conv blocks with FiLM conditioning,
down/up sampling over time, skip connections); every layer here is equivariant:

* temporal convolutions are :class:`EquivariantConv1d` between regular fields, so each tap mixes the
  channels of the group elements by a group convolution (not only within one element, as running an
  ordinary UNet once per element does);
* normalisation is a GroupNorm whose groups hold whole fields, with one affine pair per field;
* FiLM scales and shifts come from an equivariant linear map of the condition into regular fields,
  applied channel by channel, which commutes with permuting the group elements;
* nonlinearities are pointwise, which regular fields allow.

With ``SceneSymmetry(order=1)`` every constraint vanishes and the same class is a plain UNet: the
non-equivariant baseline, with nothing copied.
"""

from __future__ import annotations

import math
from typing import cast

import torch
from escnn import nn as enn
from torch import nn

from equirobot.nn.conv1d import _TemporalConv, make_conv1d
from equirobot.nn.fields import fiber, layout_type, regular, trivial
from equirobot.symmetry.group import SceneSymmetry
from equirobot.symmetry.representations import Layout


def sinusoidal_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """(B,) diffusion steps -> (B, dim) sin/cos features at geometric frequencies."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000) * torch.arange(half, device=t.device) / (half - 1))
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class FieldGroupNorm(nn.Module):
    """GroupNorm over (B, n_fields * field_size, T) whose groups hold whole fields; affine per field."""

    def __init__(self, field_type: enn.FieldType, groups: int = 8):
        super().__init__()
        self.n_fields = len(field_type)
        self.field_size = field_type.size // self.n_fields
        self.norm = nn.GroupNorm(math.gcd(groups, self.n_fields), self.n_fields)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, t = x.shape
        return self.norm(x.reshape(b, self.n_fields, self.field_size * t)).reshape(x.shape)


class ConvBlock(nn.Module):
    """Equivariant conv -> field GroupNorm -> Mish."""

    def __init__(
        self, in_type: enn.FieldType, out_type: enn.FieldType, kernel_size: int, fourier: bool = True
    ):
        super().__init__()
        self.conv = make_conv1d(in_type, out_type, kernel_size, fourier=fourier)
        self.norm = FieldGroupNorm(out_type)
        self.act = nn.Mish()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


class ResidualBlock(nn.Module):
    """Two conv blocks with FiLM of the condition in between, plus a residual connection."""

    def __init__(
        self,
        in_type: enn.FieldType,
        out_type: enn.FieldType,
        cond_type: enn.FieldType,
        kernel_size: int,
        fourier: bool = True,
    ):
        super().__init__()
        self.block1 = ConvBlock(in_type, out_type, kernel_size, fourier)
        self.block2 = ConvBlock(out_type, out_type, kernel_size, fourier)
        film_type = enn.FieldType(out_type.gspace, 2 * out_type.representations)
        self.film = make_conv1d(cond_type, film_type, 1, fourier=fourier)  # an equivariant linear map
        self.residual = (
            make_conv1d(in_type, out_type, 1, fourier=fourier) if in_type != out_type else nn.Identity()
        )

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(nn.functional.mish(cond)[..., None]).chunk(2, dim=1)
        h = self.block1(x) * (1 + scale) + shift
        return self.block2(h) + self.residual(x)


class ConditionalUnet1D(nn.Module):
    """Noise prediction over (B, T, action) sequences, equivariant under ``sym``.

    Args:
        sym: the group (``SceneSymmetry(order=1)`` for the non-equivariant baseline).
        action_layout: how the action vector transforms (``ABS_ACTION``, ``DELTA_ACTION``).
        cond_type: field type of the observation condition on ``fiber(sym)`` (B, cond_type.size).
        down_dims: regular fields per level (channels = fields x group order).
        step_embed_dim: size of the diffusion-step embedding (invariant).
        fourier: compute regular-to-regular convolutions of C_N per group frequency (see
            :class:`~equirobot.nn.conv1d.RegularGroupConv1d`) rather than with expanded dense kernels.
    """

    def __init__(
        self,
        sym: SceneSymmetry,
        action_layout: Layout,
        cond_type: enn.FieldType,
        down_dims: tuple[int, ...] = (64, 128, 256),
        kernel_size: int = 5,
        step_embed_dim: int = 128,
        fourier: bool = True,
    ):
        super().__init__()
        self._config = dict(
            sym=sym,
            action_layout=action_layout,
            cond_type=cond_type,
            down_dims=down_dims,
            kernel_size=kernel_size,
            step_embed_dim=step_embed_dim,
            fourier=fourier,
        )
        self.sym, self.action_layout = sym, action_layout
        space = fiber(sym)
        self.action_type = layout_type(sym, action_layout)
        self.step_embed_dim = step_embed_dim
        self.step_mlp = nn.Sequential(
            nn.Linear(step_embed_dim, 4 * step_embed_dim),
            nn.Mish(),
            nn.Linear(4 * step_embed_dim, step_embed_dim),
        )
        self.obs_cond_type = cond_type
        cond_all = cond_type + trivial(space, step_embed_dim)
        types = [regular(space, d) for d in down_dims]

        self.down = nn.ModuleList()
        in_type = self.action_type
        for i, t in enumerate(types):
            last = i == len(types) - 1
            self.down.append(
                nn.ModuleList(
                    [
                        ResidualBlock(in_type, t, cond_all, kernel_size, fourier),
                        ResidualBlock(t, t, cond_all, kernel_size, fourier),
                        nn.Identity() if last else make_conv1d(t, t, 3, stride=2, padding=1, fourier=fourier),
                    ]
                )
            )
            in_type = t
        self.mid = nn.ModuleList(
            [ResidualBlock(types[-1], types[-1], cond_all, kernel_size, fourier) for _ in range(2)]
        )
        self.up = nn.ModuleList()
        for i in range(len(types) - 1, 0, -1):
            skip, out = types[i], types[i - 1]
            self.up.append(
                nn.ModuleList(
                    [
                        ResidualBlock(skip + skip, out, cond_all, kernel_size, fourier),
                        ResidualBlock(out, out, cond_all, kernel_size, fourier),
                        make_conv1d(out, out, 4, stride=2, padding=1, transpose=True, fourier=fourier),
                    ]
                )
            )
        self.final = nn.Sequential(
            ConvBlock(types[0], types[0], kernel_size, fourier),
            make_conv1d(types[0], self.action_type, 1, fourier=fourier),
        )

    def export(self) -> ConditionalUnet1D:
        """A copy for inference whose temporal convolutions are plain ``nn.Conv1d`` s (eval mode)."""
        exported = ConditionalUnet1D(**self._config)  # escnn types do not deep-copy
        exported.load_state_dict(self.state_dict())
        exported.eval()
        for module in list(exported.modules()):
            for name, child in module.named_children():
                if isinstance(child, _TemporalConv):
                    setattr(module, name, child.export())
        return exported

    def forward(self, noisy_actions: torch.Tensor, step: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """(B, T, A) layout order, (B,) steps, (B, cond) field order -> (B, T, A) predicted noise.

        T must be divisible by 2 ** (levels - 1).
        """
        if cond.shape[-1] != self.obs_cond_type.size:
            raise ValueError(f"condition has {cond.shape[-1]} channels, expected {self.obs_cond_type.size}")
        step = step.expand(noisy_actions.shape[0]) if step.dim() == 0 else step
        cond = torch.cat([cond, self.step_mlp(sinusoidal_embedding(step, self.step_embed_dim))], dim=-1)
        x = self.action_layout.to_fields(noisy_actions).transpose(1, 2)
        skips = []
        # Each level is a ModuleList of two blocks and a resampling (torch types its items as Module).
        for level in self.down:
            block1, block2, downsample = cast(nn.ModuleList, level)
            x = block2(block1(x, cond), cond)
            skips.append(x)
            x = downsample(x)
        for block in self.mid:
            x = block(x, cond)
        for level in self.up:
            block1, block2, upsample = cast(nn.ModuleList, level)
            x = torch.cat([x, skips.pop()], dim=1)
            x = upsample(block2(block1(x, cond), cond))
        x = self.final(x)
        return self.action_layout.from_fields(x.transpose(1, 2))
