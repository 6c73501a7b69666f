"""The HTML site: what it contains, that it needs no network, and that stored strings cannot inject markup."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.report.html import render_report, run_page_name


@pytest.fixture(scope="module")
def site(frames, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "site"
    result = render_report(*frames, out)
    assert result.index == out / "index.html"
    return out


@pytest.fixture(scope="module")
def pages(site: Path) -> dict[str, str]:
    return {str(p.relative_to(site)): p.read_text() for p in site.rglob("*.html")}


def test_site_has_every_page_and_nothing_outside_the_output_folder(site, pages):
    out = site
    assert {"index.html", "runs.html", "paper.html"} <= set(pages)
    assert len([p for p in pages if p.startswith("runs/")]) == 12  # one page per stored run
    assert [p.name for p in out.parent.iterdir()] == ["site"]
    for path in out.rglob("*"):
        assert path.resolve().is_relative_to(out.resolve())
    evil = run_page_name("../../escape\"<key>")
    assert "/" not in evil and ".." not in evil and (out / "runs" / evil).exists()
    assert run_page_name("s3d-b4-s0") == "s3d-b4-s0.html"


def test_user_strings_are_escaped_everywhere(pages):
    for name, html in pages.items():
        scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", html, flags=re.S)
        assert len(scripts) == 1 and "alert" not in scripts[0], f"{name}: only the page's own sorting script"
        assert "<b>boom</b>" not in html and "</pre><script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages["index.html"]
    assert "q&#39;uote&#34;base" in pages["index.html"]
    failed = pages[f"runs/{run_page_name('s3d-b8-s0')}"]
    assert "ValueError: &lt;b&gt;boom&lt;/b&gt;" in failed
    assert "&lt;/pre&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in failed  # the resolved config, escaped


def test_pages_are_self_contained(pages):
    for name, html in pages.items():
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), f"{name} loads something from the network"
        assert "<link" not in html
    # Plots are inline SVG images, and the SVG text is escaped too.
    images = re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', pages["index.html"])
    assert len(images) == 2  # budget curve + speed/accuracy plot for the one section
    curve = base64.b64decode(images[0]).decode()
    assert curve.lstrip().startswith("<?xml") and "<svg" in curve
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in curve and "<script" not in curve


def test_index_shows_mean_std_best_and_failed_runs(pages):
    html = pages["index.html"]
    assert "12 runs" in html and "11 ok" in html and "1 failed" in html
    assert re.search(r'<td class="best" data-value="42\.0[0-9]*" title="3 seed\(s\)">42\.00 ± 2\.00</td>', html)
    assert '<tr class="reference"><td class="name">oracle</td>' in html
    assert "ValueError: &lt;b&gt;boom&lt;/b&gt;" in html


def test_paper_page_puts_published_beside_ours(pages):
    html = pages["paper.html"]
    assert "Sparse3DTrack, Table 1" in html and "Sparse3DTrack, Table 3" in html
    row = re.search(r"<tr><td class=\"name\">sparse3dtrack</td><td class=\"name\">centertrack</td>"
                    r"<td class=\"name\"></td>.*?MOTA \(%\).*?</tr>", html)
    assert row is not None
    # The store scores 3d-iou only; the paper's KITTI MOTA is the official 2D protocol: not compared, "not run".
    assert "29.71" in row.group(0) and "not run" in row.group(0) and "42.00" not in row.group(0)


def test_cli_report_writes_the_site_and_refuses_a_missing_store(store_path, tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["report", "-o", str(tmp_path / "r"), "--store", str(store_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r" / "index.html").exists() and "wrote 17 pages for 12 runs" in result.output
    result = runner.invoke(main, ["report", "-o", str(tmp_path / "r2"), "--store", str(tmp_path / "none.sqlite")])
    assert result.exit_code != 0 and "no results store" in result.output
    assert not (tmp_path / "none.sqlite").exists()
    result = runner.invoke(main, ["table", "--store", str(store_path), "--format", "latex", "--metric", "MOTA"])
    assert result.exit_code == 0 and r"\textbf{42.00 $\pm$ 2.00}" in result.output


def test_an_empty_store_renders_a_report_that_says_so(tmp_path):
    from bench.store import Store

    store = Store(tmp_path / "empty.sqlite")
    render_report(store.runs_frame(), store.metrics_frame(), tmp_path / "site")
    index = (tmp_path / "site" / "index.html").read_text()
    assert "0 runs" in index and "No finished runs with metrics" in index
    paper = (tmp_path / "site" / "paper.html").read_text()
    assert "29.71" in paper and "not run" in paper  # published numbers still listed


def test_leaderboard_marks_a_lead_the_seeds_cannot_separate(pages):
    html = pages["index.html"]
    table = re.search(r'<table class="sortable leaderboard".*?</table>(.*?)(?=<h3|<details|<h2|$)', html, re.S)
    assert table is not None
    row = re.search(r'<tr><td class="name">sparse3dtrack</td>.*?</tr>', table.group(0), re.S).group(0)
    cells = re.findall(r"<td([^>]*)>(.*?)</td>", row, re.S)[2:]
    # Budget 2: +11 points over sparse on 2 seeds, paired t interval contains 0 -> marked, not bold.
    assert 'class="unsure"' in cells[0][0] and '<span class="mark"' in cells[0][1] and "best" not in cells[0][0]
    assert 'class="best"' in cells[1][0] and "mark" not in cells[1][1]  # budget 4: [+15, +15], bold
    notes = table.group(1)
    assert "sparse3dtrack − sparse: +15.00 [+15.00, +15.00] (2 shared seeds, paired t)" in notes
    # The legend as a reader sees it: the mark, one space, the sentence (the browser test reads textContent).
    legend = re.search(r'<p class="muted legend">(.*?)</p>', notes, re.S).group(1)
    assert re.sub(r"<[^>]+>", "", legend).startswith("≈ best mean, but not separated from the runner-up")


def test_missing_base_and_budget_read_dash_and_all_never_nan_or_none(frames, tmp_path):
    import numpy as np

    runs, metrics = (f.copy() for f in frames)
    # Frames concatenated with an included results file carry a missing base as NaN, not None.
    runs["base"] = runs["base"].astype(object).where(runs["method"] != "oracle", np.nan)
    metrics["base"] = metrics["base"].astype(object).where(metrics["method"] != "oracle", np.nan)
    out = tmp_path / "site"
    render_report(runs, metrics, out)
    for page in out.rglob("*.html"):
        cells = re.findall(r"<td[^>]*>([^<]*)</td>", page.read_text())
        assert not {"nan", "None", "NaN", "<NA>", "full"} & {c.strip() for c in cells}, page.name
    oracle = re.search(r'<tr class="reference"><td class="name">oracle</td><td class="name">(.*?)</td>',
                       (out / "index.html").read_text())
    assert oracle and oracle.group(1) == "-"
    runs_page = (out / "runs.html").read_text()
    assert re.search(r'<td class="name">oracle</td><td class="name"></td><td class="name">-</td>', runs_page)
    assert '<td data-value="">all</td>' in runs_page
