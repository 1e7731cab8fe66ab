"""``equirobot bench nets``: forward and backward times of the encoders and the denoiser.

Each equivariant module is timed beside its non-equivariant counterpart, built by the same class over
the trivial group C1 with as many channels (so the counterpart has about |G| times the parameters and
the same dense compute), and, for the denoiser, beside the Equivariant Diffusion Policy's construction:
an ordinary UNet of the per-element width run once per group element (the group folded into the batch).
All in one process, one after another, so the ratios are comparable on a noisy machine.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from rich.console import Console
from rich.table import Table
from torch import nn

from equirobot.config import BenchNetsConfig
from equirobot.nn.fields import fiber, regular
from equirobot.nn.grid_encoders import SteerableGridEncoder
from equirobot.nn.point_encoder import EquivariantPointEncoder
from equirobot.nn.unet import ConditionalUnet1D
from equirobot.symmetry.group import SceneSymmetry
from equirobot.symmetry.representations import ABS_ACTION

CENTER = (0.0, 0.0, 0.8)


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn`` in milliseconds, after one warm-up call."""
    fn()  # warm-up: caches, allocator
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * sorted(times)[len(times) // 2]


def time_module(module: nn.Module, make_input: Callable[[int], tuple], batch: int, repeats: int) -> dict:
    """Inference latency at batch 1 (eval, no grad) and a training step's forward+backward at ``batch``."""
    params = sum(p.numel() for p in module.parameters())
    module.eval()
    one = make_input(1)
    with torch.no_grad():
        infer = median_ms(lambda: module(*one), repeats)
    module.train()
    many = make_input(batch)

    def train_step() -> None:
        module.zero_grad(set_to_none=True)
        out = module(*many)
        out.square().mean().backward()

    train = median_ms(train_step, max(repeats // 2, 2))
    return {"params": params, "infer_ms_b1": infer, f"train_ms_b{batch}": train}


def modules(cfg: BenchNetsConfig) -> dict[str, tuple[nn.Module, Callable[[int], tuple]]]:
    """Name -> (module, batch size -> inputs) for every timed network."""
    sym, plain = SceneSymmetry.from_name(cfg.group), SceneSymmetry(order=1)
    n = sym.group.order()
    out: dict[str, tuple[nn.Module, Callable[[int], tuple]]] = {}
    image = lambda b: (torch.rand(b, 3, cfg.image_size, cfg.image_size),)  # noqa: E731
    voxels = lambda b: (torch.rand(b, 4, cfg.voxel_size, cfg.voxel_size, cfg.voxel_size),)  # noqa: E731
    cloud = lambda b: (torch.rand(b, cfg.n_points, 6) - torch.tensor([0.5, 0.5, -0.8, 0, 0, 0]),)  # noqa: E731
    for s, scale, tag in ((sym, 1, cfg.group), (plain, n, "C1 same channels")):
        widths = tuple(w * scale for w in cfg.image_widths)
        out[f"image encoder {tag}"] = (SteerableGridEncoder(s, 3, 2, widths, cfg.out_fields * scale), image)
        widths = tuple(w * scale for w in cfg.voxel_widths)
        out[f"voxel encoder {tag}"] = (
            SteerableGridEncoder(s, 4, 3, widths, cfg.out_fields * scale, input_pool=cfg.voxel_input_pool),
            voxels,
        )
        out[f"point encoder {tag}"] = (EquivariantPointEncoder(s, CENTER, out_fields=cfg.out_fields), cloud)
    for name in [k for k in out if k.startswith(("image", "voxel")) and cfg.group in k]:
        encoder, make_input = out[name]
        assert isinstance(encoder, SteerableGridEncoder)  # the image and voxel encoders above
        encoder.train()
        encoder(*make_input(2))  # batch-norm statistics away from their defaults
        out[f"{name} exported"] = (_Frozen(encoder.export()), make_input)
    cond = regular(fiber(sym), cfg.out_fields)

    def denoiser_input(size: int, group_batch: int = 1) -> Callable[[int], tuple]:
        return lambda b: (
            torch.randn(b * group_batch, cfg.horizon, 10),
            torch.zeros(b * group_batch, dtype=torch.long),
            torch.randn(b * group_batch, size),
        )

    dims = tuple(cfg.down_dims)
    out[f"denoiser {cfg.group} (Fourier group conv)"] = (
        ConditionalUnet1D(sym, ABS_ACTION, cond, dims),
        denoiser_input(cond.size),
    )
    out[f"denoiser {cfg.group} (dense kernels)"] = (
        ConditionalUnet1D(sym, ABS_ACTION, cond, dims, fourier=False),
        denoiser_input(cond.size),
    )
    plain_cond = regular(fiber(plain), cond.size)
    out["denoiser C1 same channels"] = (
        ConditionalUnet1D(plain, ABS_ACTION, plain_cond, tuple(d * n for d in dims)),
        denoiser_input(cond.size),
    )
    similar = tuple(round(d * n**0.5) for d in dims)  # about the parameter count of the C_N denoiser
    out["denoiser C1 similar params"] = (
        ConditionalUnet1D(plain, ABS_ACTION, plain_cond, similar),
        denoiser_input(cond.size),
    )
    anchor_cond = regular(fiber(plain), cfg.out_fields)
    out[f"denoiser anchor-style (C1 x {n} batch)"] = (
        ConditionalUnet1D(plain, ABS_ACTION, anchor_cond, dims),
        denoiser_input(cfg.out_fields, n),
    )
    return out


class _Frozen(nn.Module):
    """An exported (inference-only) module: timed in eval mode for both columns' forward pass."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, *args):
        return self.module(*args)


def run(cfg: BenchNetsConfig) -> dict:
    """Time every module, print a table, write ``bench_nets.json``."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(0)
    results = {}
    for name, (module, make_input) in modules(cfg).items():
        results[name] = time_module(module, make_input, cfg.batch, cfg.repeats)
        Console().print(f"{name}: {results[name]}")
    table = Table(title=f"bench nets: {cfg.threads} threads, median of {cfg.repeats}")
    for column in ("module", "params", "infer ms (batch 1)", f"fwd+bwd ms (batch {cfg.batch})"):
        table.add_column(column, justify="right")
    for name, r in results.items():
        table.add_row(
            name, f"{r['params'] / 1e6:.2f}M", f"{r['infer_ms_b1']:.1f}", f"{r[f'train_ms_b{cfg.batch}']:.1f}"
        )
    Console(width=150).print(table)
    path = Path(HydraConfig.get().runtime.output_dir) / "bench_nets.json"
    path.write_text(
        json.dumps(
            {"config": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__}, "results": results},
            indent=2,
            default=list,
        )
    )
    Console().print(f"written: {path}")
    return results
