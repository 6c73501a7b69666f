"""SPOT (Sparsely-Supervised Object Tracking, TIP'24) as bench's sparse-label 2D tracker; see ``labeler.py``."""
