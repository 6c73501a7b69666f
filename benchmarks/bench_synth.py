"""Speed and statistics of the synthetic world (numbers for docs/benchmarks.md, "Synthetic world").

    python benchmarks/bench_synth.py              # synth-kitti quick: generation time + renderer fps
    python benchmarks/bench_synth.py --stats      # plus quick-scale statistics of every preset
    python benchmarks/bench_synth.py --png docs/img/synth-kitti.png

Renderer frames/s are for one core (numpy runs single-threaded here): wall-clock and process CPU
time are both printed, because on a shared machine wall time also measures the neighbours.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import time

import numpy as np


def render_fps(preset: str = "synth-kitti", frames: int = 60, seeds: int = 3) -> dict:
    """Frames/s of the renderer with all layers (RGB, depth, instance, surface, amodal counts)."""
    from bench.data.synth import config_for
    from bench.data.synth.render import Renderer, intrinsics_for
    from bench.data.synth.world import build_world

    cfg = config_for(preset, "quick")
    wall = cpu = 0.0
    for k in range(seeds):
        world = build_world(np.random.default_rng([100, 0, 0, k]), cfg, frames)
        renderer = Renderer(world, intrinsics_for(cfg.width, cfg.height, cfg.focal_ratio), cfg.width, cfg.height)
        rng = np.random.default_rng(0)
        renderer.render(0, rng)  # warm-up (noise bank)
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(frames):
            renderer.render(i, rng)
        wall += time.perf_counter() - t0
        cpu += time.process_time() - c0
    n = frames * seeds
    return {"preset": preset, "size": f"{cfg.width}x{cfg.height}", "frames": n,
            "fps_wall": round(n / wall, 1), "fps_cpu": round(n / cpu, 1)}


def generation_time(preset: str, scale: str = "quick") -> tuple[dict, object]:
    from bench.data.synth import config_for, generate

    cfg = config_for(preset, scale)
    t0, c0 = time.perf_counter(), time.process_time()
    ds = generate(preset, scale, seed=0)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    frames = ds.train.num_frames + ds.val.num_frames
    return {"preset": preset, "scale": scale, "sequences": cfg.train_seqs + cfg.val_seqs, "frames": frames,
            "size": f"{cfg.width}x{cfg.height}", "wall_s": round(wall, 1), "cpu_s": round(cpu, 1)}, ds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stats", action="store_true", help="statistics of every preset at quick scale")
    parser.add_argument("--png", help="write a synth-kitti frame with boxes here")
    args = parser.parse_args()
    from bench.data.synth import PRESETS, stats

    print(json.dumps({"machine": platform.machine(), "python": platform.python_version(),
                      "time": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}))
    print(json.dumps(render_fps()))
    for preset in PRESETS if args.stats else ("synth-kitti",):
        timing, ds = generation_time(preset)
        print(json.dumps(timing))
        if args.stats:
            print(json.dumps({"preset": preset, **stats(ds)}, default=str))
        if args.png and preset == "synth-kitti":
            from bench.data.viz import draw_frame, save_png

            # The val frame with the most labelled boxes taller than 12 px: a busy, readable picture.
            gt = ds.val.tracks[(ds.val.tracks["cls"] != "DontCare") & (ds.val.tracks["y2"] - ds.val.tracks["y1"] > 12)]
            seq_name, frame = gt.groupby(["seq", "frame"]).size().idxmax()
            seq = ds.val.sequences[seq_name]
            save_png(draw_frame(seq, ds.val.tracks, seq.index_of(frame), scale=2), args.png)
        del ds
        gc.collect()


if __name__ == "__main__":
    main()
