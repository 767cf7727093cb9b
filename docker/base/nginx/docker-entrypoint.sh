#!/bin/sh
# Minimal version of the official nginx image's entrypoint: when starting nginx,
# render /etc/nginx/templates/*.template into /etc/nginx/conf.d/ with envsubst
# (only variables that are set are substituted) and run /docker-entrypoint.d/*.sh.
set -eu

if [ "${1:-}" = "nginx" ] || [ "${1:-}" = "nginx-debug" ]; then
    template_dir=${NGINX_ENVSUBST_TEMPLATE_DIR:-/etc/nginx/templates}
    output_dir=${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}
    suffix=${NGINX_ENVSUBST_TEMPLATE_SUFFIX:-.template}
    if [ -d "$template_dir" ]; then
        # shellcheck disable=SC2016,SC2046
        defined_envs=$(printf '${%s} ' $(env | cut -d= -f1))
        for template in "$template_dir"/*"$suffix"; do
            [ -f "$template" ] || continue
            name=$(basename "$template" "$suffix")
            echo "$0: rendering $template to $output_dir/$name" >&2
            envsubst "$defined_envs" < "$template" > "$output_dir/$name"
        done
    fi
    for script in /docker-entrypoint.d/*.sh; do
        [ -x "$script" ] || continue
        echo "$0: running $script" >&2
        "$script"
    done
fi

exec "$@"
