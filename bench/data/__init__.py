"""The data layer: track tables, sequences, the synthetic world and dataset readers/writers."""

from bench.data.sequence import DataError, Dataset, PointTracks, Sequence, Split
from bench.data.tracks import (
    BOX2D_COLUMNS,
    BOX3D_COLUMNS,
    CLASSES,
    DONTCARE,
    TRACK_COLUMNS,
    TRACK_SCHEMA,
    TrackTableError,
    concat_tracks,
    empty_tracks,
    make_tracks,
    sort_tracks,
    validate_tracks,
)

__all__ = [
    "BOX2D_COLUMNS", "BOX3D_COLUMNS", "CLASSES", "DONTCARE", "TRACK_COLUMNS", "TRACK_SCHEMA",
    "DataError", "Dataset", "PointTracks", "Sequence", "Split", "TrackTableError",
    "concat_tracks", "empty_tracks", "make_tracks", "sort_tracks", "validate_tracks",
]
