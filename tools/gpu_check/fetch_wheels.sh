#!/usr/bin/env bash
# Put in DIR (default .whl/) what tools/gpu_check/run.sh installs on a GPU machine that has no package
# registry: the pure-Python wheels of the mm* stack and their small dependencies for that machine's Python,
# and the mmcv 2.1.0 sdist (its CUDA ops are compiled there, for that GPU only). About 15 MB.
#
#   tools/gpu_check/fetch_wheels.sh [DIR] [PYTHON_VERSION]      e.g. .whl 3.12
#
# The packages a CUDA image usually has already (torch, numpy, scipy, opencv, matplotlib, rich, pyyaml, ...) are
# not fetched; run.sh says which import is still missing if the target lacks one.
set -euo pipefail
DIR="${1:-.whl}"
PYVER="${2:-3.12}"
PYTHON="${PYTHON:-python3}"
mkdir -p "$DIR"
PURE=(mmengine==0.10.7 mmdet==3.3.0 mmsegmentation==1.2.2 addict yapf platformdirs termcolor terminaltables
      ftfy wcwidth prettytable)
BINARY=(pycocotools==2.0.11 shapely)
pip_dl() { "$PYTHON" -m pip --disable-pip-version-check -q download --no-deps -d "$DIR" "$@" 2>&1 \
    | { grep -v "^WARNING: Location 'file:" || true; }; return "${PIPESTATUS[0]}"; }
pip_dl --only-binary=:all: --python-version "$PYVER" --implementation cp --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any "${PURE[@]}" "${BINARY[@]}"
pip_dl --no-binary :all: --no-build-isolation mmcv==2.1.0
du -sh "$DIR" >&2
