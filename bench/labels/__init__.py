"""Label budgets: which few boxes per track a human would label, and the manifest that records them."""

from bench.labels.budget import K_LEVELS, default_visible, density_reduction, sample_budget
from bench.labels.manifest import (
           REGIMES,
           LabelManifest,
           blank_3d,
           label_cost,
           make_2d_manifest,
           make_manifest,
           sequences_with_3d,
)

__all__ = ["K_LEVELS", "REGIMES", "LabelManifest", "blank_3d", "default_visible", "density_reduction", "label_cost",
           "make_2d_manifest", "make_manifest", "sample_budget", "sequences_with_3d"]
