"""CenterTrack (Zhou et al. 2020), monocular 3D tracking, trained from scratch on bench track tables."""
