"""DoubleClustering (paper 002, Sec. 3.1, Alg. 1): object point clusters from the scene and the 2D boxes.

1. **LPC** (local point clustering), per frame and per 2D box: the reconstructed points this frame observes
   inside the box, split into connected components of the radius graph with distance threshold ``delta_1``;
   the largest component is the object's points in that frame (the rest is background seen through the box).
2. **GPC** (global point clustering), per video: the union of every LPC cluster, split again into connected
   components with ``delta_2``; components under ``min_points`` points are dropped as noise.
3. Each 2D track gets the GPC component holding most of its LPC points (the paper picks, per 2D box, the
   cluster with the most projected points in it; we vote over the whole track, since every frame of a static
   object sees the same cluster, and a track's frames then share one box). A component claimed by several
   tracks (a car seen through another's box) goes to the track with the most votes for it.

Connected components: scipy's k-d tree pairs within the threshold and ``csgraph.connected_components``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from methods.ba2det.reconstruct import SceneReconstruction


def components(points: np.ndarray, delta: float) -> np.ndarray:
    """Connected-component label of every point ``(N, 3)`` when points closer than ``delta`` are linked."""
    n = len(points)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    pairs = cKDTree(points).query_pairs(delta, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n)) if len(pairs) else \
        coo_matrix((n, n))
    _, labels = connected_components(graph, directed=False)
    return labels.astype(np.int64)


def largest_component(points: np.ndarray, delta: float) -> np.ndarray:
    """Indices (into ``points``) of the largest connected component (ties: the lowest label)."""
    if len(points) == 0:
        return np.zeros(0, dtype=np.int64)
    labels = components(points, delta)
    return np.flatnonzero(labels == np.bincount(labels).argmax())


def lpc(recon: SceneReconstruction, frame_index: int, box: np.ndarray, delta_1: float) -> np.ndarray:
    """LPC: indices of scene points observed by frame ``frame_index`` inside ``box`` (x1 y1 x2 y2), largest
    component at ``delta_1`` only."""
    idx, xy = recon.obs[frame_index]
    inside = (xy[:, 0] >= box[0]) & (xy[:, 0] <= box[2]) & (xy[:, 1] >= box[1]) & (xy[:, 1] <= box[3])
    candidates = np.unique(idx[inside])
    return candidates[largest_component(recon.points[candidates], delta_1)]


@dataclass(frozen=True)
class ClusterConfig:
    delta_1: float = 0.5  # m, LPC (the paper's value)
    delta_2: float = 0.7  # m, GPC (the paper's value)
    min_points: int = 100  # the paper's theta; a profile lowers it for small frames (fewer features per object)


def double_clustering(recon: SceneReconstruction, boxes_2d: pd.DataFrame, frame_index: dict[int, int],
                      config: ClusterConfig) -> dict[int, np.ndarray]:
    """track id -> indices of its object's scene points, for the tracks of one video that got a cluster.

    ``boxes_2d``: that video's 2D label rows (``frame``, ``track_id``, ``x1 y1 x2 y2``); ``frame_index`` maps
    a frame id to its index in the video."""
    votes: dict[int, list[np.ndarray]] = {}
    for frame, track, x1, y1, x2, y2 in boxes_2d[["frame", "track_id", "x1", "y1", "x2", "y2"]].itertuples(
            index=False):
        picked = lpc(recon, frame_index[int(frame)], np.array([x1, y1, x2, y2]), config.delta_1)
        if len(picked):
            votes.setdefault(int(track), []).append(picked)
    if not votes:
        return {}
    pool = np.unique(np.concatenate([p for parts in votes.values() for p in parts]))
    labels = components(recon.points[pool], config.delta_2)
    sizes = np.bincount(labels)
    label_of = dict(zip(pool.tolist(), labels.tolist(), strict=True))
    owner: dict[int, tuple[int, int]] = {}  # cluster -> (votes, track): one cluster, one object
    for track, parts in sorted(votes.items()):
        counts = np.bincount([label_of[p] for p in np.concatenate(parts)], minlength=len(sizes))
        counts[sizes < config.min_points] = 0
        if counts.max() == 0:
            continue
        best = int(counts.argmax())
        if best not in owner or counts[best] > owner[best][0]:
            owner[best] = (int(counts[best]), track)
    return {track: pool[labels == cluster] for cluster, (_, track) in sorted(owner.items(), key=lambda kv: kv[1][1])}
