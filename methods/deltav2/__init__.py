"""DELTAv2 (paper 004): DELTA's dense 3D tracker made fast by three changes, each a switch of the method.

- ``fast_corr``: the 4D correlation reads a 1x1 projection of the P^2 correlations (:mod:`methods.deltav2.corr`);
- ``coarse_to_fine``: iterations update the dense tracks on grids of stride 8, 4, 2 then 1, anchors always
  (:mod:`methods.deltav2.schedule`);
- ``interpolator``: how the untracked dense tracks follow the tracked ones: ``learned`` (the 2x2 attention
  interpolator, :mod:`methods.deltav2.interpolator`), or the fixed ``nearest`` / ``bilinear``.
Everything else is baselines/delta's, so a comparison isolates these changes.
"""
