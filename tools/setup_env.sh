#!/usr/bin/env bash
# Create (or reuse) a virtual environment with one of the OpenMMLab stacks this project is tested on:
#
#   tools/setup_env.sh            the pinned stack in .venv (torch 2.14.1; what `make demo`/`make test` use), on
#                                 the machine's python3 (or $PYTHON) if it is 3.10 to 3.13
#   tools/setup_env.sh legacy     .venv-legacy: MMDetection's get_started environment (Python 3.8, torch 2.1.2,
#                                 numpy 1.24, upstream mm*)
#   tools/setup_env.sh onedl      .venv-onedl: the OneDL fork as its users run it (Python 3.10, torch 2.8.0,
#                                 the newest onedl-mm* releases)
#   tools/setup_env.sh newest     .venv-newest: Python 3.13 with the newest torch the registry serves and numpy 2
#
# Each stack's packages are listed in requirements/<stack>.txt; torch and mmcv (compiled with its ops against
# that torch, so build isolation is off) are installed by this script first. The matrix stacks find their
# Python as pythonX.Y on PATH or under pyenv; $PYTHON overrides. Idempotent: a content hash of this script, the
# requirements and setup.py is stored in the venv; when it matches, the script only re-checks the imports and
# returns in seconds. Downloads and the compiled mmcv wheel (keyed by mmcv, torch, Python and machine) are kept
# in $CONVMLP_CACHE (default ~/.cache/convmlp_mm), so a fresh clone on the same machine compiles nothing again.
# `tools/setup_env.sh --cache-status` prints, per stack, whether its compiled mmcv is cached.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK="${1:-pinned}"
CACHE="${CONVMLP_CACHE:-$HOME/.cache/convmlp_mm}"
STACKS=(pinned legacy onedl newest)

log() { printf '[setup_env:%s] %s\n' "$STACK" "$*" >&2; }

# Per stack: the Python it runs on, torch, torchvision, the mmcv distribution and version, the C++ standard
# its ops are compiled with, the setuptools its setup.py builds with, and what compiling it costs here.
stack_settings() {
    case "$1" in
        pinned)
            VENV="${CONVMLP_VENV:-$ROOT/.venv}" PYTHONS='3.10 3.11 3.12 3.13' PY_DEFAULT=python3
            TORCH_VERSION=2.14.1 TORCHVISION_VERSION=0.29.1 NUMPY=numpy
            MMCV_DIST=mmcv MMCV_VERSION=2.1.0
            # mmcv 2.1.0 compiles its ops with -std=c++17, but torch >= 2.10's headers require C++20.
            MMCV_CXX_STD=c++20
            # mmcv 2.1.0's setup.py imports pkg_resources in a way setuptools >= 70 breaks.
            BUILD_SETUPTOOLS='setuptools<70' COMPILE_COST='15-25 min' ;;
        legacy)
            VENV="${CONVMLP_VENV:-$ROOT/.venv-legacy}" PYTHONS='3.8 3.9' PY_DEFAULT=python3.8
            # OpenMMLab's prebuilt mmcv 2.1.0 wheels stop at torch 2.1, and mmdet 3.3 refuses mmcv >= 2.2.
            # numpy 1.24 is the last release for Python 3.8.
            TORCH_VERSION=2.1.2 TORCHVISION_VERSION=0.16.2 NUMPY='numpy==1.24.4'
            MMCV_DIST=mmcv MMCV_VERSION=2.1.0 MMCV_CXX_STD=c++17 BUILD_SETUPTOOLS='setuptools<70'
            COMPILE_COST='12-20 min' ;;
        onedl)
            VENV="${CONVMLP_VENV:-$ROOT/.venv-onedl}" PYTHONS=3.10 PY_DEFAULT=python3.10
            # The fork's maintainer runs torch 2.8; its prebuilt mmcv wheels (Python 3.10, torch 2.4/2.8) are on
            # its own index, so onedl-mmcv is built here from its sdist.
            TORCH_VERSION=2.8.0 TORCHVISION_VERSION=0.23.0 NUMPY='numpy==2.2.6'
            MMCV_DIST=onedl-mmcv MMCV_VERSION=2.3.6 MMCV_CXX_STD=c++17
            # Its pyproject's license field needs setuptools >= 80; < 82 keeps pkg_resources for mmengine.
            BUILD_SETUPTOOLS='setuptools>=80,<82' COMPILE_COST='13-20 min' ;;
        newest)
            VENV="${CONVMLP_VENV:-$ROOT/.venv-newest}" PYTHONS=3.13 PY_DEFAULT=python3.13
            # The newest torch served for Python 3.13 (requirements/newest.txt pins the same, which lifts
            # this machine kind's pip cap on torch); torchvision 0.29.2 is the newest and accepts it.
            TORCH_VERSION=2.15.0 TORCHVISION_VERSION=0.29.2 NUMPY='numpy>=2'
            MMCV_DIST=mmcv MMCV_VERSION=2.1.0 MMCV_CXX_STD=c++20
            BUILD_SETUPTOOLS='setuptools<70' COMPILE_COST='15-25 min' ;;
        *)
            printf '[setup_env] unknown stack %q; choose one of: %s\n' "$1" "${STACKS[*]}" >&2
            exit 2 ;;
    esac
}

# The compiled mmcv wheel's cache folder for the settings above and a Python tag such as cp311.
wheel_dir() { echo "$CACHE/wheels/$MMCV_DIST-$MMCV_VERSION-torch-$TORCH_VERSION-$1-$(uname -m)"; }

py_version() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null; }

if [ "$STACK" = --cache-status ]; then
    for stack in "${STACKS[@]}"; do
        stack_settings "$stack"
        version="${PY_DEFAULT#python}"
        [ "$stack" = pinned ] && { version="$(py_version "${PYTHON:-$PY_DEFAULT}")" || version=3.11; }
        dir="$(wheel_dir "cp${version/./}")"
        state="NOT cached: compiling it costs $COMPILE_COST on 2 cores"
        compgen -G "$dir/${MMCV_DIST//-/_}-$MMCV_VERSION-*.whl" >/dev/null && state=cached
        printf '[setup_env] %-6s Python %-4s torch %-6s %s %s: %s\n' \
            "$stack" "$version" "$TORCH_VERSION" "$MMCV_DIST" "$MMCV_VERSION" "$state"
    done
    exit 0
fi
stack_settings "$STACK"
REQUIREMENTS="$ROOT/requirements/$STACK.txt"
DOWNLOADS="$CACHE/wheels/$STACK"

# The interpreter: $PYTHON, else pythonX.Y (the stack's default) on PATH, else that version under pyenv.
find_python() {
    if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"; return; fi
    if py_version "$PY_DEFAULT" >/dev/null; then echo "$PY_DEFAULT"; return; fi
    local found
    found="$(ls -d "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")/versions/${PY_DEFAULT#python}".*/bin/python 2>/dev/null \
        | tail -n1)" || true
    [ -n "$found" ] && echo "$found"
}
if [ ! -x "$VENV/bin/python" ]; then
    PY="$(find_python)" || true
    [ -n "$PY" ] || { log "needs Python $PYTHONS: none found as $PY_DEFAULT or under pyenv (set PYTHON=...)"; exit 1; }
    version="$(py_version "$PY")" || { log "$PY does not run"; exit 1; }
    if [[ " $PYTHONS " != *" $version "* ]]; then
        fits=()
        for stack in "${STACKS[@]}"; do
            (stack_settings "$stack" && [[ " $PYTHONS " == *" $version "* ]]) && fits+=("tools/setup_env.sh $stack")
        done
        hint="set PYTHON= to one of them"
        [ ${#fits[@]} -gt 0 ] && hint="$hint, or use the stack that runs on Python $version: ${fits[*]}"
        log "$PY is Python $version; the $STACK stack runs on Python ${PYTHONS// /, }; $hint"
        exit 1
    fi
    log "creating virtual environment at $VENV with $PY (Python $version)"
    "$PY" -m venv "$VENV"
fi
# pip, quiet, without the per-package "Location ... is ignored" noise of some machines' pip config.
pipq() {
    "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@" 2>&1 \
        | { grep -v "^WARNING: Location 'file:" || true; }
    return "${PIPESTATUS[0]}"
}
# Some machines cap torch in pip's global constraints to the releases on their disk; the newest stack asks
# for a newer one on purpose.
[ "$STACK" = newest ] && export PIP_CONSTRAINT=/dev/null

# The sdist from the index pip uses, checked against the index's sha256. Not `pip download`: it runs the sdist's
# setup.py for metadata first, and mmcv 2.1.0's fails on Python >= 3.13 (its get_version reads a name that
# exec() wrote into locals(), which PEP 667 made a snapshot); the compile step below patches that.
fetch_sdist() {
    local index="${PIP_INDEX_URL:-$("$VENV/bin/python" -m pip config get global.index-url 2>/dev/null || true)}"
    "$VENV/bin/python" - "$1" "$2" "$3" "${index:-https://pypi.org/simple}" <<'PY'
import hashlib, json, re, sys, urllib.request
name, version, dest, index = sys.argv[1:]
project = re.sub(r'[-_.]+', '-', name).lower()
request = urllib.request.Request(f'{index.rstrip("/")}/{project}/',
                                 headers={'Accept': 'application/vnd.pypi.simple.v1+json'})
files = json.load(urllib.request.urlopen(request, timeout=180))['files']
names = {f'{project}-{version}.tar.gz', f'{project.replace("-", "_")}-{version}.tar.gz'}  # old and new sdist names
entry = next(f for f in files if f['filename'].lower() in names)
data = urllib.request.urlopen(entry['url'], timeout=600).read()
if hashlib.sha256(data).hexdigest() != entry['hashes']['sha256']:
    sys.exit(f'{entry["filename"]}: sha256 differs from the index')
with open(f'{dest}/{entry["filename"]}', 'wb') as out:
    out.write(data)
PY
}

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

WANT="$STACK-$(stamp_of)"
if [ -f "$VENV/.convmlp_stamp" ] && [ "$(cat "$VENV/.convmlp_stamp")" = "$WANT" ] && check_imports; then
    log "environment up to date ($VENV)"
    exit 0
fi

start=$(date +%s)
mkdir -p "$DOWNLOADS"
# Downloads are kept, so that a fresh clone (or CI) installs these GB-sized wheels from disk; not also in pip's
# own cache, which would hold a second copy of every torch and CUDA wheel (3-4 GB per stack: a machine that set
# up all four stacks, then ran CI in a clean clone, ran out of disk).
TORCH_REQS=("torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION" "$NUMPY")
pipq download --no-cache-dir -d "$DOWNLOADS" "${TORCH_REQS[@]}"
pipq install --find-links "$DOWNLOADS" "${TORCH_REQS[@]}"

# mmcv has no wheel for these torch versions on the registry; build it with the compiled ops (build isolation
# would build against a different torch and without ops), once, keyed by the versions it depends on.
PYTAG="$("$VENV/bin/python" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
WHEELS="$(wheel_dir "$PYTAG")"
WHEEL_GLOB="${MMCV_DIST//-/_}-$MMCV_VERSION-*.whl"
# One compile per wheel on the machine: a second set-up of the same stack (CI in its clone while a developer's
# runs, say) waits for the first one's wheel instead of compiling it again beside it.
exec 9>"$WHEELS.lock"
if ! compgen -G "$WHEELS/$WHEEL_GLOB" >/dev/null && ! flock -n 9; then
    log "another set-up is compiling $MMCV_DIST $MMCV_VERSION for torch $TORCH_VERSION; waiting for its wheel"
    flock 9
fi
if ! compgen -G "$WHEELS/$WHEEL_GLOB" >/dev/null; then
    log "compiling $MMCV_DIST $MMCV_VERSION with ops against torch $TORCH_VERSION ($COMPILE_COST on 2 cores)"
    pipq install "$BUILD_SETUPTOOLS" wheel ninja
    rm -rf "$WHEELS.tmp" && mkdir -p "$WHEELS" "$WHEELS.tmp"
    fetch_sdist "$MMCV_DIST" "$MMCV_VERSION" "$WHEELS.tmp"
    tar -xzf "$WHEELS.tmp"/*.tar.gz -C "$WHEELS.tmp"
    SRC="$(find "$WHEELS.tmp" -mindepth 1 -maxdepth 1 -type d | head -n1)"
    sed -i "s/-std=c++1[47]/-std=$MMCV_CXX_STD/g; s/-std=c++20/-std=$MMCV_CXX_STD/g" "$SRC/setup.py"
    # Python >= 3.13 (PEP 667): exec() into an explicit namespace instead of the function's locals().
    sed -i "s/exec(compile(f.read(), version_file, 'exec'))/exec(compile(f.read(), version_file, 'exec'), globals())/; \
            s/return locals()\['__version__'\]/return globals()['__version__']/" "$SRC/setup.py"
    MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" FORCE_CUDA=0 \
        pipq wheel --no-build-isolation --no-deps --no-cache-dir "$SRC" -w "$WHEELS.tmp"
    mv "$WHEELS.tmp"/$WHEEL_GLOB "$WHEELS"/ && rm -rf "$WHEELS.tmp"
fi
exec 9>&-
# One resolution for the local mmcv wheel and the stack (the mm* packages accept that mmcv). `wheel`: the
# editable install below needs bdist_wheel, which setuptools < 70 (legacy's) does not have built in.
pipq install --find-links "$DOWNLOADS" "$WHEELS"/$WHEEL_GLOB "${TORCH_REQS[@]}" wheel -r "$REQUIREMENTS"
# requirements/<stack>-nodeps.txt: tools installed without their declared dependencies, which would change the
# stack (openmim and onedl-mim require opendatalab, whose openxlab pins old setuptools, requests and tqdm); what
# they import is in requirements/<stack>.txt.
NODEPS="$ROOT/requirements/$STACK-nodeps.txt"
if [ -f "$NODEPS" ]; then pipq install --no-deps -r "$NODEPS"; fi
pipq install --no-deps --no-build-isolation -e "$ROOT"

check_imports
echo "$WANT" > "$VENV/.convmlp_stamp"
log "environment ready in $(( $(date +%s) - start )) s ($VENV)"
