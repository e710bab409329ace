#!/usr/bin/env bash
# The prepared GPU check (docs/performance.md, GPU): set up the OpenMMLab stack if it is not there, then run
# tools/gpu_check/check.py, which writes gpu_check.md and gpu_check.json to --out.
#
#   tools/gpu_check/run.sh [--wheels DIR] [--site DIR] [--force-setup] [check.py arguments: --out, --dry-run, ...]
#
# An installed stack (mmengine, mmcv with its compiled ops, mmdet, mmseg) is used as it is. Otherwise the
# wheels in --wheels (default .whl/, from tools/gpu_check/fetch_wheels.sh) are installed into --site (default
# /tmp/convmlp_site, put first on PYTHONPATH, nothing else touched) without any registry, and mmcv is compiled
# from its sdist there, with its CUDA ops for the GPU it finds only (TORCH_CUDA_ARCH_LIST of that GPU); a
# compiled mmcv wheel in --wheels is installed instead. Timings of the set-up steps are printed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
WHEELS="$ROOT/.whl"
SITE=/tmp/convmlp_site
FORCE=0
PYTHON="${PYTHON:-python3}"
ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --wheels) WHEELS="$(cd "$2" && pwd)"; shift 2 ;;
        --site) SITE="$2"; shift 2 ;;
        --force-setup) FORCE=1; shift ;;
        *) ARGS+=("$1"); shift ;;
    esac
done
log() { printf '[gpu_check] %s\n' "$*" >&2; }

stack_ready() {
    "$PYTHON" -c 'import mmengine, mmdet, mmseg, mmcv._ext' 2>/dev/null
}

if [ "$FORCE" = 1 ] || ! stack_ready; then
    [ -d "$WHEELS" ] || { log "no OpenMMLab stack here and no wheel folder $WHEELS (make it with tools/gpu_check/fetch_wheels.sh)"; exit 2; }
    start=$(date +%s)
    mkdir -p "$SITE"
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
        $(find "$WHEELS" -maxdepth 1 -name '*.whl' ! -name 'mmcv-*')
    # transformers >= 5 beside mmdet/mmpretrain breaks their imports (their optional language models); a stub
    # that raises ImportError makes them skip it, for this process tree only.
    if "$PYTHON" -c 'import transformers, sys; sys.exit(int(transformers.__version__.split(".")[0]) < 5)' 2>/dev/null; then
        mkdir -p "$SITE/transformers"
        echo 'raise ImportError("transformers is hidden by tools/gpu_check/run.sh (>= 5 breaks mmdet imports)")' \
            > "$SITE/transformers/__init__.py"
    fi
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
    log "installed the carried wheels into $SITE in $(( $(date +%s) - start )) s"
    if compgen -G "$WHEELS/mmcv-*.whl" >/dev/null; then
        "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" "$WHEELS"/mmcv-*.whl
        log "installed the compiled mmcv wheel from $WHEELS"
    else
        start=$(date +%s)
        BUILD="$(mktemp -d)"
        tar -xzf "$WHEELS"/mmcv-*.tar.gz -C "$BUILD"
        SRC="$(find "$BUILD" -mindepth 1 -maxdepth 1 -type d | head -n1)"
        # torch >= 2.10's headers require C++20; mmcv 2.1.0 asks for C++17.
        if "$PYTHON" -c 'import torch, sys; sys.exit(tuple(map(int, torch.__version__.split(".")[:2])) < (2, 10))'; then
            sed -i 's/-std=c++17/-std=c++20/g' "$SRC/setup.py"
        fi
        if "$PYTHON" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())'; then
            ARCH="$("$PYTHON" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability())')"
            export TORCH_CUDA_ARCH_LIST="$ARCH" FORCE_CUDA=1
            log "compiling mmcv's ops with CUDA for compute capability $ARCH only"
        else
            log "no CUDA GPU: compiling mmcv's CPU ops only"
        fi
        MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" "$PYTHON" -m pip install -q --no-index --no-deps \
            --no-build-isolation --no-compile --target "$SITE" "$SRC"
        rm -rf "$BUILD"
        log "compiled mmcv in $(( $(date +%s) - start )) s"
    fi
    stack_ready || { "$PYTHON" -c 'import mmengine, mmdet, mmseg, mmcv._ext'; exit 1; }
fi
exec "$PYTHON" "$ROOT/tools/gpu_check/check.py" "${ARGS[@]}"
