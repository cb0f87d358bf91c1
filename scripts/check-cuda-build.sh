#!/usr/bin/env bash
# Checks that the CUDA platform plugin (platforms/cuda) and its tests compile and link, against
#   - OpenMM's CUDA platform from the openmm-cuda-13 wheel (installed into the project's .venv, as
#     users install it; it only adds libOpenMMCUDA.so beside OpenMM's other plugins),
#   - LibTorch's CUDA libraries from the torch wheel,
#   - cuda.h from the CUDA toolkit in /usr/local/cuda or, where there is none, from the CUDA 13
#     headers of PyPI's nvidia wheels (which the torch wheel already pulls in).
# Where nvidia-smi sees a GPU it also runs the CUDA tests. Exits 0 on success, non-zero on failure.
#
# Environment: OPENMMBG_CUDA_BUILD_DIR (default ${XDG_CACHE_HOME:-~/.cache}/openmmbg/cuda-build:
# outside the clone; with ccache a rebuild takes seconds), CUDA_HOME (toolkit, default /usr/local/cuda).
set -euo pipefail
ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
log() { printf '[openmmbg] %s\n' "$*"; }
die() { printf '[openmmbg] error: %s\n' "$*" >&2; exit 1; }

bash "$ROOT/scripts/setup.sh"
PY="$ROOT/.venv/bin/python"
openmm_version=$("$PY" -c 'import openmm; print(openmm.__version__)')
if ! "$PY" -m pip show -q openmm-cuda-13 >/dev/null 2>&1; then
  log "installing openmm-cuda-13==$openmm_version"
  "$PY" -m pip install -q "openmm-cuda-13==$openmm_version" || die "cannot install openmm-cuda-13==$openmm_version"
fi
plugin_dir=$("$PY" -c 'import openmm.version as v, os; print(os.path.join(v.openmm_library_path, "plugins"))')
[[ -f "$plugin_dir/libOpenMMCUDA.so" ]] || die "openmm-cuda-13 did not provide $plugin_dir/libOpenMMCUDA.so"

CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
if [[ -f "$CUDA_HOME/include/cuda.h" ]]; then
  cuda_include="$CUDA_HOME/include"
  log "cuda.h from the CUDA toolkit in $CUDA_HOME"
else
  cuda_include=$("$PY" -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13", "include"))' 2>/dev/null || true)
  [[ -f "$cuda_include/cuda.h" ]] || die "no CUDA toolkit in $CUDA_HOME and no cuda.h in the nvidia wheels"
  log "cuda.h from PyPI's nvidia wheels ($cuda_include)"
fi

BUILD=${OPENMMBG_CUDA_BUILD_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/openmmbg/cuda-build}
cmake_args=(-G "Unix Makefiles" -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE="$PY" -DOPENMMBG_BUILD_CUDA=ON
            -DOPENMMBG_CUDA_INCLUDE_DIR="$cuda_include" -DOPENMMBG_BUILD_BENCHMARKS=OFF)
if command -v ccache >/dev/null; then cmake_args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
export CCACHE_SLOPPINESS="${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}"
# shellcheck source=scripts/lib/cached-build.sh
source "$ROOT/scripts/lib/cached-build.sh"
configure_cached_build "$ROOT" "$BUILD" "${cmake_args[@]}"
log "building the CUDA plugin and its tests"
cmake --build "$BUILD" -j"$(nproc)" --target OpenMMBGCUDA TestCudaBoltzmannGeneratorProposal || die "CUDA build failed"

# What must hold for OpenMM to use the plugin: its entry points, and LibTorch's CUDA libraries loaded.
plugin="$BUILD/plugins/libOpenMMBGCUDA.so"
nm -D --defined-only "$plugin" | grep -qw registerKernelFactories || die "$plugin does not export registerKernelFactories"
readelf -d "$plugin" | grep -q 'libtorch_cuda.so' || die "$plugin does not load libtorch_cuda.so"
log "CUDA plugin built and linked: $plugin"

if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
  log "GPU found: running the CUDA tests"
  (cd "$BUILD" && ctest --output-on-failure -R '^TestCudaBoltzmannGeneratorProposal_') || die "CUDA tests failed"
else
  log "no GPU on this machine: the CUDA tests were built but not run"
fi
log "check-cuda-build: OK"
