#!/usr/bin/env bash
# Reproduce the paper's maximum-likelihood experiments (E-ACF Table 6 setting) on the efm data.
#
#   scripts/reproduce-ml.sh [SYSTEM [PROJECTIONS [SEEDS]]]
#     SYSTEM       dw4 (default) or lj13
#     PROJECTIONS  space-separated list (default "spherical vector cartesian none")
#     SEEDS        space-separated list (default "0 1 2")
#
# Every run is resumable: it checkpoints after each epoch and a second call continues where the
# first stopped (also in a later session, as long as the runs folder survives), so the script can
# be re-run until everything is done. Several invocations may run side by side: each run is
# locked by the process training it. Runs that finished are evaluated once (NLL with K = 20 on the
# test split, reverse ESS on 10,000 flow samples, forward ESS on the test split).
#
# Environment: OPENMMBG_RUNS_DIR (default ~/.local/share/openmmbg/runs: outside the clone, so
# runs survive a fresh checkout), OPENMMBG_DATA_DIR (default ../shared/data), OPENMMBG_JOBS
# (parallel runs, default 2, one LibTorch thread each), EPOCHS (override, for reduced runs),
# NUM_TEST (test points for evaluation, default all).
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
SYSTEM=${1:-dw4}
PROJECTIONS=${2:-"spherical vector cartesian none"}
SEEDS=${3:-"0 1 2"}
RUNS=${OPENMMBG_RUNS_DIR:-$HOME/.local/share/openmmbg/runs}
DATA=${OPENMMBG_DATA_DIR:-$ROOT/../shared/data}
JOBS=${OPENMMBG_JOBS:-2}
CLI=${OPENMMBG_CLI:-$ROOT/${OPENMMBG_BUILD_DIR:-build}/openmmbg}
[ -x "$CLI" ] || { echo "[openmmbg] error: $CLI not built (run bash scripts/build.sh)" >&2; exit 1; }
[ -d "$DATA/efm" ] || { echo "[openmmbg] error: no data at $DATA/efm" >&2; exit 1; }

run_one() {
    local projection=$1 seed=$2
    local dir="$RUNS/ml/$SYSTEM-$projection-s$seed"
    mkdir -p "$dir"
    # One process per run: a second invocation (e.g. another seed list started beside this one)
    # skips a run that is being trained instead of resuming the same checkpoint twice.
    exec {lock}>"$dir/lock"
    if ! flock -n "$lock"; then
        echo "[openmmbg] $SYSTEM $projection seed $seed: another process is running it, skipped"
        return 0
    fi
    local epochs_args=()
    [ -n "${EPOCHS:-}" ] && epochs_args=(--epochs "$EPOCHS")
    local test_args=()
    [ -n "${NUM_TEST:-}" ] && test_args=(--num-test "$NUM_TEST")
    if [ ! -f "$dir/done" ]; then
        local start=$SECONDS
        OMP_NUM_THREADS=1 "$CLI" train --system "$SYSTEM" --projection "$projection" --seed "$seed" \
            --data-dir "$DATA" --output "$dir/model.bgm" --metrics "$dir/metrics.jsonl" \
            "${epochs_args[@]}" >>"$dir/train.log" 2>&1
        echo $((SECONDS - start)) >>"$dir/train-seconds"
        touch "$dir/done"
    fi
    if [ ! -f "$dir/eval.json" ]; then
        OMP_NUM_THREADS=1 "$CLI" evaluate --model "$dir/model.bgm" --system "$SYSTEM" --data-dir "$DATA" \
            --seed "$seed" "${test_args[@]}" >"$dir/eval.json.tmp" 2>>"$dir/train.log"
        mv "$dir/eval.json.tmp" "$dir/eval.json"
    fi
    echo "[openmmbg] $SYSTEM $projection seed $seed: $(tr -d '\n ' <"$dir/eval.json" | head -c 200)"
}

echo "[openmmbg] runs in $RUNS/ml (system $SYSTEM; projections: $PROJECTIONS; seeds: $SEEDS; $JOBS at a time)"
pids=()
for seed in $SEEDS; do
    for projection in $PROJECTIONS; do
        run_one "$projection" "$seed" &
        pids+=($!)
        if [ "${#pids[@]}" -ge "$JOBS" ]; then
            wait "${pids[0]}" || echo "[openmmbg] a run failed: see its train.log" >&2
            pids=("${pids[@]:1}")
        fi
    done
done
wait || true
echo "[openmmbg] finished (runs reported as skipped are still running elsewhere); summarise with: scripts/python scripts/summarize-ml.py $SYSTEM"
