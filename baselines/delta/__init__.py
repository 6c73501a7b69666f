"""DELTA-style dense 3D point tracking (paper 004's baseline, DELTA), small enough to train on a CPU.

One model per file: :mod:`~baselines.delta.encoder` (feature CNN), :mod:`~baselines.delta.corr4d` (4D correlation),
:mod:`~baselines.delta.transformer` (update transformer: time, virtual-track global and local window attention),
:mod:`~baselines.delta.upsampler` (attention upsampler), :mod:`~baselines.delta.tracker` (iterative refinement
tying them together), :mod:`~baselines.delta.losses`, :mod:`~baselines.delta.train` and the bench method in
:mod:`~baselines.delta.method`. DELTAv2 (methods/deltav2) reuses all of it and changes only the paper's three parts.
"""
