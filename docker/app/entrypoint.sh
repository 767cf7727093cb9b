#!/bin/sh
# Entry point of the sample app image. Runs the given command (default: gunicorn).
#
# STATIC_PUBLISH_DIR: when set (the prod compose file sets /app/staticfiles-shared, a
# volume nginx serves from), the static files collected into this image at build time
# are copied there first. The copy happens on every container start, so after each
# redeploy nginx serves the static files of the image that is running. Files of older
# releases are left in place, so pages still in flight keep their stylesheets.
set -eu

if [ -n "${STATIC_PUBLISH_DIR:-}" ]; then
    src=${DJANGO_STATIC_ROOT:-/app/staticfiles}
    if [ ! -d "$src" ]; then
        echo "entrypoint: no collected static files in $src" >&2
        exit 1
    fi
    mkdir -p "$STATIC_PUBLISH_DIR"
    cp -R "$src/." "$STATIC_PUBLISH_DIR/"
    echo "entrypoint: published static files from $src to $STATIC_PUBLISH_DIR" >&2
fi

exec "$@"
