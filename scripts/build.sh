#!/usr/bin/env bash
# Sets up (scripts/setup.sh), configures and builds openmm-bg.
# Environment: OPENMMBG_BUILD_DIR (default build), OPENMMBG_CMAKE_ARGS (extra cmake arguments,
#              split on spaces), OPENMMBG_JOBS (default nproc), OPENMM_DIR / Torch_DIR (override
#              the OpenMM and LibTorch found in the .venv wheels), OPENMMBG_SKIP_SETUP=1.
set -euo pipefail
ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
log() { printf '[openmmbg] %s\n' "$*"; }
BUILD="${OPENMMBG_BUILD_DIR:-build}"
[[ "$BUILD" == /* ]] || BUILD="$ROOT/$BUILD"

[[ "${OPENMMBG_SKIP_SETUP:-0}" == 1 ]] || bash "$ROOT/scripts/setup.sh"

export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}"
# Paths under the checkout are hashed relative to it, so a fresh clone (CI) hits the cache; the
# sloppiness lets ccache cache compilations that use CMake's precompiled headers. Its price: a header
# edited while a compilation that includes it is running can leave an object built from the old
# header cached under the new one's hash, which later builds (and clean clones) then reuse. Do not
# edit a checkout while it builds; if it happened, change the affected source or run `ccache -C`.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$ROOT}"
export CCACHE_SLOPPINESS="${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}"
cmake_args=(-G "Unix Makefiles" -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE="$ROOT/.venv/bin/python")
if command -v ccache >/dev/null; then cmake_args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
if [[ -n "${OPENMM_DIR:-}" ]]; then cmake_args+=(-DOPENMM_DIR="$OPENMM_DIR"); fi
if [[ -n "${Torch_DIR:-}" ]]; then cmake_args+=(-DTorch_DIR="$Torch_DIR"); fi
# shellcheck disable=SC2206  # split on purpose
if [[ -n "${OPENMMBG_CMAKE_ARGS:-}" ]]; then cmake_args+=(${OPENMMBG_CMAKE_ARGS}); fi

# Configure when there is no configured tree or the arguments changed; otherwise the build step
# itself reruns cmake when a CMakeLists.txt changed.
signature="$(printf '%s\n' "${cmake_args[@]}")"
if [[ ! -f "$BUILD/CMakeCache.txt" || ! -f "$BUILD/Makefile" || "$(cat "$BUILD/.openmmbg-cmake-args" 2>/dev/null)" != "$signature" ]]; then
  log "configuring $BUILD"
  rm -f "$BUILD/.openmmbg-cmake-args"
  cmake -S "$ROOT" -B "$BUILD" "${cmake_args[@]}"
  printf '%s\n' "$signature" >"$BUILD/.openmmbg-cmake-args"
fi

log "building $BUILD"
cmake --build "$BUILD" -j"${OPENMMBG_JOBS:-$(nproc)}"
log "build done"
