"""The one Registry type: lazy targets, collisions, entry points, the type check and one did-you-mean."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

from bench import registry
from bench.registry import Registry, RegistryError

ROOT = Path(__file__).resolve().parents[2]


def _package(tmp_path: Path, dist: str, group: str, lines: str) -> None:
    """An installed distribution (its .dist-info folder on sys.path) declaring ``lines`` in entry-point ``group``."""
    info = tmp_path / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{lines}\n")


def test_a_taken_name_is_refused_unless_replaced():
    things: Registry[object] = Registry("thing", {"a": "json:dumps"})
    things.register("a", "json:dumps")  # the same target again: no change
    with pytest.raises(RegistryError, match="thing 'a' is taken .*built in.*replace=True"):
        things.register("a", "json:loads")
    things.register("a", "json:loads", replace=True)
    assert things.get("a").__name__ == "loads"
    things.register("b", len)
    with pytest.raises(RegistryError, match="taken"):
        things.register("b", max)


def test_unknown_names_get_one_did_you_mean_and_broken_targets_name_themselves():
    things: Registry[object] = Registry("thing", {"alpha": "json:dumps", "beta": "no_such_module_xyz:x"})
    with pytest.raises(RegistryError, match="unknown thing 'alpah'. Did you mean 'alpha'"):
        things.get("alpah")
    assert things.names() == ["alpha", "beta"] and "beta" in things  # listing imports nothing
    with pytest.raises(RegistryError, match="thing 'beta': cannot import 'no_such_module_xyz:x'"):
        things.get("beta")


def test_loaded_objects_are_checked_against_the_kind():
    def must_be_callable(obj: object) -> None:
        if not callable(obj):
            raise TypeError("not callable")

    things: Registry[object] = Registry("thing", {"pi": "math:pi", "sqrt": "math:sqrt"}, check=must_be_callable)
    assert things.get("sqrt")(4.0) == 2.0
    with pytest.raises(RegistryError, match="thing 'pi': not callable"):
        things.get("pi")
    with pytest.raises(RegistryError, match="not a bench Labeler"):
        registry.methods.register("not-a-method", dict)
        try:
            registry.get_method("not-a-method")
        finally:
            registry.unregister("not-a-method")


def test_an_entry_point_named_like_a_builtin_is_an_error_naming_both(tmp_path, monkeypatch):
    _package(tmp_path, "shadow-pkg", "bench.things", "alpha = shadow_pkg:alpha\nnew = json:loads")
    monkeypatch.syspath_prepend(str(tmp_path))
    things: Registry[object] = Registry("thing", {"alpha": "json:dumps"}, group="bench.things")
    assert things.get("new").__name__ == "loads"  # the package's other entries work
    with pytest.raises(RegistryError, match="'alpha' is declared twice: built in and entry point "
                                            "'shadow_pkg:alpha' of package shadow-pkg"):
        things.get("alpha")


def test_two_packages_declaring_one_name_is_an_error(tmp_path, monkeypatch):
    _package(tmp_path, "first-pkg", "bench.things", "dup = json:dumps")
    other = tmp_path / "other"
    other.mkdir()
    _package(other, "second-pkg", "bench.things", "dup = json:loads")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(other))
    with pytest.raises(RegistryError, match="declared twice .*first-pkg|declared twice .*second-pkg"):
        Registry("thing", group="bench.things").names()


def test_benchs_own_methods_are_entry_points_like_a_third_partys():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["bench.methods"]
    from importlib.metadata import entry_points

    installed = {ep.name: ep.value for ep in entry_points(group="bench.methods") if ep.dist and ep.dist.name == "bench"}
    # A stale editable install reads an older table: `pip install -e .` again (the CI installs afresh).
    assert installed == declared, "bench's installed entry points differ from pyproject.toml: reinstall"
    assert set(declared) <= set(registry.method_names())
    for name, target in declared.items():
        assert registry.method_target(name) == target
        assert registry.get_method(name).__name__ == target.rpartition(":")[2]
    for package in ("baselines", "methods"):  # no second table of names
        module = sys.modules.get(package) or __import__(package)
        assert not hasattr(module, "METHODS")


def test_every_kind_of_lookup_is_a_registry():
    from bench.cli import COMMANDS
    from bench.cli.eval import LOADERS
    from bench.data.formats import FORMATS
    from bench.metrics.protocols import PROTOCOLS

    for table in (registry.methods, registry.datasets, PROTOCOLS, FORMATS, LOADERS, COMMANDS):
        assert isinstance(table, Registry) and len(table) > 0
    assert "run" in COMMANDS and COMMANDS.get("run").name == "run"
    assert FORMATS.get("kitti").__name__ == "bench.data.formats.kitti"
    with pytest.raises(RegistryError, match="Did you mean 'nuscenes'"):
        FORMATS.get("nuscene")
