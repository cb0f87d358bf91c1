#!/usr/bin/env bash
# The main job: sets up, builds, trains a small Spherical-projection E-ACF on DW4 for ~100 s and
# prints its test NLL (JSON). Outputs go to runs/main/.
# Environment: as scripts/build.sh; OPENMMBG_DATA_DIR (default ../shared/data).
set -euo pipefail
ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
log() { printf '[openmmbg] %s\n' "$*"; }
die() { printf '[openmmbg] error: %s\n' "$*" >&2; exit 1; }
BUILD="${OPENMMBG_BUILD_DIR:-build}"
[[ "$BUILD" == /* ]] || BUILD="$ROOT/$BUILD"

OPENMMBG_DATA_DIR="${OPENMMBG_DATA_DIR:-$ROOT/../shared/data}"
[[ -d "$OPENMMBG_DATA_DIR" ]] || die "data directory '$OPENMMBG_DATA_DIR' not found: set OPENMMBG_DATA_DIR to the shared data (with efm/*_DW4.npy)"
OPENMMBG_DATA_DIR="$(cd "$OPENMMBG_DATA_DIR" && pwd)"
export OPENMMBG_DATA_DIR

bash "$ROOT/scripts/build.sh"

cd "$ROOT"
export OPENMMBG_PLUGIN_DIR="$BUILD/plugins"
mkdir -p runs/main
log "training DW4 spherical E-ACF (8 short epochs, about 2 minutes)"
"$BUILD/openmmbg" train --system dw4 --projection spherical --data-dir "$OPENMMBG_DATA_DIR" --epochs 8 --validate-every 4 --num-validation 200 --time-limit 150 \
  --metrics runs/main/metrics.jsonl --output runs/main/dw4-spherical.bgm
log "evaluating runs/main/dw4-spherical.bgm"
"$BUILD/openmmbg" evaluate --model runs/main/dw4-spherical.bgm --system dw4 --data-dir "$OPENMMBG_DATA_DIR" --num-test 1000
