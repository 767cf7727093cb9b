#!/usr/bin/env bash
# What the multi-platform release test needs and no public registry can give it: Debian's statically linked
# busybox for amd64 and arm64 (a `FROM scratch` test image needs no base image of either architecture), fetched
# with a private apt state (the machine gains no foreign architecture) and unpacked with `dpkg -x`.
#   bash scripts/multiarch.sh [DIR]   default: /var/cache/dockyard/busybox-static as root, else ~/.cache/dockyard/...
# setup.sh --test runs it; qemu-user-static (a Debian package setup.sh installs) runs the arm64 binary for a check.
set -euo pipefail

if [ "$(id -u)" = 0 ]; then default_dir=/var/cache/dockyard/busybox-static; else default_dir="$HOME/.cache/dockyard/busybox-static"; fi
dir="${1:-$default_dir}"
ARCHES=(amd64 arm64)
say() { printf '==> %s\n' "$*"; }

have_all=1
for arch in "${ARCHES[@]}"; do [ -x "$dir/$arch/busybox" ] || have_all=0; done
if [ "$have_all" = 1 ]; then
  say "static busybox for ${ARCHES[*]} in $dir (already there)"
  exit 0
fi
if ! command -v apt-get >/dev/null || ! command -v dpkg >/dev/null; then
  echo "multiarch.sh: not Debian; the multi-platform release test will skip" >&2
  exit 0
fi
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
source "$(dirname "${BASH_SOURCE[0]}")/apt-private.sh"
apt_private_setup "$suite" "$(IFS=,; echo "${ARCHES[*]}")"
say "static busybox for ${ARCHES[*]} (Debian $suite's busybox-static from $mirror) into $dir"
if ! apt-get "${apt_private[@]}" update >"$work/update.log" 2>&1; then
  echo "multiarch.sh: could not read Debian $suite's package lists from $mirror:" >&2
  tail -n 3 "$work/update.log" >&2
  exit 1
fi
(cd "$work" && apt-get "${apt_private[@]}" download "${ARCHES[@]/#/busybox-static:}" >"$work/download.log" 2>&1) || {
  echo "multiarch.sh: could not download busybox-static from $mirror:" >&2
  tail -n 3 "$work/download.log" >&2
  exit 1
}
for arch in "${ARCHES[@]}"; do
  dpkg -x "$work"/busybox-static_*_"$arch".deb "$work/$arch"
  mkdir -p "$dir/$arch"
  install -m 0755 "$work/$arch/bin/busybox" "$dir/$arch/busybox"
done
say "static busybox for ${ARCHES[*]} in $dir"
