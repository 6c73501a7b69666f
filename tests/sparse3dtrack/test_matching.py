"""2D query matching: shapes, losses, training on synth-kitti smoke budget-4 labels, locate, mining switch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from methods.sparse3dtrack.config import module_profile
from methods.sparse3dtrack.matching import QueryMatcher, box_iou, matching_losses, train_matcher
from methods.sparse3dtrack.mining import MINING, label_tracks

SMOKE = module_profile("matcher", "smoke")


@pytest.fixture(scope="module")
def smoke_data():
    from bench.data.datasets import load_dataset
    from bench.labels import sample_budget

    torch.set_num_threads(1)
    dataset = load_dataset("synth-kitti", scale="smoke", seed=0)
    return dataset.train.sequences, sample_budget(dataset.train.tracks, 4, seed=0)


@pytest.fixture(scope="module")
def smoke_masks(smoke_data):
    """The budget rows' instance masks, as the firewall hands them to the labeler."""
    from bench.data.datasets import load_dataset
    from bench.data.masks import label_masks

    dataset = load_dataset("synth-kitti", scale="smoke", seed=0)
    masks, _ = label_masks(dataset.name, dataset.train.layers, smoke_data[1], dataset.train.sequences)
    return masks


@pytest.fixture(scope="module")
def trained(smoke_data, smoke_masks):
    """A matcher trained 40 steps on un-augmented self pairs (~6 s): enough to find a query in its own frame."""
    sequences, labels = smoke_data
    cfg = {**SMOKE, "steps": 40, "batch_size": 8, "lr": 3e-3, "color": 0.0, "shift": 0.0, "scale": 0.0, "flip": 0.0}
    model, history = train_matcher(sequences, labels, cfg, mining=["self"], seed=0, masks=smoke_masks)
    return model, history


def _model() -> QueryMatcher:
    torch.manual_seed(0)
    return QueryMatcher(channels=32, width=8, template_size=5)


def test_shapes():
    model = _model()
    images = torch.randint(0, 256, (2, 3, 64, 208), dtype=torch.uint8)
    feats = model.features(images)
    assert feats.shape == (2, 32, 8, 26)
    boxes = torch.tensor([[10.0, 20.0, 40.0, 50.0], [100.0, 5.0, 110.0, 12.0]])
    tokens = model.template(feats, boxes)
    assert tokens.shape == (2, 25, 32)
    out = model(tokens, feats.flip(0))
    for key, channels in {"heatmap": 1, "offset": 2, "size": 2, "mask": 1, "similarity": 1, "trunk": 32}.items():
        assert out[key].shape == (2, channels, 8, 26)
    # The shape head read at one cell equals the 1x1 head applied over the whole map, read there.
    index = torch.tensor([5, 150])
    full = model.shape_head(out["trunk"]).flatten(2)[torch.arange(2), :, index].view(2, 16, 16)
    torch.testing.assert_close(model.shape_logits(out, index), full)
    box, conf, mask = model.locate(tokens, feats)
    assert box.shape == (2, 4) and conf.shape == (2,) and mask.shape == (2, 16, 16)
    assert ((mask >= 0) & (mask <= 1)).all()
    assert ((conf >= 0) & (conf <= 1)).all()
    assert (box[:, 2:] >= box[:, :2]).all()
    losses = matching_losses(out, boxes, {"hard_negatives": 8, "loss_weights": {k: 1.0 for k in
                                                                                ("heatmap", "offset", "size", "mask",
                                                                                 "nce")}}, model.shape_logits)
    assert set(losses) == {"heatmap", "offset", "size", "mask", "nce", "total"}
    assert all(torch.isfinite(v) for v in losses.values())
    with pytest.raises(ValueError, match="boxes"):
        model.template(feats, boxes[:1])


def test_prior_window_gates_the_search():
    model = _model()
    feats = model.features(torch.randint(0, 256, (1, 3, 64, 208), dtype=torch.uint8))
    tokens = model.template(feats, torch.tensor([[80.0, 20.0, 100.0, 40.0]]))
    prior = torch.tensor([[8.0, 24.0, 16.0, 32.0]])  # left edge; window: 3 x 4 px + 24 px around x = 12
    for _ in range(3):
        box, _, _ = model.locate(tokens, feats, prior_boxes=prior)
        centre = float(box[0, 0] + box[0, 2]) / 2
        assert centre <= 12 + 36 + 8  # the peak cell lies in the window (+ at most one cell of offset)
        feats = torch.randn_like(feats)


def test_losses_prefer_the_right_answer():
    """A head output that peaks at the target box scores lower than one peaking elsewhere."""
    h, w = 8, 26
    box = torch.tensor([[40.0, 16.0, 72.0, 40.0]])  # centre (56, 28) px -> cell (x 6.5, y 3)

    def output(cx: int, cy: int) -> dict[str, torch.Tensor]:
        heat = torch.full((1, 1, h, w), -8.0)
        heat[0, 0, cy, cx] = 8.0
        sim = torch.full((1, 1, h, w), -5.0)
        sim[0, 0, cy, cx] = 5.0
        size = torch.zeros(1, 2, h, w)
        size[:, 0], size[:, 1] = np.log(32 / 8), np.log(24 / 8)
        return {"heatmap": heat, "offset": torch.zeros(1, 2, h, w), "size": size, "mask": heat.clone(),
                "similarity": sim}

    def shape_logits(out: dict[str, torch.Tensor], index: torch.Tensor) -> torch.Tensor:
        return torch.full((len(index), 16, 16), 8.0)

    cfg = {"hard_negatives": 8, "loss_weights": dict.fromkeys(("heatmap", "offset", "size", "mask", "nce"), 1.0)}
    right = matching_losses(output(7, 3), box, cfg, shape_logits)  # round(6.5) = 7 (cell centres at (j + 0.5) * 8)
    wrong = matching_losses(output(20, 6), box, cfg, shape_logits)
    for key in ("heatmap", "nce", "total"):
        assert right[key] < wrong[key]
    assert right["size"] < 1e-5


def test_training_loss_decreases(trained):
    _, history = trained
    totals = np.array([h["total"] for h in history])
    assert len(totals) == 40 and np.isfinite(totals).all()
    assert totals[-10:].mean() < 0.7 * totals[:10].mean()
    assert history[-1]["seconds"] > 0


def test_locate_finds_the_query_in_its_own_frame(trained, smoke_data):
    model, _ = trained
    sequences, labels = smoke_data
    items = [(seq, frame, box) for (seq, _), rows in label_tracks(labels, sequences).items() for frame, box in rows]
    items = [(s, f, b) for s, f, b in items if b[2] - b[0] >= 10]  # objects over a feature cell wide
    images = torch.stack([torch.from_numpy(sequences[s].image(f)).permute(2, 0, 1) for s, f, _ in items])
    boxes = torch.tensor([b for _, _, b in items], dtype=torch.float32)
    feats = model.features(images)
    found, conf, _ = model.locate(model.template(feats, boxes), feats, prior_boxes=boxes)
    iou = box_iou(found.numpy(), boxes.numpy())
    assert len(items) >= 20
    assert (iou > 0.5).mean() >= 0.6, (iou > 0.5).mean()
    # The paper's path: no prior, the whole frame searched. The look-alikes elsewhere make it harder; still most
    # queries are found in their own frame.
    free, _, _ = model.locate(model.template(feats, boxes), feats)
    assert (box_iou(free.numpy(), boxes.numpy()) > 0.5).mean() >= 0.5


def test_mask_head_loss_falls_on_a_smoke_clip(trained):
    """The CenterMask-style head learns the labelled instance masks: its BCE falls during training."""
    _, history = trained
    mask = np.array([h["mask"] for h in history])
    assert np.isfinite(mask).all()
    assert mask[-10:].mean() < 0.8 * mask[:10].mean(), (mask[:10].mean(), mask[-10:].mean())


def test_template_carries_the_object_mask(smoke_masks, smoke_data):
    """Two templates of one box differ when the object fills only part of it, and a whole-box mask is the default."""
    from methods.sparse3dtrack.masks import label_box_masks

    sequences, labels = smoke_data
    box_masks = label_box_masks(labels, sequences, smoke_masks, 16)
    (seq, track_id, index), grid = min(box_masks.items(), key=lambda item: item[1].mean())
    assert grid.mean() < 0.9  # a partly occluded or non-rectangular object
    model = _model()
    model.mask_size = 16
    row = labels[(labels["seq"] == seq) & (labels["track_id"] == track_id)].iloc[0]
    feats = model.features(torch.from_numpy(sequences[seq].image(index)).permute(2, 0, 1)[None])
    box = torch.tensor([[row.x1, row.y1, row.x2, row.y2]], dtype=torch.float32)
    torch.nn.init.normal_(model.token_in.weight)  # the mask channel enters through token_in (zero at init)
    masked = model.template(feats, box, torch.from_numpy(grid)[None])
    assert not torch.allclose(masked, model.template(feats, box))
    assert torch.equal(model.template(feats, box), model.template(feats, box, torch.ones(1, 16, 16)))


def test_mining_switch_is_respected(smoke_data):
    sequences, labels = smoke_data
    _, only_supervised = train_matcher(sequences, labels, {**SMOKE, "steps": 3}, mining=["support", "self"], seed=1)
    assert sum(h["n_cycle"] + h["n_step"] for h in only_supervised) == 0
    assert sum(h["n_support"] + h["n_self"] for h in only_supervised) > 0
    _, waypoints = train_matcher(sequences, labels, {**SMOKE, "steps": 3}, mining=["cycle", "step"], seed=1)
    assert sum(h["n_support"] + h["n_self"] for h in waypoints) == 0
    assert sum(h["n_cycle"] + h["n_step"] for h in waypoints) > 0
    with pytest.raises(ValueError, match="unknown mining"):
        train_matcher(sequences, labels, SMOKE, mining=["support", "teleport"])
    with pytest.raises(ValueError, match="unknown matcher settings"):
        train_matcher(sequences, labels, {"stepz": 3})
    assert set(MINING) == {"support", "self", "cycle", "step"}


def test_training_is_deterministic_given_the_seed(smoke_data):
    sequences, labels = smoke_data
    runs = [train_matcher(sequences, labels, {**SMOKE, "steps": 3}, seed=7)[1] for _ in range(2)]
    assert [h["total"] for h in runs[0]] == [h["total"] for h in runs[1]]
