"""benchmarks/centertrack_peaks.py: it reads the heatmap at each true centre, in the right cell and class."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from baselines.centertrack.targets import objects_from_table, render_targets

HARNESS = Path(__file__).resolve().parents[1] / "harness"


@pytest.fixture(scope="module")
def peaks_script(load_script):
    return load_script("centertrack_peaks")


@pytest.fixture(scope="module")
def tiny_train():
    sys.path.insert(0, str(HARNESS))
    try:
        from tiny import make_dataset
    finally:
        sys.path.remove(str(HARNESS))
    return make_dataset(seed=0).train


class TruthHeatmap(torch.nn.Module):
    """Stands in for the network: its heatmap is the training target of the frame it is shown (CenterNet's
    Gaussians from ``render_targets``), except for boxes taller than ``hide_above`` px, which it misses."""

    def __init__(self, split, input_size, hide_above: float = np.inf):
        super().__init__()
        self.frames = {}
        for (name, frame), rows in split.tracks.groupby(["seq", "frame"]):
            seq = split.sequences[name]
            seq.load_images()
            image = np.asarray(seq.image(seq.index_of(int(frame))))
            shown = rows[(rows["y2"] - rows["y1"]) <= hide_above]
            objects, _ = objects_from_table(shown, ("Car",), input_size[0] / seq.image_size[0],
                                            input_size[1] / seq.image_size[1])
            hm = render_targets(objects, seq.intrinsics[0], input_size, 1)["hm"]
            self.frames[image.tobytes()] = torch.logit(torch.from_numpy(hm).clamp(1e-4, 1 - 1e-4))
        self.input_size = input_size

    def forward(self, img, pre_img, pre_hm):
        raw = ((img[0] * 0.25 + 0.45) * 255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
        return {"hm": self.frames[raw.tobytes()][None]}


def test_every_true_centre_reads_its_own_peak(peaks_script, tiny_train):
    size = (64, 48)  # the tiny world's own size: no resizing, so the fake network recognises each frame
    peaks = peaks_script.centre_peaks(TruthHeatmap(tiny_train, size), size, ("Car",), tiny_train,
                                      sequences=10, every=1)
    inside = tiny_train.tracks
    assert 0 < len(peaks) <= len(inside)
    assert np.allclose(peaks["peak"], 1.0, atol=1e-3)
    table = peaks_script.by_height(peaks, threshold=0.4)
    assert table["boxes"].sum() == len(peaks) and (table["fires"] == 1.0).all()


def test_missed_tall_boxes_show_in_their_bins(peaks_script, tiny_train):
    size = (64, 48)
    peaks = peaks_script.centre_peaks(TruthHeatmap(tiny_train, size, hide_above=10.0), size, ("Car",), tiny_train,
                                      sequences=10, every=1)
    table = peaks_script.by_height(peaks, threshold=0.4)
    tall = peaks["height"] > 10.0
    assert tall.any() and (~tall).any()
    # A hidden box may still sit inside a shown neighbour's Gaussian, so tall boxes mostly (not all) read low.
    assert (peaks.loc[~tall, "peak"] > 0.99).all() and peaks.loc[tall, "peak"].median() < 0.4
    assert table["fires"].iloc[0] == 1.0 and table["fires"].iloc[-1] == 0.0  # the shortest bin fires, the tallest not
