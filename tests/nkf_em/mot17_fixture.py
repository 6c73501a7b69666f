"""A tiny hand-made MOT17 layout (no download): ``train/MOT17-02-FRCNN`` (training) and ``train/MOT17-10-FRCNN``
(validation, by our sequence split), each 10 frames of 64x48 images, three pedestrians walking at constant
speed (two crossing), a ``gt/gt.txt``, a ``det/det.txt`` with jitter, a miss and a false positive, and
``seqinfo.ini``: exactly the files and line formats MOT17 ships."""

from __future__ import annotations

from pathlib import Path

import numpy as np

FRAMES, WIDTH, HEIGHT = 10, 64, 48
# (left at frame 1, top, width, height, pixels per frame to the right, colour)
PEOPLE = [(4.0, 10.0, 8.0, 20.0, 3.0, (220, 40, 40)), (50.0, 12.0, 8.0, 20.0, -3.0, (40, 40, 220)),
          (20.0, 24.0, 10.0, 22.0, 0.5, (40, 200, 40))]


def write_sequence(root: Path, name: str, seed: int) -> None:
    import imageio.v3 as iio

    rng = np.random.default_rng(seed)
    folder = root / "train" / name
    for sub in ("img1", "gt", "det"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    gt, det = [], []
    for f in range(1, FRAMES + 1):
        image = np.full((HEIGHT, WIDTH, 3), 128, dtype=np.uint8)
        for pid, (x, y, w, h, v, colour) in enumerate(PEOPLE, start=1):
            left = x + v * (f - 1)
            gt.append(f"{f},{pid},{left:.2f},{y:.2f},{w:.2f},{h:.2f},1,1,1.0")
            c1, c2 = int(max(left, 0)), int(min(left + w, WIDTH))
            if c2 > c1:
                image[int(y):int(y + h), c1:c2] = colour
            if not (pid == 3 and f == 5):  # one miss
                jx, jy = rng.normal(0, 0.5, 2)
                det.append(f"{f},-1,{left + jx:.2f},{y + jy:.2f},{w:.2f},{h:.2f},{rng.uniform(0.6, 1.0):.3f}")
        if f == 7:  # one false positive
            det.append(f"{f},-1,30.00,2.00,6.00,12.00,0.200")
        iio.imwrite(folder / "img1" / f"{f:06d}.jpg", image, quality=95)
    (folder / "gt" / "gt.txt").write_text("\n".join(gt) + "\n")
    (folder / "det" / "det.txt").write_text("\n".join(det) + "\n")
    (folder / "seqinfo.ini").write_text(f"[Sequence]\nname={name}\nimDir=img1\nframeRate=30\nseqLength={FRAMES}\n"
                                        f"imWidth={WIDTH}\nimHeight={HEIGHT}\nimExt=.jpg\n")


def make_mot17(root: Path) -> Path:
    write_sequence(root, "MOT17-02-FRCNN", 0)
    write_sequence(root, "MOT17-10-FRCNN", 1)
    return root
