"""DELTAv2's parts: the interpolator, the stride schedule, the projected correlation, and that with every switch
off the v2 tracker is the baseline's network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines.delta.corr4d import Corr4DFeatures, sample_patches, sample_points
from baselines.delta.method import Delta
from baselines.delta.tracker import Grid
from baselines.delta.transformer import unwindows, windows
from methods.deltav2.corr import ProjectedCorr4D
from methods.deltav2.interpolator import LearnableInterpolator, bilinear_weights, interpolate, lattice, nearest_weights
from methods.deltav2.method import DeltaV2
from methods.deltav2.schedule import inference_strides, training_stride


def affine_field(rows: int, cols: int, dim: int = 3) -> torch.Tensor:
    """An affine motion field over the grid ``(1, 2 frames, rows, cols, dim)``, different per frame and channel."""
    a = torch.tensor([[0.7, -1.3, 2.0], [0.2, 0.5, -4.0], [-0.05, 0.11, 0.3]])[:dim]
    y, x = torch.meshgrid(torch.arange(rows).float(), torch.arange(cols).float(), indexing="ij")
    base = torch.stack([x, y, torch.ones_like(x)], -1) @ a.T
    return torch.stack([base, 2.0 * base + 1.0])[None]


@pytest.mark.parametrize("stride", [2, 4, 8])
def test_learnable_interpolator_is_exact_on_an_affine_field(stride):
    torch.manual_seed(0)
    rows, cols = 2 * stride + 1, 3 * stride + 1  # the lattice reaches the last row and column: no edge to repeat
    field = affine_field(rows, cols)
    feats = torch.randn(1, 16, rows, cols)
    interp = LearnableInterpolator(16, blocks=2, heads=4)
    weights = interp.weights(feats, stride)
    torch.testing.assert_close(weights.sum(-1), torch.ones(1, rows, cols))
    out = interpolate(field[:, :, ::stride, ::stride], weights, stride)
    torch.testing.assert_close(out, field, atol=1e-4, rtol=1e-5)
    # Nearest is exact only on the lattice, and wrong between (the field is not constant).
    near = interpolate(field[:, :, ::stride, ::stride], nearest_weights(*lattice(stride, rows, cols)[1::2])[None],
                       stride)
    torch.testing.assert_close(near[:, :, ::stride, ::stride], field[:, :, ::stride, ::stride])
    assert (near - field).abs().max() > 0.1


def test_learned_weights_move_with_the_features_after_training_a_step():
    # The learned part is live: one gradient step on a loss that prefers the top-left neighbour changes the weights.
    torch.manual_seed(0)
    interp = LearnableInterpolator(8, blocks=1, heads=2)
    feats = torch.randn(1, 8, 9, 9)
    before = interp.weights(feats, 4).detach()
    opt = torch.optim.SGD(interp.parameters(), lr=1.0)
    (-interp.weights(feats, 4)[..., 0].log().mean()).backward()
    opt.step()
    after = interp.weights(feats, 4).detach()
    assert (after[..., 0] - before[..., 0]).mean() > 1e-3


def test_edges_repeat_the_last_lattice_row():
    nr, fr, nc, fc = lattice(4, 7, 5)
    assert nr[6].tolist() == [1, 1] and fr[6] == 0  # rows 5, 6 lie beyond the last lattice row (4): repeated
    assert nr[2].tolist() == [0, 1] and fr[2] == 0.5
    w = bilinear_weights(fr, fc)
    torch.testing.assert_close(w.sum(-1), torch.ones(7, 5))


def test_schedule_visits_strides_in_order_and_keeps_anchors():
    assert inference_strides(4) == [8, 4, 2, 1]
    assert inference_strides(6) == [8, 4, 2, 1, 1, 1]
    assert inference_strides(1) == [1]
    gen = torch.Generator().manual_seed(0)
    seen = {0: set(), 1: set()}
    for _ in range(50):
        s = [training_stride(i, 4, gen) for i in range(4)]
        assert s == sorted(s, reverse=True) and s[-1] == 1
        seen[0].add(s[0])
        seen[1].add(s[1])
    assert seen == {0: {8, 4}, 1: {4, 2}}
    # In the tracker: each iteration updates the anchors and exactly the stride lattice of the dense grid.
    method = DeltaV2(feature_dim=16, corr_dim=16, hidden=32, depth=1, num_virtual=4, radius=1, iters=4, clip=4,
                     anchor_rows=2, anchor_cols=3, factor=4, corr_proj=16)
    model = method.new_model()
    calls = []
    original = model.transformer.forward

    def spy(tokens, num_anchors, grid):
        calls.append((tokens.shape[1], num_anchors, grid))
        return original(tokens, num_anchors, grid)

    model.transformer.forward = spy
    with torch.no_grad():
        model(torch.zeros(1, 4, 3, 64, 64), torch.full((1, 4, 64, 64), 5.0))
    assert [c[2] for c in calls] == [(2, 2), (4, 4), (8, 8), (16, 16)]
    assert all(n == 6 + g[0] * g[1] and a == 6 for n, a, g in calls)


def test_projected_correlation_reads_the_projection():
    torch.manual_seed(0)
    base, fast = Corr4DFeatures(radius=3, out_dim=32), ProjectedCorr4D(radius=3, out_dim=32, proj=64)
    assert base.convs[0].in_channels == 49 and fast.convs[0].in_channels == 64
    q, t = torch.randn(5, 49, 8), torch.randn(5, 49, 8)
    assert fast(q, t).shape == base(q, t).shape == (5, 32)


def test_patch_sampling_follows_the_pixel_convention():
    # A feature map whose value is its own x coordinate (feature cells at stride 4): sampling at an image point
    # returns x / 4 - 0.5, the cell coordinate of that point.
    fmap = torch.arange(8.0).repeat(6, 1)[None, None]
    got = sample_points(fmap, torch.tensor([[[10.0, 9.0]]]), 4.0)
    assert float(got) == pytest.approx(10.0 / 4 - 0.5)
    patch = sample_patches(fmap, torch.tensor([[[10.0, 9.0]]]), 1, 4.0)[0, 0, :, 0]
    assert patch.tolist() == pytest.approx([1.0, 2.0, 3.0] * 3)


def test_local_windows_round_trip():
    x = torch.randn(3, 7 * 5, 4)
    win, shape = windows(x, (7, 5), 3)
    assert win.shape == (3 * 3 * 2, 9, 4)
    torch.testing.assert_close(unwindows(win, (7, 5), 3, shape), x)


def test_switches_off_give_the_baseline_network():
    kw = dict(feature_dim=16, corr_dim=16, hidden=32, depth=1, num_virtual=4, radius=1, iters=2, clip=4, factor=4)
    torch.manual_seed(3)
    base = Delta(**kw).new_model()
    torch.manual_seed(3)
    v2 = DeltaV2(**kw, fast_corr=False, coarse_to_fine=False).new_model()
    assert base.state_dict().keys() == v2.state_dict().keys()
    v2.load_state_dict(base.state_dict())
    video, depth = torch.rand(1, 5, 3, 32, 48) * 2 - 1, torch.rand(1, 5, 32, 48) * 9 + 1
    with torch.no_grad():
        a, b = base(video, depth), v2(video, depth)
    torch.testing.assert_close(a["full_pos"], b["full_pos"])
    grid = Grid(1, 2, 4, 6)
    with torch.no_grad():
        assert base(video, depth, grid=grid)["full_pos"].shape == (1, 5, 2, 16, 24)


def test_unknown_switch_values_fail_at_construction():
    with pytest.raises(ValueError, match="interpolator"):
        DeltaV2(interpolator="cubic")
    with pytest.raises(TypeError):
        Delta(coarse_to_fine=True)  # a v2 switch is not a baseline parameter
    assert np.isclose(DeltaV2().get_params()["corr_proj"], 64)
