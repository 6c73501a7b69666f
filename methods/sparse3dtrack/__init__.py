"""Sparse3DTrack: sparsely supervised monocular 3D tracking pseudolabels (paper 001), one module per file."""
