"""bench reads KITTI files as the official tools read them, and scores them as TrackEval does.

Each case is a pair of small hand-made files that bench once refused (exit 2) or read differently from
TrackEval's ``Kitti2DBox`` (and the KITTI devkit): a fractional truncation (0.3, as object-detection labels
carry), one track id in two classes of a frame, lower-case class names, ``Person`` in the ground truth
(TrackEval's own name for the pedestrian distractor) and predictions with id -1. Both tools read the very
same folder (``label_02/`` + seqmap, ``<tracker>/data/``); every CLEAR / Identity / HOTA number of both
classes must be equal. TrackEval runs live here, from the venv.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import pytest

from bench.cli.eval import run_eval
from bench.data.formats.common import DataWarning
from bench.metrics.clear import ClearMetric
from bench.metrics.hota import HotaMetric
from bench.metrics.identity import IdentityMetric

TOL = 1e-9
N_FRAMES = 4
TAIL = "1.5 1.6 3.9 2.0 1.6 20.0 0.0"  # h w l x y z rotation_y: a plausible 3D box (the 2D protocol ignores it)


def line(frame: int, track: int, cls: str, box: tuple[float, float, float, float], *, trunc: str = "0",
         occ: str = "0", score: float | None = None) -> str:
    x1, y1, x2, y2 = box
    fields = [str(frame), str(track), cls, trunc, occ, "-1.0", f"{x1:.2f}", f"{y1:.2f}", f"{x2:.2f}", f"{y2:.2f}", TAIL]
    if score is not None:
        fields.append(f"{score:.2f}")
    return " ".join(fields)


CAR = (100.0, 100.0, 200.0, 180.0)
CAR2 = (400.0, 120.0, 520.0, 200.0)
PED = (600.0, 100.0, 640.0, 200.0)


def _frames(rows: list[tuple], pred: bool) -> str:
    """Rows ``(frame, id, class, box[, {trunc/occ}])`` as label lines (predictions get a score column)."""
    return "".join(line(f, t, c, b, score=0.9 if pred else None, **(extra[0] if extra else {})) + "\n"
                   for f, t, c, b, *extra in rows)


def case_truncation_fraction() -> tuple[str, str]:
    """Object-style truncation fractions: 0.3 is level 0 for the official tools (scored), 1.0 is level 1."""
    gt = [(f, 1, "Car", CAR, {"trunc": "0.3"}) for f in range(N_FRAMES)]
    gt += [(f, 2, "Car", CAR2, {"trunc": "1.00"}) for f in range(N_FRAMES)]
    gt += [(f, 3, "Pedestrian", PED, {"trunc": "0.49"}) for f in range(N_FRAMES)]
    pred = [(f, 1, "Car", CAR) for f in range(N_FRAMES)] + [(f, 2, "Car", CAR2) for f in range(N_FRAMES)]
    pred += [(f, 3, "Pedestrian", PED) for f in range(N_FRAMES)]
    return _frames(gt, False), _frames(pred, True)


def case_same_id_two_classes() -> tuple[str, str]:
    """Track id 1 is a car and a pedestrian in the same frames, in the ground truth and in the predictions."""
    gt = [(f, 1, "Car", CAR) for f in range(N_FRAMES)] + [(f, 1, "Pedestrian", PED) for f in range(N_FRAMES)]
    gt += [(f, 2, "Van", CAR2) for f in range(2)] + [(f, 2, "Car", CAR2) for f in range(2, N_FRAMES)]
    pred = [(f, 5, "Car", CAR) for f in range(N_FRAMES)] + [(f, 5, "Pedestrian", PED) for f in range(N_FRAMES)]
    pred += [(f, 6, "Car", CAR2) for f in range(N_FRAMES)]
    return _frames(gt, False), _frames(pred, True)


def case_lower_case_classes() -> tuple[str, str]:
    """Class names in lower case (and DontCare as 'dontcare'), which TrackEval lower-cases anyway."""
    gt = [(f, 1, "car", CAR) for f in range(N_FRAMES)] + [(f, 2, "pedestrian", PED) for f in range(N_FRAMES)]
    gt += [(f, 3, "van", CAR2) for f in range(N_FRAMES)] + [(0, -1, "dontcare", (700.0, 50.0, 900.0, 250.0))]
    pred = [(f, 1, "car", CAR) for f in range(N_FRAMES)] + [(f, 2, "PEDESTRIAN", PED) for f in range(1, N_FRAMES)]
    pred += [(f, 3, "Car", CAR2) for f in range(N_FRAMES)] + [(0, 4, "car", (720.0, 60.0, 880.0, 240.0))]
    return _frames(gt, False), _frames(pred, True)


def case_person_in_ground_truth() -> tuple[str, str]:
    """``Person`` (TrackEval's pedestrian distractor): a prediction on it is neither TP nor FP."""
    gt = [(f, 1, "Person", PED) for f in range(N_FRAMES)] + [(f, 2, "Pedestrian", CAR) for f in range(N_FRAMES)]
    pred = [(f, 7, "Pedestrian", PED) for f in range(N_FRAMES)] + [(f, 8, "Pedestrian", CAR) for f in range(N_FRAMES)]
    pred += [(f, 9, "Pedestrian", CAR2) for f in range(2)]
    return _frames(gt, False), _frames(pred, True)


def case_prediction_id_minus_one() -> tuple[str, str]:
    """Predictions with track id -1 (detections without a track): the official tools drop them."""
    gt = [(f, 1, "Car", CAR) for f in range(N_FRAMES)] + [(f, 2, "Car", CAR2) for f in range(N_FRAMES)]
    pred = [(f, 1, "Car", CAR) for f in range(N_FRAMES)] + [(f, -1, "Car", CAR2) for f in range(N_FRAMES)]
    return _frames(gt, False), _frames(pred, True)


CASES = {name.removeprefix("case_"): fn for name, fn in globals().items() if name.startswith("case_")}


def write_case(folder: Path, gt: str, pred: str) -> tuple[Path, Path]:
    """The layout both tools read: ``gt/label_02/0000.txt`` + seqmap, ``trackers/bench/data/0000.txt``."""
    (folder / "gt" / "label_02").mkdir(parents=True)
    (folder / "gt" / "label_02" / "0000.txt").write_text(gt)
    (folder / "gt" / "evaluate_tracking.seqmap.training").write_text(f"0000 empty 000000 {N_FRAMES:06d}\n")
    (folder / "trackers" / "bench" / "data").mkdir(parents=True)
    (folder / "trackers" / "bench" / "data" / "0000.txt").write_text(pred)
    return folder / "gt", folder / "trackers"


def trackeval_scores(gt: Path, trackers: Path) -> dict[str, dict[str, float]]:
    """TrackEval's own pipeline (Evaluator + Kitti2DBox + CLEAR/Identity/HOTA), combined over sequences."""
    trackeval = pytest.importorskip("trackeval")
    config = trackeval.Evaluator.get_default_eval_config()
    config.update({"PRINT_RESULTS": False, "PRINT_CONFIG": False, "TIME_PROGRESS": False, "OUTPUT_SUMMARY": False,
                   "OUTPUT_DETAILED": False, "PLOT_CURVES": False, "LOG_ON_ERROR": None, "DISPLAY_LESS_PROGRESS": True})
    dataset = trackeval.datasets.Kitti2DBox({"GT_FOLDER": str(gt), "TRACKERS_FOLDER": str(trackers),
                                             "SPLIT_TO_EVAL": "training", "PRINT_CONFIG": False,
                                             "TRACKERS_TO_EVAL": ["bench"]})
    metrics = [trackeval.metrics.CLEAR({"PRINT_CONFIG": False}), trackeval.metrics.Identity({"PRINT_CONFIG": False}),
               trackeval.metrics.HOTA()]
    with contextlib.redirect_stdout(io.StringIO()):
        output, messages = trackeval.Evaluator(config).evaluate([dataset], metrics)
    assert messages["Kitti2DBox"] == {"bench": "Success"}, messages
    combined = output["Kitti2DBox"]["bench"]["COMBINED_SEQ"]
    out = {}
    for cls in ("car", "pedestrian"):
        out[cls] = {}
        for metric, key in ((ClearMetric(), "CLEAR"), (IdentityMetric(), "Identity"), (HotaMetric(), "HOTA")):
            out[cls].update(metric.summary(combined[cls][key]))
    return out


def bench_scores(gt: Path, trackers: Path) -> tuple[dict[str, dict[str, float]], list[str]]:
    """``bench eval --format kitti`` on the same folders (what the CLI runs), and the warnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        result = run_eval("kitti", gt, trackers / "bench")
    return result.extras["per_class"], [str(w.message) for w in caught if issubclass(w.category, DataWarning)]


def _equal(official: dict[str, float], ours: dict[str, float]) -> dict[str, tuple]:
    def same(a: float, b: float | None) -> bool:
        return b is not None and (a == b or abs(a - b) <= TOL or (a != a and b != b))

    return {k: (v, ours.get(k)) for k, v in official.items() if not same(v, ours.get(k))}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bench_equals_trackeval(case: str, tmp_path: Path) -> None:
    gt, trackers = write_case(tmp_path, *CASES[case]())
    official = trackeval_scores(gt, trackers)
    ours, _ = bench_scores(gt, trackers)
    for cls in ("car", "pedestrian"):
        diff = _equal(official[cls], ours[cls])
        assert not diff, f"{case}/{cls}: metric -> (TrackEval, bench): {diff}"


def test_fractional_truncation_is_scored(tmp_path: Path) -> None:
    """The issue's example: a truncation-0.3 car with an exact prediction is MOTA 1, as in both official tools."""
    gt, trackers = write_case(tmp_path, *case_truncation_fraction())
    ours, _ = bench_scores(gt, trackers)
    # Car 1 (0.3) is scored and found; car 2 (1.0) is a truncated box: its prediction is neither TP nor FP.
    assert ours["car"]["MOTA"] == 1.0 and ours["car"]["TP"] == N_FRAMES and ours["car"]["FP"] == 0
    assert ours["pedestrian"]["TP"] == N_FRAMES


def test_negative_ids_are_skipped_with_a_warning_naming_the_line(tmp_path: Path) -> None:
    gt, trackers = write_case(tmp_path, *case_prediction_id_minus_one())
    ours, messages = bench_scores(gt, trackers)
    assert ours["car"]["FP"] == 0 and ours["car"]["FN"] == N_FRAMES
    pred = trackers / "bench" / "data" / "0000.txt"
    assert any(m.startswith(f"{pred}:{N_FRAMES + 1}: negative track_id") for m in messages), messages


def test_one_class_repeating_an_id_in_a_frame_is_still_refused(tmp_path: Path) -> None:
    """TrackEval refuses that too ('Tracker predicts the same ID more than once in a single timestep')."""
    from bench.data.sequence import DataError

    gt, pred = case_same_id_two_classes()
    pred += line(0, 5, "car", CAR2, score=0.5) + "\n"
    gt_dir, trackers = write_case(tmp_path, gt, pred)
    with pytest.raises(DataError, match=r"0000\.txt:\d+: duplicate \(frame 0, track_id 5, Car\)"):
        run_eval("kitti", gt_dir, trackers / "bench")
