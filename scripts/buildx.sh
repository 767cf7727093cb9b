#!/usr/bin/env bash
# Install Docker Buildx as a Docker CLI plugin from Debian trixie's docker-buildx package, without adding trixie to
# this machine's apt sources: the package is fetched with a private sources list and private apt state, unpacked
# with `dpkg -x`, and only its binary is copied. Safe to run again (quick when a buildx is already installed).
#   bash scripts/buildx.sh [PLUGIN_DIR]   default: /usr/local/lib/docker/cli-plugins as root, else ~/.docker/cli-plugins
# setup.sh runs it. Bookworm has no docker-buildx package; trixie's (buildx 0.13, static Go binary needing only
# libc6 >= 2.34) runs on bookworm and drives a 20.10 engine's builtin BuildKit through the default `docker` driver.
set -euo pipefail

SUITE=trixie
if [ "$(id -u)" = 0 ]; then default_dir=/usr/local/lib/docker/cli-plugins; else default_dir="$HOME/.docker/cli-plugins"; fi
plugin_dir="${1:-$default_dir}"

say() { printf '==> %s\n' "$*"; }
buildx_at() { [ -x "$1" ] && "$1" version 2>/dev/null | grep -q 'buildx'; }

# Already installed where the Docker CLI (or dockyard) finds it?
for dir in "$plugin_dir" ${DOCKER_CONFIG:+"$DOCKER_CONFIG/cli-plugins"} /usr/local/lib/docker/cli-plugins /usr/local/libexec/docker/cli-plugins \
           /usr/lib/docker/cli-plugins /usr/libexec/docker/cli-plugins "$HOME/.docker/cli-plugins"; do
  if buildx_at "$dir/docker-buildx"; then
    say "Docker Buildx $("$dir/docker-buildx" version | awk '{print $2}') at $dir/docker-buildx (already installed)"
    exit 0
  fi
done

if ! command -v apt-get >/dev/null || ! command -v dpkg >/dev/null; then
  echo "setup.sh: Docker Buildx is not installed and this is not Debian; install the docker-buildx plugin" \
       "(https://docs.docker.com/build/); dockyard builds with the legacy builder meanwhile" >&2
  exit 0
fi

source "$(dirname "${BASH_SOURCE[0]}")/apt-private.sh"
apt_private_setup "$SUITE" || { echo "setup.sh: Buildx not installed" >&2; exit 1; }

say "installing Docker Buildx in $plugin_dir (Debian $SUITE's docker-buildx from $mirror; $SUITE is not added to apt's sources)"
if ! apt-get "${apt_private[@]}" update >"$work/update.log" 2>&1; then
  echo "setup.sh: could not read Debian $SUITE's package list from $mirror:" >&2
  tail -n 3 "$work/update.log" >&2
  exit 1
fi
(cd "$work" && apt-get "${apt_private[@]}" download docker-buildx >"$work/download.log" 2>&1) || {
  echo "setup.sh: could not download docker-buildx from $mirror ($SUITE):" >&2
  tail -n 3 "$work/download.log" >&2
  exit 1
}
dpkg -x "$work"/docker-buildx_*.deb "$work/unpacked"
binary="$work/unpacked/usr/libexec/docker/cli-plugins/docker-buildx"
buildx_at "$binary" || { echo "setup.sh: the docker-buildx package's binary does not run on this machine" >&2; exit 1; }
mkdir -p "$plugin_dir"
install -m 0755 "$binary" "$plugin_dir/docker-buildx"
say "Docker Buildx $("$plugin_dir/docker-buildx" version | awk '{print $2}') at $plugin_dir/docker-buildx"
if [ "$plugin_dir" = "$HOME/.docker/cli-plugins" ]; then
  echo "setup.sh: Buildx is in $plugin_dir, where \`docker buildx\` finds it only while DOCKER_CONFIG is unset;" \
       "dockyard runs it directly otherwise" >&2
fi
