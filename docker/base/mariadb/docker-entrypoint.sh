#!/bin/bash
# Entry point for dockyard-base/mariadb:bookworm, modelled on the official images'
# behaviour (not their code). See the Dockerfile for the supported variables.
set -Eeuo pipefail

log()  { printf '%s [Entrypoint]: %s\n' "$(date -u '+%Y-%m-%dT%H:%M:%SZ')" "$*" >&2; }
die()  { log "ERROR: $*"; exit 1; }

# file_env VAR: VAR may come from VAR, VAR_FILE, MARIADB_x or MARIADB_x_FILE (x = VAR minus MYSQL_).
file_env() {
    local var=$1 alt="MARIADB_${1#MYSQL_}" default=${2:-} val=""
    local candidate
    for candidate in "$var" "$alt"; do
        local fvar="${candidate}_FILE"
        if [ -n "${!candidate:-}" ] && [ -n "${!fvar:-}" ]; then
            die "both $candidate and $fvar are set (but are exclusive)"
        fi
        if [ -n "${!candidate:-}" ]; then val=${!candidate}; break; fi
        if [ -n "${!fvar:-}" ]; then val=$(< "${!fvar}"); break; fi
    done
    export "$var"="${val:-$default}"
    unset "${var}_FILE" "$alt" "${alt}_FILE" || true
}

sql_escape() { local s=${1//\\/\\\\}; printf '%s' "${s//\'/\\\'}"; }

# `IMAGE --some-option` means mariadbd with that option.
if [ $# -eq 0 ] || [ "${1:0:1}" = '-' ]; then
    set -- mariadbd "$@"
fi

if [ "$1" = mariadbd ] || [ "$1" = mysqld ] || [ "$1" = /usr/sbin/mariadbd ]; then
    shift
    set -- mariadbd "$@"
    datadir=/var/lib/mysql
    socket=/run/mysqld/mysqld.sock

    if [ "$(id -u)" = 0 ]; then
        mkdir -p "$datadir" /run/mysqld
        chown -R mysql:mysql /run/mysqld
        # only chown what is not already ours (large volumes)
        find "$datadir" \! -user mysql -exec chown mysql:mysql '{}' +
        set -- "$@" --user=mysql
    fi

    if [ ! -d "$datadir/mysql" ]; then
        file_env MYSQL_ROOT_PASSWORD
        file_env MYSQL_ALLOW_EMPTY_PASSWORD
        file_env MYSQL_RANDOM_ROOT_PASSWORD
        file_env MYSQL_ROOT_HOST '%'
        file_env MYSQL_DATABASE
        file_env MYSQL_USER
        file_env MYSQL_PASSWORD

        if [ -z "$MYSQL_ROOT_PASSWORD" ] && [ -z "$MYSQL_ALLOW_EMPTY_PASSWORD" ] && [ -z "$MYSQL_RANDOM_ROOT_PASSWORD" ]; then
            die "database is uninitialized and the root password option is not specified
    You need to specify one of MYSQL_ROOT_PASSWORD, MYSQL_ALLOW_EMPTY_PASSWORD and MYSQL_RANDOM_ROOT_PASSWORD"
        fi
        if [ -n "$MYSQL_USER" ] && [ "$MYSQL_USER" = root ]; then
            die "MYSQL_USER=root is not allowed: use MYSQL_ROOT_PASSWORD for the root account"
        fi
        if [ -n "$MYSQL_RANDOM_ROOT_PASSWORD" ] && [ -z "$MYSQL_ROOT_PASSWORD" ]; then
            MYSQL_ROOT_PASSWORD=$(tr -dc 'A-Za-z0-9' < /dev/urandom | head -c 32)
            log "GENERATED ROOT PASSWORD: $MYSQL_ROOT_PASSWORD"
        fi

        log "Initializing database files in $datadir"
        install_args=(--datadir="$datadir" --skip-test-db --auth-root-authentication-method=normal
                      --skip-name-resolve)
        [ "$(id -u)" = 0 ] && install_args+=(--user=mysql)
        mariadb-install-db "${install_args[@]}" > /dev/null
        log "Database files initialized"

        log "Starting temporary server"
        "$@" --skip-networking --socket="$socket" --datadir="$datadir" &
        tmp_pid=$!
        for _ in $(seq 1 60); do
            if mariadb-admin --socket="$socket" -uroot ping --silent >/dev/null 2>&1; then break; fi
            kill -0 "$tmp_pid" 2>/dev/null || die "temporary server exited during initialization"
            sleep 1
        done
        mariadb-admin --socket="$socket" -uroot ping --silent >/dev/null 2>&1 || die "temporary server did not start"
        log "Temporary server started"

        client=(mariadb --protocol=socket --socket="$socket" -uroot --batch --skip-column-names)
        root_pw=$(sql_escape "$MYSQL_ROOT_PASSWORD")
        root_host=$(sql_escape "$MYSQL_ROOT_HOST")
        {
            echo "SET @@SESSION.SQL_LOG_BIN=0;"
            echo "DROP USER IF EXISTS ''@'localhost', ''@'$(hostname)';"
            # mariadb-install-db also makes password-less root@127.0.0.1/::1/<hostname>
            for host in 127.0.0.1 ::1 "$(hostname)"; do
                [ "$host" = "$MYSQL_ROOT_HOST" ] || echo "DROP USER IF EXISTS 'root'@'$(sql_escape "$host")';"
            done
            echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '$root_pw';"
            if [ "$MYSQL_ROOT_HOST" != localhost ]; then
                echo "CREATE USER IF NOT EXISTS 'root'@'$root_host' IDENTIFIED BY '$root_pw';"
                echo "GRANT ALL ON *.* TO 'root'@'$root_host' WITH GRANT OPTION;"
            fi
            if [ -n "$MYSQL_DATABASE" ]; then
                echo "CREATE DATABASE IF NOT EXISTS \`${MYSQL_DATABASE//\`/\`\`}\`;"
            fi
            if [ -n "$MYSQL_USER" ] && [ -n "$MYSQL_PASSWORD" ]; then
                user=$(sql_escape "$MYSQL_USER")
                echo "CREATE USER IF NOT EXISTS '$user'@'%' IDENTIFIED BY '$(sql_escape "$MYSQL_PASSWORD")';"
                if [ -n "$MYSQL_DATABASE" ]; then
                    echo "GRANT ALL ON \`${MYSQL_DATABASE//\`/\`\`}\`.* TO '$user'@'%';"
                fi
            elif [ -n "$MYSQL_USER" ] || [ -n "$MYSQL_PASSWORD" ]; then
                log "Warning: MYSQL_USER and MYSQL_PASSWORD must both be set for a user to be created"
            fi
            echo "FLUSH PRIVILEGES;"
        } | "${client[@]}"

        # Once root has a password, the init scripts connect with it.
        client+=("--password=$MYSQL_ROOT_PASSWORD")
        [ -n "$MYSQL_DATABASE" ] && client+=("$MYSQL_DATABASE")
        # shellcheck disable=SC1090  # init scripts are sourced, like the official image does
        for f in /docker-entrypoint-initdb.d/*; do
            case "$f" in
                *.sh)     log "running $f"; . "$f" ;;
                *.sql)    log "running $f"; "${client[@]}" < "$f" ;;
                *.sql.gz) log "running $f"; gunzip -c "$f" | "${client[@]}" ;;
                *)        if [ -e "$f" ]; then log "ignoring $f"; fi ;;
            esac
        done

        log "Stopping temporary server"
        kill "$tmp_pid"
        wait "$tmp_pid" || true
        log "MariaDB init process done. Ready for start up."
    fi
    unset MYSQL_ROOT_PASSWORD MYSQL_PASSWORD
fi

exec "$@"
