"""Self-supervised monocular depth (paper 3.1, 4.2): a small encoder-decoder trained from video and poses.

The network never sees depth ground truth. For a target frame t and its neighbours s = t-1, t+1 it
predicts the depth of t, back-projects every pixel with the known intrinsics, moves it into the
neighbour's camera with the known relative pose ``inv(cam_to_world[s]) @ cam_to_world[t]``, and
samples the neighbour there; the loss is how different that warped neighbour looks from the target
(Monodepth2-style: 0.85 SSIM + 0.15 L1, minimum over sources, auto-masking of pixels where the
unwarped neighbour already matches, i.e. a static camera or an object moving with it) plus an
edge-aware smoothness term. The poses are metric, so the depth is too.

The network works at ``scale`` times the native resolution internally (a CPU budget knob) and
returns depth at the native size, so training and inference see the same pixels.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.data.sequence import Sequence

# Provenance of each default (tuning protocol, bench/data/dev_world.py: the paper's or Monodepth2's value, a size
# the CPU budget sets, or chosen on a development world -- none on the benchmark's ground truth):
DEFAULTS: dict = {
    "scale": 0.5,  # CPU budget: internal working resolution relative to the native image (quick: 0.375)
    "width": 16,  # CPU budget: channels of the first encoder stage (doubling down to stride 8 / 16)
    "feat_channels": 32,  # CPU budget: Cd of the stride-8 features handed to the geometry network
    "min_depth": 0.5,  # street scenes' range (Monodepth2 uses 0.1-100 m); not compared on ground truth
    "max_depth": 100.0,  # Monodepth2's
    "init_depth": 10.0,  # the depth the untrained net starts at (a sigmoid bias away from its flat ends); not tuned
    "steps": 600,  # step budget; the profiles set their own (quick: 700)
    "batch_size": 4,  # CPU budget
    "lr": 1e-3,  # Adam's usual rate; not compared on ground truth
    "optimizer": "adam",  # ours: the paper's SGD (Sec. 4.2) needs its epoch budget
    "momentum": 0.9,  # the paper's (Sec. 4.2), used with optimizer=sgd
    "weight_decay": 0.0,  # Monodepth2's
    "lr_drops": (0.75,),  # fractions of the steps where the LR is divided by 10, as the paper's step schedule (4.2)
    "smoothness": 1e-3,  # Monodepth2's edge-aware smoothness weight
    "ssim_weight": 0.85,  # Monodepth2's SSIM / L1 mix
    # Gradient-norm clip (0: off). Chosen on the development world (synth-kitti quick, data seed 1): without it the
    # quick profile's run diverged near step 470 of 700 -- the disparity saturated at min_depth everywhere (depth
    # 0.5 m, abs-rel 0.97) and the features grew to |x| ~ 2e4, which then poisoned the geometry network's depth
    # tokens (docs/methods/sparse3dtrack.md, "The depth net diverged").
    "clip_grad": 1.0,
}

def normalise(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float, the convention every sparse3dtrack network shares."""
    if images_uint8.ndim != 4 or images_uint8.shape[1] != 3:
        raise ValueError(f"images must be (B, 3, H, W), got shape {tuple(images_uint8.shape)}")
    return (images_uint8.float() / 255.0 - 0.45) / 0.25


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, padding_mode="reflect"), nn.ELU(),
                         nn.Conv2d(cout, cout, 3, 1, 1, padding_mode="reflect"), nn.ELU())


class DepthNet(nn.Module):
    """U-Net-like depth network: stride-2..16 encoder, decoder with skips, sigmoid disparity head at stride 2."""

    def __init__(self, width: int = 16, feat_channels: int = 32, scale: float = 0.5,
                 min_depth: float = 0.5, max_depth: float = 100.0, init_depth: float = 10.0) -> None:
        super().__init__()
        if not 0 < min_depth < max_depth:
            raise ValueError(f"need 0 < min_depth < max_depth, got {min_depth}, {max_depth}")
        self.scale, self.min_depth, self.max_depth = float(scale), float(min_depth), float(max_depth)
        c = [width, width * 2, width * 3, width * 4]
        # The first stage already halves the resolution (as ResNet encoders do): full-resolution
        # convolutions would cost most of the CPU budget for little depth accuracy.
        self.enc = nn.ModuleList([_block(3, c[0], 2), _block(c[0], c[1], 2), _block(c[1], c[2], 2),
                                  _block(c[2], c[3], 2)])
        self.dec = nn.ModuleList([_block(c[3] + c[2], c[2], 1), _block(c[2] + c[1], c[1], 1),
                                  _block(c[1] + c[0], c[0], 1)])
        self.disp = nn.Conv2d(c[0], 1, 3, 1, 1, padding_mode="reflect")
        # Start at a plausible street depth, away from the sigmoid's flat ends where training stalls.
        lo, hi = 1.0 / max_depth, 1.0 / min_depth
        start = min(max((1.0 / init_depth - lo) / (hi - lo), 1e-3), 1 - 1e-3)
        nn.init.zeros_(self.disp.weight)
        nn.init.constant_(self.disp.bias, float(np.log(start / (1 - start))))
        self.feat = nn.Conv2d(c[2], feat_channels, 1)
        self.feat_channels = feat_channels

    def disparity_to_depth(self, sigmoid: torch.Tensor) -> torch.Tensor:
        lo, hi = 1.0 / self.max_depth, 1.0 / self.min_depth
        return 1.0 / (lo + (hi - lo) * sigmoid)

    def _run(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised images at the working size -> (sigmoid disparity at that size, stride-8 features)."""
        size = x.shape[-2:]
        skips = []
        for block in self.enc:
            x = block(x)
            skips.append(x)
        feats = x
        for i, block in enumerate(self.dec):
            skip = skips[-2 - i]
            x = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
            x = block(torch.cat([x, skip], dim=1))
            if i == 0:  # stride 8 of the working size: the depth features the geometry network crops
                feats = self.feat(x)
        disp = F.interpolate(self.disp(x), size=size, mode="bilinear", align_corners=False)
        return torch.sigmoid(disp), feats

    def forward(self, images_uint8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 (B, 3, H, W) -> (depth in metres (B, 1, H, W), features (B, Cd, H // 8, W // 8))."""
        h, w = images_uint8.shape[-2:]
        x = normalise(images_uint8)
        work = _work_size(h, w, self.scale)
        if work != (h, w):
            x = F.interpolate(x, size=work, mode="bilinear", align_corners=False)
        sig, feats = self._run(x)
        depth = self.disparity_to_depth(sig)
        if work != (h, w):
            depth = F.interpolate(depth, size=(h, w), mode="bilinear", align_corners=False)
        feats = F.interpolate(feats, size=(max(h // 8, 1), max(w // 8, 1)), mode="bilinear", align_corners=False)
        return depth, feats


def _work_size(h: int, w: int, scale: float) -> tuple[int, int]:
    # Multiples of 16 keep the four stride-2 stages aligned with their skips.
    return max(16, int(round(h * scale / 16)) * 16), max(16, int(round(w * scale / 16)) * 16)


def scale_intrinsics(K: torch.Tensor, from_size: tuple[int, int], to_size: tuple[int, int]) -> torch.Tensor:
    """Intrinsics (..., 3, 3) of an image resized from (h, w) to (h', w') (pixel-corner convention)."""
    sy, sx = to_size[0] / from_size[0], to_size[1] / from_size[1]
    S = torch.tensor([[sx, 0.0, 0.0], [0.0, sy, 0.0], [0.0, 0.0, 1.0]], dtype=K.dtype, device=K.device)
    return S @ K


def warp(source: torch.Tensor, depth: torch.Tensor, K: torch.Tensor, target_to_source: torch.Tensor) -> torch.Tensor:
    """Sample ``source`` (B, C, H, W) at where each target pixel lands given its ``depth`` (B, 1, H, W).

    ``K`` (B, 3, 3) are the intrinsics at this resolution, ``target_to_source`` (B, 4, 4) maps target
    camera coordinates to source camera coordinates. Image coordinates span [0, w] x [0, h], so pixel
    (i, j) has its centre at (j + 0.5, i + 0.5), as the synthetic renderer and KITTI intrinsics assume.
    """
    b, _, h, w = depth.shape
    v, u = torch.meshgrid(torch.arange(h, dtype=depth.dtype) + 0.5, torch.arange(w, dtype=depth.dtype) + 0.5,
                          indexing="ij")
    pix = torch.stack([u, v, torch.ones_like(u)]).reshape(1, 3, -1)  # (1, 3, HW)
    rays = torch.linalg.inv(K) @ pix  # (B, 3, HW) with z = 1
    points = rays * depth.reshape(b, 1, -1)
    points = target_to_source[:, :3, :3] @ points + target_to_source[:, :3, 3:]
    proj = K @ points
    z = proj[:, 2:3].clamp(min=1e-3)
    uv = proj[:, :2] / z
    grid = torch.stack([uv[:, 0] / w * 2 - 1, uv[:, 1] / h * 2 - 1], dim=-1).reshape(b, h, w, 2)
    return F.grid_sample(source, grid, mode="bilinear", padding_mode="border", align_corners=False)


def ssim_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(1 - SSIM) / 2 per pixel over 3x3 windows (reflection padded), averaged over channels later."""
    x, y = F.pad(x, (1, 1, 1, 1), mode="reflect"), F.pad(y, (1, 1, 1, 1), mode="reflect")
    mx, my = F.avg_pool2d(x, 3, 1), F.avg_pool2d(y, 3, 1)
    sx = F.avg_pool2d(x * x, 3, 1) - mx * mx
    sy = F.avg_pool2d(y * y, 3, 1) - my * my
    sxy = F.avg_pool2d(x * y, 3, 1) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    ssim = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sx + sy + c2))
    return ((1 - ssim) / 2).clamp(0, 1)


def photometric_error(pred: torch.Tensor, target: torch.Tensor, ssim_weight: float = 0.85) -> torch.Tensor:
    """Per-pixel (B, 1, H, W) 0.85 SSIM + 0.15 L1 between images in [0, 1]."""
    l1 = (pred - target).abs().mean(1, keepdim=True)
    return ssim_weight * ssim_distance(pred, target).mean(1, keepdim=True) + (1 - ssim_weight) * l1


def smoothness(disp: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Edge-aware smoothness of mean-normalised disparity (gradients discounted at image edges)."""
    disp = disp / (disp.mean(dim=(2, 3), keepdim=True) + 1e-7)
    dx = (disp[..., :, 1:] - disp[..., :, :-1]).abs()
    dy = (disp[..., 1:, :] - disp[..., :-1, :]).abs()
    ix = (image[..., :, 1:] - image[..., :, :-1]).abs().mean(1, keepdim=True)
    iy = (image[..., 1:, :] - image[..., :-1, :]).abs().mean(1, keepdim=True)
    return (dx * torch.exp(-ix)).mean() + (dy * torch.exp(-iy)).mean()


def reprojection_loss(target: torch.Tensor, sources: list[torch.Tensor], depth: torch.Tensor, K: torch.Tensor,
                      poses: list[torch.Tensor], ssim_weight: float = 0.85,
                      automask: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Minimum-over-sources photometric loss with auto-masking; images in [0, 1] at the depth's size.

    Returns (mean loss, fraction of pixels kept by the auto-mask).
    """
    warped = [photometric_error(warp(s, depth, K, p), target, ssim_weight) for s, p in zip(sources, poses, strict=True)]
    reproj = torch.cat(warped, dim=1).min(dim=1, keepdim=True).values
    if not automask:
        return reproj.mean(), torch.ones(())
    # A pixel that the unwarped neighbour already explains (no motion relative to the camera) teaches
    # nothing about depth; the tiny noise breaks ties in static scenes the way Monodepth2 does.
    identity = torch.cat([photometric_error(s, target, ssim_weight) for s in sources], dim=1)
    identity = identity.min(1, keepdim=True).values
    identity = identity + 1e-5 * torch.randn_like(identity)
    keep = (reproj < identity).float()
    return (reproj * keep).sum() / keep.sum().clamp(min=1.0), keep.mean()


def _relative_pose(c2w: np.ndarray, t: int, s: int) -> np.ndarray:
    return np.linalg.inv(c2w[s]) @ c2w[t]


def train_depth(sequences: dict[str, Sequence], cfg: dict, *, device: str = "cpu", seed: int = 0,
                progress: Callable[[int, int, str], None] | None = None) -> tuple[DepthNet, list[dict]]:
    """Train a :class:`DepthNet` from the videos and their poses alone (no depth labels).

    Each step draws ``batch_size`` target frames (any sequence, frames with both neighbours) and
    minimises the auto-masked minimum reprojection loss against frames t-1 and t+1 plus smoothness.
    """
    cfg = {**DEFAULTS, **cfg}
    unknown = set(cfg) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown depth settings {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    usable = {name: s for name, s in sequences.items() if s.num_frames >= 3}
    if not usable:
        raise ValueError("train_depth needs at least one sequence with 3 or more frames")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = DepthNet(cfg["width"], cfg["feat_channels"], cfg["scale"], cfg["min_depth"], cfg["max_depth"],
                     cfg["init_depth"]).to(device)
    # Every frame once at the working size, in [0, 1]: the loss compares colours, the net normalises itself.
    frames: dict[str, torch.Tensor] = {}
    Ks: dict[str, torch.Tensor] = {}
    for name, seq in usable.items():
        images = torch.from_numpy(np.array(seq.load_images())).permute(0, 3, 1, 2)
        h, w = images.shape[-2:]
        work = _work_size(h, w, cfg["scale"])
        frames[name] = F.interpolate(images.float() / 255.0, size=work, mode="bilinear", align_corners=False)
        Ks[name] = scale_intrinsics(torch.from_numpy(seq.intrinsics).float(), (h, w), work)
    names = sorted(usable)
    if cfg["optimizer"] == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=cfg["momentum"],
                                                     weight_decay=cfg["weight_decay"])
    elif cfg["optimizer"] == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    else:
        raise ValueError(f"depth optimizer must be 'adam' or 'sgd', got {cfg['optimizer']!r}")
    steps = int(cfg["steps"])
    drops = sorted(int(f * steps) for f in cfg["lr_drops"])
    history: list[dict] = []
    start = time.perf_counter()  # for the history's "seconds" only: no clock decides what is computed
    model.train()
    for step in range(steps):
        if step in drops:
            for group in opt.param_groups:
                group["lr"] *= 0.1
        picks = [(names[rng.integers(len(names))], 0) for _ in range(cfg["batch_size"])]
        picks = [(n, int(rng.integers(1, usable[n].num_frames - 1))) for n, _ in picks]
        target = torch.stack([frames[n][t] for n, t in picks]).to(device)
        sources = [torch.stack([frames[n][t + d] for n, t in picks]).to(device) for d in (-1, 1)]
        poses = [torch.from_numpy(np.stack([_relative_pose(usable[n].cam_to_world, t, t + d) for n, t in picks]))
                 .float().to(device) for d in (-1, 1)]
        K = torch.stack([Ks[n][t] for n, t in picks]).to(device)
        sig, _ = model._run((target - 0.45) / 0.25)
        depth = model.disparity_to_depth(sig)
        photo, kept = reprojection_loss(target, sources, depth, K, poses, cfg["ssim_weight"])
        smooth = smoothness(sig, target)
        total = photo + cfg["smoothness"] * smooth
        opt.zero_grad()
        total.backward()
        grad = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["clip_grad"] if cfg["clip_grad"] > 0 else
                                              float("inf"))
        opt.step()
        history.append({"total": total.item(), "photometric": photo.item(), "smoothness": smooth.item(),
                        "automask_kept": kept.item(), "grad_norm": float(grad), "seconds": time.perf_counter() - start})
        if progress is not None:
            progress(step + 1, steps, f"depth loss {total.item():.4f}")
    return model.eval(), history
