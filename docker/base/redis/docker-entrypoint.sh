#!/bin/sh
# `IMAGE --opt value` and `IMAGE /path/redis.conf` run redis-server, like the official
# image. A bare `redis-server` (optionally followed by options) gets the container
# defaults: all interfaces, protected mode off, data in /data, foreground.
set -eu

case "${1:-}" in
    -*|*.conf) set -- redis-server "$@" ;;
esac

if [ "${1:-}" = "redis-server" ]; then
    shift
    case "${1:-}" in
        *.conf)
            conf=$1; shift
            set -- redis-server "$conf" --daemonize no "$@" ;;
        *)
            set -- redis-server --bind 0.0.0.0 --port 6379 --protected-mode no \
                --dir /data --daemonize no "$@" ;;
    esac
fi

exec "$@"
