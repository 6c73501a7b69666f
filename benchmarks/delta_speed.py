"""Speed of the dense trackers along DELTAv2's Table 6 ladder: forward pass only, bench's FPS meter.

    OMP_NUM_THREADS=1 python benchmarks/delta_speed.py [--profile quick] [--frames 48] [--repeats 3] [--json F]

For each rung (delta's network, + new correlation, + coarse-to-fine with nearest interpolation, + the learned
interpolator = deltav2) it builds the network with the profile's parameters (weights do not change the work done,
so the networks are untrained, seeded), takes the first synth-dense validation video of the profile's scale
(``--frames`` frames, its given video depth) and times ``model(video, depth)`` with
:func:`bench.metrics.fps.measure_fps` (warm-up excluded; CUDA synchronised when ``--device cuda``). It prints
frames/s, tracked points/s (dense trajectories out, i.e. every pixel, per second of forward time), each named
stage's share of the CPU time (torch profiler, one extra pass) and the peak resident memory a forward adds
(a child process per rung, so one rung's peak does not hide another's).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import yaml

RUNGS: dict[str, tuple[str, dict]] = {
    "delta": ("delta", {}),
    "baseline (v2 switches off)": ("deltav2", {"fast_corr": False, "coarse_to_fine": False}),
    "+ new 4D corr": ("deltav2", {"fast_corr": True, "coarse_to_fine": False}),
    "+ coarse-to-fine (nearest)": ("deltav2", {"fast_corr": True, "coarse_to_fine": True, "interpolator": "nearest"}),
    "+ learned interpolator (deltav2)": ("deltav2", {}),
    # Not a rung of the paper: deltav2 without the new correlation, which costs more than it saves on a CPU.
    "deltav2, old corr (fast_corr off)": ("deltav2", {"fast_corr": False}),
}
STAGES = ("delta.encoder", "delta.corr_sample", "delta.corr4d", "delta.transformer", "delta.interpolate",
          "delta.upsampler")


def build(method: str, overrides: dict, profile: str) -> torch.nn.Module:
    from baselines.delta.method import Delta
    from methods.deltav2.method import DeltaV2

    root = Path(__file__).parents[1]
    params = yaml.safe_load((root / "bench" / "profiles" / f"{profile}.yaml").read_text())["methods"][method]
    torch.manual_seed(0)
    cls = DeltaV2 if method == "deltav2" else Delta
    return cls(**{**params, **overrides}).new_model().eval()


def save_video(profile: str, frames: int, path: Path) -> None:
    """The first validation video (and its given depth) to ``path``, generated once by the parent: the children
    only load it, so generating the dataset does not set their memory peak."""
    from bench.data.synth import generate

    scale = "smoke" if profile == "smoke" else "quick"
    ds = generate("synth-dense", scale, seed=0)
    name = sorted(ds.val.sequences)[0]
    np.savez(path, images=ds.val.sequences[name].load_images()[:frames],
             depth=np.array(ds.val.depth[name][:frames], dtype=np.float32))


def load_video(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    from baselines.delta.train import frames_tensor

    with np.load(path) as z:  # plain arrays: no pickle
        return frames_tensor(z["images"])[None], torch.from_numpy(z["depth"])[None]


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def one(rung: str, profile: str, data: Path, repeats: int, device: str) -> dict:
    from bench.metrics.fps import measure_fps

    method, overrides = RUNGS[rung]
    v, d = load_video(data)
    frames = v.shape[1]
    model = build(method, overrides, profile).to(device)
    v, d = v.to(device), d.to(device)
    with torch.no_grad():
        # The peak the first forward adds over what the process holds before it (later passes reuse the memory
        # the allocator kept): Linux resets the peak resident set size (VmHWM) when 5 is written to clear_refs,
        # so the peak of the imports and of loading is forgotten. It doubles as the timing's first warm-up.
        before = _status_kb("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")
        model(v, d)
        peak = _status_kb("VmHWM")
        fps = measure_fps(lambda x: model(*x), [(v, d)], warmup=1, repeats=repeats, device=device)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            out = model(v, d)
    totals = {e.key: e.cpu_time_total for e in prof.key_averages() if e.key in STAGES}
    whole = sum(totals.values()) or 1.0
    seconds = float(np.median(fps.times))
    points = int(out["full_pos"].shape[-1] * out["full_pos"].shape[-2])
    return {"rung": rung, "method": method, "overrides": overrides, "frames": frames, "seconds": seconds,
            "times": fps.times, "frames_per_s": frames / seconds, "points_per_s": points / seconds, "points": points,
            "stage_share": {k.split(".")[1]: round(v / whole, 3) for k, v in totals.items()},
            "forward_peak_mb": (peak - before) / 1024, "process_peak_mb": peak / 1024,
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "device": fps.device_name,
            "threads": torch.get_num_threads()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--rung", default=None, help="time one rung in this process (the parent runs each in a child)")
    ap.add_argument("--data", default=None, help="(internal) the video file the parent wrote")
    ap.add_argument("--only", default=None, help="comma-separated rung numbers to time (default: all)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--once", default=None, help="one forward pass of rung N on a fresh video file, nothing printed: "
                                                 "a whole process for an external paired timer")
    args = ap.parse_args()
    if args.once is not None:
        path = Path(tempfile.gettempdir()) / f"delta_speed_{args.profile}_{args.frames}.npz"
        if not path.exists():
            save_video(args.profile, args.frames, path)
        method, overrides = RUNGS[list(RUNGS)[int(args.once)]]
        v, d = load_video(path)
        with torch.no_grad():
            build(method, overrides, args.profile)(v, d)
        return
    if args.rung is not None:
        print(json.dumps(one(args.rung, args.profile, Path(args.data), args.repeats, args.device)))
        return
    results = []
    tmp = Path(tempfile.mkdtemp(prefix="delta_speed_"))
    data = tmp / "video.npz"
    save_video(args.profile, args.frames, data)
    names = list(RUNGS)
    chosen = [names[int(i)] for i in args.only.split(",")] if args.only else names
    for rung in chosen:
        cmd = [sys.executable, __file__, "--rung", rung, "--profile", args.profile, "--data", str(data),
               "--repeats", str(args.repeats), "--device", args.device]
        res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        results.append(res)
        stages = " ".join(f"{k} {v:.0%}" for k, v in res["stage_share"].items())
        print(f"{rung:34s} {res['seconds']:7.2f} s  {res['frames_per_s']:6.2f} frames/s  "
              f"{res['points_per_s']:9.0f} points/s  +{res['forward_peak_mb']:.0f} MB  [{stages}]", flush=True)
    data.unlink()
    tmp.rmdir()
    base = results[0]["seconds"]
    for res in results[1:]:
        print(f"speed-up of {res['rung']!r} over delta: {base / res['seconds']:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
