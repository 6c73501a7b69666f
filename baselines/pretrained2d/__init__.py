"""pretrained2d: the SAM 2 role of Sparse3DTrack's Table 1, a 2D tracker pretrained on other synthetic worlds."""
