#!/usr/bin/env bash
# Build dockyard's local base images, so that no Dockerfile of ours needs Docker Hub.
#
#   scripts/base-images.sh                      # all images (idempotent; a warm run takes seconds)
#   scripts/base-images.sh --only python nginx  # a subset (the debian base is built too if it is missing)
#   scripts/base-images.sh --force              # rebuild (no layer cache) even when up to date
#   scripts/base-images.sh --no-pull            # do not try Docker Hub first
#
# Images (names are relied upon elsewhere -- do not rename):
#   dockyard-base/debian:bookworm   debootstrap --variant=minbase rootfs + the host's CA bundle
#   dockyard-base/python:bookworm   python3, pip, venv, Debian's Django 3.2 and gunicorn 20.1, curl
#   dockyard-base/nginx:bookworm    nginx, behaves like nginx:1.27 for files in /etc/nginx/conf.d/
#   dockyard-base/redis:bookworm    redis-server on 0.0.0.0:6379, protected mode off
#   dockyard-base/mariadb:bookworm  mariadbd on 0.0.0.0:3306, MYSQL_* variables like the official image
#   dockyard-base/flask:bookworm    python3 with Debian's Flask 2.2 and PyMySQL (tests/apps/notes; local only)
#   dockyard-base/node:bookworm     Debian's Node.js 18 and a user `node` (tests/apps/tally; local only)
# The derived images are built from docker/base/<name>/.
#
# For python, nginx, redis and mariadb the public equivalent is tried first (timeout 20 docker pull) and
# tagged with our name when it can be had. An image whose label dockyard.base.spec equals the hash of
# its current spec (its directory under docker/base/ plus its parent's spec) is left alone.
#
# Environment: DOCKYARD_DEBIAN_MIRROR (default http://deb.debian.org/debian),
# DOCKYARD_DEBIAN_SECURITY_MIRROR (default http://deb.debian.org/debian-security),
# DOCKYARD_BASE_PULL_TIMEOUT (seconds, default 20), DOCKYARD_HOST_CA_BUNDLE (default
# /etc/ssl/certs/ca-certificates.crt), TMPDIR (where the rootfs is debootstrapped),
# DOCKYARD_BASE_REPO (default dockyard-base: only to try the script out under other names).
# Exit status: 0 success, 1 a build failed, 2 usage error or missing prerequisite.

set -Eeuo pipefail

PROG=base-images
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BASE_DIR="$REPO_ROOT/docker/base"
SPEC_LABEL=dockyard.base.spec
# Other names only for trying the script out without touching the real images.
BASE_REPO=${DOCKYARD_BASE_REPO:-dockyard-base}
ALL_NAMES=(debian python nginx redis mariadb flask node)
declare -A PUBLIC_IMAGE=(
    [python]=python:3.12-slim-bookworm
    [nginx]=nginx:1.27
    [redis]=redis:7
    [mariadb]=mariadb:11
)
SUITE=bookworm
MIRROR=${DOCKYARD_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${DOCKYARD_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
PULL_TIMEOUT=${DOCKYARD_BASE_PULL_TIMEOUT:-20}
HOST_CA_BUNDLE=${DOCKYARD_HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

FORCE=0
PULL=1
VERBOSE=0
SELECTED=()
WORK_DIR=""

usage() {
    sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

say()  { printf '%s: %s\n' "$PROG" "$*"; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
die()  { local code=$1; shift; printf '%s: error: %s\n' "$PROG" "$*" >&2; exit "$code"; }

image_name() { printf '%s/%s:%s' "$BASE_REPO" "$1" "$SUITE"; }

short_name() {
    # Accept "python", "dockyard-base/python" and "dockyard-base/python:bookworm".
    local n=${1#"$BASE_REPO"/}
    n=${n%:"$SUITE"}
    local known
    for known in "${ALL_NAMES[@]}"; do
        if [ "$n" = "$known" ]; then printf '%s' "$n"; return 0; fi
    done
    return 1
}

parse_args() {
    while [ $# -gt 0 ]; do
        case "$1" in
            --only)
                shift
                if [ $# -eq 0 ] || [ "${1#-}" != "$1" ]; then
                    die 2 "--only needs at least one name (${ALL_NAMES[*]})"
                fi
                while [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; do
                    local n
                    n=$(short_name "$1") || die 2 "unknown image '$1' (known: ${ALL_NAMES[*]})"
                    SELECTED+=("$n")
                    shift
                done
                continue
                ;;
            --only=*)
                local IFS=,
                local item
                for item in ${1#--only=}; do
                    local n
                    n=$(short_name "$item") || die 2 "unknown image '$item' (known: ${ALL_NAMES[*]})"
                    SELECTED+=("$n")
                done
                ;;
            --force) FORCE=1 ;;
            --no-pull) PULL=0 ;;
            -v|--verbose) VERBOSE=1 ;;
            -h|--help) usage; exit 0 ;;
            *) die 2 "unknown argument '$1' (try --help)" ;;
        esac
        shift
    done
    if [ ${#SELECTED[@]} -eq 0 ]; then
        SELECTED=("${ALL_NAMES[@]}")
    fi
}

check_docker() {
    command -v docker >/dev/null 2>&1 || die 2 "the docker CLI is not installed"
    local out
    if ! out=$(docker info --format '{{.ServerVersion}}' 2>&1); then
        out=$(printf "%s" "$out" | tr "\n" " " | sed "s/^ *//; s/ *$//")
        die 2 "cannot reach the Docker daemon (docker info: ${out})"
    fi
}

cleanup() {
    local status=$?
    if [ -n "$WORK_DIR" ] && [ -d "$WORK_DIR" ]; then
        # Undo any mount left under the rootfs (interrupted debootstrap/chroot) before deleting it.
        local mnt
        while read -r mnt; do
            umount -l "$mnt" 2>/dev/null || true
        done < <(awk -v d="$WORK_DIR/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r)
        rm -rf --one-file-system "$WORK_DIR"
    fi
    exit "$status"
}

work_dir() {
    # (created in main: $(work_dir) runs in a subshell and could not set WORK_DIR)
    printf '%s' "$WORK_DIR"
}

# ---------------------------------------------------------------------------------------------
# Spec hashes: what an image is built from. Changing any input changes the hash, which rebuilds.

sha() { sha256sum | cut -c1-16; }

debian_spec() {
    {
        echo "suite=$SUITE variant=minbase mirror=$MIRROR security=$SECURITY_MIRROR"
        declare -f build_debian configure_rootfs install_host_cas in_chroot
        if [ -r "$HOST_CA_BUNDLE" ]; then sha256sum < "$HOST_CA_BUNDLE"; else echo "no-host-ca"; fi
    } | sha
}

derived_spec() {
    local name=$1 dir="$BASE_DIR/$1"
    {
        echo "parent=$(debian_spec)"
        (cd "$dir" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
        # the executable bit matters for entrypoints
        (cd "$dir" && find . -type f -perm -u+x -print | LC_ALL=C sort)
    } | sha
}

spec_of() {
    if [ "$1" = debian ]; then debian_spec; else derived_spec "$1"; fi
}

current_label() {
    docker image inspect --format "{{ index .Config.Labels \"$SPEC_LABEL\" }}" "$1" 2>/dev/null || true
}

image_id() {
    docker image inspect --format '{{.Id}}' "$1" 2>/dev/null || true
}

up_to_date() {
    local name=$1 spec=$2
    [ "$(current_label "$(image_name "$name")")" = "$spec" ]
}

drop_old() {
    # Remove the image a rebuild replaced, if nothing else uses it (errors ignored on purpose).
    local old=$1 new
    new=$(image_id "$2")
    if [ -n "$old" ] && [ "$old" != "$new" ]; then
        docker image rm "$old" >/dev/null 2>&1 || true
    fi
}

run_logged() {
    # run_logged LOGFILE CMD...: quiet unless --verbose; on failure show the log's tail.
    local log=$1; shift
    if [ "$VERBOSE" = 1 ]; then
        "$@" 2>&1 | tee "$log"
        return "${PIPESTATUS[0]}"
    fi
    if ! "$@" >"$log" 2>&1; then
        printf '%s: command failed: %s\n--- last lines of %s ---\n' "$PROG" "$*" "$log" >&2
        tail -n 40 "$log" >&2
        return 1
    fi
}

# ---------------------------------------------------------------------------------------------
# debian: debootstrap a minbase rootfs and `docker import` it.

install_host_cas() {
    # Certificates the host trusts that Debian's bundle lacks (e.g. a TLS-intercepting proxy's CA)
    # go to /usr/local/share/ca-certificates, so any later update-ca-certificates keeps them.
    local rootfs=$1 extra="$1/usr/local/share/ca-certificates/dockyard-host"
    mkdir -p "$extra"
    awk -v out="$extra" '
        /-----BEGIN CERTIFICATE-----/ { block = ""; inblock = 1 }
        inblock { block = block $0 "\n" }
        /-----END CERTIFICATE-----/ {
            inblock = 0
            if (FILENAME == ARGV[1]) { known[block] = 1 }
            else if (!(block in known) && !(block in written)) {
                n++; written[block] = 1
                f = sprintf("%s/host-%03d.crt", out, n); printf "%s", block > f; close(f)
            }
        }' "$rootfs/etc/ssl/certs/ca-certificates.crt" "$HOST_CA_BUNDLE"
    chroot "$rootfs" /usr/sbin/update-ca-certificates >/dev/null
    # And the host's bundle itself, verbatim.
    cp "$HOST_CA_BUNDLE" "$rootfs/etc/ssl/certs/ca-certificates.crt"
    chmod 0644 "$rootfs/etc/ssl/certs/ca-certificates.crt"
}

configure_rootfs() {
    local rootfs=$1
    # Like the official images: no services start during package installs, apt keeps no caches.
    printf '#!/bin/sh\nexit 101\n' > "$rootfs/usr/sbin/policy-rc.d"
    chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
    cat > "$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    echo 'Acquire::Languages "none";' > "$rootfs/etc/apt/apt.conf.d/docker-no-languages"
    rm -f "$rootfs/etc/apt/sources.list"
    cat > "$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
}

in_chroot() {
    local rootfs=$1; shift
    env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        DEBIAN_FRONTEND=noninteractive LC_ALL=C HOME=/root \
        ${http_proxy:+http_proxy=$http_proxy} ${https_proxy:+https_proxy=$https_proxy} \
        chroot "$rootfs" "$@"
}

build_debian() {
    local image=$1 spec=$2 log=$3
    [ "$(id -u)" = 0 ] || die 2 "building $image needs root (debootstrap); run with sudo"
    command -v debootstrap >/dev/null 2>&1 || die 2 "debootstrap is not installed (apt-get install debootstrap)"
    [ -r "$HOST_CA_BUNDLE" ] || die 2 "cannot read the host CA bundle $HOST_CA_BUNDLE"

    local rootfs
    rootfs="$(work_dir)/rootfs"
    mkdir -p "$rootfs" || return 1
    run_logged "$log" debootstrap --variant=minbase --include=ca-certificates \
        --components=main "$SUITE" "$rootfs" "$MIRROR" || return 1
    configure_rootfs "$rootfs" || return 1
    mount -t proc proc "$rootfs/proc" || return 1
    {
        in_chroot "$rootfs" apt-get update -q &&
        in_chroot "$rootfs" apt-get -q -y -o Dpkg::Options::=--force-confold upgrade &&
        install_host_cas "$rootfs" &&
        in_chroot "$rootfs" apt-get clean
    } >>"$log" 2>&1 || { umount "$rootfs/proc"; tail -n 40 "$log" >&2; return 1; }
    umount "$rootfs/proc"

    # Leave no host-specific or cache files in the image.
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/cache/debconf/*-old \
        "$rootfs"/var/log/apt/* "$rootfs"/var/log/dpkg.log "$rootfs"/var/log/alternatives.log \
        "$rootfs"/var/log/bootstrap.log "$rootfs"/tmp/* "$rootfs"/root/.bash_history
    # (set -e is off in here: the caller tests our status, so check what matters)
    : > "$rootfs/etc/resolv.conf"
    echo localhost > "$rootfs/etc/hostname"
    rm -f "$rootfs/etc/machine-id" "$rootfs/var/lib/dbus/machine-id"

    tar --numeric-owner --xattrs -C "$rootfs" \
        --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -cf - . |
        docker import \
            --change 'CMD ["/bin/bash"]' \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change "LABEL $SPEC_LABEL=$spec" \
            --change "LABEL org.opencontainers.image.description=\"debootstrap --variant=minbase $SUITE, with the build host CA bundle\"" \
            --message "dockyard base: debootstrap --variant=minbase $SUITE" \
            - "$image" >>"$log" 2>&1 || { tail -n 20 "$log" >&2; return 1; }

    rm -rf --one-file-system "$rootfs"
}

build_derived() {
    local name=$1 image=$2 spec=$3 log=$4
    local no_cache=()
    [ "$FORCE" = 1 ] && no_cache=(--no-cache)
    run_logged "$log" docker build "${no_cache[@]}" \
        --build-arg "BASE_IMAGE=$(image_name debian)" \
        --label "$SPEC_LABEL=$spec" \
        --tag "$image" \
        --file "$BASE_DIR/$name/Dockerfile" \
        "$BASE_DIR/$name"
}

try_pull() {
    local name=$1 image=$2 public=${PUBLIC_IMAGE[$1]:-}
    [ "$PULL" = 1 ] && [ -n "$public" ] || return 1
    if timeout "$PULL_TIMEOUT" docker pull --quiet "$public" >/dev/null 2>&1; then
        docker tag "$public" "$image"
        return 0
    fi
    return 1
}

# ---------------------------------------------------------------------------------------------

declare -A VISITED=()

ensure() {
    # ensure NAME [dependency]: bring one image up to date and print one line about it.
    local name=$1 as_dependency=${2:-}
    [ -z "${VISITED[$name]:-}" ] || return 0
    VISITED[$name]=1

    local image spec start how old log
    image=$(image_name "$name")
    spec=$(spec_of "$name")
    start=$(date +%s)
    old=$(image_id "$image")

    if [ -z "$as_dependency" ] && [ "$FORCE" = 1 ]; then
        :
    elif up_to_date "$name" "$spec"; then
        say "$image: up to date (spec $spec), 0s"
        return 0
    fi

    if [ -z "$as_dependency" ] && try_pull "$name" "$image"; then
        how="pulled ${PUBLIC_IMAGE[$name]} and tagged it"
    else
        log="$(work_dir)/$name.log"
        if [ "$name" = debian ]; then
            say "$image: building (debootstrap $SUITE from $MIRROR) ..."
            build_debian "$image" "$spec" "$log" || die 1 "$image: build failed"
        else
            ensure debian dependency
            say "$image: building from docker/base/$name/Dockerfile ..."
            build_derived "$name" "$image" "$spec" "$log" || die 1 "$image: build failed"
        fi
        how="built locally (spec $spec)"
        drop_old "$old" "$image"
    fi
    say "$image: $how, $(( $(date +%s) - start ))s"
}

main() {
    parse_args "$@"
    check_docker
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/dockyard-base.XXXXXX")
    local t0 name
    t0=$(date +%s)
    for name in "${ALL_NAMES[@]}"; do
        local wanted=0 s
        for s in "${SELECTED[@]}"; do [ "$s" = "$name" ] && wanted=1; done
        [ "$wanted" = 1 ] && ensure "$name"
    done
    say "done in $(( $(date +%s) - t0 ))s"
}

main "$@"
