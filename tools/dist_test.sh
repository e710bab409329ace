#!/usr/bin/env bash
# Distributed testing with torchrun:  bash tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCESSES [test.py options]
set -euo pipefail
CONFIG=$1
CHECKPOINT=$2
NPROC=$3
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-$( [ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python)}"
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --master_port="${PORT:-29500}" --nproc_per_node="$NPROC" \
    "$ROOT/tools/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "${@:4}"
