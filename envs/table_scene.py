"""A table, a Panda and a task's objects: the robosuite scene the project-built tasks share.

A task subclasses :class:`TableScene`, builds its objects in :meth:`TableScene._make_objects` (movable
ones with a free joint) and :meth:`TableScene._make_fixtures` (no joint: a drawer cabinet, a stove),
and defines :meth:`TableScene._check_success`. Where everything starts is data, a
:class:`Placement` per object, drawn in order at every reset from the scene's ``rng`` the way
robosuite's ``UniformRandomSampler`` draws (x, y, yaw uniform; redrawn while the horizontal radii of
two objects overlap), so the same seed gives the same scene.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from robosuite.environments.manipulation.manipulation_env import ManipulationEnv
from robosuite.models.arenas import TableArena
from robosuite.models.tasks import ManipulationTask
from robosuite.utils.mjcf_utils import CustomMaterial

from equirobot_envs.scene import SceneMixin

Range = tuple[float, float]
MAX_TRIES = 5000  # as robosuite's samplers


def fixed(value: float) -> Range:
    """A range holding one value."""
    return (value, value)


@dataclass(frozen=True)
class Placement:
    """Where an object starts: x, y offsets from the table-top centre, yaw (radians), all uniform.

    ``z_offset``: height of the object's bottom above the table top (movable objects); ``z``: the world
    height of a fixture's body (MimicGen hard-sets these). ``overlap``: whether the object keeps its
    horizontal radius clear of the others (False: a visual marker, which others may overlap too).
    """

    x: Range
    y: Range
    yaw: Range = (0.0, 2 * np.pi)
    z_offset: float = 0.0
    z: float | None = None
    overlap: bool = True

    def __post_init__(self) -> None:
        for name in ("x", "y", "yaw"):
            low, high = getattr(self, name)
            if low > high:
                raise ValueError(f"Placement.{name}: empty range ({low}, {high})")


def wood(texture: str, name: str) -> CustomMaterial:
    """One of robosuite's wood materials (``"WoodRed"``, ``"WoodGreen"``, ``"WoodBlue"``...)."""
    return CustomMaterial(
        texture=texture,
        tex_name=name,
        mat_name=f"{name}_mat",
        tex_attrib={"type": "cube"},
        mat_attrib={"texrepeat": "1 1", "specular": "0.4", "shininess": "0.1"},
    )


class TableEnv(ManipulationEnv):
    """robosuite ``ManipulationEnv`` with a ``TableArena`` and objects placed by :class:`Placement` s.

    ``placements`` maps object names (keys of :meth:`_make_objects` and :meth:`_make_fixtures`) to
    where they start; they are drawn in this order.
    """

    table_full_size = (0.8, 0.8, 0.05)
    table_offset = (0.0, 0.0, 0.8)
    table_friction = (1.0, 5e-3, 1e-4)

    def __init__(
        self,
        placements: dict[str, Placement],
        use_object_obs: bool = True,  # accepted for robosuite's signature; objects are always observed
        reward_shaping: bool = False,
        **kwargs,
    ):
        self.placements = dict(placements)
        self.reward_shaping = reward_shaping
        super().__init__(**kwargs)

    # -- to define per task ---------------------------------------------------------------------
    def _make_objects(self) -> dict:
        """Movable objects (robosuite ``MujocoObject`` s with a free joint), by name."""
        return {}

    def _make_fixtures(self) -> dict:
        """Objects without a joint, moved per episode by writing their body pose into the model."""
        return {}

    def _check_success(self) -> bool:
        raise NotImplementedError

    # -- robosuite hooks ----------------------------------------------------------------------------
    @property
    def table_top(self) -> float:
        return float(self.table_offset[2])

    def _load_model(self) -> None:
        super()._load_model()
        robot = self.robots[0].robot_model
        robot.set_base_xpos(robot.base_xpos_offset["table"](self.table_full_size[0]))
        arena = TableArena(
            table_full_size=self.table_full_size,
            table_friction=self.table_friction,
            table_offset=self.table_offset,
        )
        arena.set_origin([0, 0, 0])
        self.objects, self.fixtures = self._make_objects(), self._make_fixtures()
        unknown = set(self.placements) - set(self.objects) - set(self.fixtures)
        if unknown:
            raise ValueError(f"placements for unknown objects {sorted(unknown)}")
        self.model = ManipulationTask(
            mujoco_arena=arena,
            mujoco_robots=[robot],
            mujoco_objects=[*self.objects.values(), *self.fixtures.values()],
        )

    def _setup_references(self) -> None:
        super()._setup_references()
        self.body_ids = {
            name: self.sim.model.body_name2id(obj.root_body)
            for name, obj in {**self.objects, **self.fixtures}.items()
        }
        model = self.sim.model
        self.free_joints = {  # an articulated object (a machine with a lid) has more joints than its free one
            name: next(j for j in obj.joints if model.jnt_type[model.joint_name2id(j)] == 0)
            for name, obj in self.objects.items()
        }

    def _reset_internal(self) -> None:
        super()._reset_internal()
        if self.deterministic_reset:
            return
        placed: list[tuple[np.ndarray, float]] = []  # (xy, horizontal radius)
        for name, place in self.placements.items():
            obj = self.objects.get(name) or self.fixtures[name]
            radius = obj.horizontal_radius
            for _ in range(MAX_TRIES):
                xy = np.array([self.rng.uniform(*place.x), self.rng.uniform(*place.y)])
                xy += self.table_offset[:2]
                if not place.overlap or all(np.linalg.norm(xy - p) > r + radius for p, r in placed):
                    break
            yaw = self.rng.uniform(*place.yaw)
            quat = self._initial_quat(name, yaw)
            if place.overlap:
                placed.append((xy, radius))
            if name in self.fixtures:
                z = place.z if place.z is not None else self.table_top + place.z_offset - obj.bottom_offset[2]
                i = self.body_ids[name]
                self.sim.model.body_pos[i], self.sim.model.body_quat[i] = (*xy, z), quat
            else:
                z = self.table_top + place.z_offset - obj.bottom_offset[2]
                self.sim.data.set_joint_qpos(self.free_joints[name], np.concatenate([xy, [z], quat]))
        self._reset_joints()
        self.sim.forward()

    def _initial_quat(self, name: str, yaw: float) -> np.ndarray:
        """The wxyz orientation of an object at ``yaw`` (a task may compose a lying-down pose)."""
        return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])

    def _reset_joints(self) -> None:
        """Set the task's articulated joints (a drawer's slide, a lid's hinge) to their start."""

    def reward(self, action=None) -> float:
        return float(self._check_success())


class TableScene(SceneMixin, TableEnv):
    """:class:`TableEnv` with equirobot's cameras; the class a task's scene subclasses."""

    def fixture_poses(self) -> dict[str, list[float]]:
        model = self.sim.model
        return {
            obj.root_body: [
                *map(float, model.body_pos[self.body_ids[name]]),
                *map(float, model.body_quat[self.body_ids[name]]),
            ]
            for name, obj in self.fixtures.items()
        }
