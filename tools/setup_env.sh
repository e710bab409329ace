#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in .venv with the pinned OpenMMLab stack.
#
# Idempotent: a content hash of this script and requirements/pinned.txt is stored in the venv; when it
# matches, the script only re-checks the imports and returns in seconds. mmcv is compiled with its ops
# once per (mmcv, torch, python) combination and the wheel is kept in $CONVMLP_CACHE (default
# ~/.cache/convmlp_mm), so a fresh clone on the same machine does not compile it again.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CONVMLP_VENV:-$ROOT/.venv}"
CACHE="${CONVMLP_CACHE:-$HOME/.cache/convmlp_mm}"
PYTHON="${PYTHON:-python3.11}"
TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
MMCV_VERSION=2.1.0

log() { printf '[setup_env] %s\n' "$*" >&2; }

stamp_of() { cat "$ROOT/tools/setup_env.sh" "$ROOT/requirements/pinned.txt" "$ROOT/setup.py" | sha256sum | cut -d' ' -f1; }

check_imports() {
    "$VENV/bin/python" - <<'PY'
import torch, mmcv, mmengine, mmdet, mmseg, mmpretrain  # noqa: F401
from mmcv.ops import nms, RoIAlign  # noqa: F401  (fails when mmcv was built without ops)
import mmcv._ext  # noqa: F401
import convmlp_mm  # noqa: F401
PY
}

if [ ! -x "$VENV/bin/python" ]; then
    command -v "$PYTHON" >/dev/null || { log "need $PYTHON on PATH (set PYTHON=... to choose another)"; exit 1; }
    log "creating virtual environment at $VENV"
    "$PYTHON" -m venv "$VENV"
fi
# pip, quiet, without the per-package "Location ... is ignored" noise of some machines' pip config.
pipq() {
    "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@" 2>&1 \
        | { grep -v "^WARNING: Location 'file:" || true; }
}

WANT="$(stamp_of)"
if [ -f "$VENV/.convmlp_stamp" ] && [ "$(cat "$VENV/.convmlp_stamp")" = "$WANT" ] && check_imports; then
    log "environment up to date ($VENV)"
    exit 0
fi

start=$(date +%s)
pipq install "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"

# mmcv has no wheel for this torch on the registry; build it with the compiled ops (build isolation
# would build against a different torch and without ops), once, keyed by the versions it depends on.
PYTAG="$("$VENV/bin/python" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
WHEELS="$CACHE/wheels/mmcv-$MMCV_VERSION-torch-$TORCH_VERSION-$PYTAG-$(uname -m)"
if ! ls "$WHEELS"/mmcv-"$MMCV_VERSION"-*.whl >/dev/null 2>&1; then
    log "compiling mmcv $MMCV_VERSION with ops against torch $TORCH_VERSION (about 5-10 minutes on 2 cores)"
    # After torch, which drags in a recent setuptools: mmcv's setup.py needs pkg_resources (setuptools<70).
    # requirements/pinned.txt moves setuptools back to what torch and mmengine want afterwards.
    pipq install 'setuptools<70' wheel ninja
    rm -rf "$WHEELS.tmp" && mkdir -p "$WHEELS" "$WHEELS.tmp"
    pipq download --no-deps --no-binary :all: --no-build-isolation "mmcv==$MMCV_VERSION" -d "$WHEELS.tmp"
    tar -xzf "$WHEELS.tmp/mmcv-$MMCV_VERSION.tar.gz" -C "$WHEELS.tmp"
    # mmcv 2.1.0 compiles its ops with -std=c++17, but torch >= 2.10's headers require C++20.
    sed -i "s/-std=c++17/-std=c++20/g" "$WHEELS.tmp/mmcv-$MMCV_VERSION/setup.py"
    MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" FORCE_CUDA=0 \
        pipq wheel --no-build-isolation --no-deps --no-cache-dir "$WHEELS.tmp/mmcv-$MMCV_VERSION" -w "$WHEELS.tmp"
    mv "$WHEELS".tmp/mmcv-*.whl "$WHEELS"/ && rm -rf "$WHEELS.tmp"
fi
# One resolution for the local mmcv wheel and the pinned stack (mmdet/mmseg/mmpretrain accept that mmcv).
pipq install "$WHEELS"/mmcv-"$MMCV_VERSION"-*.whl -r "$ROOT/requirements/pinned.txt"
pipq install --no-deps --no-build-isolation -e "$ROOT"

check_imports
echo "$WANT" > "$VENV/.convmlp_stamp"
log "environment ready in $(( $(date +%s) - start )) s ($VENV)"
