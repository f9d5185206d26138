#!/usr/bin/env bash
# The GPU check (`make gpu-check`): every CUDA path once on small settings, under 8 minutes on one GPU; without CUDA
# its CPU parts. Report: reports/gpu-check/gpu-check.md, or $OUT/ when set. Arguments go to benchmarks/gpu_check.py
# (--help lists them); exit status 1 when a part failed.
set -euo pipefail
cd "$(dirname "$0")/.."
# the project's venv when there is one (make install), else whatever python3 has ganaug installed
python="${PYTHON:-${VENV:-.venv}/bin/python}"
[ -x "$python" ] || python=python3
exec "$python" benchmarks/gpu_check.py "$@"
