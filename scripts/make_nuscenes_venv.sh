#!/usr/bin/env bash
# Build the isolated venv that holds the OFFICIAL nuscenes-devkit (numpy 1.26.4 / pandas 2.1.4).
# It is kept apart from .venv because its pins clash with ours (numpy 2, pandas 3).
# Used by scripts/golden/make_nuscenes_golden.py and tests/data/test_formats_nuscenes.py (devkit load).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
if [ ! -x .venvs/nuscenes/bin/python ]; then
    "$PY" -m venv .venvs/nuscenes
fi
.venvs/nuscenes/bin/pip install numpy==1.26.4 pandas==2.1.4 motmetrics==1.4.0 nuscenes-devkit==1.2.0
.venvs/nuscenes/bin/python -c "from nuscenes.nuscenes import NuScenes; print('nuscenes venv ok')"
