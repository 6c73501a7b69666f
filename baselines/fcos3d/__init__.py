"""FCOS3D (Wang et al., 2021), small: a fully convolutional monocular 3D detector, as a bench method and a lifter."""
