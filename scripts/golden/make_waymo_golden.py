"""Golden fixtures for bench.metrics.let_ap from the OFFICIAL Waymo metric op.

Runs inside the Waymo venv (``scripts/make_waymo_venv.sh``: Python 3.11, waymo-open-dataset-tf-2-12-0==1.6.7,
TensorFlow 2.13, NumPy 1.23), because the op cannot share bench's NumPy 2 environment:

    .venvs/waymo/bin/python scripts/golden/make_waymo_golden.py            # write tests/fixtures/metrics/waymo/
    .venvs/waymo/bin/python scripts/golden/make_waymo_golden.py --seed 7 --check   # live parity, new cases

Each generated case (vehicle-frame boxes, several frames) goes through ``py_metrics_ops.detection_metrics``
three times: with the LET config of the official LET tool (``compute_detection_let_metrics_main.cc``), with the
plain 3D config and with plain 3D at IoU 0.05 for every type (:data:`CONFIGS`), each with OBJECT_TYPE and RANGE
breakdowns at LEVEL_1 and LEVEL_2. The case inputs (rounded to float32, as the op reads them) and the op's outputs
are stored as JSON. ``--check`` writes the new cases to a temporary folder and asks bench's own venv
(``.venv/bin/python this-script --compare DIR``) to score them with
bench.metrics.let_ap and compare (tolerance 1e-4; the op is float32).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "metrics" / "waymo"
SENSOR = np.array([1.43, 0.0, 2.18])
SIZES = {1: (4.6, 1.9, 1.6), 2: (0.8, 0.8, 1.8), 4: (1.8, 0.7, 1.7)}  # length, width, height per type
TOLERANCE = 1e-4


# ---------------------------------------------------------------------------------------------- cases
def _gt_boxes(rng: np.random.Generator, n: int, types: np.ndarray, r_lo: float = 5.0, r_hi: float = 70.0,
              azimuth: tuple[float, float] = (-np.pi, np.pi)) -> np.ndarray:
    r = rng.uniform(r_lo, r_hi, n)
    a = rng.uniform(*azimuth, n)
    size = np.array([SIZES[int(t)] for t in types]).reshape(n, 3) * rng.uniform(0.9, 1.1, (n, 1))
    centre = np.column_stack([SENSOR[0] + r * np.cos(a), SENSOR[1] + r * np.sin(a), size[:, 2] / 2])
    return np.column_stack([centre, size, rng.uniform(-np.pi, np.pi, n)])


def _along_sight(boxes: np.ndarray, fraction: np.ndarray) -> np.ndarray:
    """Move centres along the sensor's line of sight by ``fraction`` of their range."""
    out = boxes.copy()
    rel = boxes[:, :3] - SENSOR
    out[:, :3] = SENSOR + rel * (1 + fraction)[:, None]
    return out


def _lateral(boxes: np.ndarray, metres: np.ndarray) -> np.ndarray:
    out = boxes.copy()
    rel = boxes[:, :2] - SENSOR[:2]
    normal = np.column_stack([-rel[:, 1], rel[:, 0]]) / np.linalg.norm(rel, axis=1, keepdims=True)
    out[:, :2] += normal * metres[:, None]
    return out


def _frames(rng: np.random.Generator, n_frames: int, per_frame: int, types=(1, 2, 4), **kw) -> dict:
    boxes, t, f = [], [], []
    for frame in range(n_frames):
        ty = rng.choice(types, per_frame)
        boxes.append(_gt_boxes(rng, per_frame, ty, **kw))
        t.append(ty)
        f.append(np.full(per_frame, frame))
    return {"boxes": np.concatenate(boxes), "types": np.concatenate(t), "frames": np.concatenate(f)}


def generate_cases(seed: int) -> list[dict]:
    """>= 10 named cases; each: gt (boxes, types, frames, difficulty), pred (boxes, types, frames, scores, nlz)."""
    rng = np.random.default_rng(seed)
    cases = []

    def add(name: str, gt: dict, pred_boxes: np.ndarray, pred_types: np.ndarray, pred_frames: np.ndarray,
            scores: np.ndarray, difficulty: np.ndarray | None = None, nlz: np.ndarray | None = None) -> None:
        n_gt, n_pred = len(gt["boxes"]), len(pred_boxes)
        cases.append({
            "name": name,
            "gt": {"boxes": gt["boxes"], "types": gt["types"], "frames": gt["frames"],
                   "difficulty": np.full(n_gt, 1) if difficulty is None else difficulty},
            "pred": {"boxes": pred_boxes.reshape(-1, 7), "types": pred_types, "frames": pred_frames,
                     "scores": scores, "nlz": np.zeros(n_pred, bool) if nlz is None else nlz}})

    g = _frames(rng, 4, 6)
    add("perfect", g, g["boxes"], g["types"], g["frames"], np.full(len(g["boxes"]), 0.9))
    g = _frames(rng, 3, 5)
    add("no_predictions", g, np.zeros((0, 7)), np.zeros(0, int), np.zeros(0, int), np.zeros(0))
    g = _frames(rng, 3, 5)
    far = g["boxes"].copy()
    far[:, :2] += 20.0
    add("all_false_positives", {"boxes": np.zeros((0, 7)), "types": np.zeros(0, int), "frames": np.zeros(0, int)},
        far, g["types"], g["frames"], rng.uniform(0, 1, len(far)))
    g = _frames(rng, 4, 6)
    n = len(g["boxes"])
    add("longitudinal_within_tolerance", g, _along_sight(g["boxes"], rng.uniform(-0.08, 0.08, n)), g["types"],
        g["frames"], rng.uniform(0.2, 1.0, n))
    g = _frames(rng, 4, 6, r_lo=10.0)
    add("longitudinal_outside_tolerance", g,
        _along_sight(g["boxes"], rng.choice([-1, 1], n) * rng.uniform(0.11, 0.2, n)), g["types"], g["frames"],
        rng.uniform(0.2, 1.0, n))
    g = _frames(rng, 4, 6)
    add("lateral_errors", g, _lateral(g["boxes"], rng.uniform(-0.6, 0.6, n)), g["types"], g["frames"],
        rng.uniform(0.2, 1.0, n))
    g = _frames(rng, 4, 6)
    flipped = g["boxes"].copy()
    flipped[:, 6] += rng.choice([np.pi, np.pi / 2, -np.pi / 4, 0.0], n)
    add("heading_flips", g, flipped, g["types"], g["frames"], rng.uniform(0.2, 1.0, n))
    # Boxes straddling the 30 m / 50 m range bins and far out at the range limit.
    g = _frames(rng, 3, 8, r_lo=28.0, r_hi=52.0)
    g2 = _frames(rng, 3, 3, r_lo=70.0, r_hi=80.0)
    g = {k: np.concatenate([g[k], g2[k]]) for k in g}
    n = len(g["boxes"])
    add("range_limits", g, _along_sight(g["boxes"], rng.uniform(-0.06, 0.06, n)), g["types"], g["frames"],
        rng.uniform(0.1, 1.0, n))
    # Realistic mix: jitter, misses, duplicates, false positives, varied scores.
    g = _frames(rng, 6, 8)
    n = len(g["boxes"])
    keep = rng.uniform(size=n) < 0.8
    noisy = _along_sight(g["boxes"], rng.normal(0, 0.05, n))
    noisy[:, :3] += rng.normal(0, 0.15, (n, 3))
    noisy[:, 3:6] *= rng.uniform(0.85, 1.15, (n, 3))
    noisy[:, 6] += rng.normal(0, 0.2, n)
    fp = _frames(rng, 6, 3)
    dup = noisy[keep][:5].copy()
    dup[:, :2] += 0.3
    pb = np.concatenate([noisy[keep], fp["boxes"], dup])
    pt = np.concatenate([g["types"][keep], fp["types"], g["types"][keep][:5]])
    pf = np.concatenate([g["frames"][keep], fp["frames"], g["frames"][keep][:5]])
    add("varied_scores", g, pb, pt, pf, np.round(rng.uniform(0, 1, len(pb)), 3))
    # Class confusion: some predictions carry the wrong type.
    g = _frames(rng, 4, 6)
    n = len(g["boxes"])
    wrong = np.where(rng.uniform(size=n) < 0.3, rng.choice([1, 2, 4], n), g["types"])
    add("multiple_classes", g, _lateral(g["boxes"], rng.uniform(-0.2, 0.2, n)), wrong, g["frames"],
        rng.uniform(0, 1, n))
    # Predictions mirrored through the sensor (behind it): dot(G, P) < 0, the LET alignment flips sides.
    g = _frames(rng, 3, 5, r_lo=2.0, r_hi=12.0)
    n = len(g["boxes"])
    mirrored = g["boxes"].copy()
    mirrored[:, :2] = SENSOR[:2] - (g["boxes"][:, :2] - SENSOR[:2]) * rng.uniform(0.9, 1.1, (n, 1))
    mixed = np.where((rng.uniform(size=n) < 0.5)[:, None], mirrored, g["boxes"])
    add("other_side_of_sensor", g, mixed, g["types"], g["frames"], rng.uniform(0, 1, n))
    # Difficulty levels and no-label-zone predictions.
    g = _frames(rng, 4, 6)
    n = len(g["boxes"])
    keep = rng.uniform(size=n) < 0.7
    extra = _frames(rng, 4, 2)
    pb = np.concatenate([_lateral(g["boxes"][keep], rng.uniform(-0.3, 0.3, keep.sum())), extra["boxes"]])
    pt = np.concatenate([g["types"][keep], extra["types"]])
    pf = np.concatenate([g["frames"][keep], extra["frames"]])
    nlz = np.concatenate([np.zeros(keep.sum(), bool), rng.uniform(size=len(extra["boxes"])) < 0.5])
    add("difficulty_and_nlz", g, pb, pt, pf, rng.uniform(0, 1, len(pb)),
        difficulty=rng.choice([1, 2], n), nlz=nlz)
    # Scores exactly on the cutoffs and ties.
    g = _frames(rng, 3, 6)
    n = len(g["boxes"])
    add("scores_on_cutoffs", g, _along_sight(g["boxes"], rng.uniform(-0.05, 0.05, n)), g["types"], g["frames"],
        rng.choice([0.0, 0.01, 0.5, 0.5, 0.99, 1.0], n))
    return [_as_float32(c) for c in cases]


def _short(values: np.ndarray) -> list:
    """float32 values as the shortest decimals that read back as the same float32 (9 significant digits)."""
    return np.vectorize(lambda x: float(f"{x:.9g}"), otypes=[float])(np.asarray(values, np.float32)).tolist()


def _as_float32(case: dict) -> dict:
    """The op reads float32 boxes and scores; store exactly what it sees."""
    out = {"name": case["name"]}
    for side in ("gt", "pred"):
        d = {}
        for k, v in case[side].items():
            v = np.asarray(v)
            if k in ("boxes", "scores"):
                d[k] = _short(v.astype(np.float32))
            elif k == "nlz":
                d[k] = v.astype(bool).tolist()
            else:
                d[k] = v.astype(np.int64).tolist()
        out[side] = d
    return out


# ---------------------------------------------------------------------------------------------- official op
# The op's configs: the LET tool's, plain 3D at the same IoU thresholds, and plain 3D at IoU 0.05 for every type
# (BA²-Det's "3D AP@0.05"). Label -> (LET on, the per-type IoU thresholds).
CONFIGS = {"let": (True, (0.0, 0.5, 0.3, 0.3, 0.3)), "3d": (False, (0.0, 0.5, 0.3, 0.3, 0.3)),
           "3d@0.05": (False, (0.0, 0.05, 0.05, 0.05, 0.05))}


def _config(let: bool, iou: tuple[float, ...]):
    from google.protobuf import text_format
    from waymo_open_dataset.protos import metrics_pb2

    cutoffs = "".join(f"score_cutoffs: {i * 0.01}\n" for i in range(100)) + "score_cutoffs: 1.0\n"
    text = f"""
    breakdown_generator_ids: OBJECT_TYPE
    difficulties {{ levels: LEVEL_1 levels: LEVEL_2 }}
    breakdown_generator_ids: RANGE
    difficulties {{ levels: LEVEL_1 levels: LEVEL_2 }}
    matcher_type: TYPE_HUNGARIAN
    {" ".join(f"iou_thresholds: {t}" for t in iou)}
    box_type: TYPE_3D
    {cutoffs}
    """
    config = text_format.Parse(text, metrics_pb2.Config())
    if let:
        # The LET tool's values (compute_detection_let_metrics_main.cc); i * 0.01 above mirrors its cutoffs.
        c = config.let_metric_config
        c.enabled = True
        c.align_type = metrics_pb2.Config.LongitudinalErrorTolerantConfig.TYPE_RANGE_ALIGNED
        c.longitudinal_tolerance_percentage = 0.1
        c.min_longitudinal_tolerance_meter = 0.5
        c.sensor_location.x, c.sensor_location.y, c.sensor_location.z = SENSOR.tolist()
    return config


def run_official(case: dict) -> dict:
    import tensorflow as tf
    from waymo_open_dataset.metrics.ops import py_metrics_ops
    from waymo_open_dataset.metrics.python import config_util_py

    out = {}
    for label, (let, iou) in CONFIGS.items():
        config = _config(let, iou)
        gt, pred = case["gt"], case["pred"]
        ap, aph, apl, pr, pr_ha, pr_la, _ = py_metrics_ops.detection_metrics(
            prediction_bbox=tf.constant(np.asarray(pred["boxes"], np.float32).reshape(-1, 7)),
            prediction_type=tf.constant(np.asarray(pred["types"], np.uint8)),
            prediction_score=tf.constant(np.asarray(pred["scores"], np.float32)),
            prediction_frame_id=tf.constant(np.asarray(pred["frames"], np.int64)),
            prediction_overlap_nlz=tf.constant(np.asarray(pred["nlz"], bool)),
            ground_truth_bbox=tf.constant(np.asarray(gt["boxes"], np.float32).reshape(-1, 7)),
            ground_truth_type=tf.constant(np.asarray(gt["types"], np.uint8)),
            ground_truth_frame_id=tf.constant(np.asarray(gt["frames"], np.int64)),
            ground_truth_difficulty=tf.constant(np.asarray(gt["difficulty"], np.uint8)),
            config=config.SerializeToString())
        names = config_util_py.get_breakdown_names_from_config(config)
        result = {}
        for i, name in enumerate(names):
            entry = {"ap": float(ap[i]), "aph": float(aph[i]), "apl": float(apl[i])}
            if let and name.startswith("OBJECT_TYPE") and name.endswith("LEVEL_2") and "SIGN" not in name:
                # precision_recall: (cutoffs, 2) of (precision, recall).
                entry["precision"] = _short(pr[i, :, 0].numpy())
                entry["recall"] = _short(pr[i, :, 1].numpy())
                entry["precision_ha"] = _short(pr_ha[i, :, 0].numpy())
                entry["precision_la"] = _short(pr_la[i, :, 0].numpy())
            result[name] = entry
        out[label] = result
    return out


# ---------------------------------------------------------------------------------------------- compare (bench venv)
def compare(folder: Path) -> int:
    """Score every case file in ``folder`` with bench.metrics.let_ap; print mismatches; return their count."""
    sys.path.insert(0, str(ROOT))
    from bench.metrics.let_ap import DetectionConfig, LetConfig, WaymoObjects, detection_metrics

    bad = 0
    for path in sorted(folder.glob("*.json")):
        case = json.loads(path.read_text())
        gt, pred = case["gt"], case["pred"]
        g = WaymoObjects(gt["boxes"], gt["types"], gt["frames"], difficulty=gt["difficulty"])
        p = WaymoObjects(pred["boxes"], pred["types"], pred["frames"], scores=pred["scores"], overlap_nlz=pred["nlz"])
        for label, (let, iou) in CONFIGS.items():
            config = DetectionConfig(iou_thresholds=iou, breakdowns=("OBJECT_TYPE", "RANGE"), difficulty_levels=(1, 2),
                                     let=LetConfig() if let else None)
            ours = detection_metrics(p, g, config)
            for name, want in case["official"][label].items():
                got = ours[name]
                for key in ("ap", "aph", "apl"):
                    if abs(getattr(got, key) - want[key]) > TOLERANCE:
                        bad += 1
                        ours_value = getattr(got, key)
                        print(f"{path.name} {label} {name} {key}: ours {ours_value:.6f} official {want[key]:.6f}")
    print(f"compared {len(list(folder.glob('*.json')))} cases: {bad} mismatches")
    return bad


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=FIXTURES)
    parser.add_argument("--check", action="store_true", help="new cases to a temp dir, compare with bench live")
    parser.add_argument("--compare", type=Path, help="(bench venv) compare bench against the cases in this folder")
    parser.add_argument("--bench-python", type=Path, default=ROOT / ".venv" / "bin" / "python",
                        help="with --check: the Python that has bench installed (tox passes its own)")
    args = parser.parse_args()
    if args.compare:
        return 1 if compare(args.compare) else 0
    out = Path(tempfile.mkdtemp(prefix="waymo_golden_")) if args.check else args.out
    out.mkdir(parents=True, exist_ok=True)
    for i, case in enumerate(generate_cases(args.seed)):
        case["official"] = run_official(case)
        case["seed"] = args.seed
        case["tool"] = "waymo-open-dataset-tf-2-12-0==1.6.7 py_metrics_ops.detection_metrics"
        (out / f"{i:02d}_{case['name']}.json").write_text(json.dumps(case, separators=(",", ":")))
    print(f"wrote {i + 1} cases to {out}")
    if args.check:
        return subprocess.call([str(args.bench_python), __file__, "--compare", str(out)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
