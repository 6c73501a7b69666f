import numpy as np
import pandas as pd
import pytest

from bench.data import TRACK_COLUMNS, TrackTableError, empty_tracks, make_tracks


def _row(**kw):
    row = dict(seq="0000", frame=0, track_id=1, cls="Car", x1=10, y1=20, x2=50, y2=60,
               x=1.0, y=1.6, z=10.0, h=1.5, w=1.8, l=4.0, yaw=0.1)
    row.update(kw)
    return row


def test_make_tracks_fills_defaults_and_orders_columns():
    df = make_tracks([_row()])
    assert tuple(df.columns) == TRACK_COLUMNS
    assert df.loc[0, "conf"] == 1.0 and df.loc[0, "score"] == 1.0


def test_empty_table_has_schema():
    assert tuple(empty_tracks().columns) == TRACK_COLUMNS


@pytest.mark.parametrize("bad, message", [
    (dict(x2=5), "x2 >= x1"),
    (dict(h=-1.0), "positive"),
    (dict(z=np.nan), "all finite or all NaN"),
    (dict(x1=np.inf), "finite"),
    (dict(conf=1.5), "conf"),
])
def test_validation_names_the_row(bad, message):
    good = _row(**{key: _row().get(key, 1.0) for key in bad})
    with pytest.raises(TrackTableError, match=rf"labels.txt: row 1 .*{message}"):
        make_tracks([good, _row(frame=1, **bad)], source="labels.txt")


def test_duplicate_ids_rejected_but_dontcare_allowed():
    with pytest.raises(TrackTableError, match="duplicate"):
        make_tracks([_row(), _row()])
    nan3d = dict(x=np.nan, y=np.nan, z=np.nan, h=np.nan, w=np.nan, l=np.nan, yaw=np.nan)
    df = make_tracks([_row(cls="DontCare", track_id=-1, **nan3d), _row(cls="DontCare", track_id=-1, **nan3d)])
    assert len(df) == 2


def test_2d_only_rows_are_valid():
    df = make_tracks(pd.DataFrame([_row(x=np.nan, y=np.nan, z=np.nan, h=np.nan, w=np.nan, l=np.nan, yaw=np.nan)]))
    assert np.isnan(df.loc[0, "z"])
