"""CenterNet's monocular 3D detector ("ddd", Zhou et al. 2019), small, as a bench method and a 3D lifter."""
