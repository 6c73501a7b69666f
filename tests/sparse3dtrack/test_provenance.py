"""Tuning protocol (issue 15): every default of the geometry side's modules says where it comes from, beside it."""

from __future__ import annotations

import ast
import inspect
import re

import pytest

from methods.sparse3dtrack import depth, fncomp, geometry

# Words a provenance comment uses: the paper's value, another paper's, a budget, the development world, or
# an honest "never compared on ground truth".
PROVENANCE = re.compile(r"paper|Monodepth2|CenterTrack|budget|dev(elopment)? world|(not|never) (compared|tuned)"
                        r"|ours|Adam", re.I)


def _defaults_lines(module) -> dict[str, str]:
    """Each DEFAULTS key -> its own line's comment plus the comment lines right above it."""
    source = inspect.getsource(module)
    tree = ast.parse(source)
    node = next(n for n in tree.body if isinstance(n, ast.AnnAssign | ast.Assign)
                and "DEFAULTS" in ast.unparse(n.target if isinstance(n, ast.AnnAssign) else n.targets[0]))
    assert isinstance(node.value, ast.Dict)
    lines = source.splitlines()
    out = {}
    for key in node.value.keys:
        assert isinstance(key, ast.Constant)
        i = key.lineno - 1
        text = lines[i].split("#", 1)[1] if "#" in lines[i] else ""
        j = i - 1
        while j >= 0 and lines[j].strip().startswith("#"):
            text = lines[j].strip() + " " + text
            j -= 1
        out[str(key.value)] = text
    return out


@pytest.mark.parametrize("module", [depth, geometry, fncomp], ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_every_default_states_its_provenance(module):
    missing = {key: text for key, text in _defaults_lines(module).items() if not PROVENANCE.search(text)}
    assert not missing, f"{module.__name__}: defaults without a provenance comment: {sorted(missing)}"


def test_the_geometry_default_is_the_papers_depth_prior():
    assert geometry.DEFAULTS["depth_prior"] == "depth"
    assert re.search("dev world", _defaults_lines(geometry)["depth_prior"], re.I)
