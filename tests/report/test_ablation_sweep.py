"""Tables 3-5 downstream, end to end at the smoke profile: `bench sweep sparse3dtrack_ablations` runs two rows on
two seeds and ends with the tables; `bench store export` writes the results file; `bench report --include` and
`bench table --ablations --include` render the same tables from that file alone, with no store."""

from __future__ import annotations

import json
import re

from click.testing import CliRunner

from bench.cli import main
from bench.report.stats import format_interval, paired_difference

DEFAULT_MODEL = "A4=D2=Y3=B2=Q2"
D1 = "D1: no depth features, our yaw"


def _d1_row(markdown: str) -> list[str]:
    line = next(line for line in markdown.splitlines() if line.startswith(f"| {D1} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_ablation_sweep_to_committed_file_to_tables(tmp_path):
    env = {"BENCH_DATA_DIR": str(tmp_path / "data"), "BENCH_RUNS_DIR": str(tmp_path / "runs"), "COLUMNS": "200"}
    runner = CliRunner()
    swept = runner.invoke(main, ["sweep", "sparse3dtrack_ablations", "--profile", "smoke", "--variants",
                                 f"{DEFAULT_MODEL},D1", "--seeds", "0,1", "--set", "method.threads=1",
                                 "--set", "base.threads=1"], env=env)
    assert swept.exit_code == 0, swept.output
    assert "4 cells: 4 ran, 0 skipped, 0 failed" in swept.output
    # The sweep ends with Tables 3-5: the paper's D1 row beside ours, and its claim against D2 (the default model).
    assert "### Sparse3DTrack, Table 3: self-supervised depth and yaw formulation" in swept.output
    row = _d1_row(swept.output)
    assert row[:4] == [D1, "4", "25.16", "31.12"]
    assert row[5] == "-2.92"  # the paper's D1 - D2 MOTA
    assert row[-2:] == ["2", "D1"]

    exported = tmp_path / "ablations.json"
    out = runner.invoke(main, ["store", "export", "-o", str(exported)], env=env)
    assert out.exit_code == 0, out.output
    runs = json.loads(exported.read_text())["runs"]
    assert sorted((r["variant"], r["seed"]) for r in runs) == [(DEFAULT_MODEL, 0), (DEFAULT_MODEL, 1), ("D1", 0),
                                                               ("D1", 1)]
    # Our D1 - D2 over the two shared seeds, from the file's own numbers: the table must show exactly this.
    mota = {(r["variant"], r["seed"]): next(m[4] for m in r["metrics"] if m[:4] == ["val", "kitti-2d", "", "MOTA"])
            for r in runs}
    diff = paired_difference({s: mota[("D1", s)] for s in (0, 1)}, {s: mota[(DEFAULT_MODEL, s)] for s in (0, 1)})
    assert row[6] == format_interval(diff, 100)

    # From the committed file alone: no store anywhere.
    alone = {**env, "BENCH_RUNS_DIR": str(tmp_path / "empty")}
    table = runner.invoke(main, ["table", "--ablations", "--include", str(exported)], env=alone)
    assert table.exit_code == 0, table.output
    # The same row; its runs now read as references from the file ("D1, ref").
    assert _d1_row(table.output) == [*row[:-1], "D1, ref"]
    site = tmp_path / "site"
    report = runner.invoke(main, ["report", "--include", str(exported), "-o", str(site)], env=alone)
    assert report.exit_code == 0, report.output
    page = (site / "ablations.html").read_text()
    match = re.search(r"<tr><td class=\"name\">" + re.escape(D1) + r"</td>(.*?)</tr>", page, flags=re.S)
    assert match
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", match.group(1), re.S)]
    assert cells == [*row[1:-1], "D1, ref"]
    # Nothing stored and no file: nothing to tabulate (exit 3), not an empty table.
    none = runner.invoke(main, ["table", "--ablations", "--include", str(tmp_path / "missing.json")], env=alone)
    assert none.exit_code != 0
