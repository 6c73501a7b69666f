"""`bench data` through click's CliRunner at smoke scale."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from bench.cli import main


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    import os

    data = tmp_path_factory.mktemp("data")
    old = os.environ.get("BENCH_DATA_DIR")
    os.environ["BENCH_DATA_DIR"] = str(data)
    yield CliRunner(), data
    if old is None:
        del os.environ["BENCH_DATA_DIR"]
    else:
        os.environ["BENCH_DATA_DIR"] = old


def test_make_info_show_clip(runner, tmp_path):
    cli, data = runner
    result = cli.invoke(main, ["data", "make", "synth-kitti", "--scale", "smoke"])
    assert result.exit_code == 0, result.output
    assert (data / "synth-kitti-smoke-s0" / "COMPLETE").exists()
    again = cli.invoke(main, ["data", "make", "synth-kitti", "--scale", "smoke"])
    assert "already at" in again.output

    result = cli.invoke(main, ["data", "info", "synth-kitti", "--scale", "smoke"])
    assert result.exit_code == 0, result.output
    for word in ("boxes_per_frame", "track_length_mean", "occlusion", "lookalike_share", "8008",
                 "KITTI tracking (published)", "box_height_px", "object pixels vs the real images"):
        assert word in result.output
    # Smoke renders at half of quick's 128 rows: objects are 64/375 as tall in pixels as in KITTI's images.
    assert "0.171" in result.output

    png = tmp_path / "frame.png"
    result = cli.invoke(main, ["data", "show", "synth-kitti", "--scale", "smoke", "--seq", "0000", "--frame", "3",
                               "-o", str(png)])
    assert result.exit_code == 0, result.output
    import imageio.v3 as iio

    image = iio.imread(png)
    assert image.shape[0] >= 64 and image.std() > 10  # a real picture, not a blank
    gif = tmp_path / "clip.gif"
    result = cli.invoke(main, ["data", "clip", "synth-kitti", "--scale", "smoke", "--seq", "0002", "-o", str(gif)])
    assert result.exit_code == 0, result.output
    frames = iio.imread(gif, index=None)
    assert frames.shape[0] == 12 and not np.array_equal(frames[0], frames[-1])


@pytest.mark.parametrize("args, message", [
    (["data", "info", "synth-kiti", "--scale", "smoke"], "Did you mean 'synth-kitti'"),
    (["data", "show", "synth-kitti", "--scale", "smoke", "--seq", "0099", "--frame", "0", "-o", "x.png"],
     "no sequence '0099'"),
    (["data", "show", "synth-kitti", "--scale", "smoke", "--seq", "0000", "--frame", "999", "-o", "x.png"],
     "no frame 999"),
    (["data", "make", "kitti"], "is a real dataset"),
    (["data", "info", "kitti", "--root", "/does/not/exist"], "does not exist"),
])
def test_bad_input_exits_2_with_the_reason(runner, args, message):
    cli, _ = runner
    result = cli.invoke(main, args)
    assert result.exit_code == 2
    assert message in result.output


def test_info_compares_with_the_dataset_it_imitates(runner):
    cli, _ = runner
    result = cli.invoke(main, ["data", "info", "synth-nuscenes", "--scale", "smoke"])
    assert result.exit_code == 0, result.output
    assert "nuScenes (published)" in result.output and "28130" in result.output
    assert "KITTI" not in result.output
