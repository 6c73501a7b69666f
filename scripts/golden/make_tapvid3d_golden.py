"""Golden fixtures for bench.metrics.tapvid3d.

tapnet (google-deepmind/tapnet) is not on PyPI, so its evaluation code cannot be installed here. The golden
values are therefore computed by an INDEPENDENT, literal, loop-based transcription of the published definitions
(TAPVid-3D paper, arXiv 2407.05921, Sec. 4 "Metrics", and the tapnet tapvid3d README): one scalar at a time, no
array tricks shared with bench's vectorised code. Optionally, ``--tapnet-metrics PATH`` additionally checks every
case against tapnet's real ``tapvid3d/evaluation/metrics.py`` from a local checkout of tapnet (needs numpy and
einops, e.g. ``python3.11 -m venv .venvs/tapnet && .venvs/tapnet/bin/pip install numpy einops``).

    .venv/bin/python scripts/golden/make_tapvid3d_golden.py                 # write tests/fixtures/metrics/tapvid3d/
    .venv/bin/python scripts/golden/make_tapvid3d_golden.py --seed 5 --check   # fresh cases vs bench, live
    .venvs/tapnet/bin/python scripts/golden/make_tapvid3d_golden.py --check --no-bench \
        --tapnet-metrics ~/tapnet/tapnet/tapvid3d/evaluation/metrics.py
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "metrics" / "tapvid3d"
PIXEL_THRESHOLDS = (1, 2, 4, 8, 16)
SCALINGS = ("median", "mean", "per_trajectory", "none")
TOLERANCE = 1e-6


# ---------------------------------------------------------------------------------------------- reference
def _median(values: list[float]) -> float:
    s = sorted(values)
    n = len(s)
    if n == 0:
        return math.nan
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def _norm(p: list[float]) -> float:
    return math.sqrt(max(1e-12, p[0] * p[0] + p[1] * p[1] + p[2] * p[2]))


def reference_metrics(gt_xyz, gt_vis, pred_xyz, pred_vis, fx_fy_cx_cy, queries_t, scaling: str) -> dict:
    """The paper's definitions, one point at a time.

    Scale s (per video): median / mean of |gt| over median / mean of |pred| over entries visible in both; or per
    track GT depth / predicted depth at the query frame; or 1. A point is within threshold k if
    |s * pred - gt| < k * z_gt / sqrt(fx fy). OA: fraction of entries with equal visibility. APD_k: within & GT
    visible over GT visible. AJ_k: TP / (GT visible + FP) with TP = within & both visible and
    FP = predicted visible & (GT occluded or not within).
    """
    T, N = len(gt_xyz), len(gt_xyz[0])
    scale = [[1.0] * N for _ in range(T)]
    if scaling in ("median", "mean"):
        g_norms, p_norms = [], []
        for t in range(T):
            for n in range(N):
                if gt_vis[t][n] and pred_vis[t][n]:
                    g_norms.append(_norm(gt_xyz[t][n]))
                    p_norms.append(_norm(pred_xyz[t][n]))
        if not g_norms:
            s = math.nan
        elif scaling == "median":
            s = _median(g_norms) / _median(p_norms)
        else:
            s = (sum(g_norms) / len(g_norms)) / (sum(p_norms) / len(p_norms))
        scale = [[s] * N for _ in range(T)]
    elif scaling == "per_trajectory":
        for n in range(N):
            q = int(round(queries_t[n]))
            s = max(gt_xyz[q][n][2], 1e-12) / max(pred_xyz[q][n][2], 1e-12)
            for t in range(T):
                scale[t][n] = s
    fx, fy = fx_fy_cx_cy[0], fx_fy_cx_cy[1]
    focal = math.sqrt(fx * fy)
    same = sum(1 for t in range(T) for n in range(N) if bool(gt_vis[t][n]) == bool(pred_vis[t][n]))
    out = {"occlusion_accuracy": same / (T * N)}
    n_visible = sum(1 for t in range(T) for n in range(N) if gt_vis[t][n])
    apd, aj = [], []
    for k in PIXEL_THRESHOLDS:
        correct = tp = fp = 0
        for t in range(T):
            for n in range(N):
                g, p = gt_xyz[t][n], pred_xyz[t][n]
                s = scale[t][n]
                dist = math.sqrt(sum((s * p[i] - g[i]) ** 2 for i in range(3)))
                threshold = abs(k * g[2] / focal)
                within = dist < threshold  # NaN scale: never within
                if within and gt_vis[t][n]:
                    correct += 1
                    if pred_vis[t][n]:
                        tp += 1
                if pred_vis[t][n] and (not gt_vis[t][n] or not within):
                    fp += 1
        frac = correct / n_visible if n_visible else math.nan
        jac = tp / (n_visible + fp) if (n_visible + fp) else math.nan
        out[f"pts_within_{k}"] = frac
        out[f"jaccard_{k}"] = jac
        apd.append(frac)
        aj.append(jac)
    out["average_pts_within_thresh"] = sum(apd) / len(apd)
    out["average_jaccard"] = sum(aj) / len(aj)
    return out


# ---------------------------------------------------------------------------------------------- cases
def _video(rng: np.random.Generator, T: int = 8, N: int = 12) -> dict:
    start = np.column_stack([rng.uniform(-3, 3, N), rng.uniform(-2, 2, N), rng.uniform(2, 15, N)])
    velocity = rng.normal(0, 0.1, (N, 3))
    xyz = start[None] + np.arange(T)[:, None, None] * velocity[None]
    vis = rng.uniform(size=(T, N)) < 0.8
    q_t = rng.integers(0, T, N)
    vis[q_t, np.arange(N)] = True
    return {"gt_xyz": xyz, "gt_vis": vis, "queries_t": q_t,
            "fx_fy_cx_cy": np.array([rng.uniform(150, 400), rng.uniform(150, 400), 128.0, 128.0])}


def generate_cases(seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    cases = []

    def add(name: str, v: dict, pred_xyz: np.ndarray, pred_vis: np.ndarray) -> None:
        cases.append({"name": name, **v, "pred_xyz": pred_xyz, "pred_vis": pred_vis})

    v = _video(rng)
    add("perfect", v, v["gt_xyz"].copy(), v["gt_vis"].copy())
    v = _video(rng)
    add("scaled_by_two", v, v["gt_xyz"] / 2.0, v["gt_vis"].copy())
    v = _video(rng)
    noise = rng.normal(0, 0.02, v["gt_xyz"].shape) * v["gt_xyz"][..., 2:3]
    add("small_noise", v, v["gt_xyz"] + noise, v["gt_vis"].copy())
    v = _video(rng)
    noise = rng.normal(0, 0.1, v["gt_xyz"].shape) * v["gt_xyz"][..., 2:3]
    add("large_noise_and_scale", v, (v["gt_xyz"] + noise) * 1.7, v["gt_vis"].copy())
    v = _video(rng)
    flip = rng.uniform(size=v["gt_vis"].shape) < 0.3
    add("visibility_flips", v, v["gt_xyz"] + rng.normal(0, 0.01, v["gt_xyz"].shape), v["gt_vis"] ^ flip)
    v = _video(rng)
    add("prediction_all_occluded", v, v["gt_xyz"].copy(), np.zeros_like(v["gt_vis"]))
    v = _video(rng)
    add("prediction_all_visible_far", v, v["gt_xyz"] + np.array([5.0, 0.0, 0.0]), np.ones_like(v["gt_vis"]))
    v = _video(rng)
    v["gt_vis"][:, :] = False
    v["gt_vis"][:, 0] = True
    add("mostly_occluded_gt", v, v["gt_xyz"] * 1.1, rng.uniform(size=v["gt_vis"].shape) < 0.5)
    v = _video(rng, T=10, N=20)
    pred = v["gt_xyz"] * rng.uniform(0.5, 2.0, (1, 20, 1)) + rng.normal(0, 0.05, v["gt_xyz"].shape)
    add("per_track_scale", v, pred, v["gt_vis"].copy())
    v = _video(rng)
    # Errors placed around the 1 px / 4 px thresholds (along x), to catch < vs <=.
    focal = np.sqrt(v["fx_fy_cx_cy"][0] * v["fx_fy_cx_cy"][1])
    k = rng.choice([0.5, 0.999, 1.5, 3.99, 4.5], v["gt_vis"].shape)
    pred = v["gt_xyz"].copy()
    pred[..., 0] += k * v["gt_xyz"][..., 2] / focal
    add("near_thresholds", v, pred, v["gt_vis"].copy())
    v = _video(rng, T=6, N=30)
    add("random", v, v["gt_xyz"] + rng.normal(0, 0.3, v["gt_xyz"].shape), rng.uniform(size=(6, 30)) < 0.6)
    return cases


def _jsonable(case: dict) -> dict:
    out = {}
    for k, v in case.items():
        out[k] = v.tolist() if isinstance(v, np.ndarray) else v
    return out


def official_values(case: dict) -> dict:
    return {s: reference_metrics(case["gt_xyz"], case["gt_vis"], case["pred_xyz"], case["pred_vis"],
                                 case["fx_fy_cx_cy"], case["queries_t"], s) for s in SCALINGS}


# ---------------------------------------------------------------------------------------------- comparisons
def _close(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= TOLERANCE


def compare_bench(cases: list[dict]) -> int:
    sys.path.insert(0, str(ROOT))
    from bench.metrics.tapvid3d import video_metrics

    bad = 0
    for case in cases:
        for scaling, want in case["expected"].items():
            got = video_metrics(np.asarray(case["gt_xyz"]), np.asarray(case["gt_vis"]), np.asarray(case["pred_xyz"]),
                                np.asarray(case["pred_vis"]), np.asarray(case["fx_fy_cx_cy"]), scaling=scaling,
                                query_frames=np.asarray(case["queries_t"]))
            for key, value in want.items():
                if not _close(got[key], value):
                    bad += 1
                    print(f"bench {case['name']} {scaling} {key}: {got[key]} != {value}")
    return bad


def compare_tapnet(cases: list[dict], metrics_path: Path) -> int:
    spec = importlib.util.spec_from_file_location("tapnet_tapvid3d_metrics", metrics_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    bad = 0
    for case in cases:
        for scaling, want in case["expected"].items():
            q = np.asarray(case["queries_t"], float)
            got = module.compute_tapvid3d_metrics(
                gt_occluded=~np.asarray(case["gt_vis"], bool), gt_tracks=np.asarray(case["gt_xyz"]),
                pred_occluded=~np.asarray(case["pred_vis"], bool), pred_tracks=np.asarray(case["pred_xyz"]),
                intrinsics_params=np.asarray(case["fx_fy_cx_cy"]), scaling=scaling,
                query_points=np.column_stack([q, np.zeros_like(q), np.zeros_like(q)])[None], order="t n")
            for key, value in want.items():
                if not _close(float(np.asarray(got[key]).reshape(-1)[0]), value):
                    bad += 1
                    print(f"tapnet {case['name']} {scaling} {key}: {got[key]} != {value}")
    return bad


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=FIXTURES)
    parser.add_argument("--check", action="store_true", help="compare fresh cases live instead of writing them")
    parser.add_argument("--no-bench", action="store_true", help="with --check: skip bench (e.g. in the tapnet venv)")
    parser.add_argument("--tapnet-metrics", type=Path, help="tapnet's tapvid3d/evaluation/metrics.py to check too")
    args = parser.parse_args()
    cases = generate_cases(args.seed)
    for case in cases:
        case["expected"] = official_values(case)
    cases = [_jsonable(c) for c in cases]
    if args.check:
        bad = 0 if args.no_bench else compare_bench(cases)
        if args.tapnet_metrics:
            bad += compare_tapnet(cases, args.tapnet_metrics)
        print(f"compared {len(cases)} cases x {len(SCALINGS)} scalings: {bad} mismatches")
        return 1 if bad else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for i, case in enumerate(cases):
        case["seed"] = args.seed
        case["tool"] = "independent loop-based transcription of the TAPVid-3D definitions (tapnet not on PyPI)"
        (args.out / f"{i:02d}_{case['name']}.json").write_text(json.dumps(case, separators=(",", ":")))
    print(f"wrote {len(cases)} cases to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
