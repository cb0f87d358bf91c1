#!/usr/bin/env bash
# Sets up, builds and runs every test (GoogleTest and pytest, through ctest).
# Arguments go to ctest, e.g. `bash scripts/test.sh -R spline`.
# Environment: as scripts/build.sh; OPENMMBG_DATA_DIR (default ../shared/data, used when present).
set -euo pipefail
ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
log() { printf '[openmmbg] %s\n' "$*"; }
BUILD="${OPENMMBG_BUILD_DIR:-build}"
[[ "$BUILD" == /* ]] || BUILD="$ROOT/$BUILD"

bash "$ROOT/scripts/build.sh"

if [[ -z "${OPENMMBG_DATA_DIR:-}" && -d "$ROOT/../shared/data" ]]; then
  OPENMMBG_DATA_DIR="$(cd "$ROOT/../shared/data" && pwd)"
  export OPENMMBG_DATA_DIR
fi
log "running tests"
ctest --test-dir "$BUILD" --output-on-failure --no-tests=error -j"${OPENMMBG_TEST_JOBS:-2}" "$@"
log "all tests passed"
