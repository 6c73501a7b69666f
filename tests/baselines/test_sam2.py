"""The sam2 adapter (baselines/sam2): its merging rules always; SAM 2's real video predictor where installed.

The real-code tests build SAM 2.1's tiny config with random weights (no checkpoint exists here) at a small input
size, so they check the adapter's use of SAM 2's API (prompts, both propagation passes, several objects, mask
shapes, checkpoint loading) and nothing about SAM 2's accuracy. They skip when the ``sam2`` extra is absent.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from baselines.sam2.labeler import Sam2, mask_to_box, nearer_pass, track_video
from bench.config import ConfigError
from bench.runner import Job, SweepOptions, run_sweep
from bench.runner.pipeline import protocols_for
from bench.store import Store


def test_mask_to_box_uses_pixel_edges():
    mask = np.zeros((10, 12), bool)
    assert mask_to_box(mask) is None
    mask[2:5, 3:9] = True
    assert mask_to_box(mask) == (3.0, 2.0, 9.0, 5.0)


def test_each_frame_takes_the_pass_from_its_nearer_label():
    labels = [4, 10]
    assert [nearer_pass(f, labels) for f in (0, 3, 4, 5, 7, 8, 10, 11, 30)] == [
        "reverse", "reverse", "label", "forward", "forward", "reverse", "label", "forward", "forward"]
    assert nearer_pass(3, []) is None


def test_a_missing_checkpoint_names_the_flag_at_plan_time(tmp_path):
    with pytest.raises(ValueError, match=r"--set method\.checkpoint=PATH"):
        Sam2()
    options = SweepOptions(runs_root=tmp_path / "runs", progress=False, device="cpu")
    with pytest.raises(ConfigError, match=r"--set method\.checkpoint=PATH"):
        run_sweep([Job("sam2", dataset="synth-kitti", budget=2, seed=0, profile="smoke")], options)


class FakeVideoPredictor:
    """SAM 2's video-predictor API on a scripted world: object ``k`` is a square whose mask exists on the frames
    listed in ``present`` (an object outside them gives an empty mask, as SAM 2 does for an absent object)."""

    def __init__(self, size: tuple[int, int], present: dict[int, set[int]], num_frames: int) -> None:
        self.size, self.present, self.num_frames = size, present, num_frames
        self.calls: list[tuple] = []

    def init_state(self, video_path, **kwargs):
        self.calls.append(("init", video_path))
        return {"prompts": {}}

    def add_new_points_or_box(self, state, frame_idx, obj_id, box):
        state["prompts"].setdefault(obj_id, {})[frame_idx] = box
        self.calls.append(("box", frame_idx, obj_id))

    def propagate_in_video(self, state, start_frame_idx=None, reverse=False):
        import torch

        ids = sorted(state["prompts"])
        order = range(start_frame_idx, -1, -1) if reverse else range(start_frame_idx, self.num_frames)
        self.calls.append(("propagate", start_frame_idx, reverse))
        for frame in order:
            h, w = self.size
            logits = torch.full((len(ids), 1, h, w), -5.0)
            for i, obj in enumerate(ids):
                if frame in self.present[obj]:
                    # the square's position says which pass made it: forward at x 0..4, reverse at x 10..14
                    x = 10 if reverse else 0
                    logits[i, 0, obj:obj + 4, x:x + 4] = 5.0
            yield frame, ids, logits

    def reset_state(self, state):
        self.calls.append(("reset",))


def test_track_video_merges_both_passes_by_label_with_a_fake_predictor(tmp_path):
    fake = FakeVideoPredictor((20, 20), {1: set(range(0, 12)), 2: {5, 6, 7}}, num_frames=12)
    prompts = {1: {3: (0.0, 1.0, 4.0, 5.0), 8: (0.0, 1.0, 4.0, 5.0)}, 2: {6: (0.0, 2.0, 4.0, 6.0)}}
    out = track_video(fake, tmp_path, prompts, autocast=False)
    assert ("propagate", 3, False) in fake.calls and ("propagate", 8, True) in fake.calls  # earliest / latest
    # Object 1: forwards after 3 up to the middle of 3..8, reverse before 3 and in the second half.
    which = {f: w for f, (_, _, w) in out[1].items()}
    assert which == {0: "reverse", 1: "reverse", 2: "reverse", 3: "label", 4: "forward", 5: "forward",
                     6: "reverse", 7: "reverse", 8: "label", 9: "forward", 10: "forward", 11: "forward"}
    for box, conf, w in out[1].values():
        assert box[0] == (10.0 if w == "reverse" else 0.0)  # the box really came from that pass
        assert box[1] == 1.0 and box[3] == 5.0 and 0.9 < conf <= 1.0
    # Object 2 is only present on 5..7 (empty masks elsewhere): no box where SAM 2 sees nothing.
    assert sorted(out[2]) == [5, 6, 7]


@pytest.fixture(scope="module")
def tiny_predictor():
    pytest.importorskip("sam2", reason="the sam2 extra is not installed (pip install -e \".[sam2]\")")
    import torch

    from baselines.sam2.labeler import DEFAULT_CONFIG, build_predictor

    torch.manual_seed(0)
    torch.set_num_threads(1)
    return build_predictor(DEFAULT_CONFIG, None, "cpu", image_size=256)


def test_real_sam2_propagates_several_objects_both_ways(tiny_predictor, tmp_path):
    from baselines.sam2.labeler import write_jpeg_folder
    from bench.data.datasets import load_dataset

    seq = next(iter(load_dataset("synth-kitti", scale="smoke", seed=0).train.sequences.values()))
    folder = write_jpeg_folder((seq.image(i) for i in range(seq.num_frames)), tmp_path / "video")
    seen: list[tuple[int, list[int], tuple[int, ...], bool]] = []
    real = tiny_predictor.propagate_in_video

    def recording(state, start_frame_idx=None, max_frame_num_to_track=None, reverse=False):
        for frame, ids, masks in real(state, start_frame_idx=start_frame_idx, reverse=reverse):
            seen.append((frame, list(ids), tuple(masks.shape), reverse))
            yield frame, ids, masks

    tiny_predictor.propagate_in_video = recording
    try:
        prompts = {3: {2: (10.0, 20.0, 40.0, 40.0), 9: (20.0, 20.0, 50.0, 40.0)}, 7: {5: (100.0, 10.0, 140.0, 50.0)}}
        out = track_video(tiny_predictor, folder, prompts)
    finally:
        del tiny_predictor.propagate_in_video
    w, h = seq.image_size
    forward = [f for f, _, _, r in seen if not r]
    reverse = [f for f, _, _, r in seen if r]
    assert forward == list(range(2, seq.num_frames))  # from the earliest prompt to the end
    assert reverse == list(range(9, -1, -1))  # from the latest prompt back to frame 0
    assert all(ids == [3, 7] and shape == (2, 1, h, w) for _, ids, shape, _ in seen)
    assert set(out) <= {3, 7}
    for frames in out.values():
        for box, conf, _ in frames.values():
            assert 0 <= box[0] < box[2] <= w and 0 <= box[1] < box[3] <= h and 0 < conf <= 1


def test_real_sam2_labeler_end_to_end_with_a_random_checkpoint(tiny_predictor, tmp_path):
    import torch

    checkpoint = tmp_path / "random_tiny.pt"
    torch.save({"model": tiny_predictor.state_dict()}, checkpoint)  # SAM 2's own checkpoint layout
    options = SweepOptions(runs_root=tmp_path / "runs", progress=False, device="cpu")
    result = run_sweep([Job("sam2", dataset="synth-kitti", budget=2, seed=0, profile="smoke",
                            overrides=(f"method.checkpoint={checkpoint}", "method.image_size=256"))], options)
    planned = result.planned[0]
    assert result.exit_code == 0, Store(options.store()).run(planned.key).error
    pseudo = pd.read_parquet(planned.run_dir / "pseudolabels" / "pseudolabels.parquet")
    labels = pd.read_parquet(planned.run_dir / "labels" / "labels.parquet")
    assert set(zip(pseudo["seq"], pseudo["track_id"], strict=True)) == set(
        zip(labels["seq"], labels["track_id"], strict=True))  # only the labelled tracks, every one of them
    assert len(pseudo.merge(labels[["seq", "frame", "track_id", "x1"]], on=["seq", "frame", "track_id", "x1"])) \
        == len(labels)  # the labels themselves kept
    metrics = pd.read_parquet(planned.run_dir / "metrics" / "metrics.parquet")
    assert set(metrics["protocol"]) == set(protocols_for(planned.config, "synth-kitti", "2d-tracks"))
