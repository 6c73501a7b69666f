"""The shared tracking pipeline: track tables -> TrackEval per-sequence data dicts -> CLEAR/Identity/HOTA.

Protocols differ only in preprocessing (each benchmark's rules live in its own module: :mod:`.kitti`,
:mod:`.mot17`) and in the similarity they match on; this module holds what they share and the plain
protocols without any benchmark's preprocessing (``2d-iou``, ``3d-iou``, ``bev-center``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from bench.metrics.base import MetricResult, TrackEvalMetric, per_sequence_frame
from bench.metrics.clear import ClearMetric
from bench.metrics.hota import HotaMetric
from bench.metrics.identity import IdentityMetric

EPS = float(np.finfo(float).eps)
SimilarityFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def frame_slices(frames: np.ndarray, n_frames: int, seq: str = "") -> list[np.ndarray]:
    """Row indices of each frame ``0..n_frames-1`` (one stable sort, no per-frame boolean masks)."""
    if len(frames) and (frames.min() < 0 or frames.max() >= n_frames):
        bad = int(frames.max() if frames.max() >= n_frames else frames.min())
        raise ValueError(f"sequence {seq!r}: frame {bad} is outside its frames 0..{n_frames - 1}")
    order = np.argsort(frames, kind="stable")
    counts = np.bincount(frames, minlength=n_frames)[:n_frames]
    return np.split(order, np.cumsum(counts)[:-1])


def sequence_data(seq: str, gt_ids: list[np.ndarray], tracker_ids: list[np.ndarray],
                  similarity: list[np.ndarray]) -> dict[str, Any]:
    """TrackEval's per-sequence data dict from per-frame IDs and G x T similarity matrices.

    IDs are relabelled to 0..n-1 as TrackEval's datasets do; its metrics index arrays by ID.
    """
    all_gt = np.concatenate(gt_ids) if gt_ids else np.zeros(0, int)
    all_tr = np.concatenate(tracker_ids) if tracker_ids else np.zeros(0, int)
    uniq_gt, gt_new = np.unique(all_gt, return_inverse=True)
    uniq_tr, tr_new = np.unique(all_tr, return_inverse=True)
    gt_split = np.cumsum([len(g) for g in gt_ids])[:-1]
    tr_split = np.cumsum([len(t) for t in tracker_ids])[:-1]
    return {
        "seq": seq,
        "num_timesteps": len(gt_ids),
        "gt_ids": np.split(gt_new.astype(int), gt_split),
        "tracker_ids": np.split(tr_new.astype(int), tr_split),
        "similarity_scores": similarity,
        "num_gt_ids": len(uniq_gt),
        "num_tracker_ids": len(uniq_tr),
        "num_gt_dets": len(all_gt),
        "num_tracker_dets": len(all_tr),
    }


def frame_count(seq: str, gt: pd.DataFrame, pred: pd.DataFrame, sequences: dict[str, Any] | None) -> int:
    """Timesteps of a sequence: its frame ids when known, else the last labelled or predicted frame + 1."""
    if sequences and seq in sequences and sequences[seq].frame_ids is not None:
        return int(np.max(sequences[seq].frame_ids)) + 1
    last = max(int(gt["frame"].max()) if len(gt) else -1, int(pred["frame"].max()) if len(pred) else -1)
    return last + 1


def score_tracking(protocol: str, per_class: dict[str, dict[str, dict[str, Any]]], *, threshold: float,
                   headline: str | None = None) -> MetricResult:
    """CLEAR + Identity + HOTA on ``{class: {seq: data}}``; returns a MetricResult.

    The summary is the ``headline`` class combined over sequences, or, without one, all classes combined
    by summing detections (TrackEval's det-averaged class combination). Per-class summaries go to extras.
    """
    metrics: list[TrackEvalMetric] = [ClearMetric(threshold), IdentityMetric(threshold), HotaMetric()]
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for cls, seqs in per_class.items():
        raw[cls] = {seq: [m.eval_sequence(data) for m in metrics] for seq, data in seqs.items()}

    def summarise(results: dict[str, list[dict[str, Any]]]) -> dict[str, float]:
        out: dict[str, float] = {}
        for i, metric in enumerate(metrics):
            out.update(metric.summary(metric.combine_sequences({key: res[i] for key, res in results.items()})))
        return out

    def per_seq(results: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
        rows: dict[str, dict[str, float]] = {}
        for seq, res in results.items():
            rows[seq] = {}
            for i, metric in enumerate(metrics):
                # TrackEval's own per-sequence numbers, including its shortcuts for empty sequences
                # (e.g. MOTA 0, not -FP, when a sequence has no GT), so per-sequence tables match its output.
                rows[seq].update(metric.summary(res[i]))
        return rows

    class_summaries = {cls: summarise(results) for cls, results in raw.items()}
    if headline is not None:
        summary, seq_rows = class_summaries[headline], per_seq(raw[headline])
    else:
        flat = {f"{cls}/{seq}": res for cls, results in raw.items() for seq, res in results.items()}
        summary = summarise(flat)
        merged: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for cls, results in raw.items():
            for seq, res in results.items():
                merged.setdefault(seq, {})[cls] = res
        seq_rows = {seq: summarise(parts) for seq, parts in merged.items()}
    return MetricResult(protocol=protocol, summary=summary, per_sequence=per_sequence_frame(seq_rows),
                        extras={"per_class": class_summaries, "threshold": threshold, "headline": headline})


def box_columns(df: pd.DataFrame, columns: tuple[str, ...]) -> np.ndarray:
    return df[list(columns)].to_numpy(dtype=float)


_BOX3D = ("x", "y", "z", "h", "w", "l", "yaw")


def _evaluate_plain(protocol: str, gt: pd.DataFrame, pred: pd.DataFrame, sequences: dict[str, Any] | None,
                    paired_fn: SimilarityFn, threshold: float, classes: tuple[str, ...] | None,
                    columns: tuple[str, ...] = _BOX3D) -> Any:
    """Per class, match boxes of the same class; no preprocessing (DontCare and other ID -1 rows are dropped).

    ``classes`` defaults to the classes present in the GT; predictions of other classes are not scored.
    """
    gt = gt[np.isfinite(box_columns(gt, columns)).all(axis=1) & (gt["track_id"].to_numpy() >= 0)
            & (gt["cls"].to_numpy() != "DontCare")]
    pred = pred[pred["track_id"].to_numpy() >= 0]
    bad = ~np.isfinite(box_columns(pred, columns)).all(axis=1)
    if bad.any():
        row = pred.iloc[int(np.flatnonzero(bad)[0])]
        raise ValueError(f"{protocol}: prediction (seq={row['seq']}, frame={row['frame']}, "
                         f"track_id={row['track_id']}) lacks box columns {' '.join(columns)}")
    if classes is None:
        classes = tuple(sorted(set(gt["cls"])))
    seqs = sorted(set(gt["seq"]) | set(pred["seq"]) | set(sequences or {}))
    per_class: dict[str, dict[str, dict[str, Any]]] = {}
    gt_by_seq = dict(tuple(gt.groupby("seq", sort=False)))
    pred_by_seq = dict(tuple(pred.groupby("seq", sort=False)))
    for cls in classes:
        per_class[cls] = {}
        for seq in seqs:
            g = gt_by_seq.get(seq, gt.iloc[:0])
            p = pred_by_seq.get(seq, pred.iloc[:0])
            n = frame_count(seq, g, p, sequences)
            g = g[g["cls"].to_numpy() == cls]
            p = p[p["cls"].to_numpy() == cls]
            per_class[cls][seq] = _plain_sequence(seq, n, g, p, columns, paired_fn)
    return score_tracking(protocol, per_class, threshold=threshold)


def batched_similarity(g_box: np.ndarray, p_box: np.ndarray, g_sl: list[np.ndarray], p_sl: list[np.ndarray],
                       paired_fn: SimilarityFn) -> list[np.ndarray]:
    """Per-frame G x T similarity matrices from ONE call of a row-aligned similarity over all frames' pairs.

    Cheaper than a matrix call per frame when the similarity has many numpy steps (rotated 3D IoU).
    """
    sizes = [(len(gi), len(pi)) for gi, pi in zip(g_sl, p_sl, strict=True)]
    rows = [np.repeat(gi, len(pi)) for gi, pi in zip(g_sl, p_sl, strict=True)]
    cols = [np.tile(pi, len(gi)) for gi, pi in zip(g_sl, p_sl, strict=True)]
    values = paired_fn(g_box[np.concatenate(rows)], p_box[np.concatenate(cols)]) if rows else np.zeros(0)
    chunks = np.split(values, np.cumsum([n * m for n, m in sizes])[:-1])
    return [chunk.reshape(n, m) for chunk, (n, m) in zip(chunks, sizes, strict=True)]


def _plain_sequence(seq: str, n_frames: int, g: pd.DataFrame, p: pd.DataFrame, columns: tuple[str, ...],
                    paired_fn: SimilarityFn) -> dict[str, Any]:
    g_ids, p_ids = g["track_id"].to_numpy(), p["track_id"].to_numpy()
    g_box, p_box = box_columns(g, columns), box_columns(p, columns)
    g_sl = frame_slices(g["frame"].to_numpy(), n_frames, seq)
    p_sl = frame_slices(p["frame"].to_numpy(), n_frames, seq)
    sims = batched_similarity(g_box, p_box, g_sl, p_sl, paired_fn)
    return sequence_data(seq, [g_ids[i] for i in g_sl], [p_ids[i] for i in p_sl], sims)


def evaluate_3d_iou(gt: pd.DataFrame, pred: pd.DataFrame, *, sequences: dict[str, Any] | None = None,
                    threshold: float = 0.25, classes: tuple[str, ...] | None = None) -> Any:
    """CLEAR/Identity/HOTA on rotated 3D IoU of camera-frame boxes, a match needs IoU >= ``threshold``."""
    from bench.metrics.similarity import iou_3d_pairs

    return _evaluate_plain("3d-iou", gt, pred, sequences, iou_3d_pairs, threshold, classes)


def evaluate_bev_center(gt: pd.DataFrame, pred: pd.DataFrame, *, sequences: dict[str, Any] | None = None,
                        max_distance: float = 2.0, classes: tuple[str, ...] | None = None) -> Any:
    """CLEAR/Identity/HOTA on BEV centre distance: similarity ``max(0, 1 - d / max_distance)``, match if d < max.

    TrackEval zeroes similarities below ``threshold - eps``; a threshold of ``2 eps`` keeps exactly the
    pairs with positive similarity, i.e. ``d < max_distance`` (the strict test nuScenes also uses).
    """
    from bench.metrics.similarity import bev_center_similarity_pairs

    def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return bev_center_similarity_pairs(a, b, zero_distance=max_distance)

    return _evaluate_plain("bev-center", gt, pred, sequences, similarity, 2 * EPS, classes)


def evaluate_2d_iou(gt: pd.DataFrame, pred: pd.DataFrame, *, sequences: dict[str, Any] | None = None,
                    threshold: float = 0.5, classes: tuple[str, ...] | None = None) -> Any:
    """CLEAR/Identity/HOTA on plain 2D IoU (>= ``threshold``) per class, without any benchmark's preprocessing."""
    from bench.metrics.similarity import iou_2d_pairs

    return _evaluate_plain("2d-iou", gt, pred, sequences, iou_2d_pairs, threshold, classes, ("x1", "y1", "x2", "y2"))
