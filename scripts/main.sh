#!/usr/bin/env bash
# The main job: sets up, builds, then
#  1. alanine dipeptide at 300 K: loads the shipped flow on internal coordinates
#     (models/pretrained/aldp-ic-fab.bgm, OBC2 implicit solvent), runs OPENMMBG_DEMO_MINUTES (default 3) minutes of
#     Langevin MD with a flow proposal every 50 steps, prints the acceptance rate and the backbone
#     basin populations and P(phi > 0) next to the replica-exchange reference and to plain MD's over
#     the same wall time, and writes the Ramachandran plot (runs/main/aldp-md-with-proposals.png);
#  2. DW4: evaluates the shipped models/pretrained/dw4-spherical.bgm (if absent, trains a small one
#     for ~2 minutes) and prints its test NLL and reverse/forward ESS.
# Outputs go to runs/main/.
# Environment: as scripts/build.sh; OPENMMBG_DATA_DIR (default ../shared/data), OPENMMBG_DEMO_MINUTES.
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

ALDP_MODEL="$ROOT/models/pretrained/aldp-ic-fab.bgm"
[[ -f "$ALDP_MODEL" ]] || die "$ALDP_MODEL is missing from this checkout"
log "alanine dipeptide: ${OPENMMBG_DEMO_MINUTES:-3} min of MD at 300 K with flow proposals ($ALDP_MODEL)"
OMP_NUM_THREADS=1 "$ROOT/scripts/python" "$ROOT/examples/aldp_md_with_proposals.py" --model "$ALDP_MODEL" \
  --minutes "${OPENMMBG_DEMO_MINUTES:-3}" --plain-md --output runs/main/aldp-md-with-proposals

MODEL="$ROOT/models/pretrained/dw4-spherical.bgm"
if [[ -f "$MODEL" ]]; then
  log "using the shipped model $MODEL"
else
  log "no shipped DW4 model: training a small Spherical-proj E-ACF (8 short epochs, about 2 minutes)"
  MODEL=runs/main/dw4-spherical.bgm
  "$BUILD/openmmbg" train --system dw4 --projection spherical --data-dir "$OPENMMBG_DATA_DIR" --epochs 8 \
    --validate-every 4 --num-validation 200 --time-limit 150 --metrics runs/main/metrics.jsonl --output "$MODEL"
fi
log "evaluating $MODEL on 2000 DW4 test points (NLL with K = 20; ESS on 2000 flow samples)"
"$BUILD/openmmbg" evaluate --model "$MODEL" --system dw4 --data-dir "$OPENMMBG_DATA_DIR" --num-test 2000 \
  --num-ess-samples 2000 | tee runs/main/evaluation.json
"$ROOT/.venv/bin/python" - runs/main/evaluation.json <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"[openmmbg] DW4 test NLL {r['nll']:.3f} +- {r['nll_sem']:.3f} (floor estimate {r['nll_floor']:.3f}); "
      f"reverse ESS {100 * r['reverse_ess']:.2g} %, forward ESS {100 * r['forward_ess']:.2g} % (unclipped)")
PY
