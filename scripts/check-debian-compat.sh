#!/usr/bin/env bash
# CI stage: builds the C++ libraries, the Reference plugin, the openmmbg tool and the C++ tests against Debian
# bookworm's OpenMM 7.7 (libopenmm-dev) and LibTorch 1.13 (libtorch-dev) instead of the .venv wheels,
# and runs the C++ tests. The Python package is not built (OPENMMBG_BUILD_PYTHON=OFF): Debian's
# OpenMM ships no SWIG interface files for openmmbg_force.i to %import. Benchmarks are skipped.
# The build tree and the ccache live outside the clone, so reruns and other clones reuse them; CMake
# sees the checkout through the symlink <build dir>-src, and runs sharing a build tree take turns.
# Environment: OPENMMBG_CACHE_DIR (default ${XDG_CACHE_HOME:-$HOME/.cache}/openmmbg),
#              OPENMMBG_COMPAT_BUILD_DIR (default $OPENMMBG_CACHE_DIR/debian-compat-build),
#              OPENMMBG_COMPAT_CCACHE_DIR (default $OPENMMBG_CACHE_DIR/debian-compat-ccache),
#              OPENMMBG_JOBS (default nproc), OPENMMBG_TEST_JOBS (default 2), OPENMMBG_SKIP_APT=1.
# Arguments go to ctest, e.g. `bash scripts/check-debian-compat.sh -R Reference`.
set -euo pipefail
ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
log() { printf '[openmmbg] %s\n' "$*"; }
die() { printf '[openmmbg] error: %s\n' "$*" >&2; exit 1; }
start=$SECONDS

APT_PACKAGES=(
  build-essential cmake ccache
  libopenmm-dev libopenmm-plugins libtorch-dev libopenblas0-pthread
  nlohmann-json3-dev libcli11-dev libgtest-dev libgmock-dev
)

# shellcheck source=scripts/lib/apt.sh
source "$ROOT/scripts/lib/apt.sh"

command -v dpkg-query >/dev/null || die "not a Debian system (no dpkg-query)"
if [[ "${OPENMMBG_SKIP_APT:-0}" != 1 ]]; then
  apt_install "${APT_PACKAGES[@]}"
fi
pkg_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || die "Debian package $1 is not installed"; }
openmm_version="$(pkg_version libopenmm-dev)"
torch_version="$(pkg_version libtorch-dev)"

# Debian's OpenMM: headers in /usr/include/openmm, libOpenMM.so in the multiarch lib dir, the
# CPU and OpenCL platforms in openmm/plugins there (libopenmm-plugins) (all
# found from the prefix /usr). Debian's LibTorch: its Torch config directory.
OPENMM_PREFIX=/usr
torch_config="$(dpkg-query -L libtorch-dev | grep -m1 '/cmake/Torch/TorchConfig\.cmake$' || true)"
[[ -n "$torch_config" ]] || die "libtorch-dev lists no TorchConfig.cmake"
TORCH_CONFIG_DIR="$(dirname "$torch_config")"

CACHE_ROOT="${OPENMMBG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/openmmbg}"
BUILD="${OPENMMBG_COMPAT_BUILD_DIR:-$CACHE_ROOT/debian-compat-build}"
export CCACHE_DIR="${OPENMMBG_COMPAT_CCACHE_DIR:-$CACHE_ROOT/debian-compat-ccache}"
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-2G}"
export CCACHE_SLOPPINESS="${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}"
mkdir -p "$CCACHE_DIR"
# shellcheck source=scripts/lib/cached-build.sh
source "$ROOT/scripts/lib/cached-build.sh"
cmake_args=(-G "Unix Makefiles" -DCMAKE_BUILD_TYPE=Release
  -DCMAKE_CXX_COMPILER_LAUNCHER=ccache
  -DOPENMM_DIR="$OPENMM_PREFIX" -DTorch_DIR="$TORCH_CONFIG_DIR"
  -DOPENMMBG_BUILD_PYTHON=OFF -DOPENMMBG_BUILD_BENCHMARKS=OFF
  -DOPENMMBG_TEST_OPENCL=OFF)  # the OpenCL tests run in the main stage; this stage checks the CPU platforms
log "OpenMM $openmm_version, LibTorch $torch_version"
configure_cached_build "$ROOT" "$BUILD" "${cmake_args[@]}"
cache="$BUILD/CMakeCache.txt"

# Guard against a silent fallback to another OpenMM or LibTorch (e.g. a wheel's).
cache_value() { sed -n "s/^$1:[A-Z]*=//p" "$cache"; }
for var in OPENMM_LIBRARY OPENMM_INCLUDE_DIR TORCH_CPU_LIBRARY TORCH_INCLUDE_DIR; do
  value="$(cache_value "$var")"
  [[ "$value" == /usr/* && "$value" != */site-packages/* ]] || die "$var is $value, not Debian's"
done
# The language standard the flow library (which includes LibTorch's headers) is compiled with.
cxx_std="$(grep -m1 -o -- '-std=[a-z+0-9]*' "$BUILD/models/CMakeFiles/OpenMMBGFlow.dir/flags.make" 2>/dev/null || true)"

log "building $BUILD"
build_start=$SECONDS
cmake --build "$BUILD" -j"${OPENMMBG_JOBS:-$(nproc)}"
build_s=$((SECONDS - build_start))
ccache --show-stats 2>/dev/null | grep -E '^(Cacheable calls|  Hits|  Misses)|cache hit' || true

log "running the C++ tests"
export OMP_NUM_THREADS=1
test_start=$SECONDS
status=0
ctest --test-dir "$BUILD" --output-on-failure --no-tests=error -j"${OPENMMBG_TEST_JOBS:-2}" "$@" || status=$?
test_s=$((SECONDS - test_start))

result=passed
((status == 0)) || result="FAILED (ctest exit $status)"
log "debian-compat: ${result}: OpenMM ${openmm_version} (libopenmm-dev), LibTorch ${torch_version} (libtorch-dev)${cxx_std:+, $cxx_std}; build ${build_s}s, tests ${test_s}s, total $((SECONDS - start))s"
exit "$status"
