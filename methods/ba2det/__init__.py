"""BA²-Det (paper 002): a monocular 3D detector from 2D boxes, a scene reconstruction and DoubleClustering.

One file per part: ``reconstruct`` (COLMAP via pycolmap), ``clustering`` (LPC + GPC), ``bev_box`` (orientation
search and box fit), ``pseudolabels`` (the initial pseudo-labels), ``detector`` (stage 2: the detector with
2D-guided label assignment), ``selftrain`` (stage 3), ``method`` (the bench methods). See ``method`` for which
of the paper's stages exist.
"""
