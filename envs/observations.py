"""Observations rendered from a MuJoCo scene: images, depth, fused point clouds, voxels, heightmaps.

Rendering dominates the cost of a step on a CPU (llvmpipe): an 84x84 RGB frame costs about five
times a depth or segmentation frame. Point clouds and voxels therefore never render RGB: each camera
renders depth and geom segmentation, and a point's colour is looked up from its geom's material.
"""

from __future__ import annotations

import atexit
import weakref

import mujoco
import numpy as np

from equirobot_envs.config import EnvConfig
from equirobot_envs.features import IMAGE_CAMERAS
from equirobot_envs.geometry import Workspace
from equirobot_envs.point_clouds import cloud_features, crop

HEIGHTMAP_CAMERA = "equirobot_heightmap"


def geom_colours(model: mujoco.MjModel) -> np.ndarray:
    """(ngeom + 1, 3) float32 rgb in [0, 1] of every geom as it looks, plus a last row for background.

    A textured material contributes its texture's mean colour times its rgba.
    """
    colours = model.geom_rgba[:, :3].astype(np.float64).copy()
    tex_means = np.ones((model.ntex, 3))
    for t in range(model.ntex):
        n = model.tex_height[t] * model.tex_width[t] * model.tex_nchannel[t]
        texels = model.tex_data[model.tex_adr[t] : model.tex_adr[t] + n].reshape(-1, model.tex_nchannel[t])
        tex_means[t] = (
            texels[:, :3].mean(axis=0) / 255.0 if model.tex_nchannel[t] >= 3 else texels.mean() / 255.0
        )
    rgb_role = int(mujoco.mjtTextureRole.mjTEXROLE_RGB)
    for g in np.flatnonzero(model.geom_matid >= 0):
        mat = model.geom_matid[g]
        colours[g] = model.mat_rgba[mat, :3]
        tex = model.mat_texid[mat, rgb_role]
        if tex >= 0:
            colours[g] *= tex_means[tex]
    return np.vstack([colours, np.zeros((1, 3))]).astype(np.float32)


class DepthAndGeomPass:
    """Metric depth and geom ids of a perspective camera from a single render pass.

    ``mujoco.Renderer`` renders once for depth and once more for segmentation, although a segmentation
    pass writes the depth buffer too; reading both buffers of one pass halves the cost of a point cloud.
    """

    def __init__(self, model: mujoco.MjModel, size: int):
        self.model, self.size = model, size
        self._gl = mujoco.GLContext(size, size)
        self._gl.make_current()
        self._context = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_150)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._context)
        self._context.readDepthMap = mujoco.mjtDepthMap.mjDEPTH_ZEROFAR
        self._scene = mujoco.MjvScene(model, maxgeom=10_000)
        self._scene.flags[mujoco.mjtRndFlag.mjRND_SEGMENT] = True
        self._scene.flags[mujoco.mjtRndFlag.mjRND_IDCOLOR] = True
        self._rect = mujoco.MjrRect(0, 0, size, size)
        self._camera = mujoco.MjvCamera()
        self._camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._rgb = np.empty((size, size, 3), dtype=np.uint8)
        self._depth = np.empty((size, size), dtype=np.float32)
        extent = model.stat.extent
        near, far = model.vis.map.znear * extent, model.vis.map.zfar * extent
        # Read with reversed z (0 at the far plane): window depth d is metric depth b / (d + a).
        self._a = 0.5 * (far + near) / (far - near) - 0.5
        self._b = far * near / (far - near)

    def render(
        self, data: mujoco.MjData, camera: int, option: mujoco.MjvOption
    ) -> tuple[np.ndarray, np.ndarray]:
        """(size, size) float32 metres along the optical axis and int64 geom ids (-1: none), upright."""
        self._camera.fixedcamid = camera
        mujoco.mjv_updateScene(
            self.model, data, option, None, self._camera, mujoco.mjtCatBit.mjCAT_ALL, self._scene
        )
        self._gl.make_current()
        mujoco.mjr_render(self._rect, self._scene, self._context)
        mujoco.mjr_readPixels(self._rgb, self._depth, self._rect, self._context)
        depth = (self._b / (self._depth.astype(np.float64) + self._a)).astype(np.float32)[::-1]
        # Segmentation colours encode 1 + the index of the geom in the scene (0: background).
        segid = (
            self._rgb[..., 0].astype(np.int64)
            | self._rgb[..., 1].astype(np.int64) << 8
            | self._rgb[..., 2].astype(np.int64) << 16
        )[::-1]
        lookup = np.full(self._scene.ngeom + 1, -1, dtype=np.int64)
        for i in range(self._scene.ngeom):
            geom = self._scene.geoms[i]
            if geom.objtype == mujoco.mjtObj.mjOBJ_GEOM and geom.segid >= 0:
                lookup[geom.segid + 1] = geom.objid
        return depth, lookup[np.minimum(segid, self._scene.ngeom)]

    def close(self) -> None:
        self._context.free()
        self._gl.free()


class SceneObserver:
    """Renders the observation modes of an :class:`~equirobot_envs.config.EnvConfig` from a live scene."""

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData, config: EnvConfig, workspace: Workspace):
        self.model, self.data, self.config, self.workspace = model, data, config, workspace
        self._renderers: dict[int, mujoco.Renderer] = {}
        self._rays: dict[tuple[str, int], np.ndarray] = {}
        self._depth_id_passes: dict[int, DepthAndGeomPass] = {}
        # Free GL contexts on close or garbage collection, and at exit before EGL itself is terminated
        # (an unclosed mujoco.Renderer otherwise prints EGL errors at interpreter shutdown).
        self._finalizer = weakref.finalize(self, self._close_all, self._renderers, self._depth_id_passes)
        self._finalizer.atexit = False
        self._exit_hook = False
        self._colours = geom_colours(model)
        self._scene_option = mujoco.MjvOption()
        self._scene_option.geomgroup[0] = 0  # collision geoms: robosuite draws visual geoms (group 1) only
        extent = model.stat.extent
        self._near, self._far = model.vis.map.znear * extent, model.vis.map.zfar * extent

    @property
    def far_clip(self) -> float:
        """Depth of the far clipping plane, metres: the largest depth a camera reports."""
        return float(self._far)

    def close(self) -> None:
        self._finalizer()

    @staticmethod
    def _close_all(*pools: dict) -> None:
        for pool in pools:
            for renderer in pool.values():
                renderer.close()
            pool.clear()

    def _renderer(self, size: int) -> mujoco.Renderer:
        if size not in self._renderers:
            self._renderers[size] = mujoco.Renderer(self.model, size, size)
            self._close_at_exit()
        return self._renderers[size]

    def _close_at_exit(self) -> None:
        # Registered after the first GL context exists, hence after mujoco's atexit eglTerminate, so it
        # runs before it (atexit is last-in first-out).
        if not self._exit_hook:
            atexit.register(self._finalizer)
            self._exit_hook = True

    def render_rgb(self, camera: str, size: int) -> np.ndarray:
        """(size, size, 3) uint8, upright."""
        r = self._renderer(size)
        r.update_scene(self.data, camera=camera, scene_option=self._scene_option)
        return r.render().copy()

    def render_depth(
        self, camera: str, size: int, scene_option: mujoco.MjvOption | None = None
    ) -> np.ndarray:
        """(size, size) float32 distance along the optical axis, metres (``scene_option``: geom groups)."""
        r = self._renderer(size)
        r.enable_depth_rendering()
        try:
            r.update_scene(self.data, camera=camera, scene_option=scene_option or self._scene_option)
            depth = r.render().copy()
        finally:
            r.disable_depth_rendering()
        if (
            self.model.cam_projection[self.model.camera(camera).id]
            == mujoco.mjtProjection.mjPROJ_ORTHOGRAPHIC
        ):
            # The renderer linearises depth as for a perspective camera; an orthographic depth buffer is
            # already linear in distance, so undo that and rescale.
            z = (1.0 - self._near / depth) / (1.0 - self._near / self._far)
            depth = self._near + z * (self._far - self._near)
        return depth.astype(np.float32)

    def render_geom_ids(self, camera: str, size: int) -> np.ndarray:
        """(size, size) int64 geom id per pixel; -1 where no geom is seen."""
        r = self._renderer(size)
        r.enable_segmentation_rendering()
        try:
            r.update_scene(self.data, camera=camera, scene_option=self._scene_option)
            seg = r.render()
        finally:
            r.disable_segmentation_rendering()
        ids = seg[..., 0].astype(np.int64)
        ids[seg[..., 1] != mujoco.mjtObj.mjOBJ_GEOM] = -1
        return ids

    def camera_points(self, camera: str, size: int) -> np.ndarray:
        """(H*W, 6) world xyz + rgb of every pixel of one camera (background rows included)."""
        cam = self.model.camera(camera).id
        key = (camera, size)
        if key not in self._rays:
            f = 0.5 * size / np.tan(np.deg2rad(self.model.cam_fovy[cam]) / 2)
            u = (np.arange(size) + 0.5 - size / 2) / f
            xs, ys = np.meshgrid(u, -u)  # row 0 is the top of the image: +y in the camera frame
            self._rays[key] = np.stack([xs, ys, -np.ones_like(xs)], axis=-1).reshape(-1, 3)
        if size not in self._depth_id_passes:
            self._depth_id_passes[size] = DepthAndGeomPass(self.model, size)
            self._close_at_exit()
        depth, ids = self._depth_id_passes[size].render(self.data, cam, self._scene_option)
        xyz = (
            self.data.cam_xpos[cam]
            + (self._rays[key] * depth.reshape(-1, 1)) @ self.data.cam_xmat[cam].reshape(3, 3).T
        )
        return np.hstack([xyz, self._colours[ids.reshape(-1)]])  # id -1 picks the background row

    def workspace_points(self) -> np.ndarray:
        """(M, 6) points of all point-cloud cameras that fall inside the workspace cube."""
        cfg = self.config
        pts = np.vstack([self.camera_points(c, cfg.point_cloud_camera_size) for c in cfg.point_cloud_cameras])
        return crop(pts, self.workspace)

    def observe(self) -> dict[str, np.ndarray]:
        """Every array the configured modes ask for, keyed as in DESIGN.md (proprio and state excluded)."""
        cfg, out = self.config, {}
        if "rgb" in cfg.obs:
            for cam in IMAGE_CAMERAS:
                out[f"{cam}_image"] = self.render_rgb(cam, cfg.image_size)
        if "depth" in cfg.obs:
            for cam in IMAGE_CAMERAS:
                out[f"{cam}_depth"] = self.render_depth(cam, cfg.image_size)[..., None]
        if "point_cloud" in cfg.obs or "voxels" in cfg.obs:
            n_points = cfg.n_points if "point_cloud" in cfg.obs else None
            voxel_size = cfg.voxel_size if "voxels" in cfg.obs else None
            out.update(cloud_features(self.workspace_points(), self.workspace, n_points, voxel_size))
        if "heightmap" in cfg.obs:
            depth = self.render_depth(HEIGHTMAP_CAMERA, cfg.heightmap_size)
            cam_z = self.data.cam_xpos[self.model.camera(HEIGHTMAP_CAMERA).id][2]
            out["heightmap"] = np.clip(cam_z - depth - self.workspace.center[2], 0.0, None).astype(np.float32)
        return out
