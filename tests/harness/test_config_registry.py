"""Profiles and overrides, the registry's lazy names, did-you-mean and entry points, safe run folders."""

from __future__ import annotations

import pytest

from bench import registry
from bench.config import ConfigError, apply_overrides, load_profile, parse_override, profile_names, resolve_config
from bench.interface import Labeler
from bench.registry import RegistryError
from bench.runner.keys import run_path, safe_name


def test_profiles_exist_and_resolve():
    assert {"smoke", "quick", "paper"} <= set(profile_names())
    config = resolve_config("smoke", "interpolate")
    assert config["profile"] == "smoke" and config["data"]["scale"] == "smoke"
    assert config["method"] == load_profile("smoke")["methods"]["interpolate"]
    assert config["base"] is None


def test_overrides_are_typed_and_dotted():
    assert parse_override("a.b=3") == (["a", "b"], 3)
    assert parse_override("x=0.5")[1] == 0.5
    assert parse_override("x=[a, b]")[1] == ["a", "b"]
    assert parse_override("x=null")[1] is None
    assert parse_override("x=true")[1] is True
    assert parse_override("x=hello world")[1] == "hello world"
    config = resolve_config("quick", "interpolate", overrides=["method.conf_halflife=2", "data.scale=smoke",
                                                                "eval.protocols.3d-tracks=[3d-iou]", "new.deep.key=1"])
    assert config["method"]["conf_halflife"] == 2 and isinstance(config["method"]["conf_halflife"], int)
    assert config["data"]["scale"] == "smoke"
    assert config["eval"]["protocols"]["3d-tracks"] == ["3d-iou"]
    assert config["eval"]["protocols"]["2d-tracks"] == ["kitti-2d"]  # siblings untouched
    assert config["new"] == {"deep": {"key": 1}}


@pytest.mark.parametrize("bad", ["noequals", "=3", "a..b=1", "a.=1"])
def test_bad_overrides_say_what_was_expected(bad):
    with pytest.raises(ConfigError, match="key=value"):
        parse_override(bad)


def test_override_into_a_scalar_is_an_error():
    with pytest.raises(ConfigError, match="not a mapping"):
        apply_overrides({"a": 1}, ["a.b=2"])


def test_unknown_profile_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="known profiles"):
        load_profile("smok")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\nb: 3\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:\d+"):
        load_profile(str(bad))


def test_did_you_mean():
    with pytest.raises(RegistryError, match="Did you mean 'interpolate'"):
        registry.get_method("interpolat")
    with pytest.raises(RegistryError, match="Did you mean 'synth-kitti'"):
        registry.get_dataset_loader("synth-kiti")
    assert "interpolate" in registry.method_names()


def test_lazy_strings_are_not_imported_until_chosen():
    registry.register("lazy-missing", "no_such_module_xyz:Thing")
    try:
        assert "lazy-missing" in registry.method_names()  # listing imports nothing
        with pytest.raises(RegistryError, match="cannot import"):
            registry.get_method("lazy-missing")
    finally:
        registry.unregister("lazy-missing")


def test_non_method_classes_are_refused():
    registry.register("not-a-method", dict)
    try:
        with pytest.raises(RegistryError, match="not a bench Labeler"):
            registry.get_method("not-a-method")
    finally:
        registry.unregister("not-a-method")


def test_third_party_entry_point(tmp_path, monkeypatch):
    """A package that declares a ``bench.methods`` entry point is found without touching bench."""
    (tmp_path / "thirdparty_labeler.py").write_text(
        "from bench.interface import Labeler\n"
        "class Nothing(Labeler):\n"
        "    def label(self, train, ctx):\n"
        "        return train.labels\n")
    dist = tmp_path / "thirdparty_labeler-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-labeler\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[bench.methods]\nnothing = thirdparty_labeler:Nothing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    # A fresh methods registry: the module's own has read the entry points already.
    monkeypatch.setattr(registry, "methods", registry.Registry("method", group=registry.METHODS_GROUP,
                                                               check=registry._check_method))
    cls = registry.get_method("nothing")
    assert issubclass(cls, Labeler) and cls.__name__ == "Nothing"


@pytest.mark.parametrize("name", ["../../etc", "..", "a/../../b", "<script>alert(1)</script>", "it's \"quoted\"",
                                  "/abs/path", "", ".hidden", "x" * 500, "a\x00b", "C:\\win"])
def test_hostile_names_stay_inside_the_runs_folder(tmp_path, name):
    root = tmp_path / "runs"
    path = run_path(root, name, name, name, 4, 0, "f" * 64)
    assert path.resolve().is_relative_to(root.resolve())
    assert len(path.relative_to(root).parts) == 5
    cleaned = safe_name(name)
    assert "/" not in cleaned and "\\" not in cleaned and not cleaned.startswith(".") and "<" not in cleaned


def test_distinct_hostile_names_get_distinct_folders():
    assert safe_name("a/b") != safe_name("a_b") and safe_name("a/b") != safe_name("a:b")
    assert safe_name("interpolate") == "interpolate"


def test_hostile_names_end_to_end(tmp_path):
    """A method and dataset registered under hostile names run, and every file lands inside runs/."""
    import toy_methods
    from tiny import load_tiny

    from bench.runner import Job, SweepOptions, run_sweep

    hostile = "../../<script>alert('x')</script>"
    registry.register(hostile, toy_methods.CopyLabeler)
    registry.register_dataset(hostile, load_tiny)
    try:
        result = run_sweep([Job(hostile, dataset=hostile, budget=1, profile="smoke",
                                overrides=("eval.pseudolabel=[3d-iou]",))],
                           SweepOptions(runs_root=tmp_path / "runs", progress=False, device="cpu"))
    finally:
        registry.unregister(hostile)
    assert result.exit_code == 0
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files and all(p.resolve().is_relative_to((tmp_path / "runs").resolve()) for p in files)


def test_budget_all_is_only_for_a_declared_oracle(tmp_path, tiny_registered):
    from bench.runner import Job, SweepOptions, run_sweep

    with pytest.raises(ConfigError, match="sees_ground_truth"):
        run_sweep([Job("interpolate", dataset=tiny_registered, budget=None, profile="smoke")],
                  SweepOptions(runs_root=tmp_path, progress=False))
    with pytest.raises(ConfigError, match=">= 1"):
        run_sweep([Job("interpolate", dataset=tiny_registered, budget=0, profile="smoke")],
                  SweepOptions(runs_root=tmp_path, progress=False))
