"""Golden values for bench's nuScenes tracking metrics, produced by the official nuscenes-devkit.

Runs INSIDE the devkit environment (``scripts/make_nuscenes_venv.sh`` -> ``.venvs/nuscenes``), never in
bench's own: it imports nuscenes-devkit 1.2.0 / motmetrics 1.4.0 / pandas 2.1.4, which break on pandas 3.

For every case it writes a minimal synthetic nuScenes dataroot (the 13 tables ``NuScenes`` loads, scenes
named after the official ``val`` split so ``eval_set="val"`` works unchanged) and a submission JSON, runs
the full official ``TrackingEval`` on them (loading, range / zero-point filters, track score averaging,
interpolation, thresholds, motmetrics) and stores the inputs as bench sees them plus the devkit's metrics
as a JSON fixture.

    .venvs/nuscenes/bin/python scripts/golden/make_nuscenes_golden.py            # rewrite the fixtures
    .venvs/nuscenes/bin/python scripts/golden/make_nuscenes_golden.py --seed 7 --check [--bench-python PY]
        # new random cases, compared live against bench (tests/metrics/test_nuscenes_golden.py run by PY,
        # default .venv/bin/python; `tox -e parity` passes its own interpreter)
    .venvs/nuscenes/bin/python scripts/golden/make_nuscenes_golden.py --bench DIR --scenes 150 --samples 40
        # the validation-size benchmark case: dataroot + submission + devkit metrics and timings in DIR
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "metrics" / "nuscenes"
VERSION = "v1.0-trainval"
CLASSES = ("bicycle", "bus", "car", "motorcycle", "pedestrian", "trailer", "truck")
CATEGORY = {"bicycle": "vehicle.bicycle", "bus": "vehicle.bus.rigid", "car": "vehicle.car",
            "motorcycle": "vehicle.motorcycle", "pedestrian": "human.pedestrian.adult",
            "trailer": "vehicle.trailer", "truck": "vehicle.truck"}
SPEED = {"bicycle": 4.0, "bus": 8.0, "car": 10.0, "motorcycle": 9.0, "pedestrian": 1.3, "trailer": 6.0,
         "truck": 8.0}
SIZE_WLH = {"bicycle": (0.6, 1.7, 1.3), "bus": (2.9, 11.0, 3.5), "car": (1.9, 4.6, 1.7),
            "motorcycle": (0.8, 2.1, 1.5), "pedestrian": (0.7, 0.7, 1.8), "trailer": (2.3, 10.0, 3.7),
            "truck": (2.5, 7.0, 2.9)}


# ----------------------------------------------------------------------------------------------------
# Synthetic scenes
# ----------------------------------------------------------------------------------------------------
def make_case(rng: np.random.Generator, *, n_scenes: int = 3, n_samples: int = 12, n_objects: int = 8,
              classes: tuple[str, ...] = ("car", "pedestrian"), p_det: float = 0.9, sigma: float = 0.3,
              p_zero_pts: float = 0.0, n_fp: float = 0.5, p_swap: float = 0.0, p_fragment: float = 0.0,
              p_duplicate: float = 0.0, perfect: bool = False, empty: bool = False, all_fp: bool = False,
              range_limit: bool = False, score_mode: str = "varied", origin: float = 300.0) -> dict:
    """One case: scenes with an ego path, GT objects around it and a tracker's output."""
    from nuscenes.utils.splits import create_splits_scenes

    names = create_splits_scenes()["val"]
    scenes = []
    for s in range(n_scenes):
        name = names[s]
        t0 = 1_532_402_927_000_000 + s * 100_000_000
        # Keyframes at ~2 Hz with jitter, so interpolation weights are not all 1/2.
        steps = rng.integers(480_000, 520_001, size=n_samples)
        steps[0] = 0
        times = t0 + np.cumsum(steps)
        ego0 = rng.uniform(-origin, origin, size=2)
        ego_dir = rng.normal(size=2)
        ego_dir /= np.linalg.norm(ego_dir)
        ego = ego0 + np.outer((times - times[0]) * 1e-6 * rng.uniform(0, 3), ego_dir)
        objects = []
        for o in range(n_objects):
            cls = classes[int(rng.integers(len(classes)))]
            start = int(rng.integers(0, max(1, n_samples - 3)))
            end = int(rng.integers(start + 2, n_samples + 1))
            if range_limit and o < 4:
                # Exactly on / just inside the class range at every sample (strict '<' in the devkit).
                limit = 50.0 if cls in ("car", "truck", "bus", "trailer") else 40.0
                offset = [limit, 0.0] if o % 2 == 0 else [limit - 1e-3, 0.0]
                pos = ego[start:end] + np.array(offset)
            else:
                p0 = ego[start] + rng.uniform(-35, 35, size=2)
                heading = rng.uniform(-np.pi, np.pi)
                v = SPEED[cls] * rng.uniform(0.2, 1.0) * np.array([np.cos(heading), np.sin(heading)])
                pos = p0 + np.outer((times[start:end] - times[start]) * 1e-6, v)
            pts = rng.integers(1, 200, size=end - start)
            pts[rng.random(end - start) < p_zero_pts] = 0
            objects.append({"cls": cls, "start": start, "end": end, "xy": pos, "pts": pts,
                            "token": f"inst-{s}-{o}"})
        scenes.append({"name": name, "token": f"scene-tok-{s}", "times": times, "ego": ego,
                       "objects": objects})

    # Tracker output.
    for scene in scenes:
        preds: list[list[dict]] = [[] for _ in scene["times"]]
        next_id = 0
        for obj in scene["objects"]:
            if empty or all_fp:
                break
            track_score = float(rng.uniform(0.2, 1.0))
            pid = f"trk-{next_id}"
            next_id += 1
            frag_at = int(rng.integers(obj["start"] + 1, obj["end"])) if rng.random() < p_fragment else -1
            for k in range(obj["start"], obj["end"]):
                if k == frag_at:
                    pid = f"trk-{next_id}"
                    next_id += 1
                if not perfect and rng.random() > p_det:
                    continue
                noise = sigma if not perfect else 0.02
                xy = obj["xy"][k - obj["start"]] + rng.normal(0, noise, size=2)
                if score_mode == "varied":
                    score = float(np.clip(track_score + rng.normal(0, 0.1), 0.01, 1.0))
                elif score_mode == "constant":
                    score = 0.5
                else:
                    score = track_score
                preds[k].append({"xy": xy, "cls": obj["cls"], "id": pid, "score": score})
                if rng.random() < p_duplicate:
                    # A second, conflicting hypothesis for the same object: exercises the Hungarian step.
                    preds[k].append({"xy": xy + rng.normal(0, 0.6, size=2), "cls": obj["cls"],
                                     "id": f"dup-{next_id}", "score": float(rng.uniform(0.05, 0.6))})
                    next_id += 1
        if p_swap > 0:
            # Swap the ids of two same-class hypotheses from some sample on.
            for k in range(len(preds)):
                if rng.random() < p_swap and len(preds[k]) >= 2:
                    a, b = rng.choice(len(preds[k]), size=2, replace=False)
                    ida, idb = preds[k][a]["id"], preds[k][b]["id"]
                    for kk in range(k, len(preds)):
                        for p in preds[kk]:
                            if p["id"] == ida:
                                p["id"] = idb
                            elif p["id"] == idb:
                                p["id"] = ida
        n_fp_total = int(rng.poisson(n_fp * len(preds))) if not empty else 0
        if all_fp:
            n_fp_total = 4 * len(preds)
        for _ in range(n_fp_total):
            k = int(rng.integers(len(preds)))
            cls = classes[int(rng.integers(len(classes)))]
            xy = scene["ego"][k] + rng.uniform(-45, 45, size=2)
            if all_fp:
                # Guaranteed unmatched: at least 3 m (> dist_th_tp) from every GT box of the sample.
                gts = [o["xy"][k - o["start"]] for o in scene["objects"] if o["start"] <= k < o["end"]]
                for _ in range(50):
                    if not gts or min(np.hypot(*(xy - g)) for g in gts) >= 3.0:
                        break
                    xy = scene["ego"][k] + rng.uniform(-45, 45, size=2)
                else:
                    xy = scene["ego"][k] + 1000.0
            preds[k].append({"xy": xy, "cls": cls, "id": f"fp-{next_id}",
                             "score": float(rng.uniform(0.01, 0.5))})
            next_id += 1
        if empty and scene is scenes[0]:
            # The devkit crashes on a submission without any box (_get_box_class_field); one box far out of
            # range is removed by the range filter, so the evaluated prediction is empty.
            preds[0].append({"xy": scene["ego"][0] + 1000.0, "cls": classes[0], "id": "far", "score": 0.5})
        for k in range(len(preds)):
            order = rng.permutation(len(preds[k]))
            preds[k] = [preds[k][i] for i in order]
        scene["preds"] = preds
    return {"scenes": scenes}


CASES: dict[str, dict] = {
    "perfect": dict(perfect=True, p_det=1.0, n_fp=0.0),
    "empty_prediction": dict(empty=True),
    "all_false_positives": dict(all_fp=True),
    "id_swaps": dict(p_swap=0.25, n_objects=10, sigma=0.2),
    "fragmented": dict(p_fragment=0.5, p_det=0.8),
    "range_limit": dict(range_limit=True, classes=("car", "pedestrian", "truck", "bicycle")),
    "zero_lidar_points": dict(p_zero_pts=0.3),
    "varied_scores": dict(score_mode="varied", n_fp=1.5, sigma=0.5),
    "constant_scores": dict(score_mode="constant", n_fp=1.0),
    "interpolation_gaps": dict(p_det=0.6, p_zero_pts=0.25, n_samples=16),
    "multi_class": dict(classes=CLASSES, n_objects=16, n_scenes=4),
    "many_scenes": dict(n_scenes=8, n_samples=10, n_objects=6),
    "crowded_conflicts": dict(classes=("pedestrian",), n_objects=14, p_duplicate=0.4, sigma=0.5, origin=20.0),
}


# ----------------------------------------------------------------------------------------------------
# Writing a minimal dataroot + submission
# ----------------------------------------------------------------------------------------------------
def _q_yaw(yaw: float) -> list[float]:
    return [float(np.cos(yaw / 2)), 0.0, 0.0, float(np.sin(yaw / 2))]


def write_dataroot(case: dict, dataroot: Path) -> dict:
    """Write the tables ``NuScenes`` needs; return the sample -> (scene, timestamp, ego) map."""
    tables: dict[str, list] = {k: [] for k in ("category", "attribute", "visibility", "instance", "sensor",
                                               "calibrated_sensor", "ego_pose", "log", "scene", "sample",
                                               "sample_data", "sample_annotation", "map")}
    for cls, cat in list(CATEGORY.items()) + [("barrier", "movable_object.barrier")]:
        tables["category"].append({"token": f"cat-{cls}", "name": cat, "description": ""})
    tables["sensor"].append({"token": "sensor-lidar", "channel": "LIDAR_TOP", "modality": "lidar"})
    tables["calibrated_sensor"].append({"token": "cs-lidar", "sensor_token": "sensor-lidar",
                                        "translation": [0.0, 0.0, 1.8], "rotation": [1.0, 0.0, 0.0, 0.0],
                                        "camera_intrinsic": []})
    tables["log"].append({"token": "log-0", "logfile": "synthetic", "vehicle": "synthetic",
                          "date_captured": "2026-01-01", "location": "singapore-onenorth"})
    tables["map"].append({"token": "map-0", "log_tokens": ["log-0"], "category": "semantic_prior",
                          "filename": "maps/synthetic.png"})
    samples = {}
    for scene in case["scenes"]:
        tokens = [f"{scene['token']}-smp-{k}" for k in range(len(scene["times"]))]
        tables["scene"].append({"token": scene["token"], "log_token": "log-0", "nbr_samples": len(tokens),
                                "first_sample_token": tokens[0], "last_sample_token": tokens[-1],
                                "name": scene["name"], "description": ""})
        for k, tok in enumerate(tokens):
            ts = int(scene["times"][k])
            ego = [float(scene["ego"][k][0]), float(scene["ego"][k][1]), 0.0]
            tables["sample"].append({"token": tok, "timestamp": ts, "scene_token": scene["token"],
                                     "prev": tokens[k - 1] if k else "",
                                     "next": tokens[k + 1] if k + 1 < len(tokens) else ""})
            tables["ego_pose"].append({"token": f"ego-{tok}", "timestamp": ts, "translation": ego,
                                       "rotation": [1.0, 0.0, 0.0, 0.0]})
            tables["sample_data"].append({"token": f"sd-{tok}", "sample_token": tok, "ego_pose_token": f"ego-{tok}",
                                          "calibrated_sensor_token": "cs-lidar", "timestamp": ts,
                                          "fileformat": "pcd", "is_key_frame": True, "height": 0, "width": 0,
                                          "filename": f"samples/LIDAR_TOP/{tok}.pcd.bin", "prev": "", "next": ""})
            samples[tok] = {"scene": scene["name"], "timestamp": ts, "ego": ego, "k": k, "scene_obj": scene}
        # Annotations: objects, plus a non-tracking barrier the loader must ignore.
        for obj in scene["objects"] + [{"cls": "barrier", "start": 0, "end": 1, "token": f"{scene['token']}-bar",
                                        "xy": scene["ego"][:1] + 5.0, "pts": np.array([9])}]:
            ann_tokens = [f"ann-{obj['token']}-{k}" for k in range(obj["start"], obj["end"])]
            tables["instance"].append({"token": obj["token"], "category_token": f"cat-{obj['cls']}",
                                       "nbr_annotations": len(ann_tokens), "first_annotation_token": ann_tokens[0],
                                       "last_annotation_token": ann_tokens[-1]})
            size = list(SIZE_WLH.get(obj["cls"], (0.5, 2.0, 1.0)))
            for i, k in enumerate(range(obj["start"], obj["end"])):
                xy = obj["xy"][i]
                pts = int(obj["pts"][i])
                tables["sample_annotation"].append({
                    "token": ann_tokens[i], "sample_token": tokens[k], "instance_token": obj["token"],
                    "visibility_token": "4", "attribute_tokens": [],
                    "translation": [float(xy[0]), float(xy[1]), 1.0], "size": size, "rotation": _q_yaw(0.3),
                    "prev": ann_tokens[i - 1] if i else "",
                    "next": ann_tokens[i + 1] if i + 1 < len(ann_tokens) else "",
                    "num_lidar_pts": pts, "num_radar_pts": 0})
    table_dir = dataroot / VERSION
    table_dir.mkdir(parents=True, exist_ok=True)
    (dataroot / "maps").mkdir(exist_ok=True)
    (dataroot / "maps" / "synthetic.png").write_bytes(b"")
    for name, rows in tables.items():
        (table_dir / f"{name}.json").write_text(json.dumps(rows))
    return samples


def write_submission(case: dict, samples: dict, path: Path) -> None:
    results: dict[str, list] = {}
    for tok, info in samples.items():
        scene, k = info["scene_obj"], info["k"]
        results[tok] = [{"sample_token": tok, "translation": [float(p["xy"][0]), float(p["xy"][1]), 1.0],
                         "size": list(SIZE_WLH[p["cls"]]), "rotation": _q_yaw(0.3), "velocity": [0.0, 0.0],
                         "tracking_id": p["id"], "tracking_name": p["cls"], "tracking_score": float(p["score"])}
                        for p in scene["preds"][k]]
    meta = {"use_camera": False, "use_lidar": True, "use_radar": False, "use_map": False, "use_external": False}
    path.write_text(json.dumps({"meta": meta, "results": results}))


def run_devkit(dataroot: Path, submission: Path, out_dir: Path) -> tuple[dict, dict]:
    """The official evaluation, end to end. Returns (metrics summary, timings)."""
    from nuscenes.eval.common.config import config_factory
    from nuscenes.eval.tracking.evaluate import TrackingEval

    t0, c0 = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(io.StringIO()):
        ev = TrackingEval(config=config_factory("tracking_nips_2019"), result_path=str(submission), eval_set="val",
                          output_dir=str(out_dir), nusc_version=VERSION, nusc_dataroot=str(dataroot), verbose=False)
        t1 = time.perf_counter()
        summary = ev.main(render_curves=False)
    t2, c2 = time.perf_counter(), time.process_time()
    return summary, {"load_s": t1 - t0, "evaluate_s": t2 - t1, "total_s": t2 - t0, "total_cpu_s": c2 - c0}


# ----------------------------------------------------------------------------------------------------
# Fixtures
# ----------------------------------------------------------------------------------------------------
def fixture_inputs(dataroot: Path, submission: Path, samples: dict) -> dict:
    """The inputs as bench's evaluate_boxes takes them (columnar, GT already mapped to tracking classes)."""
    tables = {n: json.loads((dataroot / VERSION / f"{n}.json").read_text())
              for n in ("sample_annotation", "instance", "category")}
    cat = {c["token"]: c["name"] for c in tables["category"]}
    inst_cls = {i["token"]: cat[i["category_token"]] for i in tables["instance"]}
    to_tracking = {v: k for k, v in CATEGORY.items()}
    gt: dict[str, list] = {k: [] for k in ("sample_token", "translation", "tracking_id", "tracking_name",
                                           "num_pts", "ego_translation")}
    for ann in tables["sample_annotation"]:
        name = to_tracking.get(inst_cls[ann["instance_token"]])
        if name is None:
            continue
        ego = samples[ann["sample_token"]]["ego"]
        gt["sample_token"].append(ann["sample_token"])
        gt["translation"].append(ann["translation"])
        gt["tracking_id"].append(ann["instance_token"])
        gt["tracking_name"].append(name)
        gt["num_pts"].append(ann["num_lidar_pts"] + ann["num_radar_pts"])
        gt["ego_translation"].append([ann["translation"][i] - ego[i] for i in range(3)])
    pred: dict[str, list] = {k: [] for k in ("sample_token", "translation", "tracking_id", "tracking_name",
                                             "tracking_score", "ego_translation")}
    for tok, boxes in json.loads(submission.read_text())["results"].items():
        ego = samples[tok]["ego"]
        for b in boxes:
            for k in ("sample_token", "translation", "tracking_id", "tracking_name", "tracking_score"):
                pred[k].append(b[k])
            pred["ego_translation"].append([b["translation"][i] - ego[i] for i in range(3)])
    sample_table = {"sample_token": list(samples), "scene": [s["scene"] for s in samples.values()],
                    "timestamp": [s["timestamp"] for s in samples.values()]}
    return {"samples": sample_table, "gt": gt, "pred": pred}


def expected_from_summary(summary: dict) -> dict:
    def clean(v):
        return None if v is None or (isinstance(v, float) and np.isnan(v)) else float(v)

    per_class = {m: {c: clean(v) for c, v in by_class.items()} for m, by_class in summary["label_metrics"].items()}
    overall = {m: clean(summary[m]) for m in summary["label_metrics"]}
    return {"per_class": per_class, "overall": overall}


def generate(seed: int, out_dir: Path, names: list[str]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        rng = np.random.default_rng([seed, i])
        case = make_case(rng, **CASES[name])
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            samples = write_dataroot(case, tmp / "dataroot")
            write_submission(case, samples, tmp / "submission.json")
            summary, _ = run_devkit(tmp / "dataroot", tmp / "submission.json", tmp / "out")
            fixture = {"name": name, "seed": seed, "devkit": "nuscenes-devkit 1.2.0 TrackingEval, tracking_nips_2019",
                       "inputs": fixture_inputs(tmp / "dataroot", tmp / "submission.json", samples),
                       "expected": expected_from_summary(summary)}
            if name == "interpolation_gaps":
                # One case keeps its dataroot + submission, to test bench's readers of the real formats.
                keep = out_dir / "dataroot_case"
                shutil.rmtree(keep, ignore_errors=True)
                shutil.copytree(tmp / "dataroot", keep / "dataroot")
                shutil.copy(tmp / "submission.json", keep / "submission.json")
                (keep / "expected.json").write_text(json.dumps(fixture["expected"], indent=1))
        (out_dir / f"{name}.json").write_text(json.dumps(fixture, separators=(",", ":")))
        amota = fixture["expected"]["overall"]["amota"]
        print(f"{name:24s} AMOTA={amota}")


def bench_case(out_dir: Path, n_scenes: int, n_samples: int, boxes: int, seed: int, run: bool) -> None:
    """Validation-size case: 7 classes, ~``boxes`` GT boxes per sample, realistic tracker errors."""
    rng = np.random.default_rng(seed)
    n_objects = int(boxes * 3.3)  # an object lives ~30 % of a 40-sample scene on average
    case = make_case(rng, n_scenes=n_scenes, n_samples=n_samples, n_objects=n_objects, classes=CLASSES,
                     p_det=0.85, sigma=0.35, p_zero_pts=0.05, n_fp=3.0, p_swap=0.03, p_fragment=0.1,
                     p_duplicate=0.05, origin=1500.0)
    out_dir.mkdir(parents=True, exist_ok=True)
    samples = write_dataroot(case, out_dir / "dataroot")
    write_submission(case, samples, out_dir / "submission.json")
    n_gt = sum(len(o["xy"]) for s in case["scenes"] for o in s["objects"])
    print(f"wrote {n_scenes} scenes x {n_samples} samples, {n_gt} GT boxes ({n_gt / (n_scenes * n_samples):.1f}"
          f" per sample) to {out_dir}", flush=True)
    if run:
        summary, timing = run_devkit(out_dir / "dataroot", out_dir / "submission.json", out_dir / "devkit_out")
        result = {"expected": expected_from_summary(summary), "timing": timing}
        (out_dir / "devkit_result.json").write_text(json.dumps(result, indent=1))
        print(json.dumps(timing), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check", action="store_true", help="generate into a temp dir and compare bench against it")
    ap.add_argument("--out", type=Path, default=FIXTURES)
    ap.add_argument("--cases", nargs="*", default=list(CASES))
    ap.add_argument("--bench", type=Path, help="write the benchmark-size case into this folder")
    ap.add_argument("--scenes", type=int, default=150)
    ap.add_argument("--samples", type=int, default=40)
    ap.add_argument("--boxes", type=int, default=30)
    ap.add_argument("--no-run", action="store_true", help="with --bench: only write the inputs")
    ap.add_argument("--bench-python", default=os.environ.get("BENCH_PYTHON", str(ROOT / ".venv" / "bin" / "python")),
                    help="with --check: the Python of bench's environment that runs the comparison")
    args = ap.parse_args()
    if args.bench:
        bench_case(args.bench, args.scenes, args.samples, args.boxes, args.seed, not args.no_run)
        return 0
    if not args.check:
        generate(args.seed, args.out, args.cases)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        generate(args.seed, Path(tmp), args.cases)
        env = dict(os.environ, BENCH_NUSCENES_FIXTURES=tmp)
        return subprocess.call([args.bench_python, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                str(ROOT / "tests" / "metrics" / "test_nuscenes_golden.py")], env=env, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())
