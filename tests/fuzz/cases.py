"""Small valid inputs of every ``bench eval`` format and every dataset reader, for the fuzz suite to damage."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
TRACKEVAL = ROOT / "tests" / "fixtures" / "metrics" / "trackeval"
MAX_FRAMES = 12  # the fixtures cut to their first frames: damage is found as well, scoring is quicker


def _head(src: Path, dst: Path, frame_of: callable) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    lines = [ln for ln in src.read_text().splitlines() if ln.strip() and frame_of(ln) < MAX_FRAMES]
    dst.write_text("\n".join(lines) + "\n")


def kitti_eval_case(folder: Path) -> tuple[Path, Path]:
    src = TRACKEVAL / "kitti" / "random_0"
    gt, pred = folder / "gt", folder / "pred"
    seqs = sorted(p.stem for p in (src / "gt").glob("*.txt"))
    for seq in seqs:
        _head(src / "gt" / f"{seq}.txt", gt / f"{seq}.txt", lambda ln: int(ln.split()[0]))
        _head(src / "pred" / f"{seq}.txt", pred / f"{seq}.txt", lambda ln: int(ln.split()[0]))
    (gt / "evaluate_tracking.seqmap.training").write_text(
        "".join(f"{s} empty 000000 {MAX_FRAMES:06d}\n" for s in seqs))
    return gt, pred


def mot_eval_case(folder: Path) -> tuple[Path, Path]:
    src = TRACKEVAL / "mot17" / "noisy"
    gt, pred = folder / "gt", folder / "pred"
    for path in sorted((src / "gt").glob("*.txt")):
        seq = path.stem
        _head(path, gt / seq / "gt" / "gt.txt", lambda ln: int(ln.split(",")[0]) - 1)
        _head(src / "pred" / path.name, pred / path.name, lambda ln: int(ln.split(",")[0]) - 1)
        (gt / seq / "seqinfo.ini").write_text(
            f"[Sequence]\nname={seq}\nimDir=img1\nframeRate=30\nseqLength={MAX_FRAMES}\nimWidth=1920\n"
            "imHeight=1080\nimExt=.jpg\n")
    return gt, pred


def nuscenes_eval_case(folder: Path) -> tuple[Path, Path]:
    """A GT JSON and a submission from the nuScenes golden case ``multi_class`` (as tests/metrics do)."""
    case = json.loads((ROOT / "tests" / "fixtures" / "metrics" / "nuscenes" / "multi_class.json").read_text())
    inputs = case["inputs"]
    ego: dict[str, list[float]] = {}
    for part in ("gt", "pred"):
        cols = inputs[part]
        for tok, t, e in zip(cols["sample_token"], cols["translation"], cols["ego_translation"], strict=True):
            ego[tok] = [a - b for a, b in zip(t, e, strict=True)]
    s = inputs["samples"]
    samples = {tok: {"scene": sc, "timestamp": ts, "ego_translation": ego.get(tok, [0.0, 0.0, 0.0])}
               for tok, sc, ts in zip(s["sample_token"], s["scene"], s["timestamp"], strict=True)}

    def boxes(part: str, extra: str) -> dict[str, list[dict]]:
        cols = inputs[part]
        out: dict[str, list[dict]] = {tok: [] for tok in samples}
        for i, tok in enumerate(cols["sample_token"]):
            out[tok].append({"sample_token": tok, "translation": cols["translation"][i], "size": [1.8, 4.5, 1.6],
                             "rotation": [1.0, 0.0, 0.0, 0.0], "velocity": [0.0, 0.0],
                             "tracking_id": str(cols["tracking_id"][i]), "tracking_name": cols["tracking_name"][i],
                             extra: cols[extra][i]})
        return out

    folder.mkdir(parents=True, exist_ok=True)
    gt, pred = folder / "gt.json", folder / "pred.json"
    gt.write_text(json.dumps({"samples": samples, "results": boxes("gt", "num_pts")}, indent=0))
    meta = {"use_camera": True, "use_lidar": False, "use_radar": False, "use_map": False, "use_external": False}
    pred.write_text(json.dumps({"meta": meta, "results": boxes("pred", "tracking_score")}, indent=0))
    return gt, pred


def waymo_eval_case(folder: Path) -> tuple[Path, Path]:
    v2 = "[LiDARBoxComponent]"
    rng = np.random.default_rng(1)
    n = 8
    df = pd.DataFrame({
        "key.segment_context_name": ["seg"] * n, "key.frame_timestamp_micros": np.arange(n) // 2,
        "key.laser_object_id": [f"o{i}" for i in range(n)],
        f"{v2}.box.center.x": rng.uniform(5, 40, n), f"{v2}.box.center.y": rng.uniform(-5, 5, n),
        f"{v2}.box.center.z": np.ones(n), f"{v2}.box.size.x": np.full(n, 4.5), f"{v2}.box.size.y": np.full(n, 1.9),
        f"{v2}.box.size.z": np.full(n, 1.6), f"{v2}.box.heading": rng.uniform(-3, 3, n),
        f"{v2}.type": np.array([1, 1, 2, 4, 1, 2, 1, 4])})
    folder.mkdir(parents=True, exist_ok=True)
    df.to_parquet(folder / "gt.parquet")
    df.assign(score=rng.uniform(0.2, 0.9, n)).to_parquet(folder / "pred.parquet")
    return folder / "gt.parquet", folder / "pred.parquet"


def tapvid3d_eval_case(folder: Path) -> tuple[Path, Path]:
    """Two videos: one GT with ``image_size``, one with JPEG bytes (the object array real files carry)."""
    import imageio.v3 as iio

    rng = np.random.default_rng(2)
    gt, pred = folder / "gt", folder / "pred"
    gt.mkdir(parents=True)
    pred.mkdir(parents=True)
    for name, jpeg in (("a", False), ("b", True)):
        xyz = np.column_stack([rng.uniform(-1, 1, 5), rng.uniform(-1, 1, 5), rng.uniform(3, 8, 5)])
        xyz = np.repeat(xyz[None], 4, 0) + rng.normal(0, 0.01, (4, 5, 3))
        visible = rng.uniform(size=(4, 5)) < 0.8
        arrays = {"tracks_XYZ": xyz, "visibility": visible, "queries_xyt": np.zeros((5, 3)),
                  "fx_fy_cx_cy": np.array([60.0, 60, 32, 24])}
        if jpeg:
            frames = np.empty(4, dtype=object)
            frames[:] = [iio.imwrite("<bytes>", np.full((48, 64, 3), 40 * i, np.uint8), extension=".jpg")
                         for i in range(4)]
            arrays["images_jpeg_bytes"] = frames
        else:
            arrays["image_size"] = np.array([64, 48])
        np.savez(gt / f"{name}.npz", **arrays)
        np.savez(pred / f"{name}.npz", tracks_XYZ=xyz * 1.5 + rng.normal(0, 0.05, xyz.shape), visibility=visible)
    return gt, pred


EVAL_CASES = {"kitti": kitti_eval_case, "mot": mot_eval_case, "nuscenes": nuscenes_eval_case,
              "waymo": waymo_eval_case, "tapvid3d": tapvid3d_eval_case}

# Dataset readers: synthetic exports (smoke scale), and which of their files a user could hand us damaged.
READER_DATASETS = {"kitti": "synth-kitti", "mot": "synth-mot", "nuscenes": "synth-nuscenes", "waymo": "synth-waymo",
                   "tapvid3d": "synth-dense"}
NATIVE_FILES = {
    "kitti": ("training/label_02/*.txt", "training/calib/*.txt", "training/oxts/*.txt"),
    "mot": ("train/*/gt/gt.txt", "train/*/det/det.txt", "train/*/seqinfo.ini"),
    "nuscenes": ("v1.0-*/*.json",),
    "waymo": ("*/lidar_box/*.parquet", "*/vehicle_pose/*.parquet", "*/camera_calibration/*.parquet",
              "*/camera_box/*.parquet", "*/camera_image/*.parquet"),
    "tapvid3d": ("*/*.npz",),
}


def export(fmt: str, folder: Path) -> Path:
    """A smoke-scale synthetic export in format ``fmt`` (bench's own writer: a valid file of every kind)."""
    from bench.data.datasets import make_synthetic

    return make_synthetic(READER_DATASETS[fmt], scale="smoke", seed=0, out=folder)


def damageable(fmt: str, root: Path) -> list[Path]:
    """The native files of an export plus the hand-writable ``bench.json`` (splits), sorted."""
    files = [p for pattern in NATIVE_FILES[fmt] for p in root.glob(pattern)]
    return sorted({*files, root / "bench.json"})


def link_copy(src: Path, dst: Path, *, sidecar_tables: bool) -> None:
    """A copy of ``src`` made of hard links (fast; damage is written to a new file, never through a link).

    Without ``sidecar_tables`` the export's ``bench/`` folder is left out, so the native files are read as a
    real dataset's are; ``bench.json`` (its splits) stays, as nuScenes users write one by hand.
    """
    ignore = None if sidecar_tables else shutil.ignore_patterns("bench")
    shutil.copytree(src, dst, copy_function=_link, ignore=ignore)


def _link(src: str, dst: str) -> None:
    import os

    os.link(src, dst)
