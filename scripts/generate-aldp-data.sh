#!/usr/bin/env bash
# Alanine dipeptide training and test data by replica exchange (openmmbg remd), resumable.
#
#   scripts/generate-aldp-data.sh [TRAIN_EXCHANGES [TEST_EXCHANGES]]     (0 skips a run)
#
# Two independent replica-exchange runs of the System in ../shared/data/aldp (Amber, OBC1 implicit
# solvent as in the paper, no cutoff, no constraints): "train" (seed 1) and "test" (seed 2, the
# held-out set, never used for training or model selection). Six temperatures, geometric from
# 300 K to 600 K; 1 fs Langevin steps (friction 1/ps); an exchange attempt every 500 steps; one
# frame per attempt. The 300 K frames are <run>/trajectory_0.dcd (nm), usable directly as
# `openmmbg train --data <run>/trajectory_0.dcd`.
#
# Every run checkpoints every 20 attempts: re-running the script resumes (also in a later session,
# as long as the data folder survives) and extends the runs to the requested totals. Outputs stay
# out of git, in OPENMMBG_ALDP_DATA (default ~/.local/share/openmmbg/aldp).
# Defaults: 100,000 training and 20,000 test frames (about 15 h and 3 h on one core with the CPU
# platform). Environment: OPENMMBG_ALDP_SOLVENT (OBC1, or OBC2), OPENMMBG_ALDP_PLATFORM (CPU).
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
TRAIN_EXCHANGES=${1:-100000}
TEST_EXCHANGES=${2:-20000}
OUT=${OPENMMBG_ALDP_DATA:-$HOME/.local/share/openmmbg/aldp}
SOLVENT=${OPENMMBG_ALDP_SOLVENT:-OBC1}
PLATFORM=${OPENMMBG_ALDP_PLATFORM:-CPU}
CLI=${OPENMMBG_CLI:-$ROOT/${OPENMMBG_BUILD_DIR:-build}/openmmbg}
[ -x "$CLI" ] || { echo "[openmmbg] error: $CLI not built (run bash scripts/build.sh)" >&2; exit 1; }
mkdir -p "$OUT"
"$ROOT/scripts/python" - "$OUT" "$SOLVENT" <<'PY'
import os, sys
import openmm as mm
from openmmbg import alanine_dipeptide as aldp
out, solvent = sys.argv[1], sys.argv[2]
system, _, positions = aldp.create_system(solvent)
context = mm.Context(system, mm.VerletIntegrator(0.001), mm.Platform.getPlatformByName("Reference"))
context.setPositions(positions)
for name, xml in (("system.xml", mm.XmlSerializer.serialize(system)),
                  ("state.xml", mm.XmlSerializer.serialize(context.getState(getPositions=True)))):
    with open(os.path.join(out, name + ".tmp"), "w") as f:
        f.write(xml)
    os.replace(os.path.join(out, name + ".tmp"), os.path.join(out, name))
PY
echo "{\"implicit_solvent\": \"$SOLVENT\", \"temperatures\": \"geometric 300-600 K, 6 replicas\", \"timestep_ps\": 0.001, \"steps_per_exchange\": 500, \"friction_per_ps\": 1, \"platform\": \"$PLATFORM\"}" >"$OUT/settings.json"
run() {
    local name=$1 seed=$2 exchanges=$3
    [ "$exchanges" -gt 0 ] || return 0  # 0: skip this run for now
    echo "[openmmbg] alanine dipeptide $name run: $exchanges exchange attempts (seed $seed) in $OUT/$name"
    OMP_NUM_THREADS=1 OPENMM_CPU_THREADS=1 "$CLI" remd --system "$OUT/system.xml" --state "$OUT/state.xml" \
        --tmin 300 --tmax 600 --num-replicas 6 --timestep 0.001 --friction 1 --steps-per-exchange 500 \
        --checkpoint-every 20 --platform "$PLATFORM" --seed "$seed" --exchanges "$exchanges" \
        --output "$OUT/$name" >"$OUT/$name.statistics.json.tmp"
    mv "$OUT/$name.statistics.json.tmp" "$OUT/$name.statistics.json"  # a killed run leaves the last complete copy
}
run test 2 "$TEST_EXCHANGES"
run train 1 "$TRAIN_EXCHANGES"
echo "[openmmbg] done: training frames $OUT/train/trajectory_0.dcd, held-out test frames $OUT/test/trajectory_0.dcd"
