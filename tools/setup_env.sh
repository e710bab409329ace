#!/usr/bin/env bash
# Create (or reuse) a virtual environment with one of the OpenMMLab stacks this project is tested on:
#
#   tools/setup_env.sh            the pinned stack in .venv (torch 2.14.1; what `make demo`/`make test` use)
#   tools/setup_env.sh legacy     .venv-legacy: the usual mmdet 3.3 set-up (torch 2.1.2, numpy 1.26, upstream mm*)
#   tools/setup_env.sh onedl      .venv-onedl: the maintained OneDL fork (onedl-mm*, torch 2.12.1, numpy 2.2)
#
# Each stack's packages are listed in requirements/<stack>.txt; torch and mmcv (compiled with its ops against
# that torch, so build isolation is off) are installed by this script first. Idempotent: a content hash of
# this script, the stack's requirements and setup.py is stored in the venv; when it matches, the script only
# re-checks the imports and returns in seconds. Downloads and the compiled mmcv wheel are kept in
# $CONVMLP_CACHE (default ~/.cache/convmlp_mm), so a fresh clone on the same machine compiles nothing again.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK="${1:-pinned}"
CACHE="${CONVMLP_CACHE:-$HOME/.cache/convmlp_mm}"
PYTHON="${PYTHON:-python3.11}"

# Per stack: torch, torchvision, the mmcv distribution and version, the C++ standard its ops are compiled
# with, and the setuptools its setup.py builds with.
case "$STACK" in
    pinned)
        VENV="${CONVMLP_VENV:-$ROOT/.venv}"
        TORCH_VERSION=2.14.1 TORCHVISION_VERSION=0.29.1 NUMPY=numpy
        MMCV_DIST=mmcv MMCV_VERSION=2.1.0
        # mmcv 2.1.0 compiles its ops with -std=c++17, but torch >= 2.10's headers require C++20.
        MMCV_CXX_STD=c++20
        # mmcv 2.1.0's setup.py imports pkg_resources in a way setuptools >= 70 breaks.
        BUILD_SETUPTOOLS='setuptools<70' ;;
    legacy)
        VENV="${CONVMLP_VENV:-$ROOT/.venv-legacy}"
        # OpenMMLab's prebuilt mmcv 2.1.0 wheels stop at torch 2.1, and mmdet 3.3 refuses mmcv >= 2.2.
        TORCH_VERSION=2.1.2 TORCHVISION_VERSION=0.16.2 NUMPY='numpy==1.26.4'
        MMCV_DIST=mmcv MMCV_VERSION=2.1.0 MMCV_CXX_STD=c++17 BUILD_SETUPTOOLS='setuptools<70' ;;
    onedl)
        VENV="${CONVMLP_VENV:-$ROOT/.venv-onedl}"
        # onedl-mmcv's binary wheels (torch 2.4-2.12) are on the fork's own index; its sdist builds on 2.12.
        TORCH_VERSION=2.12.1 TORCHVISION_VERSION=0.27.1 NUMPY='numpy==2.2.6'
        MMCV_DIST=onedl-mmcv MMCV_VERSION=2.3.6
        MMCV_CXX_STD=c++20
        # Its pyproject's license field needs setuptools >= 80; < 82 keeps pkg_resources for mmengine.
        BUILD_SETUPTOOLS='setuptools>=80,<82' ;;
    *)
        printf '[setup_env] unknown stack %q; choose one of: pinned legacy onedl\n' "$STACK" >&2
        exit 2 ;;
esac
REQUIREMENTS="$ROOT/requirements/$STACK.txt"
DOWNLOADS="$CACHE/wheels/$STACK"

log() { printf '[setup_env:%s] %s\n' "$STACK" "$*" >&2; }

stamp_of() {
    cat "$ROOT/tools/setup_env.sh" "$ROOT/requirements/"*.txt "$ROOT/setup.py" | sha256sum | cut -d' ' -f1
}

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
    return "${PIPESTATUS[0]}"
}

WANT="$STACK-$(stamp_of)"
if [ -f "$VENV/.convmlp_stamp" ] && [ "$(cat "$VENV/.convmlp_stamp")" = "$WANT" ] && check_imports; then
    log "environment up to date ($VENV)"
    exit 0
fi

start=$(date +%s)
mkdir -p "$DOWNLOADS"
# Downloads are kept, so that a fresh clone (or CI) installs these GB-sized wheels from disk.
TORCH_REQS=("torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION" "$NUMPY")
pipq download -d "$DOWNLOADS" "${TORCH_REQS[@]}"
pipq install --find-links "$DOWNLOADS" "${TORCH_REQS[@]}"

# mmcv has no wheel for these torch versions on the registry; build it with the compiled ops (build isolation
# would build against a different torch and without ops), once, keyed by the versions it depends on.
PYTAG="$("$VENV/bin/python" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
WHEELS="$CACHE/wheels/$MMCV_DIST-$MMCV_VERSION-torch-$TORCH_VERSION-$PYTAG-$(uname -m)"
WHEEL_GLOB="${MMCV_DIST//-/_}-$MMCV_VERSION-*.whl"
if ! compgen -G "$WHEELS/$WHEEL_GLOB" >/dev/null; then
    log "compiling $MMCV_DIST $MMCV_VERSION with ops against torch $TORCH_VERSION (5-15 minutes on 2 cores)"
    pipq install "$BUILD_SETUPTOOLS" wheel ninja
    rm -rf "$WHEELS.tmp" && mkdir -p "$WHEELS" "$WHEELS.tmp"
    pipq download --no-deps --no-binary :all: --no-build-isolation "$MMCV_DIST==$MMCV_VERSION" -d "$WHEELS.tmp"
    tar -xzf "$WHEELS.tmp"/*.tar.gz -C "$WHEELS.tmp"
    SRC="$(find "$WHEELS.tmp" -mindepth 1 -maxdepth 1 -type d | head -n1)"
    sed -i "s/-std=c++1[47]/-std=$MMCV_CXX_STD/g; s/-std=c++20/-std=$MMCV_CXX_STD/g" "$SRC/setup.py"
    MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" FORCE_CUDA=0 \
        pipq wheel --no-build-isolation --no-deps --no-cache-dir "$SRC" -w "$WHEELS.tmp"
    mv "$WHEELS.tmp"/$WHEEL_GLOB "$WHEELS"/ && rm -rf "$WHEELS.tmp"
fi
# One resolution for the local mmcv wheel and the stack (the mm* packages accept that mmcv). `wheel`: the
# editable install below needs bdist_wheel, which setuptools < 70 (legacy's) does not have built in.
pipq install --find-links "$DOWNLOADS" "$WHEELS"/$WHEEL_GLOB "${TORCH_REQS[@]}" wheel -r "$REQUIREMENTS"
pipq install --no-deps --no-build-isolation -e "$ROOT"

check_imports
echo "$WANT" > "$VENV/.convmlp_stamp"
log "environment ready in $(( $(date +%s) - start )) s ($VENV)"
