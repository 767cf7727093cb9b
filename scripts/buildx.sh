#!/usr/bin/env bash
# Install Docker Buildx as a Docker CLI plugin from Debian trixie's docker-buildx package, without adding trixie to
# this machine's apt sources: the package is fetched with a private sources list and private apt state, unpacked
# with `dpkg -x`, and only its binary is copied. Safe to run again (quick when a buildx is already installed).
#   bash scripts/buildx.sh [PLUGIN_DIR]   default: /usr/local/lib/docker/cli-plugins as root, else ~/.docker/cli-plugins
# setup.sh runs it. Bookworm has no docker-buildx package; trixie's (buildx 0.13, static Go binary needing only
# libc6 >= 2.34) runs on bookworm and drives a 20.10 engine's builtin BuildKit through the default `docker` driver.
set -euo pipefail

SUITE=trixie
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg  # bookworm's keyring carries the trixie keys
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
if [ ! -r "$KEYRING" ]; then
  echo "setup.sh: $KEYRING is missing (apt-get install debian-archive-keyring); Buildx not installed" >&2
  exit 1
fi

# The mirror this machine's apt already uses for its Debian release (deb822 .sources or one-line .list), so a
# machine behind a local mirror or proxy fetches from there too; deb.debian.org otherwise.
mirror_of_sources() {
  local file
  for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -r "$file" ] || continue
    case "$file" in
      *.sources)
        awk 'BEGIN { RS = ""; FS = "\n" }
             { uris = ""; suites = ""; enabled = 1
               for (i = 1; i <= NF; i++) {
                 line = $i; sub(/#.*/, "", line)
                 if (line ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", line); uris = line }
                 if (line ~ /^Suites:/) { sub(/^Suites:[ \t]*/, "", line); suites = line }
                 if (line ~ /^Enabled:[ \t]*no/) enabled = 0 }
               if (enabled && uris != "" && suites ~ /(^| )[a-z]+( |$)/ && uris !~ /security/) {
                 split(uris, u, /[ \t]+/); print u[1]; exit } }' "$file" ;;
      *)
        awk '$1 == "deb" { i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                           if ($(i) !~ /security/ && $(i+1) !~ /-/) { print $(i); exit } }' "$file" ;;
    esac
  done | grep -E '^(https?|file)://' | head -n 1
}
mirror=$(mirror_of_sources || true)
mirror="${mirror:-http://deb.debian.org/debian}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/parts"
: > "$work/sources.list"
cat > "$work/parts/$SUITE.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $SUITE
Components: main
Signed-By: $KEYRING
EOF
apt_private=(-o "Dir::Etc::sourcelist=$work/sources.list" -o "Dir::Etc::sourceparts=$work/parts"
             -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o "APT::Sandbox::User=$(id -un)"
             -o "Debug::NoLocking=1" -q)

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
