"""Golden values for CLEAR / Identity / HOTA from the OFFICIAL TrackEval pipeline.

Generates tracking cases (perfect, empty, all-FP, ID swaps, fragmented, occluded / truncated / DontCare,
distractor classes, IoU and height boundaries, boxes at the image border, varied scores, random noisy
worlds), writes them as KITTI label files (and MOTChallenge files for ``mot17``), runs
``trackeval.Evaluator`` with ``trackeval.datasets.Kitti2DBox`` / ``MotChallenge2DBox`` on them, and stores
the official numbers as JSON next to the inputs under ``tests/fixtures/metrics/trackeval/``.

    python scripts/golden/make_trackeval_golden.py                   # rewrite the fixtures (seed 0)
    python scripts/golden/make_trackeval_golden.py --seed 123 --check  # new cases, compare live, write nothing

``--check`` compares bench's ``evaluate("kitti-2d" | "mot17", ...)`` with TrackEval on the fresh cases and
exits 1 on any difference above 1e-6 (``tox -e parity`` runs it).

TrackEval cannot read raw ``Person_sitting`` labels (see bench/metrics/kitti.py); like TrackEval's own copy
of the KITTI GT, the files given to TrackEval name that class ``Person``. The fixtures keep the raw name.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import trackeval

from bench.data.formats.kitti import read_labels, write_labels
from bench.data.formats.mot import read_gt
from bench.data.tracks import DONTCARE, concat_tracks, make_tracks
from bench.metrics import evaluate
from bench.metrics.clear import ClearMetric
from bench.metrics.hota import HotaMetric
from bench.metrics.identity import IdentityMetric

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "metrics" / "trackeval"
IMAGE_W, IMAGE_H = 1242.0, 375.0
KITTI_CLASSES = ("car", "pedestrian")
TOLERANCE = 1e-6

# --------------------------------------------------------------------------------------------------
# Case generation (track tables; 2D values rounded to 2 decimals so the text files round-trip exactly)

SIZES = {"Car": ((60, 200), (40, 120)), "Van": ((80, 220), (50, 130)), "Pedestrian": ((20, 50), (40, 110)),
         "Person_sitting": ((25, 50), (30, 60)), "Cyclist": ((30, 70), (40, 100))}


def _rows_3d(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Plausible 3D columns (the reader requires them on real objects); the 2D protocol ignores them."""
    return {"x": np.round(rng.uniform(-10, 10, n), 2), "y": np.full(n, 1.6), "z": np.round(rng.uniform(5, 60, n), 2),
            "h": np.full(n, 1.5), "w": np.full(n, 1.6), "l": np.full(n, 3.9), "yaw": np.zeros(n)}


def _table(rows: list[dict], rng: np.random.Generator) -> pd.DataFrame:
    if not rows:
        return make_tracks(pd.DataFrame(columns=["seq", "frame", "track_id", "cls", "x1", "y1", "x2", "y2"]))
    df = pd.DataFrame(rows)
    for col in ("occlusion", "truncation"):
        if col in df:
            df[col] = df[col].fillna(0).astype(int)
    for col in ("x1", "y1", "x2", "y2", "score"):
        if col in df:
            df[col] = df[col].astype(float).round(2)
    real = (df["cls"] != DONTCARE).to_numpy()
    extra = _rows_3d(len(df), rng)
    for col, values in extra.items():
        df[col] = np.where(real, values, np.nan)
    return make_tracks(df)


def random_world(rng: np.random.Generator, seqs: list[str], n_frames: int, n_objects: int,
                 dontcare_per_frame: float = 0.5) -> pd.DataFrame:
    """Objects moving linearly through the image, with KITTI occlusion/truncation levels and DontCare regions."""
    classes = np.array(list(SIZES))
    rows: list[dict] = []
    for seq in seqs:
        for obj in range(n_objects):
            cls = str(rng.choice(classes, p=[0.45, 0.1, 0.3, 0.05, 0.1]))
            (wlo, whi), (hlo, hhi) = SIZES[cls]
            w, h = rng.uniform(wlo, whi), rng.uniform(hlo, hhi)
            x, y = rng.uniform(-w / 2, IMAGE_W - w / 2), rng.uniform(80, IMAGE_H - h)
            vx, vy = rng.normal(0, 6), rng.normal(0, 1)
            start = int(rng.integers(0, n_frames - 1))
            length = int(rng.integers(2, n_frames - start + 1))
            occ, trunc = int(rng.choice(4, p=[0.6, 0.2, 0.12, 0.08])), int(rng.choice(3, p=[0.85, 0.1, 0.05]))
            for f in range(start, start + length):
                if rng.random() < 0.1:  # occlusion / truncation change along the track
                    occ, trunc = int(rng.choice(4, p=[0.6, 0.2, 0.12, 0.08])), int(rng.choice(3, p=[0.85, 0.1, 0.05]))
                x1, y1 = x + vx * (f - start), y + vy * (f - start)
                box = np.clip([x1, y1, x1 + w, y1 + h], 0, [IMAGE_W, IMAGE_H, IMAGE_W, IMAGE_H])
                if box[2] - box[0] < 2 or box[3] - box[1] < 2:
                    continue
                rows.append(dict(seq=seq, frame=f, track_id=obj, cls=cls, x1=box[0], y1=box[1], x2=box[2], y2=box[3],
                                 occlusion=occ, truncation=trunc))
        for f in range(n_frames):
            for _ in range(int(rng.poisson(dontcare_per_frame))):
                x1, y1 = rng.uniform(0, IMAGE_W - 100), rng.uniform(100, IMAGE_H - 60)
                rows.append(dict(seq=seq, frame=f, track_id=-1, cls=DONTCARE, x1=x1, y1=y1,
                                 x2=x1 + rng.uniform(20, 100), y2=y1 + rng.uniform(15, 60)))
    return _table(rows, rng)


def noisy_predictions(rng: np.random.Generator, gt: pd.DataFrame, *, jitter: float = 0.08, p_drop: float = 0.1,
                      p_switch: float = 0.05, fp_per_frame: float = 0.5, n_frames: int = 0) -> pd.DataFrame:
    """A tracker's output: jittered GT (distractor classes predicted as their main class), drops, ID switches, FPs."""
    real = gt[gt["cls"] != DONTCARE]
    pred_cls = {"Car": "Car", "Van": "Car", "Pedestrian": "Pedestrian", "Person_sitting": "Pedestrian",
                "Cyclist": "Cyclist"}
    rows: list[dict] = []
    next_id = 1000
    for (seq, tid), track in real.groupby(["seq", "track_id"]):
        pid = int(tid)
        for r in track.itertuples(index=False):
            if rng.random() < p_switch:
                pid, next_id = next_id, next_id + 1
            if rng.random() < p_drop:
                continue
            w, h = r.x2 - r.x1, r.y2 - r.y1
            dx1, dx2 = rng.normal(0, jitter * w, 2)
            dy1, dy2 = rng.normal(0, jitter * h, 2)
            x1, x2 = sorted((r.x1 + dx1, r.x2 + dx2))
            y1, y2 = sorted((r.y1 + dy1, r.y2 + dy2))
            rows.append(dict(seq=seq, frame=r.frame, track_id=pid, cls=pred_cls[r.cls], x1=x1, y1=y1, x2=x2, y2=y2,
                             score=rng.uniform(0.05, 1.0)))
    seqs = sorted(set(gt["seq"]))
    for seq in seqs:
        for f in range(n_frames):
            for _ in range(int(rng.poisson(fp_per_frame))):
                w, h = rng.uniform(15, 150), rng.uniform(10, 110)
                x1, y1 = rng.uniform(0, IMAGE_W - w), rng.uniform(60, IMAGE_H - h)
                rows.append(dict(seq=seq, frame=f, track_id=next_id, cls=str(rng.choice(["Car", "Pedestrian"])),
                                 x1=x1, y1=y1, x2=x1 + w, y2=y1 + h, score=rng.uniform(0.05, 1.0)))
                next_id += 1
    return _table(rows, rng)


def _box(seq: str, f: int, tid: int, cls: str, box: tuple[float, float, float, float], **kw: float) -> dict:
    return dict(seq=seq, frame=f, track_id=tid, cls=cls, x1=box[0], y1=box[1], x2=box[2], y2=box[3], **kw)


def kitti_cases(seed: int) -> dict[str, tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]]:
    """name -> (gt, pred, frames per sequence)."""
    rng = np.random.default_rng(seed)
    cases: dict[str, tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]] = {}

    world = random_world(rng, ["0000", "0001"], 20, 6)
    real = world[world["cls"] != DONTCARE].copy()
    real["cls"] = real["cls"].replace({"Van": "Car", "Person_sitting": "Pedestrian"})
    cases["perfect"] = (world, real.reset_index(drop=True), {"0000": 20, "0001": 20})
    cases["empty_pred"] = (world, _table([], rng), {"0000": 20, "0001": 20})
    fp = noisy_predictions(rng, world, p_drop=0.0, p_switch=0.0, fp_per_frame=0.0)
    fp["y1"], fp["y2"] = (fp["y1"] + 1000).round(2), (fp["y2"] + 1000).round(2)  # nowhere near any GT
    cases["all_fp"] = (world, fp, {"0000": 20, "0001": 20})
    cases["empty_gt"] = (_table([], rng), noisy_predictions(rng, world), {"0000": 20, "0001": 20})

    # Two cars cross; the tracker swaps their IDs at the crossing (and once more later).
    rows_gt, rows_pr = [], []
    for f in range(16):
        a = (100 + 30 * f, 150, 220 + 30 * f, 230)
        b = (600 - 30 * f, 155, 720 - 30 * f, 235)
        rows_gt += [_box("0000", f, 1, "Car", a), _box("0000", f, 2, "Car", b)]
        swap = 8 <= f < 13
        j = rng.normal(0, 2, 4)
        rows_pr += [_box("0000", f, 20 if swap else 10, "Car", tuple(np.add(a, j))),
                    _box("0000", f, 10 if swap else 20, "Car", tuple(np.add(b, j[::-1])))]
    cases["id_swaps"] = (_table(rows_gt, rng), _table(rows_pr, rng), {"0000": 16})

    # Fragmented: one long pedestrian track, covered with gaps and a new ID after each gap.
    rows_gt, rows_pr = [], []
    for f in range(30):
        box = (300 + 4 * f, 120, 340 + 4 * f, 220)
        rows_gt.append(_box("0000", f, 5, "Pedestrian", box))
        if f % 10 < 7:
            rows_pr.append(_box("0000", f, 50 + f // 10 if f % 20 < 10 else 50, "Pedestrian",
                                tuple(np.add(box, rng.normal(0, 1.5, 4)))))
    cases["fragmented"] = (_table(rows_gt, rng), _table(rows_pr, rng), {"0000": 30})

    # Occluded (> 2) and truncated (> 0) GT: matched predictions vanish, the GT is not counted.
    rows_gt, rows_pr = [], []
    for f in range(10):
        for k, (occ, trunc) in enumerate([(0, 0), (3, 0), (0, 1), (2, 2), (1, 0)]):
            box = (50 + 220 * k, 100 + f, 180 + 220 * k, 190 + f)
            rows_gt.append(_box("0000", f, k, "Car", box, occlusion=occ, truncation=trunc))
            if rng.random() < 0.8:
                rows_pr.append(_box("0000", f, 100 + k, "Car", tuple(np.add(box, rng.normal(0, 6, 4)))))
    cases["occluded_truncated"] = (_table(rows_gt, rng), _table(rows_pr, rng), {"0000": 10})

    # DontCare regions and minimum height: unmatched predictions inside DontCare (IoA > 0.5, = 0.5, < 0.5)
    # and with heights 24, 25 (removed: <= 25 px) and 25.01 (kept, an FP).
    rows_gt, rows_pr = [], []
    for f in range(8):
        rows_gt.append(_box("0000", f, -1, DONTCARE, (600, 100, 800, 200)))
        rows_gt.append(_box("0000", f, 1, "Car", (100, 150, 250, 250)))
        rows_gt.append(_box("0000", f, 2, "Pedestrian", (900, 120, 940, 220)))
        rows_pr += [_box("0000", f, 1, "Car", (102, 151, 251, 252)),
                    _box("0000", f, 2, "Pedestrian", (899, 121, 941, 219)),
                    _box("0000", f, 3, "Car", (650, 120, 750, 180)),  # inside DontCare
                    _box("0000", f, 4, "Car", (500, 100, 700, 200)),  # IoA exactly 0.5: kept
                    _box("0000", f, 5, "Pedestrian", (560, 110, 660, 160)),  # IoA 0.6
                    _box("0000", f, 6, "Car", (300, 40, 360, 64)),  # 24 px
                    _box("0000", f, 7, "Car", (400, 40, 460, 65)),  # 25 px
                    _box("0000", f, 8, "Pedestrian", (1000, 40, 1020, 65.01)),  # 25.01 px
                    _box("0000", f, 9, "Car", (1100, 300, 1120, 300 + 20 + f))]  # grows past 25 px
    cases["dontcare_min_height"] = (_table(rows_gt, rng), _table(rows_pr, rng), {"0000": 8})

    # Distractor classes: predictions on Vans (car) and Person_sitting (pedestrian) are neither TP nor FP.
    rows_gt, rows_pr = [], []
    for f in range(12):
        for k, cls in enumerate(["Car", "Van", "Pedestrian", "Person_sitting", "Cyclist"]):
            box = (40 + 240 * k, 120, 140 + 240 * k + (60 if cls in ("Car", "Van") else 0), 230)
            rows_gt.append(_box("0000", f, k, cls, box))
            pcls = {"Van": "Car", "Person_sitting": "Pedestrian"}.get(cls, cls)
            rows_pr.append(_box("0000", f, 10 + k, pcls, tuple(np.add(box, rng.normal(0, 3, 4)))))
    cases["distractors"] = (_table(rows_gt, rng), _table(rows_pr, rng), {"0000": 12})

    # IoU exactly at the 0.5 threshold, and boxes touching the image border (the range limit of the image).
    rows_gt, rows_pr = [], []
    for f in range(6):
        rows_gt += [_box("0000", f, 1, "Car", (0, 100, 100, 200)), _box("0000", f, 2, "Car", (1142, 100, IMAGE_W, 200)),
                    _box("0000", f, 3, "Car", (400, 100, 500, 200))]
        rows_pr += [_box("0000", f, 1, "Car", (0, 100, 100, 150)),  # IoU 0.5 exactly: a match
                    _box("0000", f, 2, "Car", (1142, 100, IMAGE_W, 200)),
                    _box("0000", f, 3, "Car", (400, 100, 500, 149.99))]  # IoU just below 0.5
    cases["iou_boundary_border"] = (_table(rows_gt, rng), _table(rows_pr, rng), {"0000": 6})

    world = random_world(rng, ["0000"], 25, 10)
    cases["varied_scores"] = (world, noisy_predictions(rng, world, p_drop=0.2, n_frames=25), {"0000": 25})
    for k in range(3):
        seqs = [f"{i:04d}" for i in range(3)]
        world = random_world(rng, seqs, 30, 12, dontcare_per_frame=1.0)
        pred = noisy_predictions(rng, world, jitter=0.05 + 0.05 * k, p_drop=0.15, p_switch=0.03 + 0.03 * k,
                                 fp_per_frame=0.3 + 0.5 * k, n_frames=30)
        cases[f"random_{k}"] = (world, pred, dict.fromkeys(seqs, 30))
    return cases


# --------------------------------------------------------------------------------------------------
# Running the official pipeline

def _official_summary(res: dict) -> dict[str, float]:
    out: dict[str, float] = {}
    for metric, key in ((ClearMetric(), "CLEAR"), (IdentityMetric(), "Identity"), (HotaMetric(), "HOTA")):
        out.update(metric.summary(res[key]))
    return out


def _run_evaluator(dataset: object) -> dict:
    config = trackeval.Evaluator.get_default_eval_config()
    config.update({"PRINT_RESULTS": False, "PRINT_CONFIG": False, "TIME_PROGRESS": False, "OUTPUT_SUMMARY": False,
                   "OUTPUT_DETAILED": False, "PLOT_CURVES": False, "LOG_ON_ERROR": None, "DISPLAY_LESS_PROGRESS": True})
    metrics = [trackeval.metrics.CLEAR({"PRINT_CONFIG": False}), trackeval.metrics.Identity({"PRINT_CONFIG": False}),
               trackeval.metrics.HOTA()]
    with contextlib.redirect_stdout(io.StringIO()):
        output, messages = trackeval.Evaluator(config).evaluate([dataset], metrics)
    (result,) = output.values()
    (tracker_res,) = result.values()
    (message,) = messages.values()
    if list(message.values()) != ["Success"]:
        raise RuntimeError(f"TrackEval failed: {message}")
    return tracker_res


def trackeval_kitti(case_dir: Path, n_frames: dict[str, int], work: Path) -> dict:
    """Run Kitti2DBox on ``case_dir/{gt,pred}/<seq>.txt``; returns {cls: {"combined": .., "per_seq": {..}}}."""
    gt_fol, tr_fol = work / "gt", work / "trackers"
    (gt_fol / "label_02").mkdir(parents=True)
    (tr_fol / "bench" / "data").mkdir(parents=True)
    lines = []
    for seq, n in sorted(n_frames.items()):
        text = (case_dir / "gt" / f"{seq}.txt").read_text() if (case_dir / "gt" / f"{seq}.txt").exists() else ""
        # TrackEval's GT copy names Person_sitting 'Person' (it cannot read the raw name).
        (gt_fol / "label_02" / f"{seq}.txt").write_text(text.replace(" Person_sitting ", " Person "))
        pred = case_dir / "pred" / f"{seq}.txt"
        (tr_fol / "bench" / "data" / f"{seq}.txt").write_text(pred.read_text() if pred.exists() else "")
        lines.append(f"{seq} empty 000000 {n:06d}")
    (gt_fol / "evaluate_tracking.seqmap.training").write_text("\n".join(lines) + "\n")
    dataset = trackeval.datasets.Kitti2DBox({"GT_FOLDER": str(gt_fol), "TRACKERS_FOLDER": str(tr_fol),
                                             "SPLIT_TO_EVAL": "training", "PRINT_CONFIG": False,
                                             "TRACKERS_TO_EVAL": ["bench"]})
    res = _run_evaluator(dataset)
    return {cls: {"combined": _official_summary(res["COMBINED_SEQ"][cls]),
                  "per_seq": {seq: _official_summary(res[seq][cls]) for seq in sorted(n_frames)}}
            for cls in KITTI_CLASSES}


def write_kitti_case(case_dir: Path, gt: pd.DataFrame, pred: pd.DataFrame, n_frames: dict[str, int]) -> None:
    for seq in n_frames:
        write_labels(case_dir / "gt" / f"{seq}.txt", gt[gt["seq"] == seq])
        write_labels(case_dir / "pred" / f"{seq}.txt", pred[pred["seq"] == seq], with_score=True)


def read_kitti_case(case_dir: Path, n_frames: dict[str, int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    gt = concat_tracks(read_labels(case_dir / "gt" / f"{s}.txt", s) for s in n_frames)
    pred = concat_tracks(read_labels(case_dir / "pred" / f"{s}.txt", s) for s in n_frames)
    return gt, pred


def ours_kitti(gt: pd.DataFrame, pred: pd.DataFrame, n_frames: dict[str, int]) -> dict:
    """bench's kitti-2d in the same shape as :func:`trackeval_kitti` (per-sequence numbers for car only)."""
    from types import SimpleNamespace

    sequences = {s: SimpleNamespace(frame_ids=np.arange(n)) for s, n in n_frames.items()}
    result = evaluate("kitti-2d", gt, pred, sequences=sequences)  # type: ignore[arg-type]
    table = result.per_sequence.pivot(index="seq", columns="metric", values="value")
    return {cls: {"combined": result.extras["per_class"][cls]} for cls in KITTI_CLASSES} | {
        "car_per_seq": {seq: table.loc[seq].to_dict() for seq in table.index}}


# --------------------------------------------------------------------------------------------------
# MOTChallenge (mot17)

def mot_cases(seed: int) -> dict[str, tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]]:
    """Pedestrian worlds with MOT17 distractor classes and zero-marked GT; cls holds the MOT class id."""
    rng = np.random.default_rng(seed + 1)
    cases = {}
    for name, p_drop, fp_rate in (("jittered", 0.0, 0.0), ("noisy", 0.15, 0.5), ("very_noisy", 0.3, 2.0),
                                  ("empty_pred", 1.0, 0.0)):
        rows: list[dict] = []
        for seq in ("MOT17-02", "MOT17-04"):
            for obj in range(10):
                cls = int(rng.choice([1, 1, 1, 1, 2, 7, 8, 12, 3, 13]))
                consider = int(cls == 1 and rng.random() > 0.1)
                w, h = rng.uniform(20, 60), rng.uniform(50, 160)
                x, y = rng.uniform(0, 1800), rng.uniform(0, 900)
                start = int(rng.integers(0, 20))
                for f in range(start, min(25, start + int(rng.integers(3, 25)))):
                    rows.append(dict(seq=seq, frame=f, track_id=obj + 1, cls=str(cls), conf=float(consider),
                                     x1=round(x + 3 * (f - start), 2), y1=round(y, 2), w=round(w, 2), h=round(h, 2)))
        gt = pd.DataFrame(rows)
        pr_rows = []
        for r in gt.itertuples(index=False):
            if rng.random() < p_drop:
                continue
            pr_rows.append(dict(seq=r.seq, frame=r.frame, track_id=r.track_id + (100 if rng.random() < 0.05 else 0),
                                cls="1", x1=round(r.x1 + rng.normal(0, 2), 2), y1=round(r.y1 + rng.normal(0, 2), 2),
                                w=r.w, h=r.h, score=round(rng.uniform(0, 1), 2)))
        for seq in ("MOT17-02", "MOT17-04"):
            for f in range(25):
                for _ in range(int(rng.poisson(fp_rate))):
                    pr_rows.append(dict(seq=seq, frame=f, track_id=int(rng.integers(500, 600)), cls="1",
                                        x1=round(rng.uniform(0, 1800), 2), y1=round(rng.uniform(0, 900), 2),
                                        w=40.0, h=100.0, score=0.5))
        pred = pd.DataFrame(pr_rows).drop_duplicates(["seq", "frame", "track_id"])
        cases[name] = (gt, pred, {"MOT17-02": 25, "MOT17-04": 25})
    return cases


def write_mot_case(case_dir: Path, gt: pd.DataFrame, pred: pd.DataFrame, n_frames: dict[str, int]) -> None:
    """MOTChallenge text files (1-based frames): ``gt/<seq>.txt`` as gt.txt, ``pred/<seq>.txt`` as results.

    Results get the 7 columns both TrackEval and bench's MOT reader accept (bench.data.formats.mot's
    ``read_gt`` takes at most 9 columns, so the 10-column form with -1 x y z is avoided here).
    """
    (case_dir / "gt").mkdir(parents=True, exist_ok=True)
    (case_dir / "pred").mkdir(parents=True, exist_ok=True)
    for seq in n_frames:
        g = gt[gt["seq"] == seq]
        p = pred[pred["seq"] == seq] if len(pred) else pred
        (case_dir / "gt" / f"{seq}.txt").write_text("".join(
            f"{r.frame + 1},{r.track_id},{r.x1},{r.y1},{r.w},{r.h},{int(r.conf)},{r.cls},1\n"
            for r in g.itertuples(index=False)))
        (case_dir / "pred" / f"{seq}.txt").write_text("".join(
            f"{r.frame + 1},{r.track_id},{r.x1},{r.y1},{r.w},{r.h},{r.score}\n"
            for r in p.itertuples(index=False)))


def trackeval_mot(case_dir: Path, n_frames: dict[str, int], work: Path) -> dict:
    gt_fol, tr_fol = work / "gt", work / "trackers"
    (tr_fol / "bench" / "data").mkdir(parents=True)
    for seq in n_frames:
        (gt_fol / seq / "gt").mkdir(parents=True)
        (gt_fol / seq / "gt" / "gt.txt").write_text((case_dir / "gt" / f"{seq}.txt").read_text())
        (tr_fol / "bench" / "data" / f"{seq}.txt").write_text((case_dir / "pred" / f"{seq}.txt").read_text())
    dataset = trackeval.datasets.MotChallenge2DBox({
        "GT_FOLDER": str(gt_fol), "TRACKERS_FOLDER": str(tr_fol), "BENCHMARK": "MOT17", "SKIP_SPLIT_FOL": True,
        "SEQ_INFO": dict(n_frames), "PRINT_CONFIG": False, "TRACKERS_TO_EVAL": ["bench"]})
    res = _run_evaluator(dataset)
    return {"pedestrian": {"combined": _official_summary(res["COMBINED_SEQ"]["pedestrian"]),
                           "per_seq": {s: _official_summary(res[s]["pedestrian"]) for s in sorted(n_frames)}}}


def ours_mot(case_dir: Path, n_frames: dict[str, int]) -> dict:
    from types import SimpleNamespace

    gt = concat_tracks(read_gt(case_dir / "gt" / f"{s}.txt", s) for s in n_frames)
    pred = concat_tracks(read_gt(case_dir / "pred" / f"{s}.txt", s) for s in n_frames)
    sequences = {s: SimpleNamespace(frame_ids=np.arange(n)) for s, n in n_frames.items()}
    result = evaluate("mot17", gt, pred, sequences=sequences)  # type: ignore[arg-type]
    table = result.per_sequence.pivot(index="seq", columns="metric", values="value")
    return {"pedestrian": {"combined": result.summary,
                           "per_seq": {seq: table.loc[seq].to_dict() for seq in table.index}}}


# --------------------------------------------------------------------------------------------------

def differences(expected: dict, got: dict, where: str = "") -> list[str]:
    """Every metric whose value differs by more than TOLERANCE (or is missing)."""
    out = []
    for key, value in expected.items():
        if isinstance(value, dict):
            out += differences(value, got.get(key, {}), f"{where}/{key}")
        elif key not in got or not abs(float(got[key]) - float(value)) <= TOLERANCE:
            out.append(f"{where}/{key}: TrackEval {value}, bench {got.get(key)}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated cases (fixtures use 0)")
    parser.add_argument("--check", action="store_true", help="compare bench with TrackEval live; write nothing")
    parser.add_argument("--out", type=Path, default=FIXTURES, help="fixture folder")
    args = parser.parse_args()

    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        for name, (gt, pred, n_frames) in kitti_cases(args.seed).items():
            case_dir = (tmp_path / "cases" / name) if args.check else (args.out / "kitti" / name)
            write_kitti_case(case_dir, gt, pred, n_frames)
            official = trackeval_kitti(case_dir, n_frames, tmp_path / "work" / name)
            gt_read, pred_read = read_kitti_case(case_dir, n_frames)
            ours = ours_kitti(gt_read, pred_read, n_frames)
            bad = differences({cls: {"combined": official[cls]["combined"]} for cls in KITTI_CLASSES}, ours, name)
            bad += differences(official["car"]["per_seq"], ours["car_per_seq"], f"{name}/car_per_seq")
            failures += bad
            car, ped = official["car"]["combined"], official["pedestrian"]["combined"]
            print(f"kitti/{name}: car HOTA {car['HOTA']:.4f} MOTA {car['MOTA']:.4f} IDF1 {car['IDF1']:.4f} | "
                  f"pedestrian HOTA {ped['HOTA']:.4f} MOTA {ped['MOTA']:.4f}  {'OK' if not bad else 'MISMATCH'}")
            if not args.check:
                (case_dir / "expected.json").write_text(json.dumps(
                    {"seed": args.seed, "n_frames": n_frames, "trackeval": trackeval.__version__ if hasattr(
                        trackeval, "__version__") else "1.3.0", "results": official}, indent=1, sort_keys=True))
        for name, (gt, pred, n_frames) in mot_cases(args.seed).items():
            case_dir = (tmp_path / "mot_cases" / name) if args.check else (args.out / "mot17" / name)
            write_mot_case(case_dir, gt, pred, n_frames)
            official = trackeval_mot(case_dir, n_frames, tmp_path / "mot" / name)
            bad = differences(official, ours_mot(case_dir, n_frames), f"mot17/{name}")
            failures += bad
            hota = official["pedestrian"]["combined"]["HOTA"]
            print(f"mot17/{name}: HOTA {hota:.4f}  {'OK' if not bad else 'MISMATCH'}")
            if not args.check:
                (case_dir / "expected.json").write_text(json.dumps(
                    {"seed": args.seed, "n_frames": n_frames, "results": official}, indent=1, sort_keys=True))
    for line in failures:
        print("MISMATCH", line, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
