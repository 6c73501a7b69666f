#!/usr/bin/env bash
# Build the isolated venv that holds the OFFICIAL Waymo metrics op (TF 2.13 / NumPy 1.23).
# It is kept apart from .venv because its pins clash with ours (numpy 2, torch 2.13).
# Used only by scripts/golden/make_waymo_golden.py and benchmarks/bench_let_ap.py --official.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
if [ ! -x .venvs/waymo/bin/python ]; then
    "$PY" -m venv .venvs/waymo
fi
.venvs/waymo/bin/pip install --upgrade pip
.venvs/waymo/bin/pip install waymo-open-dataset-tf-2-12-0==1.6.7
.venvs/waymo/bin/python -c "from waymo_open_dataset.metrics.python import detection_metrics; print('waymo op ok')"
