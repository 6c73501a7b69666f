"""The layout and motion of one synthetic sequence: streets, buildings, the ego camera and the objects.

World frame: metres, z up, ground at z = 0. Streets form a Manhattan grid (centre lines at multiples
of the block size ``B`` along x and y), which gives straight roads, intersections with crossing
traffic, and building canyons that hide what lies behind them. Everything is drawn from one numpy
Generator, so a sequence is a pure function of its seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bench.data.synth.presets import WorldConfig

LANE = 3.5  # lane width (m)
PARKING = 2.5  # parking strip between the outer lane and the kerb (m)
CAMERA_HEIGHT = 1.65  # KITTI's camera height above the road (m)

CLASS_NAMES = ("Car", "Van", "Truck", "Pedestrian", "Cyclist")
# KITTI training-set means (h, w, l) and a spread per class; models are drawn around them.
SIZE_MEAN = {"Car": (1.53, 1.63, 3.88), "Van": (2.20, 1.90, 5.10), "Truck": (3.30, 2.50, 10.0),
             "Pedestrian": (1.76, 0.66, 0.84), "Cyclist": (1.74, 0.60, 1.76)}
SIZE_STD = {"Car": (0.08, 0.08, 0.30), "Van": (0.15, 0.10, 0.40), "Truck": (0.30, 0.15, 1.80),
            "Pedestrian": (0.10, 0.08, 0.12), "Cyclist": (0.08, 0.06, 0.12)}
# Common car paints (linear RGB); few colours and few models make look-alikes frequent, as on real roads.
PAINTS = np.array([[0.85, 0.85, 0.83], [0.55, 0.56, 0.58], [0.06, 0.06, 0.07], [0.30, 0.31, 0.33],
                   [0.08, 0.14, 0.35], [0.55, 0.07, 0.06], [0.62, 0.58, 0.50], [0.10, 0.25, 0.12]])
PAINT_WEIGHTS = np.array([0.24, 0.2, 0.18, 0.14, 0.08, 0.08, 0.05, 0.03])


@dataclass
class Object:
    """One tracked object: its class, size, look, render parts and per-frame world pose."""

    track_id: int
    cls: str
    hwl: tuple[float, float, float]
    colour: np.ndarray  # body paint / shirt colour (linear RGB)
    colour2: np.ndarray  # trousers, cargo box or second tone
    model: int  # appearance key: class, shape model and paint (equal keys = look-alikes)
    motion: str  # parked, leader, oncoming, same, crossing, walker, cyclist
    xy: np.ndarray  # (T, 2) bottom-centre position per frame
    heading: np.ndarray  # (T,) heading about world z, CCW from +x
    velocity: np.ndarray  # (T, 2) world velocity (m/s)
    parts: np.ndarray = field(default_factory=lambda: np.zeros((0, 6)))  # (P, 6) local AABBs (fwd, left, up)


@dataclass
class Static:
    """Static scenery as world-axis-aligned boxes: buildings, walls, poles, trees."""

    boxes: np.ndarray  # (N, 6) xmin xmax ymin ymax zmin zmax
    material: np.ndarray  # (N,) 0 building, 1 pole, 2 trunk, 3 canopy, 4 wall
    colour: np.ndarray  # (N, 3)
    pattern: np.ndarray  # (N, 3) window column spacing, floor height, texture seed


@dataclass
class World:
    """A laid-out sequence: camera poses per frame, the street grid, scenery and objects."""

    times: np.ndarray  # (T,) seconds
    cam_to_world: np.ndarray  # (T, 4, 4), KITTI camera axes (x right, y down, z forward)
    block: float  # street grid spacing B (m)
    lanes: int  # lanes per direction
    sidewalk: float
    static: Static
    objects: list[Object]
    look: dict  # lighting and material constants of this sequence

    @property
    def road_half_width(self) -> float:
        return self.lanes * LANE + PARKING


def _smooth_speed(rng: np.random.Generator, times: np.ndarray, v0: float, vmax: float, stop_p: float,
                  cap: np.ndarray | None = None) -> np.ndarray:
    """Speed over time: random cruise targets and stops every 1.5-4 s, each reached with its own bounded
    acceleration (0.8-2.5 m/s^2 up, 1.5-3.5 down), so speed is seldom constant for long, as in real traffic."""
    speed = np.empty(len(times))
    v, target, until = v0, v0, -1.0
    up, down = 2.0, 3.5
    for i, t in enumerate(times):
        if t >= until:
            target = 0.0 if rng.random() < stop_p else rng.uniform(0.35, 1.0) * vmax
            until = t + rng.uniform(1.5, 4.0)
            up, down = rng.uniform(0.8, 2.5), rng.uniform(1.5, 3.5)
        goal = target if cap is None else min(target, cap[i])
        dt = times[1] - times[0] if len(times) > 1 else 0.1
        accel = up if goal > v else -down
        v = float(np.clip(v + accel * dt, min(v, goal), max(v, goal)))
        speed[i] = v
    return speed


def _ego_path(rng: np.random.Generator, start: np.ndarray, heading: float, offset: float, block: float,
              length: float, step: float = 0.25, min_ahead: float = 25.0,
              turn_p: tuple[float, float, float] = (0.5, 0.3, 0.2)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A lane-following path through the grid with turns at intersections.

    Returns samples (N, 2), headings (N,) and a turning flag (N,). ``offset`` is the lane's distance
    to the right of the street centre line; the first turn decision is at the first intersection at least
    ``min_ahead`` metres away; ``turn_p`` are the chances of going straight, right, left there.
    """
    points, headings, turning = [start.astype(float)], [heading], [False]
    p, h = start.astype(float), heading
    total = 0.0

    def straight(dist: float) -> None:
        nonlocal p, total
        n = max(int(dist / step), 1)
        d = np.array([np.cos(h), np.sin(h)])
        for k in range(1, n + 1):
            points.append(p + d * dist * k / n)
            headings.append(h)
            turning.append(False)
        p = points[-1]
        total += dist

    def arc(radius: float, side: int) -> None:  # side -1: right turn, +1: left turn
        nonlocal p, h, total
        d = np.array([np.cos(h), np.sin(h)])
        normal = np.array([-d[1], d[0]]) * side  # towards the turn centre
        centre = p + normal * radius
        n = max(int(radius * np.pi / 2 / step), 2)
        start_angle = np.arctan2(p[1] - centre[1], p[0] - centre[0])
        for k in range(1, n + 1):
            a = start_angle + side * (np.pi / 2) * k / n
            points.append(centre + radius * np.array([np.cos(a), np.sin(a)]))
            headings.append(h + side * (np.pi / 2) * k / n)
            turning.append(True)
        p, h = points[-1], h + side * np.pi / 2
        total += radius * np.pi / 2

    while total < length:
        d = np.array([np.cos(h), np.sin(h)])
        # Next intersection centre line ahead along the travel axis, at least 25 m away.
        axis = int(np.argmax(np.abs(d)))
        sign = np.sign(d[axis])
        ahead = (np.floor(p[axis] / block) + (1 if sign > 0 else 0)) * block
        dist = (ahead - p[axis]) * sign
        while dist < min_ahead:
            dist += block
        min_ahead = 25.0
        choice = rng.choice(3, p=list(turn_p))  # straight, right, left
        if choice == 0:
            straight(dist + 1.0)
            continue
        radius = 6.0 if choice == 1 else 9.0
        lead_in = dist - offset - radius if choice == 1 else dist + offset - radius
        straight(lead_in)
        arc(radius, -1 if choice == 1 else 1)
    return np.array(points), np.unwrap(np.array(headings)), np.array(turning)


def _interp_path(points: np.ndarray, headings: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position and heading at arc lengths ``s`` along a polyline."""
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    s = np.clip(s, 0, arc[-1])
    xy = np.stack([np.interp(s, arc, points[:, 0]), np.interp(s, arc, points[:, 1])], axis=-1)
    return xy, np.interp(s, arc, headings)


def _speed_around(rng: np.random.Generator, times: np.ndarray, k: int, v_k: float, vmax: float,
                  stop_p: float) -> np.ndarray:
    """Distance travelled relative to time index ``k`` under a smooth speed profile passing ``v_k`` at ``k``.

    The part after ``k`` is a speed profile run forwards, the part before it one run backwards in time, so
    an object can be put at a chosen place at a chosen frame (where the camera will see it).
    """
    dt = float(times[1] - times[0]) if len(times) > 1 else 0.1
    fwd = _smooth_speed(rng, times[k:], v_k, vmax, stop_p)
    back = _smooth_speed(rng, times[:k + 1], v_k, vmax, stop_p)
    s = np.empty(len(times))
    s[k:] = np.concatenate([[0.0], np.cumsum(fwd[:-1])]) * dt
    s[:k + 1] = -(np.concatenate([[0.0], np.cumsum(back[:-1])]) * dt)[::-1]
    return s


def _drive(rng: np.random.Generator, dt: float, n: int, arc: np.ndarray, turning: np.ndarray, s0: float,
           v0: float, vmax: float, stop_p: float, stop_s: float | None = None) -> np.ndarray:
    """Arc length along a path over ``n`` steps from ``s0``: random cruise targets and stops with bounded
    acceleration, slowing to 5 m/s for turns (seen ~3 s ahead) and, if ``stop_s`` is given, braking to a
    stop there (a stop line) and waiting 1-5 s before going on."""
    out = np.empty(n)
    s, v = s0, v0
    target, until, release = v0, 0.0, None
    up, down = 2.0, 3.5
    for i in range(n):
        t = i * dt
        if t >= until:  # as in _smooth_speed
            target = 0.0 if rng.random() < stop_p else rng.uniform(0.35, 1.0) * vmax
            until = t + rng.uniform(1.5, 4.0)
            up, down = rng.uniform(0.8, 2.5), rng.uniform(1.5, 3.5)
        window = (arc >= s) & (arc <= s + max(v, 3.0) * 3.0)
        goal = min(target, 5.0) if turning[window].any() else target
        if stop_s is not None:
            gap = stop_s - s
            goal = min(goal, float(np.sqrt(2 * 2.5 * max(gap, 0.0))))  # comfortable 2.5 m/s^2 to the line
            if gap < 0.5 and v < 0.1:
                release = t + rng.uniform(1.0, 5.0) if release is None else release
                if t >= release:
                    stop_s = None
        accel = up if goal > v else -max(down, 3.5 if stop_s is not None else 0.0)
        v = float(np.clip(v + accel * dt, min(v, goal), max(v, goal)))
        out[i] = s
        s += v * dt
    return out


def _lateral_heading(xy: np.ndarray, heading: np.ndarray, lat: np.ndarray,
                     dlat_ds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shift a path ``lat`` metres to the right of its heading; the heading turns to the new tangent."""
    right = np.stack([np.sin(heading), -np.cos(heading)], -1)
    tangent = np.stack([np.cos(heading), np.sin(heading)], -1) + dlat_ds[:, None] * right
    return xy + lat[:, None] * right, np.unwrap(np.arctan2(tangent[:, 1], tangent[:, 0]))


def _drive_route(rng: np.random.Generator, times: np.ndarray, k: int, anchor: np.ndarray, heading: float,
                 offset: float, block: float, half: float, vmax: float, *, stop_p: float = 0.04,
                 line_stop_p: float = 0.0, turn_p: tuple[float, float, float] = (0.4, 0.3, 0.3),
                 min_ahead: float = 12.0, other_lane: float | None = None, weave: float = 0.0
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Positions and headings of a road user that is at ``anchor`` (a lane centre, ``offset`` right of the
    street centre line, heading along a street) at time index ``k``.

    It follows its lane through the grid, turning at intersections along arcs (``turn_p``), with a smooth
    speed profile that slows for turns and sometimes stops at the next intersection's stop line. With
    ``other_lane`` (offset of the neighbouring lane) it changes lanes once over 2-4 s and then goes
    straight (a turn from the wrong lane would cut the kerb); ``weave`` is a cyclist's sway amplitude (m).
    """
    dt = float(times[1] - times[0])
    n = len(times)
    back = vmax * times[k] + 5.0  # farther than it can have come since the first frame
    if other_lane is not None:
        turn_p = (1.0, 0.0, 0.0)
    points, headings, turning = _ego_path(rng, anchor, heading, offset, block,
                                          length=vmax * (times[-1] - times[k]) + 60.0, min_ahead=min_ahead,
                                          turn_p=turn_p)
    d = np.array([np.cos(heading), np.sin(heading)])
    before = np.linspace(back, 0.0, int(back / 0.25) + 1, endpoint=False)
    points = np.concatenate([anchor - before[:, None] * d, points])
    headings = np.concatenate([np.full(len(before), headings[0]), headings])
    turning = np.concatenate([np.zeros(len(before), dtype=bool), turning])
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])

    v_k = rng.uniform(0.4, 1.0) * vmax
    stop_s = None
    if rng.random() < line_stop_p:
        rel = points - block * np.round(points / block)
        inside = np.flatnonzero((np.abs(rel) < half).all(axis=1) & (arc > back))
        # The first intersection ahead, if it can brake for it comfortably; centre 4 m before its edge.
        if len(inside) and arc[inside[0]] - 4.0 - back > v_k ** 2 / (2 * 2.5) + 2.0:
            stop_s = float(arc[inside[0]] - 4.0)
    s_fwd = _drive(rng, dt, n - k, arc, turning, back, v_k, vmax, stop_p, stop_s)
    s_back = back + _speed_around(rng, times[:k + 1], k, v_k, vmax, stop_p)  # straight lead-in, no caps needed
    s = np.concatenate([s_back[:-1], s_fwd])
    xy, hd = _interp_path(points, headings, s)

    lat, dlat = np.zeros(n), np.zeros(n)
    if other_lane is not None:
        length = max(v_k, 5.0) * rng.uniform(2.0, 4.0)  # 2-4 s at its speed
        x = np.clip((s - (back + rng.uniform(-30.0, 50.0))) / length, 0.0, 1.0)
        lat = (other_lane - offset) * (3 * x ** 2 - 2 * x ** 3)  # smoothstep: no lateral jerk at either end
        dlat = (other_lane - offset) * 6 * x * (1 - x) / length
    if weave:
        wavelength, phase = rng.uniform(5.0, 10.0), rng.uniform(0, 2 * np.pi)
        lat = lat + weave * np.sin(2 * np.pi * s / wavelength + phase)
        dlat = dlat + weave * 2 * np.pi / wavelength * np.cos(2 * np.pi * s / wavelength + phase)
    return _lateral_heading(xy, hd, lat, dlat)


def _walk(rng: np.random.Generator, start: np.ndarray, u: np.ndarray, walked: np.ndarray,
          sway: float) -> tuple[np.ndarray, np.ndarray]:
    """A pedestrian walking ``walked`` metres (per time) along unit direction ``u`` from ``start``, wandering
    up to ``sway`` metres to either side; the body faces the walking direction."""
    wavelength, phase = rng.uniform(4.0, 10.0), rng.uniform(0, 2 * np.pi)
    lat = sway * np.sin(2 * np.pi * walked / wavelength + phase)
    dlat = sway * 2 * np.pi / wavelength * np.cos(2 * np.pi * walked / wavelength + phase)
    heading = np.full(len(walked), np.arctan2(u[1], u[0]))
    return _lateral_heading(start + walked[:, None] * u, heading, lat, dlat)


def _camera_poses(xy: np.ndarray, heading: np.ndarray, pitch: np.ndarray, height: np.ndarray) -> np.ndarray:
    """cam_to_world matrices for a forward camera on the ego car (KITTI axes, slight pitch)."""
    t = len(xy)
    poses = np.tile(np.eye(4), (t, 1, 1))
    fwd = np.stack([np.cos(heading) * np.cos(pitch), np.sin(heading) * np.cos(pitch), -np.sin(pitch)], -1)
    right = np.stack([np.sin(heading), -np.cos(heading), np.zeros(t)], -1)
    down = np.cross(fwd, right)
    poses[:, :3, 0], poses[:, :3, 1], poses[:, :3, 2] = right, down, fwd
    poses[:, :2, 3], poses[:, 2, 3] = xy, height
    return poses


def _model_sizes(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A few shape models per class for this sequence (so identical vehicles recur)."""
    counts = {"Car": 4, "Van": 2, "Truck": 2, "Pedestrian": 6, "Cyclist": 3}
    models = {}
    for cls, n in counts.items():
        mean, std = np.array(SIZE_MEAN[cls]), np.array(SIZE_STD[cls])
        models[cls] = np.clip(mean + rng.standard_normal((n, 3)) * std, mean * 0.6, mean * 1.5)
    return models


def object_parts(cls: str, hwl: tuple[float, float, float]) -> np.ndarray:
    """Render parts as AABBs in the object frame (fwd, left, up), inside the labelled box."""
    h, w, l = hwl
    if cls == "Car":
        return np.array([[-l / 2, l / 2, -w / 2, w / 2, 0.0, 0.58 * h],
                         [-0.32 * l, 0.2 * l, -0.44 * w, 0.44 * w, 0.58 * h, h]])
    if cls == "Van":
        return np.array([[-l / 2, l / 2, -w / 2, w / 2, 0.0, 0.5 * h],
                         [-l / 2, 0.3 * l, -0.48 * w, 0.48 * w, 0.5 * h, h]])
    if cls == "Truck":
        cab = min(2.2, 0.3 * l)
        return np.array([[l / 2 - cab, l / 2, -0.48 * w, 0.48 * w, 0.0, 0.82 * h],
                         [-l / 2, l / 2 - cab - 0.2, -w / 2, w / 2, 0.0, h]])
    if cls == "Cyclist":
        return np.array([[-l / 2, l / 2, -0.08, 0.08, 0.0, 0.95],
                         [-0.3, 0.25, -w / 2, w / 2, 0.95, h]])
    return np.array([[-l / 2, l / 2, -w / 2, w / 2, 0.0, h]])  # Pedestrian


def _footprint_overlap(a_xy: np.ndarray, a_h: np.ndarray, a_lw: tuple[float, float],
                       b_xy: np.ndarray, b_h: np.ndarray, b_lw: tuple[float, float], margin: float) -> bool:
    """Whether two moving rectangles (per-frame centre, heading; length, width) ever overlap (SAT)."""
    def corners(xy: np.ndarray, h: np.ndarray, lw: tuple[float, float]) -> np.ndarray:
        l, w = lw[0] / 2 + margin, lw[1] / 2 + margin
        local = np.array([[l, w], [l, -w], [-l, -w], [-l, w]])
        c, s = np.cos(h)[:, None], np.sin(h)[:, None]
        return np.stack([xy[:, None, 0] + c * local[:, 0] - s * local[:, 1],
                         xy[:, None, 1] + s * local[:, 0] + c * local[:, 1]], -1)  # (T, 4, 2)

    ca, cb = corners(a_xy, a_h, a_lw), corners(b_xy, b_h, b_lw)
    separated = np.zeros(len(a_xy), dtype=bool)
    for h in (a_h, a_h + np.pi / 2, b_h, b_h + np.pi / 2):
        axis = np.stack([np.cos(h), np.sin(h)], -1)[:, None, :]
        pa, pb = (ca * axis).sum(-1), (cb * axis).sum(-1)
        separated |= (pa.max(1) < pb.min(1)) | (pb.max(1) < pa.min(1))
    return bool((~separated).any())


def build_world(rng: np.random.Generator, cfg: WorldConfig, num_frames: int) -> World:
    """Lay out streets, scenery, the ego trajectory and all objects of one sequence."""
    sim_dt = 1.0 / cfg.sim_rate
    keep = int(round(cfg.sim_rate / cfg.frame_rate))
    sim_times = np.arange((num_frames - 1) * keep + 1) * sim_dt
    times = sim_times[::keep]

    block = float(rng.uniform(70, 110))
    lanes = int(rng.choice([1, 2], p=[0.55, 0.45])) if cfg.preset != "synth-waymo" else 2
    sidewalk = float(rng.uniform(2.5, 4.0))
    half = lanes * LANE + PARKING
    ego_offset = (lanes - 0.5) * LANE - (rng.integers(lanes) * LANE)  # right of centre line

    # Ego: start between intersections on the street y = 0, heading +x, then follow the grid.
    start = np.array([rng.uniform(half + 20, block - 40), -ego_offset])
    vmax = rng.uniform(0.6, 1.0) * cfg.ego_speed
    path, path_heading, turning = _ego_path(rng, start, 0.0, ego_offset, block,
                                            length=vmax * sim_times[-1] + 150)
    seg = np.linalg.norm(np.diff(path, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    # Speed: random targets and stops, slowed to 5 m/s near turns (look ahead ~3 s).
    speed = np.zeros(len(sim_times))
    s, v = 0.0, float(rng.uniform(0, vmax))
    target, until = v, 0.0
    ego_s = np.zeros(len(sim_times))
    for i, t in enumerate(sim_times):
        if t >= until:
            target = 0.0 if rng.random() < 0.12 else rng.uniform(0.4, 1.0) * vmax
            until = t + rng.uniform(2.0, 5.0)
        window = (arc >= s) & (arc <= s + max(v, 3.0) * 3.0)
        goal = min(target, 5.0) if turning[window].any() else target
        accel = 2.0 if goal > v else -3.5
        v = float(np.clip(v + accel * sim_dt, min(v, goal), max(v, goal)))
        speed[i], ego_s[i] = v, s
        s += v * sim_dt
    ego_xy, ego_heading = _interp_path(path, path_heading, ego_s)
    pitch = np.deg2rad(rng.uniform(-1.0, 1.0)) + np.deg2rad(0.25) * np.sin(sim_times * rng.uniform(5, 9))
    height = CAMERA_HEIGHT + 0.01 * np.sin(sim_times * rng.uniform(6, 11))
    poses = _camera_poses(ego_xy, ego_heading, pitch, height)
    # The ego car's footprint: the camera sits ~1 m behind the front bumper of a 4.2 m car.
    ego_centre = ego_xy - 1.1 * np.stack([np.cos(ego_heading), np.sin(ego_heading)], -1)

    models = _model_sizes(rng)
    lo = ego_xy.min(0) - 110
    hi = ego_xy.max(0) + 110
    static = _scenery(rng, block, half, sidewalk, lo, hi)

    objects: list[Object] = []
    moving: list[tuple[np.ndarray, np.ndarray, tuple[float, float]]] = [(ego_centre, ego_heading, (4.2, 1.8))]

    def new_object(cls: str, motion: str, xy: np.ndarray, heading: np.ndarray, check: bool) -> bool:
        model = int(rng.integers(len(models[cls])))
        h, w, l = (float(x) for x in models[cls][model])
        if check:
            for other_xy, other_h, other_lw in moving:
                if _footprint_overlap(xy, heading, (l, w), other_xy, other_h, other_lw, margin=0.4):
                    return False
            moving.append((xy, heading, (l, w)))
        paint = int(rng.choice(len(PAINTS), p=PAINT_WEIGHTS))
        colour = PAINTS[paint].copy()
        if cls in ("Pedestrian", "Cyclist"):
            colour = rng.uniform(0.05, 0.8, 3)
        vel = np.gradient(xy, sim_dt, axis=0) if len(xy) > 1 and motion != "parked" else np.zeros_like(xy)
        objects.append(Object(
            track_id=len(objects), cls=cls, hwl=(h, w, l), colour=colour,
            # Trucks' cargo boxes are white, so trucks of one model and paint are true look-alikes too.
            colour2=rng.uniform(0.05, 0.6, 3) if cls != "Truck" else np.full(3, 0.85),
            model=CLASS_NAMES.index(cls) * 10_000 + model * 100 + paint, motion=motion, xy=xy[::keep],
            heading=heading[::keep],
            velocity=vel[::keep], parts=object_parts(cls, (h, w, l))))
        return True

    def vehicle_class() -> str:
        return str(rng.choice(["Car", "Van", "Truck"], p=[0.8, 0.13, 0.07]))

    # Parked cars along every street face near the route; mostly parallel, some turned or reversed.
    for street_axis in (0, 1):
        for centre in np.arange(np.floor(lo[1 - street_axis] / block), np.ceil(hi[1 - street_axis] / block) + 1):
            for side in (-1, 1):
                pos = lo[street_axis]
                while pos < hi[street_axis]:
                    cls = str(rng.choice(["Car", "Van", "Truck"], p=[0.86, 0.1, 0.04]))
                    length = models[cls][0][2] + rng.uniform(0.6, 3.0)
                    along = pos + length / 2
                    pos += length
                    rel = along - block * np.round(along / block)
                    if abs(rel) < half + sidewalk + 6 or rng.random() > cfg.parked_density:
                        continue
                    d = centre * block + side * (lanes * LANE + PARKING / 2 + rng.uniform(-0.15, 0.15))
                    # Parked with the traffic flow of their side (right-hand traffic), 15 % the other way.
                    flip = (side > 0) if street_axis == 0 else (side < 0)
                    heading = street_axis * np.pi / 2 + np.pi * flip + np.pi * (rng.random() < 0.15)
                    heading += rng.normal(0, 0.05)
                    xy = np.array([along, d]) if street_axis == 0 else np.array([d, along])
                    if cls != "Car" or rng.random() > 0.12:
                        new_object(cls, "parked", np.tile(xy, (len(sim_times), 1)),
                                   np.full(len(sim_times), heading), check=False)
                    else:  # turned into a driveway: perpendicular or angled, on the kerb side
                        yaw = rng.uniform(-np.pi, np.pi)
                        off = side * (half + sidewalk + 3.0)
                        xy = (np.array([along, centre * block + off]) if street_axis == 0
                              else np.array([centre * block + off, along]))
                        new_object(cls, "parked", np.tile(xy, (len(sim_times), 1)),
                                   np.full(len(sim_times), yaw), check=False)

    # Leaders: vehicles ahead of the ego on its own route, with their own speed profiles, slowing for turns.
    for _ in range(int(rng.integers(0, 3))):
        s0 = ego_s[0] + rng.uniform(12, 60)
        s_lead = _drive(rng, sim_dt, len(sim_times), arc, turning, s0, rng.uniform(4, 12), rng.uniform(8, 15), 0.08)
        xy, hd = _interp_path(path, path_heading, s_lead)
        new_object(vehicle_class(), "leader", xy, hd, check=True)

    def street_frame(k: int) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
        """The ego's street at time index k: a point on its centre line, its axis heading, direction, right."""
        axis_h = float(np.round(ego_heading[k] / (np.pi / 2)) * (np.pi / 2))
        d = np.array([np.cos(axis_h), np.sin(axis_h)])
        right = np.array([d[1], -d[0]])
        anchor = ego_xy[k]
        centre = anchor - right * ((anchor @ right) - block * np.round((anchor @ right) / block))
        return centre, axis_h, d, right

    # Other traffic on streets near the route: oncoming, same direction (overtaking), crossing. Each follows
    # its lane with accelerations, braking and stop-line stops, turns at intersections or changes lanes.
    n_movers = int(rng.poisson(cfg.movers))
    for _ in range(n_movers * 5):
        if sum(o.motion in ("oncoming", "same", "crossing") for o in objects) >= n_movers:
            break
        k = int(rng.integers(len(sim_times)))
        street_c, axis_h, d, right = street_frame(k)
        kind = str(rng.choice(["oncoming", "same", "crossing"], p=[0.45, 0.2, 0.35]))
        lane_i = int(rng.integers(lanes))
        offset = (lane_i + 0.5) * LANE
        other = (1.5 - lane_i) * LANE if lanes == 2 and rng.random() < 0.5 else None
        if kind == "crossing":
            # Approach the next intersection ahead on the perpendicular street, from either side.
            ahead = block * (np.floor((ego_xy[k] @ d) / block) + 1)
            centre = street_c + d * (ahead - ego_xy[k] @ d)
            direction = right * rng.choice([-1, 1])
            lane_pt = centre + np.array([direction[1], -direction[0]]) * offset
            anchor = lane_pt - direction * rng.uniform(14, 40)
            xy, hd = _drive_route(rng, sim_times, k, anchor, float(np.arctan2(direction[1], direction[0])), offset,
                                  block, half, rng.uniform(8, 14), line_stop_p=0.5)
        else:
            sign = -1.0 if kind == "oncoming" else 1.0
            base = street_c + right * offset * sign  # right-hand traffic: the lane right of its own heading
            pos0 = ego_xy[k] @ d + (rng.uniform(20, 90) if kind == "oncoming" else rng.uniform(-40, 60))
            anchor = base - d * (base @ d) + pos0 * d
            xy, hd = _drive_route(rng, sim_times, k, anchor, axis_h + (np.pi if sign < 0 else 0.0), offset, block,
                                  half, rng.uniform(8, 15), line_stop_p=0.3, other_lane=other)
        new_object(vehicle_class(), kind, xy, hd, check=True)

    # Cyclists in the outer lane (weaving slightly, turning sometimes), pedestrians on the sidewalks and
    # crossing the road, with changing pace, pauses and a wandering line.
    for _ in range(int(rng.poisson(cfg.cyclists))):
        k = int(rng.integers(len(sim_times)))
        street_c, axis_h, d, right = street_frame(k)
        sign = rng.choice([-1.0, 1.0])
        offset = lanes * LANE - 0.8
        anchor = street_c + right * offset * sign + d * (ego_xy[k] @ d - street_c @ d + rng.uniform(10, 50))
        xy, hd = _drive_route(rng, sim_times, k, anchor, axis_h + (sign < 0) * np.pi, offset, block, half,
                              rng.uniform(4, 7), stop_p=0.03, line_stop_p=0.3, turn_p=(0.7, 0.2, 0.1),
                              weave=rng.uniform(0.08, 0.2))
        new_object("Cyclist", "cyclist", xy, hd, check=True)
    route_length = float(ego_s[-1] - ego_s[0]) + 80
    for _ in range(int(rng.poisson(cfg.pedestrians * route_length / 100 * 2))):
        k = int(rng.integers(len(sim_times)))
        street, _, d, right = street_frame(k)
        side = rng.choice([-1.0, 1.0])
        street = street + d * (ego_xy[k] @ d - street @ d)
        ahead = rng.uniform(5, 80)
        if rng.random() < 0.2:  # crossing the road, a little diagonally, maybe pausing on the way
            start = street + d * ahead + right * side * (half + 1.0)
            angle = np.arctan2(-right[1] * side, -right[0] * side) + rng.normal(0, 0.15)
            u = np.array([np.cos(angle), np.sin(angle)])
            v = rng.uniform(0.9, 1.6)
            walked = np.clip(_speed_around(rng, sim_times, k, v, 1.7, 0.04) + v * rng.uniform(-3, 3),
                             0, 2 * (half + 1) / abs(u @ (-right * side)))
            xy, hd = _walk(rng, start, u, walked, 0.12)
        else:
            start = street + d * ahead + right * side * (half + rng.uniform(0.5, sidewalk - 0.4))
            v = rng.uniform(0.8, 1.7) * (rng.random() > 0.15)
            if v == 0:  # standing: a fixed spot, any heading
                xy = np.tile(start, (len(sim_times), 1))
                hd = np.full(len(sim_times), rng.uniform(-np.pi, np.pi))
            else:
                room = min(0.5, (start - street) @ (right * side) - half - 0.3,
                           half + sidewalk - 0.3 - (start - street) @ (right * side))
                u = d * rng.choice([-1.0, 1.0])
                xy, hd = _walk(rng, start, u, _speed_around(rng, sim_times, k, v, 1.8, 0.25), max(room, 0.0))
        new_object("Pedestrian", "walker", xy, hd, check=True)

    # Drop parked cars that stand in scenery (driveway cars in front of a building, a tree in the strip).
    if len(static.boxes):
        sb = static.boxes[static.boxes[:, 4] < 2.0]  # canopies overhang cars; trunks and walls do not
        kept = []
        for ob in objects:
            if ob.motion == "parked":
                r = 0.5 * ob.hwl[2]
                x, y = ob.xy[0]
                inside = (x + r > sb[:, 0]) & (x - r < sb[:, 1]) & (y + r > sb[:, 2]) & (y - r < sb[:, 3])
                if inside.any():
                    continue
            kept.append(ob)
        objects = kept
    # People crossing or walking must not pass through parked cars (moving vehicles keep to their lanes).
    parked = [ob for ob in objects if ob.motion == "parked"]
    if parked:
        parked_xy = np.array([ob.xy[0] for ob in parked])
        kept = []
        for ob in objects:
            if ob.cls in ("Pedestrian", "Cyclist"):
                near = np.flatnonzero(np.linalg.norm(ob.xy[:, None] - parked_xy[None], axis=-1).min(0) < 5.0)
                if any(_footprint_overlap(ob.xy, ob.heading, (ob.hwl[2], ob.hwl[1]), parked[j].xy, parked[j].heading,
                                          (parked[j].hwl[2], parked[j].hwl[1]), margin=0.2) for j in near):
                    continue
            kept.append(ob)
        objects = kept
    for new_id, ob in enumerate(objects):
        ob.track_id = new_id

    look = _lighting(rng)
    return World(times=times, cam_to_world=poses[::keep], block=block, lanes=lanes, sidewalk=sidewalk,
                 static=static, objects=objects, look=look)


def _scenery(rng: np.random.Generator, block: float, half: float, sidewalk: float,
             lo: np.ndarray, hi: np.ndarray) -> Static:
    """Buildings with gaps, kerbside poles and trees around every block face in the region."""
    boxes, material, colour, pattern = [], [], [], []
    facade_palette = np.array([[0.55, 0.25, 0.18], [0.72, 0.66, 0.55], [0.6, 0.6, 0.6], [0.85, 0.82, 0.75],
                               [0.45, 0.35, 0.28], [0.35, 0.38, 0.42], [0.75, 0.55, 0.4]])
    front = half + sidewalk
    for bx in np.arange(np.floor(lo[0] / block), np.ceil(hi[0] / block)):
        for by in np.arange(np.floor(lo[1] / block), np.ceil(hi[1] / block)):
            x0, x1 = bx * block + front, (bx + 1) * block - front
            y0, y1 = by * block + front, (by + 1) * block - front
            # Four block faces; each is a run of lots (building or gap) along the street.
            for face in range(4):
                horizontal = face < 2
                a0, a1 = (x0, x1) if horizontal else (y0, y1)
                pos = a0
                while pos < a1 - 4:
                    length = min(rng.uniform(8, 30), a1 - pos)
                    setback = rng.uniform(0, 4) if rng.random() < 0.5 else 0.0
                    depth = min(rng.uniform(8, 16), (y1 - y0) / 2 - 1 if horizontal else (x1 - x0) / 2 - 1)
                    if rng.random() < 0.8:
                        height = rng.uniform(4, 22)
                        if face in (0, 2):  # face 0: y-low side, 2: x-low side
                            near = (y0 if horizontal else x0) + setback
                            span = (near, near + depth)
                        else:
                            near = (y1 if horizontal else x1) - setback
                            span = (near - depth, near)
                        if horizontal:
                            boxes.append([pos, pos + length - 0.5, span[0], span[1], 0, height])
                        else:
                            boxes.append([span[0], span[1], pos, pos + length - 0.5, 0, height])
                        material.append(0)
                        colour.append(facade_palette[rng.integers(len(facade_palette))] * rng.uniform(0.8, 1.1))
                        pattern.append([rng.uniform(2.2, 4.0), rng.uniform(2.8, 3.6), rng.integers(1 << 16)])
                    elif rng.random() < 0.6:  # a garden wall in front of the gap
                        edge = (y0 if face == 0 else y1) if horizontal else (x0 if face == 2 else x1)
                        t = 0.3
                        wall = ([pos, pos + length, edge - t / 2, edge + t / 2, 0, rng.uniform(0.8, 2.0)]
                                if horizontal else [edge - t / 2, edge + t / 2, pos, pos + length, 0,
                                                    rng.uniform(0.8, 2.0)])
                        boxes.append(wall)
                        material.append(4)
                        colour.append(facade_palette[rng.integers(len(facade_palette))])
                        pattern.append([1.0, 1.0, rng.integers(1 << 16)])
                    pos += length
    # Poles and trees at the kerb, every 15-40 m along both sides of every street.
    for axis in (0, 1):
        for c in np.arange(np.floor(lo[1 - axis] / block), np.ceil(hi[1 - axis] / block) + 1):
            for side in (-1, 1):
                pos = lo[axis] + rng.uniform(0, 20)
                while pos < hi[axis]:
                    rel = pos - block * np.round(pos / block)
                    if abs(rel) > half + sidewalk + 2:
                        off = c * block + side * (half + 0.6)
                        if rng.random() < 0.5:
                            r, top = 0.12, rng.uniform(5, 8)
                            material.append(1)
                            colour.append(np.array([0.35, 0.36, 0.38]))
                        else:
                            r, top = 0.18, 2.6
                            material.append(2)
                            colour.append(np.array([0.25, 0.18, 0.12]))
                        px, py = (pos, off) if axis == 0 else (off, pos)
                        boxes.append([px - r, px + r, py - r, py + r, 0, top])
                        pattern.append([1.0, 1.0, rng.integers(1 << 16)])
                        if material[-1] == 2:  # canopy
                            cr = rng.uniform(1.2, 2.2)
                            boxes.append([px - cr, px + cr, py - cr, py + cr, 2.5, 2.5 + rng.uniform(2, 4)])
                            material.append(3)
                            colour.append(np.array([0.12, 0.25, 0.08]) * rng.uniform(0.7, 1.3))
                            pattern.append([1.0, 1.0, rng.integers(1 << 16)])
                    pos += rng.uniform(15, 40)
    return Static(boxes=np.array(boxes, dtype=np.float64).reshape(-1, 6), material=np.array(material),
                  colour=np.array(colour).reshape(-1, 3), pattern=np.array(pattern, dtype=np.float64).reshape(-1, 3))


def _lighting(rng: np.random.Generator) -> dict:
    """Per-sequence sun, sky, exposure and material constants."""
    elevation = rng.uniform(np.deg2rad(15), np.deg2rad(65))
    azimuth = rng.uniform(-np.pi, np.pi)
    overcast = rng.random() < 0.35
    return {
        "sun": np.array([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth),
                         np.sin(elevation)]),
        "sun_strength": 0.25 if overcast else rng.uniform(0.55, 0.8),
        "ambient": 0.55 if overcast else rng.uniform(0.3, 0.45),
        "tint": rng.uniform(0.9, 1.1, 3) * (np.array([1.0, 0.98, 0.95]) if not overcast else 1.0),
        "sky_top": np.array([0.35, 0.5, 0.8]) if not overcast else np.array([0.65, 0.67, 0.7]),
        "sky_horizon": np.array([0.75, 0.82, 0.9]) if not overcast else np.array([0.8, 0.8, 0.82]),
        "asphalt": rng.uniform(0.22, 0.34),
        "yellow_centre": bool(rng.random() < 0.3),
        "fog": rng.uniform(150, 400),
        "noise": rng.uniform(1.5, 4.0),  # sensor noise std (8-bit levels)
        "exposure": rng.uniform(0.9, 1.15),
        "texture_seed": int(rng.integers(1 << 16)),
    }
