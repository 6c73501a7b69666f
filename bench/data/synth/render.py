"""Ray-cast renderer of the synthetic world: RGB, metric depth, instance ids and object surface points.

One z-buffered pass per frame. Every pixel's ray (camera-z normalised, so the ray parameter is the
depth) is intersected with the ground plane, the static scenery (world-axis-aligned boxes) and each
object's parts (boxes in the object frame, slab test). Boxes are culled to their projected 2D box,
so the cost scales with the pixels they cover. Textures are procedural functions of the hit point
(hash noise, bricks, windows, lane markings, wheels, lights), so that appearance matching and SfM
keypoints have something to hold on to.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from bench.data.geometry import box_corners, project_boxes_2d
from bench.data.synth.world import CLASS_NAMES, LANE, World

KIND_SKY, KIND_GROUND, KIND_STATIC, KIND_OBJECT = 0, 1, 2, 3
MAX_RANGE = 400.0  # ground beyond this is treated as horizon (sky)
STATIC_RANGE = 160.0  # scenery beyond this is lost in the haze anyway and skipped
OBJECT_RANGE = 150.0  # objects beyond this cover about a pixel; not rendered (nor labelled)


@dataclass
class Frame:
    """One rendered frame with all ground-truth layers."""

    rgb: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray  # (H, W) float32, metres along the camera z axis; inf for sky
    instance: np.ndarray  # (H, W) int32 track id or -1
    surface: np.ndarray  # (H, W, 3) float32 object-local hit point (KITTI box frame) or NaN
    amodal: np.ndarray  # (num_objects,) pixels each object would cover in the image without occluders
    visible: np.ndarray  # (num_objects,) pixels it does cover
    behind_scenery: np.ndarray  # (num_objects,) of its amodal pixels, those hidden by buildings/poles/trees


def hash01(a: np.ndarray, b: np.ndarray, seed: int | np.ndarray = 0) -> np.ndarray:
    """Deterministic per-cell noise in [0, 1) from integer-valued cell coordinates (a cheap integer hash)."""
    h = a.astype(np.int32).view(np.uint32) * np.uint32(0x8DA6B343)
    h ^= b.astype(np.int32).view(np.uint32) * np.uint32(0xD8163841)
    h ^= np.asarray(seed, dtype=np.uint32) * np.uint32(0xCB1AB31F)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0x5BD1E995)
    h ^= h >> np.uint32(15)
    return (h >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / (1 << 24))


def intrinsics_for(width: int, height: int, focal_ratio: float) -> np.ndarray:
    """Pinhole intrinsics with fx = fy = focal_ratio * width and the principal point at the centre."""
    f = focal_ratio * width
    return np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], dtype=np.float64)


class Renderer:
    """Renders the frames of one :class:`World` with fixed intrinsics and image size."""

    def __init__(self, world: World, intrinsics: np.ndarray, width: int, height: int) -> None:
        self.world, self.K, self.width, self.height = world, intrinsics, width, height
        u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
        kinv = np.linalg.inv(intrinsics)
        self.rays_cam = np.stack([kinv[0, 0] * u + kinv[0, 2], kinv[1, 1] * v + kinv[1, 2],
                                  np.ones_like(u)], -1).astype(np.float32)  # (H, W, 3), z = 1
        r2 = ((u - width / 2) ** 2 + (v - height / 2) ** 2) / ((width / 2) ** 2 + (height / 2) ** 2)
        vignette = (1.0 - 0.22 * r2).reshape(-1, 1)
        self.vignette_tint = (vignette * world.look["tint"]).astype(np.float32)  # (H * W, 3)
        objs = world.objects
        self.obj_cls = np.array([CLASS_NAMES.index(o.cls) for o in objs], dtype=np.int64)
        self.obj_hwl = np.array([o.hwl for o in objs], dtype=np.float32).reshape(-1, 3)
        self.obj_colour = np.array([o.colour for o in objs], dtype=np.float32).reshape(-1, 3)
        self.obj_colour2 = np.array([o.colour2 for o in objs], dtype=np.float32).reshape(-1, 3)
        self._noise: np.ndarray | None = None
        self.obj_parts = np.zeros((len(objs), 2, 6), dtype=np.float32)  # padded part boxes, for face lookup
        for i, ob in enumerate(objs):
            self.obj_parts[i, : len(ob.parts)] = ob.parts
        st = world.static
        self.st_material = st.material.astype(np.int8)
        self.st_colour = st.colour.astype(np.float32)
        self.st_spacing, self.st_floor = st.pattern[:, 0].astype(np.float32), st.pattern[:, 1].astype(np.float32)
        self.st_seed = st.pattern[:, 2].astype(np.uint32)
        self.st_top = st.boxes[:, 5].astype(np.float32)
        # Poles and trunks (materials 1, 2) are skipped once thinner than min_width_px pixels.
        thin = np.isin(st.material, (1, 2))
        self.static_width = np.where(thin, st.boxes[:, 1] - st.boxes[:, 0], np.inf)
        self.min_width_px = 1.0

    # ---- camera-frame boxes for culling -------------------------------------------------------
    def _static_regions(self, world_to_cam: np.ndarray) -> list[tuple[int, list[int], float]]:
        b = self.world.static.boxes
        if len(b) == 0:
            return []
        centre = np.stack([(b[:, 0] + b[:, 1]) / 2, (b[:, 2] + b[:, 3]) / 2, b[:, 4]], -1)
        return self._regions(centre, np.zeros(len(b)), b[:, 1] - b[:, 0], b[:, 3] - b[:, 2],
                             b[:, 5] - b[:, 4], world_to_cam, STATIC_RANGE)

    def _regions(self, bottom: np.ndarray, heading: np.ndarray, length: np.ndarray, width: np.ndarray,
                 height: np.ndarray, world_to_cam: np.ndarray, max_range: float = MAX_RANGE
                 ) -> list[tuple[int, list[int], float]]:
        """Pixel rectangles (x0, y0, x1, y1) covered by world boxes, nearest first, with their nearest depth."""
        bottom_cam = bottom @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]
        forward = np.stack([np.cos(heading), np.sin(heading), np.zeros_like(heading)], -1) @ world_to_cam[:3, :3].T
        yaw = np.arctan2(-forward[:, 2], forward[:, 0])
        boxes = np.stack([bottom_cam[:, 0], bottom_cam[:, 1], bottom_cam[:, 2], height, width, length, yaw], -1)
        radius = 0.5 * np.hypot(length, width) + height
        # Conservative frustum test on a bounding sphere: in front, in range, within the horizontal field of view.
        reach = bottom_cam[:, 2] + radius
        tan_half = self.width / 2 / self.K[0, 0]
        keep = (reach > 0.1) & (np.linalg.norm(bottom_cam, axis=1) - radius < max_range)
        keep &= np.abs(bottom_cam[:, 0]) - radius < reach * tan_half
        idx = np.flatnonzero(keep)
        if len(idx) == 0:
            return []
        near = np.maximum(box_corners(boxes[idx])[..., 2].min(1), 0.0)
        with warnings.catch_warnings():  # boxes wholly behind the camera project to NaN, on purpose
            warnings.simplefilter("ignore", RuntimeWarning)
            rect = project_boxes_2d(boxes[idx], self.K, (self.width, self.height))
        finite = np.isfinite(rect).all(1)
        rect = np.where(finite[:, None], rect, 0)
        lo, hi = np.floor(rect[:, :2]).astype(np.int64), np.ceil(rect[:, 2:]).astype(np.int64)
        ok = np.flatnonzero(finite & (hi[:, 0] > lo[:, 0]) & (hi[:, 1] > lo[:, 1]))
        ok = ok[np.argsort(near[ok], kind="stable")]
        return list(zip(idx[ok].tolist(), np.concatenate([lo[ok], hi[ok]], 1).tolist(), near[ok].tolist(),
                        strict=True))

    # ---- the pass ---------------------------------------------------------------------------
    def render(self, index: int, rng: np.random.Generator) -> Frame:
        world, H, W = self.world, self.height, self.width
        pose = world.cam_to_world[index]
        world_to_cam = np.linalg.inv(pose)
        R = pose[:3, :3].astype(np.float32)
        a, b = self.rays_cam[0, :, 0][None, :], self.rays_cam[:, 0, 1][:, None]  # separable pixel rays
        dx, dy, dz = (R[k, 0] * a + R[k, 1] * b + R[k, 2] for k in range(3))
        o = pose[:3, 3].astype(np.float32)
        tiny = np.float32(1e-9)
        ix, iy, iz = (1.0 / np.where(np.abs(c) < tiny, tiny, c) for c in (dx, dy, dz))
        t_ground = np.where(dz < 0, -o[2] * iz, np.inf).astype(np.float32)
        ground = t_ground < MAX_RANGE
        depth = np.where(ground, t_ground, np.inf).astype(np.float32)
        kind = ground.astype(np.uint8)  # KIND_GROUND where ground, else KIND_SKY
        idx = np.full((H, W), -1, dtype=np.int32)
        part = np.zeros((H, W), dtype=np.int8)
        local = np.empty((H, W, 3), dtype=np.float32)  # read only where an object was hit
        shadow = np.ones((H, W), dtype=np.float32)

        # Static scenery: world-axis-aligned boxes, near to far, skipped when already hidden.
        boxes = world.static.boxes
        for i, (x0, y0, x1, y1), near in self._static_regions(world_to_cam):
            if near * self.min_width_px > self.static_width[i] * self.K[0, 0]:
                continue  # level of detail: a pole thinner than a pixel would only alias in and out
            sub = np.s_[y0:y1, x0:x1]
            dsub = depth[sub]
            if dsub.max() < near:
                continue
            bx = boxes[i]
            t_near, t_far = _slab((ix[sub], iy[sub], iz[sub]), bx[0::2] - o, bx[1::2] - o)
            hit = (t_near <= t_far) & (t_near > 0) & (t_near < dsub)
            if not hit.any():
                continue
            dsub[hit] = t_near[hit]
            idx[sub][hit] = i

        # Objects: parts in the object frame (x forward, y left, z up), slab test per part.
        n_obj, n_static = len(world.objects), len(boxes)
        amodal = np.zeros(n_obj, dtype=np.int64)
        behind_scenery = np.zeros(n_obj, dtype=np.int64)
        scenery_depth = depth.copy()
        if n_obj:
            xy = np.array([ob.xy[index] for ob in world.objects])
            heading = np.array([ob.heading[index] for ob in world.objects])
            hwl = self.obj_hwl.astype(np.float64)
            bottom = np.concatenate([xy, np.zeros((n_obj, 1))], 1)
            regions = self._regions(bottom, heading, hwl[:, 2], hwl[:, 1], hwl[:, 0], world_to_cam, OBJECT_RANGE)
        else:
            regions = []
        for i, (x0, y0, x1, y1), near in regions:
            sub = np.s_[y0:y1, x0:x1]
            behind = scenery_depth[sub]
            if behind.max() < near:
                continue  # wholly behind scenery: never visible and never labelled, so skip the work
            ob = world.objects[i]
            c, s = float(np.cos(ob.heading[index])), float(np.sin(ob.heading[index]))  # weak scalars keep float32
            rel = o[:2] - ob.xy[index]
            o_l = np.array([c * rel[0] + s * rel[1], -s * rel[0] + c * rel[1], o[2]], dtype=np.float32)
            sx, sy = dx[sub], dy[sub]
            dlx, dly = c * sx + s * sy, -s * sx + c * sy
            with np.errstate(divide="ignore"):  # an infinite slab parameter is what a parallel ray needs
                inv_l = (np.reciprocal(dlx), np.reciprocal(dly), iz[sub])
            best = np.full(sx.shape, np.inf, dtype=np.float32)
            best_part = np.zeros(sx.shape, dtype=np.int8)
            for p, ext in enumerate(ob.parts):
                t_near, t_far = _slab(inv_l, ext[0::2] - o_l, ext[1::2] - o_l)
                hit = (t_near <= t_far) & (t_near > 0) & (t_near < best)
                best[hit] = t_near[hit]
                best_part[hit] = p
            covered = best < np.inf
            amodal[i] = int(np.count_nonzero(covered))
            if amodal[i] == 0:
                continue
            behind_scenery[i] = int(np.count_nonzero(covered & (best > behind)))
            # Contact shadow on the ground under the object (invisible, so skipped, for far ones).
            if amodal[i] > 150:
                tg = t_ground[sub]
                gx, gy = o_l[0] + tg * dlx, o_l[1] + tg * dly
                under = (np.abs(gx) < ob.hwl[2] / 2 + 0.25) & (np.abs(gy) < ob.hwl[1] / 2 + 0.25)
                shadow[sub][under] *= 0.5
            dsub = depth[sub]
            win = covered & (best < dsub)
            if not win.any():
                continue
            t_win = best[win]
            dsub[win] = t_win
            idx[sub][win] = n_static + i
            part[sub][win] = best_part[win]
            lsub = local[sub]
            lsub[..., 0][win] = o_l[0] + t_win * dlx[win]
            lsub[..., 1][win] = o_l[1] + t_win * dly[win]
            lsub[..., 2][win] = o_l[2] + t_win * dz[sub][win]

        n_static = len(boxes)
        kind[(idx >= 0) & (idx < n_static)] = KIND_STATIC
        obj = idx >= n_static
        kind[obj] = KIND_OBJECT
        idx[obj] -= n_static
        visible = np.bincount(idx[obj], minlength=n_obj)[:n_obj] if n_obj else amodal * 0
        rgb = self._shade((dx, dy, dz), o, depth, kind, idx, part, local, shadow, index, rng)
        instance = np.full((H, W), -1, dtype=np.int32)
        if n_obj:
            ids = np.array([ob.track_id for ob in world.objects], dtype=np.int32)
            instance[obj] = ids[idx[obj]]
        surface = np.full((H, W, 3), np.nan, dtype=np.float32)
        # Object frame (fwd, left, up) -> KITTI box frame (x fwd, y down, z left), origin at the bottom centre.
        surface[obj] = local[obj][:, [0, 2, 1]] * np.array([1, -1, 1], dtype=np.float32)
        return Frame(rgb=rgb, depth=depth, instance=instance, surface=surface, amodal=amodal, visible=visible,
                     behind_scenery=behind_scenery)

    # ---- appearance ---------------------------------------------------------------------------
    def _shade(self, d: tuple[np.ndarray, np.ndarray, np.ndarray], o: np.ndarray, depth: np.ndarray,
               kind: np.ndarray, idx: np.ndarray, part: np.ndarray, local: np.ndarray,
               shadow: np.ndarray, index: int, rng: np.random.Generator) -> np.ndarray:
        look = self.world.look
        H, W = depth.shape
        kind, depth = kind.ravel(), depth.ravel()
        dx, dy, dz = (c.ravel() for c in d)
        out = np.empty((H * W, 3), dtype=np.float32)
        sun = look["sun"].astype(np.float32)
        horizon = look["sky_horizon"].astype(np.float32)

        def light_and_fog(pix: np.ndarray, colour: np.ndarray, diffuse: np.ndarray | float) -> None:
            lit = (look["ambient"] + look["sun_strength"] * diffuse) * 1.6
            fog = 1.0 - np.exp(-depth[pix] / look["fog"])
            out[pix] = colour * (lit * (1 - fog))[:, None] + horizon * fog[:, None]

        sky = np.flatnonzero(kind == KIND_SKY)
        mix = np.clip(dz[sky] / np.sqrt(dx[sky] ** 2 + dy[sky] ** 2 + dz[sky] ** 2) * 3.0, 0, 1)[:, None]
        out[sky] = horizon * (1 - mix) + look["sky_top"].astype(np.float32) * mix
        g = np.flatnonzero(kind == KIND_GROUND)
        gx, gy = o[0] + depth[g] * dx[g], o[1] + depth[g] * dy[g]
        light_and_fog(g, self._ground(gx, gy) * shadow.ravel()[g][:, None], max(float(sun[2]), 0.0))
        st = np.flatnonzero(kind == KIND_STATIC)
        if len(st):
            ps = np.stack([o[0] + depth[st] * dx[st], o[1] + depth[st] * dy[st], o[2] + depth[st] * dz[st]], -1)
            ids = idx.ravel()[st]
            face = _face_of(ps, self.world.static.boxes[ids].astype(np.float32))
            # Lambert term per face code (axis * 2 + min face) of world-aligned boxes: a 6-entry table.
            face_light = np.clip(np.repeat(sun, 2) * np.tile(np.array([1, -1], dtype=np.float32), 3), 0, None)
            light_and_fog(st, self._static(ps, ids, face), face_light[face])
        ob = np.flatnonzero(kind == KIND_OBJECT)
        if len(ob):
            q, ids, parts = local.reshape(-1, 3)[ob], idx.ravel()[ob], part.ravel()[ob]
            face = _face_of(q, self.obj_parts[ids, parts])
            # Lambert term per (object, face): face normals turn with the object's heading.
            heading = np.array([o.heading[index] for o in self.world.objects], dtype=np.float32)
            c, sn = np.cos(heading), np.sin(heading)
            along, across = c * sun[0] + sn * sun[1], -sn * sun[0] + c * sun[1]
            table = np.clip(np.stack([along, -along, across, -across, np.full_like(c, sun[2]),
                                      np.full_like(c, -sun[2])], 1), 0, None)
            light_and_fog(ob, self._objects(q, ids, face, parts), table[ids, face])
        gain = look["exposure"] * (1 + 0.03 * np.sin(index * 0.7 + look["texture_seed"]))
        out *= self.vignette_tint
        # Gamma through a lookup table, then sensor noise from a per-sequence bank at a random offset.
        code = np.clip(out * np.float32(1023.0 * gain), 0, 1023).astype(np.int32)
        srgb = _SRGB[code]
        if self._noise is None:
            self._noise = rng.standard_normal(H * W * 3 + 8192, dtype=np.float32) * np.float32(look["noise"])
        start = int(rng.integers(8192))
        srgb += self._noise[start:start + H * W * 3].reshape(-1, 3)
        return np.clip(srgb, 0, 255).astype(np.uint8).reshape(H, W, 3)

    def _ground(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        world, look = self.world, self.world.look
        B, half, lanes, sw = world.block, world.road_half_width, world.lanes, world.sidewalk
        seed = look["texture_seed"]
        ax, ay = x - B * np.round(x / B), y - B * np.round(y / B)
        on_h, on_v = np.abs(ay) < half, np.abs(ax) < half
        road = on_h | on_v
        fine = hash01(np.floor(x / 0.12), np.floor(y / 0.12), seed)
        coarse = hash01(np.floor(x / 1.7), np.floor(y / 1.7), seed + 1)
        out = np.empty((len(x), 3), dtype=np.float32)
        asphalt = look["asphalt"] * (1 + 0.35 * (fine - 0.5) + 0.2 * (coarse - 0.5))
        out[:] = (asphalt[:, None] * np.array([0.95, 0.97, 1.0], dtype=np.float32))
        # Markings, in (d = across the street, a = along it) of whichever street a pixel is on.
        only_h, only_v = on_h & ~on_v, on_v & ~on_h
        dd = np.where(only_h, np.abs(ay), np.abs(ax))
        along = np.where(only_h, x, y)
        street = only_h | only_v
        if lanes == 1:
            centre = street & (dd < 0.07) & (np.mod(along, 6.0) < 3.0)
        else:
            centre = street & (np.abs(dd - 0.13) < 0.06)
            centre |= street & (np.abs(dd - LANE) < 0.07) & (np.mod(along, 9.0) < 3.0) & ~(dd < 0.3)
        edge = street & (np.abs(dd - lanes * LANE) < 0.08)
        across = np.where(only_h, np.abs(ax), np.abs(ay))
        cross_bar = np.where(only_h, np.mod(y, 0.9), np.mod(x, 0.9)) < 0.45
        crosswalk = street & (across > half + 0.8) & (across < half + 3.8) & (dd < lanes * LANE) & cross_bar
        white = np.float32(0.8) * (0.9 + 0.2 * fine)[:, None]
        yellow = np.array([0.85, 0.65, 0.1], dtype=np.float32)
        out[edge | crosswalk] = white[edge | crosswalk]
        out[centre] = (yellow * (0.9 + 0.2 * fine[centre])[:, None]) if look["yellow_centre"] else white[centre]
        # Sidewalk with tile joints, a bright kerb, and grass/gravel beyond.
        off = np.minimum(np.where(on_v, np.inf, np.abs(ay) - half), np.where(on_h, np.inf, np.abs(ax) - half))
        walk = ~road & (off < sw)
        joints = (np.mod(x, 1.2) < 0.05) | (np.mod(y, 1.2) < 0.05)
        tone = np.array([1.0, 0.98, 0.94], dtype=np.float32)
        tiles = (0.5 + 0.12 * fine + 0.06 * coarse - 0.15 * joints)[:, None] * tone
        out[walk] = tiles[walk]
        kerb = ~road & (off < 0.25)
        out[kerb] = (0.7 + 0.1 * fine[kerb])[:, None]
        lot = ~road & ~walk
        grass = np.array([0.2, 0.3, 0.1], dtype=np.float32) * (0.6 + 0.8 * fine[lot])[:, None]
        out[lot] = grass * (0.7 + 0.6 * coarse[lot])[:, None]
        return out

    def _static(self, p: np.ndarray, ids: np.ndarray, face: np.ndarray) -> np.ndarray:
        axis = face // 2
        mat, colour = self.st_material[ids], self.st_colour[ids]
        seed = self.st_seed[ids]
        u = np.where(axis == 0, p[:, 1], p[:, 0])  # along the facade
        v = p[:, 2]
        # Bricks: offset rows of 25 x 9 cm cells with mortar joints.
        row = np.floor(v * np.float32(1 / 0.09))
        across = u * np.float32(4.0) + np.float32(0.5) * (row % 2)
        fine = hash01(np.floor(across), row, seed)
        mortar = (v - row * np.float32(0.09) < 0.015) | (across - np.floor(across) < 0.06)
        colour *= (0.85 + 0.3 * fine - 0.25 * mortar)[:, None]
        # Windows on building walls: a grid of floors and columns; shop fronts on the ground floor.
        wall = np.flatnonzero((mat == 0) & (axis < 2))
        if len(wall):
            uw, vw, sw = u[wall], v[wall], ids[wall]
            spacing, floor_h, top = self.st_spacing[sw], self.st_floor[sw], self.st_top[sw]
            col_i, floor_i = np.floor(uw / spacing), np.floor(vw / floor_h)
            cu, fv = uw / spacing - col_i, vw / floor_h - floor_i
            window = (cu > 0.2) & (cu < 0.8) & (fv > 0.3) & (fv < 0.85) & (floor_i >= 1) & (vw < top - 0.6)
            shop = (vw > 0.4) & (vw < 2.6) & (cu > 0.08) & (cu < 0.92) & ~window
            pane = window | shop
            glass_cell = hash01(col_i[pane], floor_i[pane], seed[wall][pane] + 7)
            glass = (0.06 + 0.25 * glass_cell)[:, None] * np.array([0.8, 0.9, 1.0], dtype=np.float32)
            glass[shop[pane]] *= 1.3
            frame = window & ((cu < 0.24) | (cu > 0.76) | (fv < 0.34) | (fv > 0.81))
            glass[frame[pane]] = 0.8
            colour[wall[pane]] = glass
        roof = np.flatnonzero((mat == 0) & (axis == 2))
        colour[roof] = 0.25 * (0.8 + 0.4 * fine[roof])[:, None]
        leaves = np.flatnonzero(mat == 3)
        if len(leaves):
            q = np.floor(p[leaves] * np.float32(1 / 0.15))
            leaf = hash01(q[:, 0], q[:, 2] + 1000 * q[:, 1], seed[leaves])
            colour[leaves] *= (0.4 + 1.2 * leaf)[:, None]
        return colour

    def _objects(self, q: np.ndarray, ids: np.ndarray, face: np.ndarray, part: np.ndarray) -> np.ndarray:
        """Vehicle paint with wheels, windows and lights; pedestrians' skin, shirt and trousers."""
        f, s, u = q[:, 0], q[:, 1], q[:, 2]
        axis, neg = face // 2, face % 2
        cls = self.obj_cls[ids]
        h, w, l = self.obj_hwl[ids, 0], self.obj_hwl[ids, 1], self.obj_hwl[ids, 2]
        paint, second = self.obj_colour[ids], self.obj_colour2[ids]
        grain = hash01(np.floor(f / 0.07) + 3000 * np.floor(u / 0.07), np.floor(s / 0.07), ids + 17)
        colour = paint * (0.93 + 0.14 * grain)[:, None]
        side, front, back, top = axis == 1, (axis == 0) & (neg == 0), (axis == 0) & (neg == 1), axis == 2
        vehicle = cls <= 2
        glass = np.array([0.05, 0.07, 0.1], dtype=np.float32) + 0.08 * (np.clip(u / h, 0, 1))[:, None]
        dark = np.float32(0.04)
        # Wheels on the sides of the lower body (and the truck cab).
        radius = np.array([0.32, 0.36, 0.5, 0, 0], dtype=np.float32)[cls]
        axle = l / 2 - np.array([0.8, 0.8, 1.0, 0, 0], dtype=np.float32)[cls]
        wheel_d = np.minimum((f - axle) ** 2, (f + axle) ** 2) + (u - radius) ** 2
        tyre = vehicle & side & (wheel_d < radius ** 2)
        rim = tyre & (wheel_d < (0.55 * radius) ** 2)
        colour[tyre] = dark
        colour[rim] = 0.45
        colour[vehicle & (u < 0.12)] = dark
        # Cabin glass (Car/Van part 1, truck cab part 0 upper half).
        cabin = vehicle & (((cls <= 1) & (part == 1)) | ((cls == 2) & (part == 0) & (u > 0.45 * h)))
        pillar = np.abs(f - np.where(cls == 0, -0.06 * l, 0.0)) < 0.05
        z_lo = np.array([0.58, 0.5, 0.45, 0, 0], dtype=np.float32)[cls] * h
        window = cabin & ~top & (u > z_lo + 0.06) & (u < h - 0.08) & ~(side & pillar)
        colour[window] = glass[window]
        # Lights and plates on the lower body.
        body_top = z_lo
        lamp = vehicle & (front | back) & (np.abs(s) > 0.28 * w) & (np.abs(s) < 0.46 * w) & \
            (u > 0.62 * body_top) & (u < 0.85 * body_top) & ~cabin
        colour[lamp & front] = np.array([0.95, 0.95, 0.85], dtype=np.float32)
        colour[lamp & back] = np.array([0.7, 0.04, 0.03], dtype=np.float32)
        plate = vehicle & (front | back) & (np.abs(s) < 0.26) & (u > 0.3) & (u < 0.42)
        colour[plate] = 0.9
        grille = vehicle & front & (np.abs(s) < 0.24 * w) & (u > 0.35 * body_top) & (u < 0.55 * body_top) & ~cabin
        colour[grille] = 0.06
        cargo = (cls == 2) & (part == 1)
        colour[cargo] = second[cargo] * (0.9 + 0.1 * (np.mod(f[cargo], 0.6) < 0.05))[:, None]
        # People: head, shirt, trousers; cyclists sit on a dark bike frame with ring wheels.
        person = (cls == 3) | ((cls == 4) & (part == 1))
        head = person & (u > h - 0.24)
        legs = (cls == 3) & (u < 0.47 * h)
        colour[person] = paint[person] * (0.9 + 0.2 * grain[person])[:, None]
        colour[legs] = second[legs]
        colour[head] = np.where((u[head] > h[head] - 0.08)[:, None], np.float32(0.08),
                                np.array([0.75, 0.55, 0.45], dtype=np.float32))
        bike = (cls == 4) & (part == 0)
        colour[bike] = 0.12 + 0.5 * second[bike]
        ring = bike & side & (np.abs(np.sqrt(np.minimum((f - 0.55) ** 2, (f + 0.55) ** 2) + (u - 0.35) ** 2)
                                     - 0.32) < 0.05)
        colour[ring] = dark
        return colour


def _slab(inv: tuple[np.ndarray, np.ndarray, np.ndarray], lo_rel: np.ndarray, hi_rel: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray]:
    """Ray/AABB slab test: entry and exit depth per ray.

    ``lo_rel``/``hi_rel`` are the box's min/max corners minus the ray origin; ``inv`` is 1 / direction
    per axis.
    """
    t1, t2 = np.float32(lo_rel[0]) * inv[0], np.float32(hi_rel[0]) * inv[0]
    t_near, t_far = np.minimum(t1, t2), np.maximum(t1, t2)
    for k in (1, 2):
        t1, t2 = np.float32(lo_rel[k]) * inv[k], np.float32(hi_rel[k]) * inv[k]
        t_near = np.maximum(t_near, np.minimum(t1, t2))
        t_far = np.minimum(t_far, np.maximum(t1, t2))
    return t_near, t_far


def _face_of(q: np.ndarray, ext: np.ndarray) -> np.ndarray:
    """Face code (axis * 2 + 1 for the min face) of points ``q`` (n, 3) lying on boxes ``ext`` ((6,) or (n, 6))."""
    gap = np.abs(q[:, [0, 0, 1, 1, 2, 2]] - ext)
    k = np.argmin(gap, axis=1)
    return ((k // 2) * 2 + (1 - k % 2)).astype(np.int8)


# Linear [0, 1] in 1024 steps -> sRGB-ish 8-bit levels (gamma 1/2.2), plus 0.5 for rounding.
_SRGB = (np.power(np.arange(1024, dtype=np.float32) / 1023.0, 1 / 2.2) * 255.0 + 0.5).astype(np.float32)
