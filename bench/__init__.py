"""bench: a benchmark and evaluation harness for label-efficient 3D tracking."""

__version__ = "0.1.0"
