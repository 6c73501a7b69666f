"""Does a trained CenterTrack under-fit near objects? Its heatmap at each ground-truth centre, by box height.

    python benchmarks/centertrack_peaks.py RUN_DIR [--dataset synth-nuscenes] [--data-seed 0] [--split train]
        [--sequences 6] [--every 3]

Why (issue 21): the oracle finds 4 % of the val boxes taller than 50 px, and 13 % of them on its own training
frames. If the network fires weakly at every centre, it under-fits (more steps or width would help); if only near
objects are weak, something about them (truncation, rarity, receptive field) is the cause. For every sampled frame
the network sees the frame, the previous frame and a heatmap of the previous frame's *true* boxes (the best input
the tracker could have), and the script reads the class heatmap's maximum within one output cell of each true
box centre. Reported per height bin: boxes, median peak, the share at or above the run's new-track threshold (what
the tracker would start a track on), the share truncated at the image's left or right edge, and the median depth.
Reads the run's ``training/model.pt`` and the dataset's ground truth; writes nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch
import yaml

from baselines.centertrack.learner import CenterTrackLearner
from baselines.centertrack.targets import DOWN, render_pre_hm
from baselines.centertrack.train import normalise, resize_images
from bench.data.datasets import load_dataset
from bench.data.sequence import Split
from bench.runner.stages import StageDir, load_checkpoint

HEIGHT_BINS = (0, 10, 15, 20, 30, 50, 80, 10_000)


@torch.no_grad()
def centre_peaks(model: torch.nn.Module, input_size: tuple[int, int], classes: tuple[str, ...], split: Split,
                 sequences: int = 6, every: int = 3) -> pd.DataFrame:
    """One row per true box of a known class whose centre is in the image: its height (px), the heatmap's peak
    near its centre, whether it is cut by the left/right image edge, and its depth."""
    model.eval()
    w_in, h_in = input_size
    rows = []
    for name in sorted(split.sequences)[:sequences]:
        seq = split.sequences[name]
        seq.load_images()
        images = resize_images(seq, input_size)
        sx, sy = w_in / seq.image_size[0], h_in / seq.image_size[1]
        tracks = split.tracks[(split.tracks["seq"] == name) & split.tracks["cls"].isin(classes)]
        for t in range(0, seq.num_frames, every):
            now = tracks[tracks["frame"] == seq.frame_ids[t]]
            if not len(now):
                continue
            before = tracks[tracks["frame"] == seq.frame_ids[t - 1]] if t else now.iloc[:0]
            prev = before[["x1", "y1", "x2", "y2"]].to_numpy(float) * [sx, sy, sx, sy]
            pre_hm = render_pre_hm((prev[:, :2] + prev[:, 2:]) / 2, prev[:, 2:] - prev[:, :2], input_size)
            out = model(normalise(images[t:t + 1]), normalise(images[max(t - 1, 0):max(t - 1, 0) + 1]),
                        torch.from_numpy(pre_hm)[None])
            heat = torch.sigmoid(out["hm"])[0].numpy()
            boxes = now[["x1", "y1", "x2", "y2"]].to_numpy(float)
            centres = (boxes[:, :2] + boxes[:, 2:]) / 2 * [sx, sy] / DOWN
            for (x1, y1, x2, y2), (cx, cy), cls, z in zip(boxes, centres, now["cls"], now["z"], strict=True):
                i, j = int(cx), int(cy)
                if not (0 <= i < heat.shape[2] and 0 <= j < heat.shape[1]):
                    continue
                near = heat[classes.index(cls), max(j - 1, 0):j + 2, max(i - 1, 0):i + 2]
                rows.append({"height": y2 - y1, "cls": cls, "peak": float(near.max()), "z": float(z),
                             "truncated": bool(x1 <= 1 or x2 >= seq.image_size[0] - 1)})
    return pd.DataFrame(rows, columns=["height", "cls", "peak", "z", "truncated"])


def by_height(peaks: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """The per-bin summary the script prints."""
    bins = pd.cut(peaks["height"], list(HEIGHT_BINS))
    grouped = peaks.assign(fires=peaks["peak"] >= threshold).groupby(bins, observed=True)
    return grouped.agg(boxes=("peak", "size"), median_peak=("peak", "median"), fires=("fires", "mean"),
                       truncated=("truncated", "mean"), median_z=("z", "median"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="a run folder whose training/model.pt is a CenterTrack")
    parser.add_argument("--dataset", default="synth-nuscenes")
    parser.add_argument("--data-seed", type=int, default=0, help="the world the run trained on")
    parser.add_argument("--split", choices=("train", "val"), default="train")
    parser.add_argument("--sequences", type=int, default=6, help="the first N sequences of the split (by name)")
    parser.add_argument("--every", type=int, default=3, help="every Kth frame")
    args = parser.parse_args()
    torch.set_num_threads(1)
    learner = CenterTrackLearner()
    learner.load_state_dict(load_checkpoint(StageDir(args.run_dir, "training").file("model.pt")))
    dataset = load_dataset(args.dataset, scale="quick", seed=args.data_seed)
    split = dataset.train if args.split == "train" else dataset.val
    peaks = centre_peaks(learner.model_, learner.config_["input_size"], learner.classes_, split, args.sequences,
                         args.every)
    config = yaml.safe_load((args.run_dir / "config.yaml").read_text()) or {}
    threshold = float((config.get("base") or {}).get("new_thresh", learner.params["new_thresh"]))
    print(f"{args.run_dir}: {args.dataset} (data seed {args.data_seed}) {args.split}, {len(peaks)} boxes; "
          f"'fires' = peak >= new_thresh {threshold}")
    print(by_height(peaks, threshold).round(3).to_string())


if __name__ == "__main__":
    main()
