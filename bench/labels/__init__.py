"""Label budgets: which few boxes per track a human would label, and the manifest that records them."""

from bench.labels.budget import K_LEVELS, default_visible, density_reduction, sample_budget
from bench.labels.manifest import LabelManifest, make_manifest

__all__ = ["K_LEVELS", "LabelManifest", "default_visible", "density_reduction", "make_manifest", "sample_budget"]
