"""``equirobot check-equivariance``: the equivariance error of every module of the catalog."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from equirobot.config import CheckEquivarianceConfig
from equirobot.nn.catalog import catalog
from equirobot.symmetry.checks import equivariance_error
from equirobot.symmetry.group import SceneSymmetry


def run(cfg: CheckEquivarianceConfig) -> bool:
    """Print one row per module; returns whether every module passed on its exact elements."""
    all_ok = True
    table = Table(title="equivariance error (relative, max over inputs), train and eval mode")
    for column in ("group", "module", "exact elements", "max error exact", "max error other", "result"):
        table.add_column(column)
    for name in cfg.groups:
        sym = SceneSymmetry.from_name(name)
        for case in catalog(sym):
            errors = []
            for train in (True, False):
                case.module.train(train)
                errors += equivariance_error(
                    case, case.inputs, case.act_in, case.act_out, sym.elements, case.is_exact
                )
            exact = [e.relative_error for e in errors if e.exact]
            other = [e.relative_error for e in errors if not e.exact]
            ok = max(exact) < cfg.tolerance
            all_ok &= ok
            table.add_row(
                name,
                case.name,
                f"{len(exact) // 2}/{len(sym.elements)}",
                f"{max(exact):.1e}",
                f"{max(other):.1e}" if other else "-",
                "[green]ok" if ok else "[red]FAIL",
            )
    Console(width=150).print(table)
    return all_ok
