#!/usr/bin/env bash
# Train an alanine dipeptide model on the replica-exchange data of scripts/generate-aldp-data.sh
# (300 K frames of the "train" run), resumable across sessions.
#
#   scripts/train-aldp.sh [FAMILY] [EPOCHS [NUM_TRAIN]]
#
# FAMILY "ic" (models/pretrained/aldp-ic.bgm): the flow on internal coordinates (docs/internal-
# coordinates.md) with the FAB paper's 12 couplings and 8 bins but 80 hidden units in float32 (a
# 3.5 MB model; the default 256 in float64 is 31 MB and overfits the 18,527 frames more), the
# Z-matrix from the System's bonded graph, batch 256, peak learning rate 1e-3; defaults 30 epochs,
# 20000 frames.
#
# FAMILY "eacf" (the default; models/pretrained/aldp-spherical.bgm): the Spherical-proj E-ACF,
# defaults 10 epochs, 20000 frames. Architecture (a CPU-budget version of the paper's; see
# docs/results.md): per-atom features
# (22 atom types), 8 coupling blocks (the paper: 20), EGNN MLPs [64, 64] (the paper: [128, 128]),
# float32 (the paper: float64), augmented sigma 0.5, aux-loss weight 1, batch 20. About 3.7 M
# parameters, a 15 MB model file.
#
# Rare basin: OPENMMBG_ALDP_EXTRA_REPLICAS=N (default 0) adds the phi > 0 frames of the replicas at
# the next N temperatures to the training frames (the 300 K frames hold about 100 phi > 0
# configurations in 28,000). Proposals stay exact whatever the flow's weights (the Metropolis-Hastings
# ratio uses the flow's own density). Tried with N = 3 (345, 397, 457 K): the flow then puts 3.3 % of
# its mass at phi > 0 (the target 0.3 %) and its reverse ESS falls to 0.02 %, with no gain in the
# sampling comparison (docs/results.md); the shipped model uses none.
#
# Both: validation on the last 10% of the training frames (the "test" run stays held out for
# evaluation). Checkpoints after every epoch; re-running resumes. The frames are frozen into
# RUN/train-data.npy at the first start; remove the run folder to train on more data.
# Environment: OPENMMBG_ALDP_DATA (default ~/.local/share/openmmbg/aldp), OPENMMBG_RUNS_DIR.
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
FAMILY=eacf
case "${1:-}" in eacf|ic) FAMILY=$1; shift ;; esac
DATA=${OPENMMBG_ALDP_DATA:-$HOME/.local/share/openmmbg/aldp}
if [ "$FAMILY" = ic ]; then
    EPOCHS=${1:-30}
    RUN=${OPENMMBG_RUNS_DIR:-$HOME/.local/share/openmmbg/runs}/aldp/ic
else
    EPOCHS=${1:-10}
    RUN=${OPENMMBG_RUNS_DIR:-$HOME/.local/share/openmmbg/runs}/aldp/spherical
fi
NUM_TRAIN=${2:-20000}
EXTRA_REPLICAS=${OPENMMBG_ALDP_EXTRA_REPLICAS:-0}
CLI=${OPENMMBG_CLI:-$ROOT/${OPENMMBG_BUILD_DIR:-build}/openmmbg}
[ -x "$CLI" ] || { echo "[openmmbg] error: $CLI not built (run bash scripts/build.sh)" >&2; exit 1; }
[ -f "$DATA/train/trajectory_0.dcd" ] || { echo "[openmmbg] error: no training data in $DATA/train (run scripts/generate-aldp-data.sh)" >&2; exit 1; }
mkdir -p "$RUN"
# The run's data are frozen at its first start (RUN/train-data.npy, the 300 K frames then present):
# the replica-exchange run keeps growing, and a growing file would change the validation split (its
# last 10%) and so refuse the checkpoint.
if [ ! -f "$RUN/train-data.npy" ]; then
    "$ROOT/scripts/python" - "$DATA/train" "$RUN/train-data.npy" "$EXTRA_REPLICAS" <<'PY'
import os, sys
import numpy as np
import openmmbg
from openmmbg import alanine_dipeptide as aldp
folder, output, extra_replicas = sys.argv[1], sys.argv[2], int(sys.argv[3])
frames = openmmbg.read_dcd(os.path.join(folder, "trajectory_0.dcd")).astype(np.float32)
extra = []
for replica in range(1, extra_replicas + 1):
    hot = openmmbg.read_dcd(os.path.join(folder, f"trajectory_{replica}.dcd")).astype(np.float32)
    extra.append(hot[aldp.phi_psi(hot)[0] > 0])
# The extra frames go first: the validation split is the file's last 10%, 300 K frames only.
data = np.concatenate(extra + [frames])
np.save(output + ".tmp.npy", data)
os.replace(output + ".tmp.npy", output)
print(f"[openmmbg] training data frozen: {len(frames)} frames at 300 K + {len(data) - len(frames)} phi > 0 frames"
      f" of replicas 1-{extra_replicas} -> {output}")
PY
fi
if [ "$FAMILY" = ic ]; then
    [ -f "$DATA/system.xml" ] || { echo "[openmmbg] error: no $DATA/system.xml (run scripts/generate-aldp-data.sh)" >&2; exit 1; }
    MODEL_ARGS=(--family ic --molecule "$DATA/system.xml" --config '{"dtype": "float32", "hidden_units": 80, "temperature": 300.0}'
                --batch-size 256 --peak-learning-rate 1e-3 --num-validation 2000)
else
    CONFIG='{"projection": "spherical", "num_layers": 8, "egnn_mlp_units": [64, 64], "dtype": "float32",
 "aug_scale": 0.5, "aux_loss_weight": 1.0, "temperature": 300.0,
 "atom_types": [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21]}'
    MODEL_ARGS=(--config "$CONFIG" --batch-size 20 --num-validation 500)
fi
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} "$CLI" train --data "$RUN/train-data.npy" "${MODEL_ARGS[@]}" \
    --epochs "$EPOCHS" --num-train "$NUM_TRAIN" --validate-every 1 \
    --seed 0 --output "$RUN/model.bgm" --metrics "$RUN/metrics.jsonl" 2>&1 | tee -a "$RUN/train.log"
echo "[openmmbg] model: $RUN/model.bgm"
