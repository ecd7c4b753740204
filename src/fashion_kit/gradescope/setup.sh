#!/usr/bin/env bash
# Builds the grading image once per autograder upload. Lean on purpose: no Miniforge, no
# Chromium, no LaTeX (PDF export is off), just a pinned Python with the CPU build of TensorFlow.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

PYTHON_VERSION=3.11
apt-get update
apt-get install -y --no-install-recommends python3-pip ca-certificates

# Gradescope's Ubuntu images ship a Python too old for TensorFlow 2.21, so uv fetches the pinned one.
python3 -m pip install --no-cache-dir uv==0.13.8
python3 -m uv python install "$PYTHON_VERSION"
python3 -m uv venv --python "$PYTHON_VERSION" /opt/fashion-kit
VIRTUAL_ENV=/opt/fashion-kit python3 -m uv pip install --no-cache -r /autograder/source/requirements.txt
/opt/fashion-kit/bin/python -m ipykernel install --name python3 --display-name "Python 3 (ipykernel)"
