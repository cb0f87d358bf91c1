# Shared by the CI stages that keep a CMake build tree outside the clone (check-cuda-build.sh,
# check-debian-compat.sh). Source it, then call
#
#   configure_cached_build ROOT BUILD [cmake arguments...]
#
# It takes a lock on BUILD (one run at a time per tree), points a fixed symlink BUILD-src at the
# checkout ROOT so compiler command lines (and ccache's hashes) are the same for every checkout (a
# CI job in a fresh clone at another path reuses the tree and hits the ccache; CCACHE_BASEDIR cannot
# help with a tree outside the clone), configures when needed, and cleans the tree when the checkout
# behind the link changed (its files can be older than the objects built from the previous one, so
# make would miss changes; the rebuild comes from the ccache). Afterwards CACHED_BUILD_SOURCE holds
# the link. Needs log() and die() from the caller.
configure_cached_build() {
  local root=$1 build=$2
  shift 2
  mkdir -p "$build"
  exec 9>"$build.lock"
  flock 9
  CACHED_BUILD_SOURCE="${build}-src"
  ln -sfn "$root" "$CACHED_BUILD_SOURCE"
  local cache="$build/CMakeCache.txt"
  if [[ -f "$cache" ]] && ! grep -qxF "CMAKE_HOME_DIRECTORY:INTERNAL=$CACHED_BUILD_SOURCE" "$cache"; then
    log "$build was configured for another source directory: reconfiguring from scratch"
    rm -rf "$build" && mkdir -p "$build"
  fi
  local signature
  signature="$(printf '%s\n' "$@")"
  if [[ ! -f "$cache" || ! -f "$build/Makefile" || "$(cat "$build/.openmmbg-cmake-args" 2>/dev/null)" != "$signature" ]]; then
    log "configuring $build"
    rm -f "$build/.openmmbg-cmake-args"
    cmake -S "$CACHED_BUILD_SOURCE" -B "$build" "$@" >"$build.configure.log" 2>&1 || { cat "$build.configure.log" >&2; die "configure failed"; }
    printf '%s\n' "$signature" >"$build/.openmmbg-cmake-args"
  fi
  if [[ "$(cat "$build/.openmmbg-source" 2>/dev/null)" != "$root" ]]; then
    [[ ! -f "$build/.openmmbg-source" ]] || { log "checkout changed to $root: cleaning the build tree"; cmake --build "$build" --target clean; }
    printf '%s\n' "$root" >"$build/.openmmbg-source"
  fi
}
