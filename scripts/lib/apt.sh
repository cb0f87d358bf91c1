# Shared by scripts/setup.sh and scripts/check-debian-compat.sh. Source it; needs log() and die().
#
# apt_install PACKAGE...: installs those of the given Debian packages that are missing (apt-get,
# as root or through sudo).
apt_install() {
  local missing=() pkg
  for pkg in "$@"; do
    [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" == "install ok installed" ]] || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  command -v apt-get >/dev/null || die "missing packages (${missing[*]}) and no apt-get: install them by hand and rerun with OPENMMBG_SKIP_APT=1"
  local sudo=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null || die "missing packages (${missing[*]}): run as root, install sudo, or install them by hand"
    sudo=(sudo)
  fi
  log "installing Debian packages: ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}
