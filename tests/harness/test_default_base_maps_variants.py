"""Harness support for labelers evaluated through a base tracker (issue 6): a labeler's default base,
FNComp negative-loss weight maps carried from the labeler to the base tracker (stored, resumed), and
sweep variants (ablation rows) kept with their runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import toy_methods
from click.testing import CliRunner
from toy_methods import MeanBoxLearner, calls, log_call

from bench import registry
from bench.cli import main
from bench.interface import Labeler, RunContext, TrainView
from bench.runner import EXIT_OK, Job, SweepOptions, expand_grid, load_sweep, run_sweep
from bench.runner.artifacts import load_weight_maps
from bench.runner.jobs import plan_job
from bench.runner.keys import code_version, job_key
from bench.runner.stages import StageDir
from bench.store import Store

FAST = ("eval.pseudolabel=[3d-iou]", "eval.protocols.3d-tracks=[kitti-2d]")


class MapsLabeler(Labeler):
    """Passes the budget's labels on, plus one FNComp map per labelled frame (value 0.25 + frame/100).

    ``bad`` breaks the maps on purpose: "frame" names a frame the videos do not have, "range" a weight
    above 1, "nan" a NaN weight, "shape" a 1D map."""

    default_base = "mapsprobe"

    def __init__(self, bad: str = "") -> None:
        super().__init__(bad=bad)
        self.bad = bad

    def label(self, train: TrainView, ctx: RunContext) -> pd.DataFrame:
        log_call(ctx, "label")
        out = train.labels.copy()
        maps = {(str(s), int(f)): np.full((6, 8), 0.25 + int(f) / 100, np.float32)
                for s, f in out[["seq", "frame"]].drop_duplicates().itertuples(index=False)}
        first = next(iter(maps))
        if self.bad == "frame":
            maps[(first[0], 9999)] = maps[first]
        elif self.bad == "range":
            maps[first] = maps[first] + 1.0
        elif self.bad == "nan":
            maps[first] = np.full((6, 8), np.nan, np.float32)
        elif self.bad == "shape":
            maps[first] = np.ones(5, np.float32)
        out.attrs["neg_weight_maps"] = maps
        return out


class MapsProbe(MeanBoxLearner):
    """The mean-box learner, logging the weight maps it was handed into its work folder."""

    def fit(self, train: TrainView, labels: pd.DataFrame, ctx: RunContext) -> None:
        maps = labels.attrs.get("neg_weight_maps") or {}
        summary = {f"{s}/{f}": float(np.asarray(m).mean()) for (s, f), m in maps.items()}
        with open(Path(ctx.work_dir) / "maps.jsonl", "a") as handle:
            handle.write(json.dumps(summary) + "\n")
        super().fit(train, labels, ctx)


def seen_maps(run_dir: Path) -> list[dict[str, float]]:
    path = run_dir / "work" / "maps.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture(autouse=True)
def toys():
    toy_methods.register_all()
    registry.register("maps", MapsLabeler)
    registry.register("mapsprobe", MapsProbe)
    yield
    registry.unregister("maps")
    registry.unregister("mapsprobe")


def job(method: str = "maps", **kw) -> Job:
    kw.setdefault("overrides", FAST)
    return Job(method=method, dataset="tiny", budget=kw.pop("budget", 2), seed=kw.pop("seed", 0), profile="smoke",
               **kw)


def opts(tmp_path: Path, **kw) -> SweepOptions:
    return SweepOptions(runs_root=tmp_path / "runs", progress=False, device="cpu", **kw)


# ---- default base -----------------------------------------------------------------------------
def test_default_base_is_used_unless_named_or_none(tmp_path):
    default = plan_job(job(), tmp_path / "runs")
    assert default.job.base == "mapsprobe" and default.base_cls is MapsProbe
    assert default.base_note == "base: mapsprobe (maps's default; --base none to skip)"
    named = plan_job(job(base="meanbox"), tmp_path / "runs")
    assert named.job.base == "meanbox" and named.base_note == ""
    for spelling in ("none", "None"):
        skipped = plan_job(job(base=spelling), tmp_path / "runs")
        assert skipped.job.base is None and skipped.base_cls is None
    assert len({default.key, named.key, skipped.key}) == 3
    # A labeler without a default base: no base either way, and the same key as before default bases existed.
    plain, none = plan_job(job("copy"), tmp_path / "runs"), plan_job(job("copy", base="none"), tmp_path / "runs")
    assert plain.job.base is None and plain.key == none.key
    parts = {"config": plain.config, "method": "copy", "method_code": code_version(toy_methods.CopyLabeler),
             "base": None, "base_code": None, "dataset": "tiny", "data_hash": plain.data_hash, "budget": 2, "seed": 0,
             "labels": plain.manifest_hash, "protocol_version": plain.protocol_version}
    assert plain.key == job_key(parts)


def test_cli_prints_the_default_base_and_sweep_base_wins(tmp_path):
    env = {"BENCH_RUNS_DIR": str(tmp_path / "runs"), "COLUMNS": "200"}
    args = ["sweep", "--methods", "maps,copy", "--datasets", "tiny", "--budgets", "2", "--profile", "smoke",
            "--dry-run"]
    out = CliRunner().invoke(main, args, env=env)
    assert out.exit_code == 0, out.output
    assert out.output.count("base: mapsprobe (maps's default; --base none to skip)") == 1
    assert "maps+mapsprobe" in out.output and "copy+" not in out.output
    out = CliRunner().invoke(main, args + ["--base", "none"], env=env)
    assert out.exit_code == 0 and "maps+" not in out.output and "default" not in out.output
    out = CliRunner().invoke(main, args + ["--base", "meanbox"], env=env)
    assert out.exit_code == 0 and "maps+meanbox" in out.output and "copy+meanbox" in out.output


# ---- FNComp weight maps -----------------------------------------------------------------------
def test_weight_maps_are_stored_handed_to_the_base_and_reloaded_on_resume(tmp_path):
    result = run_sweep([job()], opts(tmp_path))
    assert result.exit_code == EXIT_OK, Store(opts(tmp_path).store()).runs_frame()["error"].tolist()
    planned = result.planned[0]
    pseudo = StageDir(planned.run_dir, "pseudolabels")
    assert pseudo.is_done()
    assert "neg_weight_maps.npz" in json.loads(pseudo.file(".done").read_text())["files"]
    stored = load_weight_maps(pseudo.file("neg_weight_maps.npz"))
    labels = pd.read_parquet(planned.run_dir / "labels" / "labels.parquet")
    frames = {(str(s), int(f)) for s, f in labels[["seq", "frame"]].itertuples(index=False)}
    assert set(stored) == frames
    for (_, f), m in stored.items():
        assert m.shape == (6, 8) and m.dtype == np.float32 and np.allclose(m, 0.25 + f / 100)
    expected = {f"{s}/{f}": pytest.approx(0.25 + f / 100) for s, f in frames}
    assert seen_maps(planned.run_dir) == [expected]

    # Killed after the pseudolabels: the resumed run does not label again, yet the base gets the same maps.
    for stage in ("training", "prediction", "metrics"):
        StageDir(planned.run_dir, stage).clear()
    again = run_sweep([job()], opts(tmp_path))
    assert again.exit_code == EXIT_OK and again.planned[0].reason == "resume"
    assert calls(planned.run_dir) == ["label", "fit", "predict", "fit", "predict"]
    assert seen_maps(planned.run_dir) == [expected, expected]


def test_a_labeler_without_maps_hands_none_on(tmp_path):
    result = run_sweep([job("copy", base="mapsprobe")], opts(tmp_path))
    assert result.exit_code == EXIT_OK
    run_dir = result.planned[0].run_dir
    assert not (run_dir / "pseudolabels" / "neg_weight_maps.npz").exists()
    assert seen_maps(run_dir) == [{}]


@pytest.mark.parametrize("bad, message", [
    ("frame", "not a frame of the training videos"),
    ("range", "finite weights in [0, 1]"),
    ("nan", "finite weights in [0, 1]"),
    ("shape", "non-empty 2D numeric array"),
])
def test_bad_weight_maps_fail_the_run_naming_the_method(tmp_path, bad, message):
    result = run_sweep([job(overrides=FAST + (f"method.bad={bad}",))], opts(tmp_path))
    record = Store(opts(tmp_path).store()).run(result.planned[0].key)
    assert record.status == "failed"
    assert "maps.label: attrs['neg_weight_maps']" in record.error and message in record.error
    assert not StageDir(result.planned[0].run_dir, "pseudolabels").is_done()


# ---- sweep variants ---------------------------------------------------------------------------
def test_variants_expand_each_cell_and_keep_their_name(tmp_path):
    variants = {"A1": ["method.delay=0.0"], "A2": ["method.delay=0.001"], "Q1": ["budget=1"]}
    jobs = expand_grid(["copy"], [2], ["tiny"], [0, 1], profile="smoke", overrides=FAST, variants=variants)
    assert [(j.variant, j.budget, j.seed) for j in jobs] == [("A1", 2, 0), ("A1", 2, 1), ("A2", 2, 0), ("A2", 2, 1),
                                                               ("Q1", 1, 0), ("Q1", 1, 1)]
    assert jobs[2].all_overrides() == FAST + ("method.delay=0.001",) and jobs[4].all_overrides() == FAST
    assert jobs[2].overrides == FAST and jobs[2].variant_overrides == ("method.delay=0.001",)
    result = run_sweep(jobs, opts(tmp_path, dry_run=True))
    assert len({p.key for p in result.planned}) == 6
    plain = run_sweep([job("copy")], opts(tmp_path, dry_run=True)).planned[0]
    assert plain.key not in {p.key for p in result.planned}  # the variant name is part of the key

    ran = run_sweep([j for j in jobs if j.seed == 0], opts(tmp_path))
    assert ran.exit_code == EXIT_OK
    store = Store(opts(tmp_path).store())
    runs = store.runs_frame().set_index("variant")
    assert sorted(runs.index) == ["A1", "A2", "Q1"] and runs.loc["Q1", "budget"] == 1
    assert set(store.metrics_frame()["variant"]) == {"A1", "A2", "Q1"}
    listed = CliRunner().invoke(main, ["ls", "runs", "--store", str(store.path)], env={"COLUMNS": "200"})
    assert listed.exit_code == 0 and "variant" in listed.output and "Q1" in listed.output


def test_sweep_presets_plan_with_variants(tmp_path):
    preset = tmp_path / "ablate.yaml"
    preset.write_text("profile: smoke\nmethods: [copy]\ndatasets: [tiny]\nbudgets: [2]\nseeds: [0]\n"
                      f"overrides: {list(FAST)}\n"
                      "variants:\n  X1: ['method.delay=0.001']\n  X2: []\n  Q1: [budget=1]\n")
    env = {"BENCH_RUNS_DIR": str(tmp_path / "runs"), "COLUMNS": "200"}
    out = CliRunner().invoke(main, ["sweep", str(preset), "--dry-run"], env=env)
    assert out.exit_code == 0, out.output
    assert "3 cells: 3 to run" in out.output and "variant" in out.output and "X2" in out.output
    out = CliRunner().invoke(main, ["sweep", str(preset), "--variants", "X2,Q1", "--dry-run"], env=env)
    assert out.exit_code == 0 and "2 cells: 2 to run" in out.output and "X1" not in out.output
    out = CliRunner().invoke(main, ["sweep", str(preset), "--variants", "Z9", "--dry-run"], env=env)
    assert out.exit_code != 0 and "unknown variant(s) Z9" in out.output

    preset.write_text("methods: [copy]\ndatasets: [tiny]\nbudgets: [2]\nseeds: [0]\nvariants: {X1: [budget=two]}\n")
    with pytest.raises(ValueError, match="integer budget"):
        load_sweep(str(preset))
    preset.write_text("methods: [copy]\ndatasets: [tiny]\nbudgets: [2]\nseeds: [0]\nvariants: {X1: method.a=1}\n")
    with pytest.raises(ValueError, match="expected a list of overrides"):
        load_sweep(str(preset))


def test_store_migrates_a_version_1_file(tmp_path):
    import sqlite3

    from bench.store import MIGRATIONS, SCHEMA_VERSION

    path = tmp_path / "old.sqlite"
    con = sqlite3.connect(path)
    con.executescript(MIGRATIONS[0])
    con.execute("INSERT INTO runs VALUES ('k', 'copy', NULL, 'tiny', 2, 0, 'smoke', '1', 'ok', NULL, 0, NULL, NULL, "
                "NULL, 'cpu', NULL, '{}', '{}', 'runs/k')")
    con.execute("PRAGMA user_version = 1")
    con.commit()
    con.close()
    store = Store(path)
    assert store.schema_version == SCHEMA_VERSION >= 2
    assert store.run("k").variant == "" and list(store.runs_frame()["variant"]) == [""]


# ---- the Sparse3DTrack presets ----------------------------------------------------------------
def test_sparse3dtrack_presets_expand_to_the_papers_tables():
    import yaml

    from bench.report.schema import LEADERBOARDS_DIR

    main_grid = load_sweep("sparse3dtrack")
    jobs = expand_grid(main_grid["methods"], main_grid["budgets"], main_grid["datasets"], main_grid["seeds"],
                       base=main_grid["base"], variants=main_grid.get("variants"))
    methods = ("sparse3dtrack", "sparse", "oracle")
    assert {(j.dataset, j.method, j.budget, j.base) for j in jobs} == {
        (d, m, 4, "centertrack") for d in ("synth-kitti", "synth-nuscenes") for m in methods}
    assert sorted({j.seed for j in jobs}) == [0, 1, 2] and main_grid["profile"] == "quick"

    grid = load_sweep("sparse3dtrack_ablations")
    jobs = expand_grid(grid["methods"], grid["budgets"], grid["datasets"], grid["seeds"], base=grid["base"],
                       variants=grid["variants"])
    assert len(jobs) == 12 * 3 and {j.dataset for j in jobs} == {"synth-kitti"}
    by_code = {code: j for j in jobs if j.seed == 0 for code in j.variant.split("=")}
    published = yaml.safe_load((LEADERBOARDS_DIR / "published" / "sparse3dtrack_ablations.yaml").read_text())
    codes = {row["variant"].split(":")[0] for row in published["rows"]}
    assert codes == set(by_code)  # every row of Tables 3-5 is produced, nothing else
    assert by_code["A1"].variant_overrides == ("method.mining=[support]",) and by_code["D1"].variant_overrides == (
        "method.use_depth=false",)
    assert by_code["B3"].variant_overrides == ("method.fncomp=true",)
    assert by_code["Y2"].variant_overrides == ("method.yaw_mode=bins",)
    assert [by_code[q].budget for q in ("Q1", "Q2", "Q3", "Q4")] == [2, 4, 8, 16]
    assert by_code["Q2"] is by_code["A4"] and by_code["A4"].variant_overrides == ()  # the default model runs once
    # Tables 3-5 are without FNComp (the labeler's default has it); B3's own override comes after this one.
    assert grid["overrides"] == ["method.fncomp=false"]
