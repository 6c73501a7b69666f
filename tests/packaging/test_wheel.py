"""What a non-editable install gets: the wheel holds every file bench reads at run time, only bench's own
packages, and an installed bench does not report some other repository's git commit as its own.

.ci/run goes further (installs the wheel in a scratch venv and runs a job and a report from an empty folder);
these tests are the fast, offline part of that.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from bench.report.schema import DEFAULT_SCHEMA_PATH, LEADERBOARDS_DIR
from bench.runner.manifest import git_state

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bench", "baselines", "methods", "leaderboards")


def _source_files(package: str) -> set[str]:
    """Every file of a top-level package folder as a wheel path, caches left out."""
    return {p.relative_to(ROOT).as_posix() for p in (ROOT / package).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


def _can_build_here() -> bool:
    """setuptools >= 68 (pyproject's build requirement) that can make wheels: >= 70.1 itself, else with `wheel`."""
    try:
        found = tuple(int(part) for part in re.findall(r"\d+", metadata.version("setuptools"))[:2])
    except metadata.PackageNotFoundError:
        return False
    return found >= (70, 1) or (found >= (68, 0) and importlib.util.find_spec("wheel") is not None)


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    # Build from a copy: setuptools builds in-tree (build/, *.egg-info), which must not touch the checkout.
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("dist")
    # No build isolation (offline, faster) where this venv can build the wheel itself; a fresh Python 3.11 venv has
    # setuptools 65 and no `wheel`, so there pip fetches pyproject's build requirements like any install.
    isolation = ["--no-build-isolation"] if _can_build_here() else []
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *isolation, "-w", str(out), str(src)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = out.glob("bench-*.whl")
    return set(zipfile.ZipFile(wheel).namelist())


def test_wheel_holds_every_file_of_bench_packages(wheel_files: set[str]) -> None:
    # A new template, profile or leaderboard file that pyproject's package-data does not cover fails here.
    for package in PACKAGES:
        missing = sorted(_source_files(package) - wheel_files)
        assert not missing, f"not in the wheel (declare them in [tool.setuptools.package-data]): {missing}"
    for needed in ("bench/profiles/smoke.yaml", "bench/sweeps/nightly.yaml", "bench/report/templates/index.html.j2",
                   "leaderboards/metrics.yaml", "leaderboards/expected/nightly.yaml"):
        assert needed in wheel_files


def test_wheel_installs_only_bench_packages(wheel_files: set[str]) -> None:
    # "bench*" once matched benchmarks/ and shipped the pytest-benchmark scripts as a top-level package.
    top = {name.split("/")[0] for name in wheel_files if not name.split("/")[0].endswith(".dist-info")}
    assert top == set(PACKAGES)


def test_leaderboards_found_as_package_data() -> None:
    assert (LEADERBOARDS_DIR / "__init__.py").is_file()
    assert DEFAULT_SCHEMA_PATH.is_file()
    assert LEADERBOARDS_DIR.resolve() == (ROOT / "leaderboards").resolve()  # from a checkout: the checkout's


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout.strip()


def test_git_state_names_only_a_checkout_whose_top_is_bench(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    project = tmp_path / "someone-elses-project"
    site = project / ".venv" / "lib" / "python3.11" / "site-packages"  # where an installed bench sits
    site.mkdir(parents=True)
    _git(project, "init", "-q")
    _git(project, "commit", "-q", "--allow-empty", "-m", "x")
    assert git_state(site) == {"commit": None, "dirty": None}  # their commit is not bench's
    assert git_state(project)["commit"] == _git(project, "rev-parse", "HEAD")
    assert git_state(tmp_path) == {"commit": None, "dirty": None}  # no repository at all
