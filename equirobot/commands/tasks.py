"""``equirobot tasks``: every task registry as a table, with the MimicGen benchmark tasks not built yet."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from equirobot.config import TasksConfig
from equirobot_envs.registry import BENCHMARK, closed_loop_specs, control_specs, open_loop_specs, task_specs


def run(cfg: TasksConfig) -> None:
    """Print the registries and the benchmark tasks still missing."""
    specs = task_specs()
    table = Table(title="equirobot tasks")
    for column in ("config", "gymnasium id", "horizon", "objects", "variants", "MimicGen-12"):
        table.add_column(column)
    variants: dict[str, list[str]] = {}
    for spec in specs.values():
        variants.setdefault(spec.name, []).append(spec.variant)
    for spec in specs.values():
        table.add_row(
            spec.config_name,
            spec.env_id,
            str(spec.horizon),
            ", ".join(spec.objects),
            " ".join(variants[spec.name]),
            "yes" if (spec.name, spec.variant) in BENCHMARK else "",
        )
    console = Console(width=max(Console().width, 150))  # piped output gets 80 columns: ids would be cut
    console.print(table)
    missing = [
        f"{name} {variant}"
        for name, variant in BENCHMARK
        if f"{name}-{variant}" not in {f"{s.name}-{s.variant}" for s in specs.values()}
    ]
    built = len(BENCHMARK) - len(missing)
    summary = f"MimicGen benchmark: {built}/{len(BENCHMARK)} tasks built"
    console.print(summary + (f"; not built yet: {', '.join(missing)}" if missing else ""))
    for title, specs_of in (
        (
            "closed-loop RL tasks (SO(2)-equivariant RL): obs gripper_heightmap, control closed_loop",
            closed_loop_specs,
        ),
        (
            "open-loop RL tasks (Equivariant Q Learning in Spatial Action Spaces): obs workspace_heightmap, "
            "control pick_place (horizon: primitives)",
            open_loop_specs,
        ),
    ):
        family = Table(title=title)
        for column in ("config", "gymnasium id", "horizon", "objects", "description"):
            family.add_column(column)
        for spec in specs_of().values():
            family.add_row(
                spec.config_name, spec.env_id, str(spec.horizon), ", ".join(spec.objects), spec.description
            )
        console.print(family)
    control = Table(
        title="flip-asymmetric control tasks (relaxed equivariance): obs joint_state, control torque, "
        "asymmetry=delta"
    )
    for column in ("config", "gymnasium id", "horizon", "group", "state signs per mirror", "description"):
        control.add_column(column)
    for spec in control_specs().values():
        signs = " / ".join("".join("+" if v > 0 else "-" for v in s) for s in spec.reflections.state)
        control.add_row(
            spec.config_name, spec.env_id, str(spec.horizon), spec.reflections.group, signs, spec.description
        )
    console.print(control)
