"""Scene reconstruction of one training video with COLMAP (pycolmap): BA²-Det's step 1 (paper 002, Sec. 3.1).

What runs, all inside pycolmap:

1. SIFT features on every frame (``extract_features``), the camera fixed to the dataset's pinhole intrinsics
   (``PINHOLE`` model, one camera per video: the world's intrinsics do not change over a video);
2. sequential matching with geometric verification (``match_sequential``: each frame against the next
   ``overlap`` frames; a video is ordered in time, so exhaustive matching would only add wrong pairs);
3. triangulation with the ego poses as the camera poses (``triangulate_points``: COLMAP's point triangulator,
   which triangulates the verified tracks from the known poses, then bundle-adjusts the points and merges and
   completes tracks; the poses and intrinsics stay fixed, ``refine_intrinsics=False``).

Why poses are priors here: Waymo (and the synthetic world) gives metric ego poses, so the points come out in
the world frame at metric scale and no registration is needed. Without poses one would run COLMAP's incremental
mapper instead (``pycolmap.incremental_mapping``): poses and points up to an unknown similarity, which must then
be fixed to metric scale (e.g. from the camera height above the ground plane) before boxes in metres can be
fitted, and forward motion makes that mapper fragile. This module does not do that; a sequence without poses is
an error.

Dynamic objects mostly fail the two-view epipolar check or triangulate off their surface: that is the paper's
premise (stage 2 generalises from static to moving objects); nothing here uses ground truth to fix it.

Determinism: every RANSAC and triangulator seed is fixed and COLMAP runs on one thread, so one seed gives the
same points on one machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.data.sequence import Sequence
from bench.ownership import mark, remove_owned

INSTALL_HINT = ("ba2det needs pycolmap (the COLMAP bindings) for its scene reconstruction: "
                "pip install 'bench[ba2det]' (or pip install pycolmap)")


def require_pycolmap() -> Any:
    """The pycolmap module, or an ImportError that says how to install it."""
    try:
        import pycolmap
    except ImportError as err:
        raise ImportError(INSTALL_HINT) from err
    return pycolmap


@dataclass(frozen=True)
class ReconstructionConfig:
    """COLMAP settings of the reconstruction (the defaults suit the synthetic world's small frames)."""

    overlap: int = 5  # each frame is matched with the next ``overlap`` frames
    peak_threshold: float = 0.004  # SIFT contrast threshold (COLMAP's default 0.0067 finds few corners at 384 px)
    max_features: int = 4096
    min_inliers: int = 15  # two-view geometric verification
    min_angle_deg: float = 1.5  # triangulation angle (COLMAP's default)
    max_reproj_error: float = 4.0  # px, merge / complete tracks
    seed: int = 0


@dataclass
class SceneReconstruction:
    """The static scene of one video: world points and, per frame, which points it observes where.

    ``points`` ``(N, 3)`` in the world frame (the sequence's ``cam_to_world`` frame); ``errors`` ``(N,)`` the mean
    reprojection error (px); ``obs[t]`` = (point indices ``(M,)``, pixel positions ``(M, 2)``) of frame index t.
    """

    points: np.ndarray
    errors: np.ndarray
    obs: list[tuple[np.ndarray, np.ndarray]]

    @property
    def num_points(self) -> int:
        return len(self.points)


def _write_images(seq: Sequence, folder: Path) -> list[str]:
    import imageio.v3 as iio

    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for t in range(seq.num_frames):
        name = f"{t:06d}.png"
        iio.imwrite(folder / name, np.asarray(seq.image(t)))
        names.append(name)
    return names


def reconstruct(seq: Sequence, work: Path, config: ReconstructionConfig | None = None) -> SceneReconstruction:
    """Reconstruct the static scene of ``seq`` in the scratch folder ``work`` (created; its files are COLMAP's)."""
    pycolmap = require_pycolmap()
    config = config or ReconstructionConfig()
    level = pycolmap.logging.minloglevel
    pycolmap.logging.minloglevel = 2  # COLMAP logs every image at INFO; keep its warnings out too, errors only
    try:
        return _reconstruct(pycolmap, seq, work, config)
    finally:
        pycolmap.logging.minloglevel = level


def _reconstruct(pycolmap: Any, seq: Sequence, work: Path, config: ReconstructionConfig) -> SceneReconstruction:
    if seq.cam_to_world is None or len(seq.cam_to_world) != seq.num_frames:
        raise ValueError(f"ba2det: sequence {seq.name} has no ego pose per frame; the reconstruction uses them")
    intr = np.asarray(seq.intrinsics)
    if not np.allclose(intr, intr[0]):
        raise ValueError(f"ba2det: sequence {seq.name} changes its intrinsics; one camera per video is assumed")
    # Scratch from an interrupted attempt is removed only if this function made it (bench's marker inside); any other
    # folder at that path is refused, never deleted.
    if work.exists():
        remove_owned(work)
    work.mkdir(parents=True)
    mark(work, "ba2det-colmap")
    images = work / "images"
    names = _write_images(seq, images)
    database = work / "database.db"
    k = intr[0]

    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = "PINHOLE"
    reader.camera_params = f"{k[0, 0]},{k[1, 1]},{k[0, 2]},{k[1, 2]}"
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.num_threads = 1
    extraction.use_gpu = False
    extraction.sift.peak_threshold = config.peak_threshold
    extraction.sift.max_num_features = config.max_features
    pycolmap.extract_features(database, images, image_names=names, camera_mode=pycolmap.CameraMode.SINGLE,
                              reader_options=reader, extraction_options=extraction, device=pycolmap.Device.cpu)

    matching = pycolmap.FeatureMatchingOptions()
    matching.num_threads = 1
    matching.use_gpu = False
    pairing = pycolmap.SequentialPairingOptions()
    pairing.overlap = config.overlap
    pairing.quadratic_overlap = False
    verification = pycolmap.TwoViewGeometryOptions()
    verification.min_num_inliers = config.min_inliers
    verification.ransac.random_seed = config.seed
    verification.ransac.num_threads = 1
    pycolmap.match_sequential(database, matching_options=matching, pairing_options=pairing,
                              verification_options=verification, device=pycolmap.Device.cpu)

    # An empty reconstruction with the database's camera, rig, frames and images, the frames posed by the ego poses.
    recon = pycolmap.Reconstruction()
    with pycolmap.Database.open(database) as db:
        cameras, rigs, frames, db_images = (db.read_all_cameras(), db.read_all_rigs(), db.read_all_frames(),
                                            db.read_all_images())
    for camera in cameras:
        recon.add_camera(camera)
    for rig in rigs:
        recon.add_rig(rig)
    frame_of = {f.frame_id: f for f in frames}
    index_of_image: dict[int, int] = {}
    for image in db_images:
        t = int(Path(image.name).stem)
        index_of_image[image.image_id] = t
        world_to_cam = np.linalg.inv(seq.cam_to_world[t])
        frame = frame_of[image.frame_id]
        frame.rig_from_world = pycolmap.Rigid3d(pycolmap.Rotation3d(world_to_cam[:3, :3]), world_to_cam[:3, 3])
        recon.add_frame(frame)
        recon.add_image(image)
    for frame in frames:
        recon.register_frame(frame.frame_id)

    options = pycolmap.IncrementalPipelineOptions()
    options.num_threads = 1
    options.random_seed = config.seed
    options.triangulation.min_angle = config.min_angle_deg
    options.triangulation.merge_max_reproj_error = config.max_reproj_error
    options.triangulation.complete_max_reproj_error = config.max_reproj_error
    options.triangulation.random_seed = config.seed
    out = work / "sparse"
    out.mkdir()
    result = pycolmap.triangulate_points(recon, database, images, out, options=options, refine_intrinsics=False)
    return _collect(result, index_of_image, seq.num_frames)


def _collect(result: Any, index_of_image: dict[int, int], num_frames: int) -> SceneReconstruction:
    ids = sorted(result.points3D.keys())
    row = {pid: i for i, pid in enumerate(ids)}
    points = np.array([result.points3D[p].xyz for p in ids], dtype=np.float64).reshape(-1, 3)
    errors = np.array([result.points3D[p].error for p in ids], dtype=np.float64)
    per_frame: list[tuple[list[int], list[np.ndarray]]] = [([], []) for _ in range(num_frames)]
    for image_id, image in result.images.items():
        t = index_of_image[image_id]
        for p2d in image.points2D:
            if p2d.has_point3D():
                per_frame[t][0].append(row[p2d.point3D_id])
                per_frame[t][1].append(np.asarray(p2d.xy, dtype=np.float64))
    obs = [(np.asarray(i, dtype=np.int64), np.asarray(xy, dtype=np.float64).reshape(-1, 2)) for i, xy in per_frame]
    return SceneReconstruction(points=points, errors=errors, obs=obs)
