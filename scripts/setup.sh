#!/usr/bin/env bash
# Installs what building and running openmm-bg needs, skipping whatever is already there:
#   - Debian packages (apt-get; as root, or through sudo),
#   - the Python virtual environment .venv at the repository root (torch, openmm, numpy, ...).
# Environment: PYTHON (interpreter for a new .venv; default python3 on PATH, else /usr/bin/python3),
#              OPENMMBG_SKIP_APT=1 (do not check or install Debian packages).
set -euo pipefail
ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
log() { printf '[openmmbg] %s\n' "$*"; }
die() { printf '[openmmbg] error: %s\n' "$*" >&2; exit 1; }

APT_PACKAGES=(
  build-essential cmake git swig ccache
  nlohmann-json3-dev libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev libeigen3-dev libopenblas0-pthread
  python3 python3-venv
  pocl-opencl-icd ocl-icd-opencl-dev
)
# The C++ code links against the libraries inside these wheels (both built with the C++11 ABI).
# swig comes from PyPI at the version that generated the openmm wheel's wrappers (4.5): the SWIG
# runtime of our Force module must match openmm's for System.addForce to accept it.
# torch is pinned too: float32 results (the behaviour digests of tests/python/data, the shipped
# models' figures) change in the last digits between torch releases.
PIP_REQUIREMENTS=("torch==2.15.0" "openmm==8.6.1" "swig==4.5.0" numpy pytest matplotlib)

VENV="$ROOT/.venv"
STAMP="$VENV/.openmmbg-requirements"

# shellcheck source=scripts/lib/apt.sh
source "$ROOT/scripts/lib/apt.sh"

if [[ "${OPENMMBG_SKIP_APT:-0}" != 1 ]]; then
  command -v dpkg-query >/dev/null || die "not a Debian system (no dpkg-query): install ${APT_PACKAGES[*]} by hand and rerun with OPENMMBG_SKIP_APT=1"
  apt_install "${APT_PACKAGES[@]}"
  log "Debian packages present"
fi

# --- Python virtual environment -------------------------------------------------------------
if [[ -e "$VENV" ]] && ! "$VENV/bin/python" -c '' 2>/dev/null; then
  log "removing broken .venv"
  rm -rf "$VENV"
fi
if [[ ! -x "$VENV/bin/python" ]]; then
  base_python="${PYTHON:-$(command -v python3 || echo /usr/bin/python3)}"
  log "creating .venv with $base_python"
  if ! "$base_python" -m venv "$VENV"; then
    rm -rf "$VENV"
    [[ "${OPENMMBG_SKIP_APT:-0}" != 1 ]] || die "'$base_python -m venv' failed"
    log "'$base_python -m venv' failed; making sure python3-venv is installed and retrying"
    apt_install python3-venv
    "$base_python" -m venv "$VENV" || { rm -rf "$VENV"; die "'$base_python -m venv' failed"; }
  fi
fi

want="$(printf '%s\n' "${PIP_REQUIREMENTS[@]}" | sha256sum | cut -d' ' -f1)"
imports_ok() { "$VENV/bin/python" -c 'import torch, openmm, numpy, pytest, matplotlib' 2>/dev/null && [[ -x "$VENV/bin/swig" ]]; }
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]] && imports_ok; then
  log ".venv up to date"
else
  log "installing Python packages into .venv: ${PIP_REQUIREMENTS[*]} (torch is several GB the first time)"
  rm -f "$STAMP"
  pip_flags=()
  [[ -t 1 ]] || pip_flags+=(--progress-bar off)
  "$VENV/bin/python" -m pip install "${pip_flags[@]}" "${PIP_REQUIREMENTS[@]}"
  imports_ok || die "the packages installed but 'import torch, openmm, numpy, pytest, matplotlib' fails in .venv"
  echo "$want" >"$STAMP"
  log ".venv ready"
fi
